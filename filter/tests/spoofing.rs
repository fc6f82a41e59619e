//! Spoofing and smuggling holes found by outside testers, natively: each test here failed
//! before its fix. The same cases run through the real Envoy in
//! `integration/tests/spoofing.rs`.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use obguard::config::{self, FilterConfig};
use obguard::pipeline::{Action, Decision, RequestView, Worker, decide};
use obguard::telemetry::Outcome;
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

fn load(config: &Value) -> FilterConfig {
    match config::load(config.to_string().as_bytes()) {
        Ok(config) => config,
        Err(err) => panic!("config rejected: {err}"),
    }
}

fn load_err(config: &Value) -> String {
    match config::load(config.to_string().as_bytes()) {
        Ok(_) => panic!("accepted: {config}"),
        Err(err) => err.to_string(),
    }
}

struct Request<'a> {
    method: &'a str,
    path: &'a str,
    token: Option<&'a str>,
    headers: Vec<(String, String)>,
}

impl<'a> Request<'a> {
    fn get(path: &'a str, token: &'a str) -> Self {
        Self {
            method: "GET",
            path,
            token: Some(token),
            headers: Vec::new(),
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

fn run<'c>(config: &'c FilterConfig, worker: &mut Worker, req: &Request<'_>) -> Decision<'c> {
    run_at(config, worker, req, kit::now())
}

fn run_at<'c>(
    config: &'c FilterConfig,
    worker: &mut Worker,
    req: &Request<'_>,
    now: u64,
) -> Decision<'c> {
    let bearer = req.token.map(|t| format!("Bearer {t}"));
    let authorization: Vec<&str> = bearer.iter().map(String::as_str).collect();
    let view = RequestView {
        method: req.method,
        path: req.path,
        authorization: &authorization,
        interaction_id: None,
        jwt_authn_payloads: None,
        headers: &req.headers,
        now_ms: 0,
    };
    decide(config, worker, &view, now)
}

fn status(decision: &Decision<'_>) -> u16 {
    match &decision.action {
        Action::Reply(reply) => reply.status,
        Action::Continue { .. } => 200,
    }
}

fn removed(decision: &Decision<'_>) -> Vec<String> {
    match &decision.action {
        Action::Continue { remove, .. } => remove.to_vec(),
        Action::Reply(_) => panic!("refused: {:?}", decision.reason),
    }
}

fn accounts_token(client: &str) -> String {
    kit::token("ES256", Key::P256, &kit::claims(client, "accounts"))
}

// ---------------------------------------------------------------------------------------
// 1. Underscore spellings of obguard's own headers.

#[test]
fn underscore_and_mixed_case_spellings_of_identity_headers_are_removed() {
    let config = load(&kit::plugin_config());
    let mut worker = Worker::new(&config);
    let token = accounts_token("tpp-real");
    let spoofs = [
        "x_obguard_client_id",
        "X_Obguard_Scopes",
        "x-obguard_subject",
        "x_obguard_route",
        "x_obguard_verdict",
        "x_obguard_risk_band",
        // A configured claim header and the interaction id obguard sets upstream.
        "x_obguard_token_id",
        "x_fapi_interaction_id",
    ];
    let mut req = Request::get("/accounts", &token).header("x-unrelated_header", "kept");
    for name in spoofs {
        req = req.header(name, "evil");
    }
    for decision in [
        run(&config, &mut worker, &req),
        // Anonymous routes strip them too.
        run(
            &config,
            &mut worker,
            &Request {
                token: None,
                path: "/health",
                ..Request::get("/health", "")
            }
            .header("x_obguard_client_id", "evil"),
        ),
    ] {
        let remove = removed(&decision);
        assert!(remove.iter().any(|n| n == "x-obguard-client-id"));
        assert!(!remove.iter().any(|n| n == "x-unrelated_header"));
        if decision.outcome == Outcome::Allowed {
            for name in spoofs {
                assert!(remove.iter().any(|n| n == name), "{name} kept: {remove:?}");
            }
        } else {
            assert!(remove.iter().any(|n| n == "x_obguard_client_id"));
        }
    }
}

#[test]
fn configured_headers_must_differ_for_upstreams_that_read_underscores_as_dashes() {
    let mut config = kit::plugin_config();
    config["headers"]["claims"] = json!([{"claim": "jti", "header": "x_obguard_subject"}]);
    assert_eq!(
        load_err(&config),
        "headers.claims[0].header: header `x_obguard_subject` is another spelling of a header already configured (upstreams read `_` as `-`)"
    );
    let mut config = kit::plugin_config();
    config["headers"]["strip"] = json!(["content_length"]);
    assert_eq!(
        load_err(&config),
        "headers.strip[0]: `content_length` is reserved"
    );
    // Stripping another spelling of a set header is allowed (and harmless).
    let mut config = kit::plugin_config();
    config["headers"]["strip"] = json!(["x_obguard_client_id"]);
    load(&config);
}

// ---------------------------------------------------------------------------------------
// 2. Method-override headers.

fn reply_body(decision: &Decision<'_>) -> Value {
    match &decision.action {
        Action::Reply(reply) => serde_json::from_str(&reply.body).unwrap(),
        Action::Continue { .. } => Value::Null,
    }
}

#[test]
fn method_override_headers_are_refused_on_authorised_routes_by_default() {
    let config = load(&kit::plugin_config());
    let mut worker = Worker::new(&config);
    let token = accounts_token("tpp-1");
    for name in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "X_HTTP_Method_Override",
    ] {
        let decision = run(
            &config,
            &mut worker,
            &Request::get("/accounts", &token).header(name, "DELETE"),
        );
        assert_eq!(status(&decision), 400, "{name}");
        assert_eq!(decision.outcome, Outcome::InvalidRequest);
        assert_eq!(decision.reason, Some("method_override"));
        let body = reply_body(&decision);
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(
            body["error_description"],
            "Method override headers are not accepted"
        );
    }
    // Anonymous routes are authorised routes too: GET /health must not become a DELETE.
    let decision = run(
        &config,
        &mut worker,
        &Request {
            token: None,
            ..Request::get("/health", "")
        }
        .header("x-http-method-override", "DELETE"),
    );
    assert_eq!(decision.reason, Some("method_override"));
    // Without the header nothing changes.
    let decision = run(&config, &mut worker, &Request::get("/accounts", &token));
    assert_eq!(decision.outcome, Outcome::Allowed);
}

