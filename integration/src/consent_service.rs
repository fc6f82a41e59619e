//! A bank's consent service for consent-bound routes: `GET /consents/{ConsentId}` answers the
//! consent in the UK Open Banking shape (`{"Data": {"ConsentId", "Status", "AccountIds"}}`),
//! `404` for an unknown consent. Consents can be added, revoked and the whole service switched
//! to failing (HTTP 500); it counts the lookups it answered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::json;

use crate::serve::{Reply, Server};

#[derive(Default)]
struct State {
    /// Consent id → (status, account ids).
    consents: HashMap<String, (String, Vec<String>)>,
    failing: bool,
    lookups: Vec<String>,
}

/// A real HTTP/1.1 consent service on `127.0.0.1:<port>`. Stops on drop.
pub struct ConsentService {
    server: Server,
    state: Arc<Mutex<State>>,
}

impl ConsentService {
    /// On a free port.
    pub fn start() -> ConsentService {
        Self::start_on(0).unwrap_or_else(|e| panic!("start consent service: {e}"))
    }

    pub fn start_on(port: u16) -> std::io::Result<ConsentService> {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let server = Server::start(port, move |request| {
            let mut state = shared.lock().unwrap_or_else(|e| e.into_inner());
            let id = request
                .path()
                .strip_prefix("/consents/")
                .map(percent_decode)
                .unwrap_or_default();
            state.lookups.push(id.clone());
            if state.failing {
                return Reply::json(500, &json!({"error": "consent store down"}));
            }
            match state.consents.get(&id) {
                Some((status, accounts)) => Reply::json(
                    200,
                    &json!({"Data": {"ConsentId": id, "Status": status, "AccountIds": accounts}}),
                ),
                None => Reply::json(404, &json!({"error": "no such consent"})),
            }
        })?;
        Ok(ConsentService { server, state })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The plugin's `consent_service` section for this service behind Envoy cluster
    /// `cluster` (its answers' pointers, `Authorised` as the active status).
    pub fn plugin_section(cluster: &str) -> serde_json::Value {
        json!({
            "cluster": cluster,
            "path": "/consents/{consent_id}",
            "resources_pointer": "/Data/AccountIds",
            "status_pointer": "/Data/Status",
            "active_statuses": ["Authorised"],
        })
    }

    /// Grants (or replaces) consent `id` for `accounts`, status `Authorised`.
    pub fn grant(&self, id: &str, accounts: &[&str]) {
        self.lock().consents.insert(
            id.to_owned(),
            (
                "Authorised".to_owned(),
                accounts.iter().map(|a| (*a).to_owned()).collect(),
            ),
        );
    }

    /// Sets consent `id`'s status (e.g. `Revoked`).
    pub fn set_status(&self, id: &str, status: &str) {
        if let Some(consent) = self.lock().consents.get_mut(id) {
            consent.0 = status.to_owned();
        }
    }

    /// Answer 500 to every lookup, or serve again.
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// The consent ids looked up so far, in order.
    pub fn lookups(&self) -> Vec<String> {
        self.lock().lookups.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}
