//! One request stream (proxy-wasm HTTP context): gather the view, decide, apply; when the
//! rate-limit stage asks the service, pause and resume (or reply) when its answer arrives;
//! observe the response for the caller's baseline.

use std::rc::Rc;

use super::Flow;
use super::consent_fetch;
use super::jwks_fetch;
use super::jwt_authn;
use super::log_fields::LogFields;
use super::plugin::Shared;
use super::ratelimit_call::{self as rl, Pending};
use crate::authorise::consent::FetchedConsent;
use crate::enforce::interaction_id;
use crate::host::{HeaderMap, Host, HostExt, LogLevel};
use crate::pipeline::{self, RequestView};
use crate::ratelimit::reply::{Next, Obeyed};
use crate::telemetry::{AccessLogFormat, Outcome, log_field};

pub struct Stream {
    host: Rc<dyn Host>,
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
    /// When the request arrived (ms), also the time its response is recorded at.
    request_ms: u64,
    /// The consent-service call this request waits for.
    consent_call: Option<u32>,
    log: LogFields,
}

/// The downstream connection as Envoy describes it, read only when a check needs it.
struct EnvoyConnection<'h> {
    host: &'h dyn Host,
}

impl std::fmt::Debug for EnvoyConnection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvoyConnection")
    }
}

impl pipeline::Connection for EnvoyConnection<'_> {
    fn peer_certificate_sha256(&self) -> Option<String> {
        let bytes = self
            .host
            .property(&["connection", "sha256_peer_certificate_digest"])
            .ok()
            .flatten()?;
        String::from_utf8(bytes).ok().filter(|s| !s.is_empty())
    }
}