#[test]
fn method_override_headers_are_stripped_with_strip_and_on_pass_through() {
    let mut raw = kit::plugin_config();
    raw["method_override"] = json!("strip");
    let config = load(&raw);
    let mut worker = Worker::new(&config);
    let token = accounts_token("tpp-1");
    let decision = run(
        &config,
        &mut worker,
        &Request::get("/accounts", &token)
            .header("x-http-method-override", "DELETE")
            .header("x_method_override", "DELETE"),
    );
    assert_eq!(decision.outcome, Outcome::Allowed);
    let remove = removed(&decision);
    assert!(remove.iter().any(|n| n == "x-http-method-override"));
    assert!(remove.iter().any(|n| n == "x_method_override"));

    // `refuse` cannot refuse what obguard does not authorise (`unmatched: allow`): stripped.
    let mut raw = kit::plugin_config();
    raw["unmatched"] = json!("allow");
    let config = load(&raw);
    let mut worker = Worker::new(&config);
    let decision = run(
        &config,
        &mut worker,
        &Request {
            token: None,
            ..Request::get("/elsewhere", "")
        }
        .header("x-http-method", "PUT"),
    );
    assert_eq!(decision.outcome, Outcome::Passthrough);
    assert!(removed(&decision).iter().any(|n| n == "x-http-method"));

    let mut raw = kit::plugin_config();
    raw["method_override"] = json!("forward");
    assert!(load_err(&raw).starts_with("method_override: unknown variant `forward`"));
}

