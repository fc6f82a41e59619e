//! A model registry for model-lifecycle tests: serves one model file with an `ETag` (the
//! file's SHA-256), answers `If-None-Match` with `304`, can be switched to failing (HTTP 503)
//! and counts what it answered.

use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::serve::{Reply, Server};

struct State {
    file: Vec<u8>,
    failing: bool,
    full: usize,
    not_modified: usize,
}

pub(crate) fn etag(file: &[u8]) -> String {
    let digest = Sha256::digest(file);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// A real HTTP/1.1 server on `127.0.0.1:<free port>`, path-agnostic. Stops on drop.
pub struct ModelServer {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl ModelServer {
    pub fn start(file: Vec<u8>) -> ModelServer {
        let state = Arc::new(Mutex::new(State {
            file,
            failing: false,
            full: 0,
            not_modified: 0,
        }));
        let shared = Arc::clone(&state);
        let server = Server::start(0, move |req| {
            let mut st = shared.lock().unwrap_or_else(|e| e.into_inner());
            if st.failing {
                st.full += 1;
                return Reply::json(503, &serde_json::json!({"error": "registry down"}));
            }
            let tag = etag(&st.file);
            let matches = req
                .headers
                .iter()
                .any(|(n, v)| n == "if-none-match" && v.split(',').any(|t| t.trim() == tag));
            if matches {
                st.not_modified += 1;
                Reply {
                    status: 304,
                    headers: vec![("etag".into(), tag)],
                    body: Vec::new(),
                }
            } else {
                st.full += 1;
                Reply {
                    status: 200,
                    headers: vec![
                        ("content-type".into(), "application/octet-stream".into()),
                        ("etag".into(), tag),
                    ],
                    body: st.file.clone(),
                }
            }
        })
        .unwrap_or_else(|e| panic!("start model server: {e}"));
        ModelServer { server, state }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Publish another file (a new model, or a broken one).
    pub fn publish(&self, file: Vec<u8>) {
        self.lock().file = file;
    }

    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// Answers with a body (200 or error) and `304 Not Modified` answers so far.
    pub fn answered(&self) -> (usize, usize) {
        let st = self.lock();
        (st.full, st.not_modified)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