impl Stream {
    pub fn new(host: Rc<dyn Host>, state: Option<Rc<Shared>>) -> Self {
        Self {
            host,
            interaction_id: None,
            pending: None,
            route: None,
            outcome: Outcome::Allowed,
            response_headers: Vec::new(),
            observe_client: None,
            request_ms: 0,
            consent_call: None,
            log: LogFields::new(
                state
                    .as_ref()
                    .map_or(AccessLogFormat::Fields, |s| s.config.access_log),
            ),
            state,
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
        let host = self.host.as_ref();
        rl::log_answer(
            host,
            obeyed.answer,
            grpc_status,
            self.route.as_deref(),
            cluster,
        );
        state.metrics.record_ratelimit(obeyed.answer);
        if let Some(line) = crate::ratelimit::reply::dropped_log_line(&obeyed.dropped, cluster) {
            host.log(LogLevel::Warn, &line);
            state
                .metrics
                .ratelimit_headers_dropped(obeyed.dropped.len());
        }
        self.log
            .set(host, log_field::RATELIMIT, &obeyed.answer.log_value());
        let (outcome, refusal) = pipeline::ratelimit::settle(self.outcome, obeyed.answer);
        state.metrics.record_outcome(outcome);
        if let Some(reason) = refusal {
            self.log.set(host, log_field::OUTCOME, outcome.as_str());
            self.log.set(host, log_field::REASON, reason);
        }
        self.log.flush(host);
        match obeyed.next {
            Next::Resume {
                request_headers,
                response_headers,
            } => {
                for (name, value) in &request_headers {
                    host.set_request_header(name, value);
                }
                self.response_headers = response_headers;
                true
            }
            Next::Reply(reply) => {
                host.reply(reply.status, &reply.headers, &reply.body);
                false
            }
        }
    }

    /// The rate-limit call answered (`status_code` 0, `response_size` bytes to read) or
    /// failed (any other gRPC status).
    pub fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
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
            self.host.as_ref(),
            &pending,
            status_code,
            response_size,
            &config.reserved,
            &state.config.realm,
            &interaction_id,
        );
        if self.obey(&state, obeyed, status_code) {
            self.host.resume();
        }
    }

    pub fn on_request_headers(&mut self) -> Flow {
        self.decide(None)
    }

    /// The consent service answered (or the call failed): decide again with its answer.
    pub fn on_http_call_response(&mut self, token: u32, body_size: usize) {
        if self.consent_call != Some(token) {
            return;
        }
        self.consent_call = None;
        let Some(state) = self.state.clone() else {
            return;
        };
        let Some(service) = &state.config.consent_service else {
            return;
        };
        let answer = consent_fetch::answer(self.host.as_ref(), service, body_size);
        state.metrics.record_consent_fetch(&answer);
        if self.decide(Some(&answer)) == Flow::Continue {
            self.host.resume();
        }
    }

    /// Gathers the request, decides and applies the decision; `consent_answer` is the
    /// consent service's answer when the request is decided again after a fetch.
    fn decide(&mut self, consent_answer: Option<&FetchedConsent>) -> Flow {
        let host = self.host.clone();
        let host = host.as_ref();
        let Some(state) = self.state.clone() else {
            // Unreachable in practice: Envoy does not create streams for a plugin whose
            // configuration failed. Refuse rather than pass unchecked.
            host.log(
                LogLevel::Error,
                "obguard: request without configuration; refusing",
            );
            host.reply(503, &[], "");
            return Flow::Pause;
        };
        let headers = match host.header_pairs(HeaderMap::RequestHeaders) {
            Ok(headers) => headers,
            Err(err) => {
                host.log(
                    LogLevel::Error,
                    &format!("obguard: cannot read request headers ({err}); refusing"),
                );
                state.metrics.host_refused();
                host.reply(503, &[], "");
                return Flow::Pause;
            }
        };
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
        let (now, now_ms) = host.now_secs_and_ms();
        self.request_ms = now_ms;
        let jwt_authn_payloads = if state.config.reads_jwt_authn_metadata() {
            jwt_authn::payloads(host)
        } else {
            None
        };
        let source_address = state
            .config
            .reads_source_address()
            .then(|| host.property(&["source", "address"]).ok().flatten())
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let connection = EnvoyConnection { host };
        let view = RequestView {
            method: header(":method").unwrap_or(""),
            path: header(":path").unwrap_or(""),
            authorization: &authorization,
            interaction_id: header(interaction_id::HEADER),
            jwt_authn_payloads: jwt_authn_payloads.as_ref(),
            headers: &headers,
            source_address: source_address.as_deref(),
            now_ms,
            connection: &connection,
            consent_answer,
        };
        // The worker is only ever borrowed within one host callback, and the host never calls
        // back into the VM during a host call: a failed borrow is a bug, refused rather than
        // decided without the worker's keys and models.
        let Ok(mut worker) = state.worker.try_borrow_mut() else {
            host.log(
                LogLevel::Critical,
                "obguard: worker state busy (re-entered callback); refusing",
            );
            state.metrics.host_refused();
            host.reply(503, &[], "");
            return Flow::Pause;
        };
        let decision = pipeline::decide(&state.config, &mut worker, &view, now);
        drop(worker);
        if let Some(issuer) = decision.trace.refetch_keys_for {
            jwks_fetch::request_refetch(host, &state.config, &state.metrics, issuer, now);
        }
        if let pipeline::Action::FetchConsent { consent_id } = &decision.action {
            // Nothing is recorded yet: the request is decided again with the answer.
            let Some(service) = &state.config.consent_service else {
                host.reply(503, &[], "");
                return Flow::Pause;
            };
            return match consent_fetch::dispatch(host, service, consent_id) {
                Ok(token) => {
                    self.consent_call = Some(token);
                    Flow::Pause
                }
                Err(answer) if consent_answer.is_none() => {
                    state.metrics.record_consent_fetch(&answer);
                    self.decide(Some(&answer))
                }
                // Decided with an answer already: the stage never asks twice.
                Err(_) => {
                    host.reply(503, &[], "");
                    Flow::Pause
                }
            };
        }

        self.log
            .set(host, log_field::OUTCOME, decision.outcome.as_str());
        self.log
            .set(host, log_field::INTERACTION_ID, &decision.interaction_id);
        if let Some(reason) = decision.reason {
            self.log.set(host, log_field::REASON, reason);
        }
        if let Some(route) = decision.route {
            self.log.set(host, log_field::ROUTE, route);
        }
        if let Some(source) = decision.trace.consent {
            self.log.set(host, log_field::CONSENT, source.as_str());
        }
        if let Some(binding) = decision.trace.sender_constraint {
            self.log.set(host, log_field::SENDER_CONSTRAINT, binding);
        }
        if let Some(reason) = decision.trace.fapi_logged {
            self.log.set(host, log_field::FAPI_VIOLATION, reason);
        }
        if let (Some(intel), false) = (&state.config.threat_intel, decision.trace.intel.is_empty())
        {
            let hits: Vec<String> = decision
                .trace
                .intel
                .iter()
                .filter_map(|hit| {
                    let feed = intel.feeds.get(hit.feed)?;
                    Some(format!(
                        "{}:{}({})",
                        hit.action.as_str(),
                        feed.name,
                        hit.matched
                    ))
                })
                .collect();
            self.log.set(host, log_field::INTEL, &hits.join(" "));
        }
        if let Some(client_id) = &decision.client_id {
            self.log.set(host, log_field::CLIENT_ID, client_id);
        }
        self.interaction_id = Some(decision.interaction_id.clone());
        if decision.trace.model_unavailable {
            state.metrics.model_unavailable();
        }
        // A rule hit's reason comes first, then the model's.
        let mut reasons: Vec<&str> = Vec::new();
        if let Some(check) = &decision.trace.rules {
            state.metrics.record_rules(check);
            if let Some(hit) = &check.hit {
                reasons.push(&hit.reason);
            }
        }
        if let Some(scored) = &decision.trace.model {
            reasons.extend(scored.reasons.iter().map(String::as_str));
        }
        if !reasons.is_empty() {
            self.log.set(host, log_field::REASONS, &reasons.join("; "));
        }
        if let Some(scored) = &decision.trace.model {
            state.metrics.record_verdict(scored.verdict);
            state.metrics.record_baseline(scored.baseline);
            self.log
                .set(host, log_field::VERDICT, scored.verdict.as_str());
            self.log
                .set(host, log_field::SCORE, &format!("{:.3}", scored.score));
            self.log
                .set(host, log_field::MODEL, scored.model.short_digest());
            if let Some(shadow) = &scored.shadow {
                state.metrics.record_shadow_verdict(shadow.verdict);
                self.log
                    .set(host, log_field::SHADOW_VERDICT, shadow.verdict.as_str());
                self.log.set(
                    host,
                    log_field::SHADOW_SCORE,
                    &format!("{:.3}", shadow.score),
                );
                self.log
                    .set(host, log_field::SHADOW_MODEL, shadow.model.short_digest());
            }
            if matches!(decision.action, pipeline::Action::Continue { .. }) {
                self.observe_client = decision.client_id.clone();
            }
        }

        // Final unless a rate-limit answer refuses the request (`obey` writes again).
        self.log.flush(host);
        super::respond::after_decision(host, &state, &view, &decision, now_ms);

        let (set, call) = match &decision.action {
            pipeline::Action::Reply(reply) => {
                state.metrics.record(&decision);
                host.reply(reply.status, &reply.headers, &reply.body);
                return Flow::Pause;
            }
            // Handled above, before anything was recorded.
            pipeline::Action::FetchConsent { .. } => return Flow::Pause,
            pipeline::Action::Continue {
                remove,
                remove_authorization,
                set,
                ratelimit,
            } => {
                // Only headers the request actually carries cost a host call to remove.
                let present = |name: &str| headers.iter().any(|(n, _)| n == name);
                for name in remove.iter().filter(|name| present(name)) {
                    host.remove_request_header(name);
                }
                if *remove_authorization && !authorization.is_empty() {
                    host.remove_request_header("authorization");
                }
                (set, ratelimit)
            }
        };
        for (name, value) in set {
            host.set_request_header(name, value);
        }
        host.set_request_header(interaction_id::HEADER, &decision.interaction_id);

        let (Some(config), Some(call)) = (&state.config.ratelimit, call) else {
            state.metrics.record(&decision);
            return Flow::Continue;
        };
        // `requests.<outcome>` waits for the answer, which may turn it into a refusal.
        state.metrics.record_details(&decision);
        self.route = decision.route.map(str::to_owned);
        self.outcome = decision.outcome;
        match rl::dispatch(
            host,
            config,
            call,
            &state.config.realm,
            &decision.interaction_id,
        ) {
            Ok(pending) => {
                self.pending = Some(pending);
                Flow::Pause
            }
            Err(obeyed) => {
                if self.obey(&state, obeyed, 0) {
                    Flow::Continue
                } else {
                    Flow::Pause
                }
            }
        }
    }

    // While the rate-limit or consent call is in flight the body and trailers wait too. Envoy 1.40 already
    // holds them while the headers are paused (`request_bodies_wait_for_the_answer` passes
    // without this); saying so explicitly keeps other proxy-wasm hosts from forwarding early.
    pub fn on_request_body(&mut self) -> Flow {
        if self.pending.is_some() || self.consent_call.is_some() {
            Flow::Pause
        } else {
            Flow::Continue
        }
    }

    pub fn on_request_trailers(&mut self) -> Flow {
        self.on_request_body()
    }

    pub fn on_response_headers(&mut self) -> Flow {
        let host = self.host.as_ref();
        if let (Some(client), Some(state)) = (self.observe_client.take(), &self.state)
            && let Some(stage) = &state.config.model
        {
            // One map read instead of two header reads (each a data-returning host call),
            // and the request's clock: the response is milliseconds younger, and baselines
            // count it in minutes.
            let headers = host
                .header_pairs(HeaderMap::ResponseHeaders)
                .unwrap_or_default();
            let value = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            let response = pipeline::response::observed(
                value(":status"),
                value("content-length"),
                self.request_ms,
            );
            if let Ok(mut worker) = state.worker.try_borrow_mut() {
                let now_ms = response.at_ms;
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
            host.set_response_header(name, value);
        }
        if let Some(id) = &self.interaction_id {
            host.set_response_header(interaction_id::HEADER, id);
        }
        Flow::Continue
    }
}