// ---------------------------------------------------------------------------------------
// 3. Path parameters outside a safe character set.

#[test]
fn path_parameters_accept_only_unreserved_characters_by_default() {
    let config = load(&kit::plugin_config());
    let mut worker = Worker::new(&config);
    let token = kit::token(
        "ES256",
        Key::P256,
        &kit::claims("tpp-1", "accounts transactions:read"),
    );
    for path in [
        "/accounts/%c0%ae%c0%ae",
        "/accounts/%C0%AE%C0%AE/transactions",
        "/accounts/%EF%BC%8E%EF%BC%8E",
        "/accounts/acc-1%3Bx=1",
        "/accounts/acc-1%3F",
        "/accounts/acc-1%23frag/balances",
        "/accounts/acc\u{fc}",
        "/accounts/acc@1",
    ] {
        let decision = run(&config, &mut worker, &Request::get(path, &token));
        assert_eq!(status(&decision), 400, "{path}");
        assert_eq!(decision.reason, Some("path_parameter"), "{path}");
        assert_eq!(reply_body(&decision)["error"], "invalid_request");
    }
    let long = format!("/accounts/{}", "a".repeat(257));
    assert_eq!(
        run(&config, &mut worker, &Request::get(&long, &token)).reason,
        Some("path_parameter")
    );
    for path in ["/accounts/acc-1", "/accounts/A.b_c~9/transactions"] {
        let decision = run(&config, &mut worker, &Request::get(path, &token));
        assert_eq!(decision.outcome, Outcome::Allowed, "{path}");
    }
}

#[test]
fn path_parameter_charsets_are_configurable_per_route() {
    let mut raw = kit::plugin_config();
    raw["routes"][1]["params"] = json!({"AccountId": {"charset": "0-9", "max_length": 8}});
    raw["routes"][2]["params"] = json!({"AccountId": {"charset": "A-Za-z0-9-:@"}});
    let config = load(&raw);
    let mut worker = Worker::new(&config);
    let token = accounts_token("tpp-1");
    let outcome = |worker: &mut Worker, path: &str| {
        let decision = run(&config, worker, &Request::get(path, &token));
        (decision.outcome, decision.reason)
    };
    assert_eq!(
        outcome(&mut worker, "/accounts/12345678").0,
        Outcome::Allowed
    );
    assert_eq!(
        outcome(&mut worker, "/accounts/123456789").1,
        Some("path_parameter")
    );
    assert_eq!(
        outcome(&mut worker, "/accounts/12a").1,
        Some("path_parameter")
    );
    assert_eq!(
        outcome(&mut worker, "/accounts/urn:acc@1/balances").0,
        Outcome::Allowed
    );

    for (params, error) in [
        (
            json!({"Nope": {}}),
            "routes[1].params.Nope: the path template has no parameter `{Nope}`",
        ),
        (
            json!({"AccountId": {"charset": "0-9%"}}),
            "routes[1].params.AccountId.charset: `%` cannot be allowed: percent-encoded parameter values are never accepted",
        ),
        (
            json!({"AccountId": {"charset": "a-z/"}}),
            "routes[1].params.AccountId.charset: `/` cannot be allowed: only unreserved characters, `!$&'()*+,=:@` (RFC 3986 pchar without `%` and `;`)",
        ),
        (
            json!({"AccountId": {"max_length": 0}}),
            "routes[1].params.AccountId.max_length: must be between 1 and 4096",
        ),
        (
            json!({"AccountId": {"pattern": ".*"}}),
            "routes[1].params.AccountId.pattern: unknown field `pattern`, expected `charset` or `max_length`",
        ),
    ] {
        let mut raw = kit::plugin_config();
        raw["routes"][1]["params"] = params;
        let err = load_err(&raw);
        assert!(err.starts_with(error), "{err}");
    }
}
