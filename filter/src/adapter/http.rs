//! One request stream: gather the view, decide, apply.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

use super::host;
use super::jwks;
use super::jwt_authn;
use super::root::Shared;
use crate::enforce::interaction_id;
use crate::pipeline::{self, RequestView, Worker};
use crate::telemetry::log_field;

pub struct ObguardHttp {
    state: Option<Rc<Shared>>,
    interaction_id: Option<String>,
}

impl ObguardHttp {
    pub fn new(state: Option<Rc<Shared>>) -> Self {
        Self {
            state,
            interaction_id: None,
        }
    }
}

impl Context for ObguardHttp {}

impl HttpContext for ObguardHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(state) = self.state.clone() else {
            // Unreachable in practice: Envoy does not create streams for a plugin whose
            // configuration failed. Refuse rather than pass unchecked.
            host::log(
                LogLevel::Error,
                "obguard: request without configuration; refusing",
            );
            host::send_reply(503, &[], "");
            return Action::Pause;
        };
        let headers = host::request_headers();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let authorization: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n == "authorization")
            .map(|(_, v)| v.as_str())
            .collect();
        let jwt_authn_payloads = if state.config.reads_jwt_authn_metadata() {
            jwt_authn::payloads()
        } else {
            None
        };
        let view = RequestView {
            method: header(":method").unwrap_or(""),
            path: header(":path").unwrap_or(""),
            authorization: &authorization,
            interaction_id: header(interaction_id::HEADER),
            jwt_authn_payloads: jwt_authn_payloads.as_ref(),
        };
        let now = host::now_unix_secs();
        let decision = match state.worker.try_borrow_mut() {
            Ok(mut worker) => pipeline::decide(&state.config, &mut worker, &view, now),
            Err(_) => pipeline::decide(&state.config, &mut Worker::new(&state.config), &view, now),
        };
        if let Some(issuer) = decision.refetch_keys_for {
            jwks::request_refetch(&state.config, &state.metrics, issuer, now);
        }

        state.metrics.record(&decision);
        host::set_log_field(log_field::OUTCOME, decision.outcome.as_str());
        host::set_log_field(log_field::INTERACTION_ID, &decision.interaction_id);
        if let Some(reason) = decision.reason {
            host::set_log_field(log_field::REASON, reason);
        }
        if let Some(route) = decision.route {
            host::set_log_field(log_field::ROUTE, route);
        }
        if let Some(client_id) = &decision.client_id {
            host::set_log_field(log_field::CLIENT_ID, client_id);
        }
        self.interaction_id = Some(decision.interaction_id.clone());

        match decision.action {
            pipeline::Action::Reply(reply) => {
                host::send_reply(reply.status, &reply.headers, &reply.body);
                Action::Pause
            }
            pipeline::Action::Continue {
                remove,
                remove_authorization,
                set,
            } => {
                // Only headers the request actually carries cost a host call to remove.
                let present = |name: &str| headers.iter().any(|(n, _)| n == name);
                for name in remove.iter().filter(|name| present(name)) {
                    host::set_request_header(name, None);
                }
                if remove_authorization && !authorization.is_empty() {
                    host::set_request_header("authorization", None);
                }
                for (name, value) in &set {
                    host::set_request_header(name, Some(value));
                }
                host::set_request_header(interaction_id::HEADER, Some(&decision.interaction_id));
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(id) = &self.interaction_id {
            host::set_response_header(interaction_id::HEADER, id);
        }
        Action::Continue
    }
}
