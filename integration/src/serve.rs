//! A minimal HTTP/1.1 server on a background thread (tiny_http), shared by the echo upstream and
//! the demo bank.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A request as the server received it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub method: String,
    /// The raw request target (path and query) as sent by the client.
    pub target: String,
    /// Header lines in order, names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// `{"name": [values...]}` with lowercase names.
    pub fn headers_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (name, value) in &self.headers {
            let entry = map
                .entry(name.clone())
                .or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if let serde_json::Value::Array(values) = entry {
                values.push(value.clone().into());
            }
        }
        serde_json::Value::Object(map)
    }
}

/// What a handler answers.
#[derive(Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON reply (`content-type: application/json`).
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }
}

/// A running server; stops (and joins its thread) on drop.
pub(crate) struct Server {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `127.0.0.1:port` (0 = any free port) and serves requests with `handler`, one at a
    /// time, on a background thread.
    pub fn start<F>(port: u16, handler: F) -> std::io::Result<Server>
    where
        F: Fn(Received) -> Reply + Send + 'static,
    {
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        no_delay(&listener);
        let server =
            tiny_http::Server::from_listener(listener, None).map_err(std::io::Error::other)?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("server has no IP address"))?;
        let server = Arc::new(server);
        let worker = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name(format!("http-{}", addr.port()))
            .spawn(move || {
                while let Ok(request) = worker.recv() {
                    serve_one(request, &handler);
                }
            })?;
        Ok(Server {
            server,
            addr,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until the process ends (for the standalone fixture binary).
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sets `TCP_NODELAY` on the listening socket; Linux copies it to every accepted connection.
/// tiny_http writes a response through a 1 KiB buffer, so a larger answer leaves in several
/// writes, and with Nagle's algorithm the second one waits for the client's delayed ACK: about
/// 40 ms per answer on a reused (keep-alive) connection, which is how Envoy talks to upstreams.
fn no_delay(listener: &std::net::TcpListener) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt(2) on a socket we own, with a pointer to a live c_int and its size.
    unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn serve_one<F: Fn(Received) -> Reply>(mut request: tiny_http::Request, handler: &F) {
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    let received = Received {
        method: request.method().to_string(),
        target: request.url().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect(),
        body,
    };
    let reply = handler(received);
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    for (name, value) in reply.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    let _ = request.respond(response);
}
