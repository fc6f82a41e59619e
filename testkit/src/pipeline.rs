//! Driving the filter's pipeline natively: loading configurations, building requests and
//! reading decisions, as the filter's tests and the fuzz fixtures need them.

use obguard::config::{self, FilterConfig};
use obguard::pipeline::{Action, Decision, RequestView, Worker, decide};
use serde_json::Value;

/// Loads a plugin configuration, panicking with the error when it is refused.
pub fn load(config: &Value) -> FilterConfig {
    config::load(config.to_string().as_bytes())
        .unwrap_or_else(|err| panic!("config rejected: {err}"))
}

/// The error a refused plugin configuration is refused with; panics when it is accepted.
pub fn load_err(config: &Value) -> String {
    match config::load(config.to_string().as_bytes()) {
        Ok(_) => panic!("accepted: {config}"),
        Err(err) => err.to_string(),
    }
}

/// `Bearer <token>`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A request with nothing but a method, a path and `Authorization` values: no interaction id,
/// no `jwt_authn` payloads, no other headers, no source address, `now_ms` 0. Add the rest
/// with struct update syntax (`RequestView { headers: &h, ..view(...) }`).
pub fn view<'a>(method: &'a str, path: &'a str, authorization: &'a [&'a str]) -> RequestView<'a> {
    RequestView {
        method,
        path,
        authorization,
        interaction_id: None,
        jwt_authn_payloads: None,
        headers: &[],
        source_address: None,
        now_ms: 0,
        connection: &obguard::pipeline::Plaintext,
        consent_answer: None,
    }
}

/// `GET path` with `token` as the bearer token, decided at `now` (seconds) by a fresh worker.
pub fn decide_get<'c>(config: &'c FilterConfig, path: &str, token: &str, now: u64) -> Decision<'c> {
    let bearer = bearer(token);
    let authorization = [bearer.as_str()];
    decide(
        config,
        &mut Worker::new(config),
        &view("GET", path, &authorization),
        now,
    )
}

/// The status the client gets: the reply's, or 200 when the request goes upstream (0 while
/// it waits for the consent service).
pub fn status(decision: &Decision<'_>) -> u16 {
    match &decision.action {
        Action::Reply(reply) => reply.status,
        Action::Continue { .. } => 200,
        Action::FetchConsent { .. } => 0,
    }
}

/// A header of obguard's reply (`None` when the request goes upstream).
pub fn reply_header(decision: &Decision<'_>, name: &str) -> Option<String> {
    match &decision.action {
        Action::Reply(reply) => reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone()),
        Action::Continue { .. } | Action::FetchConsent { .. } => None,
    }
}
