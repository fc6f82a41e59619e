//! The upstream echo fixture.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::serve::{Received, Reply, Server};

/// The JSON the echo server answers for a request:
/// `{"method": .., "path": <raw target incl. query>, "headers": {lowercase name: [values...]},
/// "body": <body as lossy UTF-8>}`.
pub(crate) fn echo_json(req: &Received) -> Value {
    json!({
        "method": req.method,
        "path": req.target,
        "headers": req.headers_json(),
        "body": String::from_utf8_lossy(&req.body),
    })
}

/// Echo handler used by [`EchoUpstream`] and `obguard-fixtures echo`: always 200 with
/// `content-type: application/json` and the body described by [`echo_body`].
pub(crate) fn echo_reply(req: &Received) -> Reply {
    Reply::json(200, &echo_json(req))
}

/// Documentation anchor: the echo body is
/// `{"method": "GET", "path": "/raw/target?q", "headers": {"x-a": ["1", "2"]}, "body": ""}`.
/// Header names are lowercase, values in arrival order, `path` is the raw request target
/// (path and query) exactly as Envoy forwarded it.
pub fn echo_body(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Value {
    echo_json(&Received {
        method: method.into(),
        target: path.into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    })
}

/// An in-process HTTP/1.1 upstream on `127.0.0.1:<free port>` that answers every request with
/// 200 and a JSON echo of what it received (see [`echo_body`]). It also records every request
/// so tests can check what reached (or did not reach) the upstream. Stops on drop.
pub struct EchoUpstream {
    server: Server,
    received: Arc<Mutex<Vec<Value>>>,
}

impl EchoUpstream {
    /// Starts the server on a free loopback port. Panics if it cannot bind.
    pub fn start() -> EchoUpstream {
        Self::start_on(0).unwrap_or_else(|e| panic!("start echo upstream: {e}"))
    }

    /// Starts the server on `127.0.0.1:port` (0 = any free port).
    pub fn start_on(port: u16) -> std::io::Result<EchoUpstream> {
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let server = Server::start(port, move |req| {
            let reply = echo_reply(&req);
            log.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(echo_json(&req));
            reply
        })?;
        Ok(EchoUpstream { server, received })
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Every request received so far, as echo JSON objects, oldest first.
    pub fn received(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many requests reached the upstream so far.
    pub fn count(&self) -> usize {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Serves until the process ends (used by the fixture binary).
    pub fn run_forever(self) {
        self.server.join();
    }
}
