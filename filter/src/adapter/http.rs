//! One request stream: gather the view, decide, apply; when the rate-limit stage asks the
//! service, pause and resume (or reply) when its answer arrives.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

use super::host;
use super::jwks;
use super::jwt_authn;
use super::ratelimit::{self as rl, Pending};
use super::root::Shared;
use crate::assess::pending::ObservedResponse;
use crate::enforce::interaction_id;
use crate::pipeline::{self, RequestView, Worker};
use crate::ratelimit::RequestFacts;
use crate::ratelimit::reply::{Answer, Next, Obeyed};
use crate::telemetry::{self, Outcome, log_field};

pub struct ObguardHttp {
    state: Option<Rc<Shared>>,
    interaction_id: Option<String>,
    /// The rate-limit call this request waits for.
    pending: Option<Pending>,
    /// Route of the request, for the rate-limit failure log line.
    route: Option<String>,
    /// The pipeline's outcome, final unless the rate-limit answer refuses the request.
    outcome: Outcome,
    /// `response_headers_to_add` of an `OK` rate-limit answer.
    response_headers: Vec<(String, String)>,
    /// The client whose baseline the response phase updates (model configured, request
    /// allowed to the upstream).
    observe_client: Option<String>,
}

impl ObguardHttp {
    pub fn new(state: Option<Rc<Shared>>) -> Self {
        Self {
            state,
            interaction_id: None,
            pending: None,
            route: None,
            outcome: Outcome::Allowed,
            response_headers: Vec::new(),
            observe_client: None,
        }
    }

    /// Applies a rate-limit answer: metrics, log fields, then the headers to set or the reply
    /// to send. Returns whether the request goes on.
    fn obey(&mut self, state: &Shared, obeyed: Obeyed, grpc_status: u32) -> bool {
        let cluster = state
            .config
            .ratelimit
            .as_ref()
            .map_or("", |c| c.cluster.as_str());
        rl::log_answer(obeyed.answer, grpc_status, self.route.as_deref(), cluster);
        state.metrics.record_ratelimit(obeyed.answer);
        if let Some(line) = crate::ratelimit::reply::dropped_log_line(&obeyed.dropped, cluster) {
            host::log(LogLevel::Warn, &line);
            state
                .metrics
                .ratelimit_headers_dropped(obeyed.dropped.len());
        }
        host::set_log_field(log_field::RATELIMIT, &obeyed.answer.log_value());
        let refused = match obeyed.answer {
            Answer::OverLimit => Some((Outcome::RateLimited, telemetry::REASON_OVER_LIMIT)),
            Answer::FailedClosed(failure) => Some((Outcome::RateLimitFailed, failure.as_str())),
            Answer::Ok | Answer::FailedOpen(_) => None,
        };
        match refused {
            Some((outcome, reason)) => {
                state.metrics.record_outcome(outcome);
                host::set_log_field(log_field::OUTCOME, outcome.as_str());
                host::set_log_field(log_field::REASON, reason);
            }
            None => state.metrics.record_outcome(self.outcome),
        }
        match obeyed.next {
            Next::Resume {
                request_headers,
                response_headers,
            } => {
                for (name, value) in &request_headers {
                    host::set_request_header(name, Some(value));
                }
                self.response_headers = response_headers;
                true
            }
            Next::Reply(reply) => {
                host::send_reply(reply.status, &reply.headers, &reply.body);
                false
            }
        }
    }
}

