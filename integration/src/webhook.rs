//! A security-event webhook (a SIEM collector's HTTP intake): it takes CloudEvents batches
//! (`application/cloudevents-batch+json`, a JSON array) or single events
//! (`application/cloudevents+json`) by POST, keeps every event, and optionally appends each
//! as one JSON line to a file (the demo's `events.jsonl`). It can be told to answer an error
//! status or to answer late, to show that neither reaches the requests obguard decides.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::{Reply, Server};

/// How the webhook answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookMode {
    /// `202 Accepted`, keeping the events.
    Accept,
    /// This status, keeping nothing.
    Status(u16),
    /// Wait this long, then accept (keeping the events).
    Delay(Duration),
}

struct State {
    mode: WebhookMode,
    events: Vec<Value>,
    /// Content type of every POST, in order.
    posts: Vec<String>,
    out: Option<PathBuf>,
}

/// A real HTTP/1.1 webhook on `127.0.0.1:<port>`, path-agnostic. Stops on drop.
pub struct Webhook {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl Webhook {
    /// On a free port, keeping events in memory only.
    pub fn start() -> Webhook {
        Self::start_on(0, None).unwrap_or_else(|e| panic!("start webhook: {e}"))
    }

    /// On `port` (0: any free one); with `out`, each event is also appended to that file as
    /// one JSON line.
    pub fn start_on(port: u16, out: Option<PathBuf>) -> std::io::Result<Webhook> {
        let state = Arc::new(Mutex::new(State {
            mode: WebhookMode::Accept,
            events: Vec::new(),
            posts: Vec::new(),
            out,
        }));
        let shared = Arc::clone(&state);
        let server = Server::start(port, move |request| {
            let mode = lock(&shared).mode.clone();
            if let WebhookMode::Delay(delay) = mode {
                std::thread::sleep(delay);
            }
            let content_type = request
                .headers
                .iter()
                .find(|(n, _)| n == "content-type")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let mut state = lock(&shared);
            state.posts.push(content_type);
            if let WebhookMode::Status(status) = state.mode {
                return Reply::json(status, &json!({"error": "collector refuses"}));
            }
            if request.method != "POST" {
                return Reply::json(405, &json!({"error": "POST only"}));
            }
            let events = match serde_json::from_slice::<Value>(&request.body) {
                Ok(Value::Array(events)) => events,
                Ok(event @ Value::Object(_)) => vec![event],
                _ => return Reply::json(400, &json!({"error": "not a CloudEvent or batch"})),
            };
            if let Some(path) = state.out.clone()
                && let Ok(mut file) = OpenOptions::new().create(true).append(true).open(&path)
            {
                for event in &events {
                    let _ = writeln!(file, "{event}");
                }
            }
            let accepted = events.len();
            state.events.extend(events);
            Reply::json(202, &json!({"accepted": accepted}))
        })?;
        Ok(Webhook { server, state })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    pub fn set_mode(&self, mode: WebhookMode) {
        lock(&self.state).mode = mode;
    }

    /// Every event taken so far, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        lock(&self.state).events.clone()
    }

    /// The content type of every POST received (accepted or not).
    pub fn posts(&self) -> Vec<String> {
        lock(&self.state).posts.clone()
    }

    /// Waits until `pred` holds for the events taken (polling), at most `within`.
    pub fn wait_until(&self, within: Duration, pred: impl Fn(&[Value]) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if pred(&lock(&self.state).events) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Serves until the process ends (the standalone fixture binary).
    pub fn join(self) {
        self.server.join();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}
