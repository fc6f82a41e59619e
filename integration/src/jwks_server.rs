//! An identity provider's JWKS endpoint for remote-JWKS tests: serves a JWKS that a test can
//! rotate, can be switched to failing (HTTP 500) and counts the fetches it answered.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::serve::{Reply, Server};

struct State {
    jwks: Value,
    failing: bool,
    fetches: usize,
}

/// A real HTTP/1.1 JWKS server on `127.0.0.1:<free port>`, path-agnostic. Stops on drop.
pub struct JwksServer {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl JwksServer {
    pub fn start(jwks: Value) -> JwksServer {
        let state = Arc::new(Mutex::new(State {
            jwks,
            failing: false,
            fetches: 0,
        }));
        let shared = Arc::clone(&state);
        let server = Server::start(0, move |_req| {
            let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
            st.fetches += 1;
            if st.failing {
                Reply::json(500, &serde_json::json!({"error": "idp down"}))
            } else {
                Reply::json(200, &st.jwks)
            }
        })
        .unwrap_or_else(|e| panic!("start JWKS server: {e}"));
        JwksServer { server, state }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Serve a new key set from now on (key rotation).
    pub fn set_jwks(&self, jwks: Value) {
        self.lock().jwks = jwks;
    }

    /// Answer 500 to every fetch (IdP down) or serve again.
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// Fetches answered so far (successful or not).
    pub fn fetches(&self) -> usize {
        self.lock().fetches
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A static cluster named `name` pointing at `127.0.0.1:port`, for `EnvoyOptions::extra_clusters`.
pub fn loopback_cluster(name: &str, port: u16) -> Value {
    serde_json::json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "0.5s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]
        }
    })
}