impl Context for ObguardHttp {
    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        let Some(state) = self.state.clone() else {
            return;
        };
        let Some(pending) = self.pending.take_if(|p| p.token == token_id) else {
            return;
        };
        let Some(config) = state.config.ratelimit.as_ref() else {
            return;
        };
        let interaction_id = self.interaction_id.clone().unwrap_or_default();
        let obeyed = rl::answer(
            &pending,
            status_code,
            response_size,
            &config.reserved,
            &state.config.realm,
            &interaction_id,
        );
        if self.obey(&state, obeyed, status_code) {
            host::resume_request();
        }
    }
}

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
        let (now, now_ms) = host::now_unix_secs_and_ms();
        let jwt_authn_payloads = if state.config.reads_jwt_authn_metadata() {
            jwt_authn::payloads()
        } else {
            None
        };
        let source_address = state
            .config
            .reads_source_address()
            .then(|| host::property_string(&["source", "address"]))
            .flatten();
        let view = RequestView {
            method: header(":method").unwrap_or(""),
            path: header(":path").unwrap_or(""),
            authorization: &authorization,
            interaction_id: header(interaction_id::HEADER),
            jwt_authn_payloads: jwt_authn_payloads.as_ref(),
            headers: &headers,
            source_address: source_address.as_deref(),
            now_ms,
        };
        let decision = match state.worker.try_borrow_mut() {
            Ok(mut worker) => pipeline::decide(&state.config, &mut worker, &view, now),
            Err(_) => pipeline::decide(&state.config, &mut Worker::new(&state.config), &view, now),
        };
        if let Some(issuer) = decision.refetch_keys_for {
            jwks::request_refetch(&state.config, &state.metrics, issuer, now);
        }

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
        if decision.model_unavailable {
            state.metrics.model_unavailable();
        }
        if let Some(scored) = &decision.model {
            state.metrics.record_verdict(scored.verdict);
            state.metrics.record_baseline(scored.baseline);
            host::set_log_field(log_field::VERDICT, scored.verdict.as_str());
            host::set_log_field(log_field::SCORE, &format!("{:.3}", scored.score));
            if !scored.reasons.is_empty() {
                host::set_log_field(log_field::REASONS, &scored.reasons.join("; "));
            }
            host::set_log_field(log_field::MODEL, scored.model.short_digest());
            if let Some(shadow) = &scored.shadow {
                state.metrics.record_shadow_verdict(shadow.verdict);
                host::set_log_field(log_field::SHADOW_VERDICT, shadow.verdict.as_str());
                host::set_log_field(log_field::SHADOW_SCORE, &format!("{:.3}", shadow.score));
                host::set_log_field(log_field::SHADOW_MODEL, shadow.model.short_digest());
            }
            if matches!(decision.action, pipeline::Action::Continue { .. }) {
                self.observe_client = decision.client_id.clone();
            }
        }

        let set = match &decision.action {
            pipeline::Action::Reply(reply) => {
                state.metrics.record(&decision);
                host::send_reply(reply.status, &reply.headers, &reply.body);
                return Action::Pause;
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
                if *remove_authorization && !authorization.is_empty() {
                    host::set_request_header("authorization", None);
                }
                set
            }
        };
        for (name, value) in set {
            host::set_request_header(name, Some(value));
        }
        host::set_request_header(interaction_id::HEADER, Some(&decision.interaction_id));

        let Some(config) = &state.config.ratelimit else {
            state.metrics.record(&decision);
            return Action::Continue;
        };
        let facts = RequestFacts {
            client_id: decision.client_id.as_deref(),
            subject: decision.subject.as_deref(),
            route: decision.route,
            assessment: decision.assessment,
            country: config.country_header.as_deref().and_then(header),
        };
        let Some(call) = rl::plan(config, &facts) else {
            state.metrics.record(&decision);
            return Action::Continue;
        };
        // `requests.<outcome>` waits for the answer, which may turn it into a refusal.
        state.metrics.record_details(&decision);
        self.route = decision.route.map(str::to_owned);
        self.outcome = decision.outcome;
        match rl::dispatch(config, &call, &state.config.realm, &decision.interaction_id) {
            Ok(pending) => {
                self.pending = Some(pending);
                Action::Pause
            }
            Err(obeyed) => {
                if self.obey(&state, obeyed, 0) {
                    Action::Continue
                } else {
                    Action::Pause
                }
            }
        }
    }

    // While the rate-limit call is in flight the body and trailers wait too. Envoy 1.40 already
    // holds them while the headers are paused (`request_bodies_wait_for_the_answer` passes
    // without this); saying so explicitly keeps other proxy-wasm hosts from forwarding early.
    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        if self.pending.is_some() {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.pending.is_some() {
            Action::Pause
        } else {
            Action::Continue
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let (Some(client), Some(state)) = (self.observe_client.take(), &self.state)
            && let Some(stage) = &state.config.model
        {
            let status = host::response_header(":status")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let bytes = host::response_header("content-length")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if let Ok(mut worker) = state.worker.try_borrow_mut() {
                let now_ms = host::now_unix_ms();
                let response = ObservedResponse {
                    status,
                    bytes,
                    at_ms: now_ms,
                };
                // Folded with the client's next request; at once only when the worker's
                // pending set is full.
                if !worker.pending_responses.defer(&client, response) {
                    let fate =
                        stage.observe(worker.baselines.as_mut(), &client, &[response], now_ms);
                    state.metrics.record_baseline(fate);
                }
            }
        }
        for (name, value) in &self.response_headers {
            host::set_response_header(name, value);
        }
        if let Some(id) = &self.interaction_id {
            host::set_response_header(interaction_id::HEADER, id);
        }
        Action::Continue
    }
}
