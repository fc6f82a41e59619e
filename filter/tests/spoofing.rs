//! Spoofing and smuggling holes found by outside testers, natively: each test here failed
//! before its fix. The same cases run through the real Envoy in
//! `integration/tests/spoofing.rs`.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use obguard::config::FilterConfig;
use obguard::pipeline::{Action, Decision, RequestView, Worker, decide};
use obguard::telemetry::Outcome;
use obguard_testkit::pipeline::{load, load_err, reply_header, status, view};
use obguard_testkit::{self as kit, Key, without};
use serde_json::{Value, json};

struct Request<'a> {
    method: &'a str,
    path: &'a str,
    token: Option<&'a str>,
    headers: Vec<(String, String)>,
    source_address: Option<&'a str>,
}

impl<'a> Request<'a> {
    fn get(path: &'a str, token: &'a str) -> Self {
        Self {
            method: "GET",
            path,
            token: Some(token),
            headers: Vec::new(),
            source_address: None,
        }
    }

    /// A GET without a token.
    fn anonymous(path: &'a str) -> Self {
        Self {
            token: None,
            ..Self::get(path, "")
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
        headers: &req.headers,
        source_address: req.source_address,
        ..view(req.method, req.path, &authorization)
    };
    decide(config, worker, &view, now)
}

fn removed(decision: &Decision<'_>) -> Vec<String> {
    match &decision.action {
        Action::Continue { remove, .. } => remove.to_vec(),
        Action::Reply(_) | Action::FetchConsent { .. } => {
            panic!("refused: {:?}", decision.reason)
        }
    }
}

fn accounts_token(client: &str) -> String {
    kit::token_for("ES256", Key::P256, client, "accounts")
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
            &Request::anonymous("/health").header("x_obguard_client_id", "evil"),
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
        Action::Continue { .. } | Action::FetchConsent { .. } => Value::Null,
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
        &Request::anonymous("/health").header("x-http-method-override", "DELETE"),
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
        &Request::anonymous("/elsewhere").header("x-http-method", "PUT"),
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
    let token = kit::token_for("ES256", Key::P256, "tpp-1", "accounts transactions:read");
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

// ---------------------------------------------------------------------------------------
// 4. RFC 9068 required claims for `at+jwt` issuers.

fn reason_for(config: &FilterConfig, token: &str) -> Option<&'static str> {
    let mut worker = Worker::new(config);
    run(config, &mut worker, &Request::get("/accounts", token)).reason
}

#[test]
fn at_jwt_issuers_require_the_rfc9068_claims() {
    let config = load(&kit::plugin_config());
    let claims = kit::claims("tpp-1", "accounts");
    assert_eq!(
        reason_for(&config, &kit::token("ES256", Key::P256, &claims)),
        None
    );
    for missing in ["sub", "jti", "client_id", "iat"] {
        let token = kit::token("ES256", Key::P256, &without(&claims, &[missing]));
        let mut worker = Worker::new(&config);
        let decision = run(&config, &mut worker, &Request::get("/accounts", &token));
        assert_eq!(status(&decision), 401, "{missing}");
        assert_eq!(decision.reason, Some("missing_claim"), "{missing}");
        assert_eq!(reply_body(&decision)["error"], "invalid_token");
    }
    // Even when the client id comes from another claim, RFC 9068's `client_id` is required.
    let mut raw = kit::plugin_config();
    raw["issuers"][0]["client_id_claim"] = json!("azp");
    raw["issuers"][0]["max_lifetime_s"] = json!(null);
    let config = load(&raw);
    let mut azp = without(&claims, &["client_id"]);
    azp["azp"] = json!("tpp-1");
    assert_eq!(
        reason_for(&config, &kit::token("ES256", Key::P256, &azp)),
        Some("missing_claim")
    );
    // `iat` is required even with the lifetime check disabled.
    assert_eq!(
        reason_for(
            &config,
            &kit::token("ES256", Key::P256, &without(&claims, &["iat"]))
        ),
        Some("missing_claim")
    );

    // Relaxed per issuer, and never asked of issuers that do not require `at+jwt`.
    for edit in [
        json!({"rfc9068_claims": false, "max_lifetime_s": null}),
        json!({"require_typ": null, "max_lifetime_s": null}),
    ] {
        let mut raw = kit::plugin_config();
        for (k, v) in edit.as_object().unwrap() {
            raw["issuers"][0][k] = v.clone();
        }
        let config = load(&raw);
        let token = kit::token(
            "ES256",
            Key::P256,
            &without(&claims, &["sub", "jti", "iat"]),
        );
        assert_eq!(reason_for(&config, &token), None, "{edit}");
    }
}

// ---------------------------------------------------------------------------------------
// 5. Duplicate members in the payload and the JOSE header.

#[test]
fn duplicate_claims_and_header_members_are_refused() {
    let config = load(&kit::plugin_config());
    let now = kit::now();
    let claims = |extra: &str| kit::raw_claims(now, extra);
    let header = r#"{"alg":"ES256","typ":"at+jwt","kid":"ec-p256"}"#;
    let good = kit::sign_raw("ES256", Key::P256, header, &claims(""));
    assert_eq!(reason_for(&config, &good), None);
    for extra in [
        r#","client_id":"tpp-admin""#,
        r#","client\u005fid":"tpp-admin""#,
        r#","scope":"accounts payments""#,
        r#","cnf":{"x5t#S256":"a","x5t#S256":"b"}"#,
    ] {
        let token = kit::sign_raw("ES256", Key::P256, header, &claims(extra));
        let mut worker = Worker::new(&config);
        let decision = run(&config, &mut worker, &Request::get("/accounts", &token));
        assert_eq!(status(&decision), 401, "{extra}");
        assert_eq!(decision.reason, Some("duplicate_claim"), "{extra}");
        assert_eq!(decision.client_id, None, "{extra}");
        assert_eq!(
            reply_body(&decision)["error_description"],
            "The access token has a duplicate claim"
        );
    }
    for header in [
        r#"{"alg":"ES256","typ":"at+jwt","kid":"ec-p256","kid":"rsa-1"}"#,
        r#"{"alg":"ES256","typ":"at+jwt","typ":"JWT","kid":"ec-p256"}"#,
        r#"{"alg":"ES256","typ":"at+jwt","kid":"ec-p256","x5u":"a","x5u":"b"}"#,
    ] {
        let token = kit::sign_raw("ES256", Key::P256, header, &claims(""));
        assert_eq!(
            reason_for(&config, &token),
            Some("duplicate_header"),
            "{header}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 9. Forged tokens: claims before the signature, bad signatures remembered.

fn forged(claims: &Value) -> String {
    // Signed by a key not in the JWKS, under a configured kid.
    kit::sign(
        "ES256",
        Key::AttackerP256,
        &kit::header("ES256", Key::P256),
        claims,
    )
}

fn challenge(decision: &Decision<'_>) -> (u16, Option<String>, Value) {
    match &decision.action {
        Action::Reply(reply) => {
            let www = reply
                .headers
                .iter()
                .find(|(n, _)| n == "www-authenticate")
                .map(|(_, v)| v.clone());
            let mut body: Value = serde_json::from_str(&reply.body).unwrap();
            body.as_object_mut().unwrap().remove("interaction_id");
            (reply.status, www, body)
        }
        Action::Continue { .. } | Action::FetchConsent { .. } => panic!("allowed"),
    }
}

#[test]
fn cheap_claim_checks_run_before_the_signature_and_answer_like_a_bad_signature() {
    let config = load(&kit::plugin_config());
    let mut worker = Worker::new(&config);
    let now = kit::now();
    let good = kit::claims("tpp-1", "accounts");
    let mut expired = good.clone();
    expired["exp"] = json!(now - 3600);
    expired["iat"] = json!(now - 3900);
    let mut foreign = good.clone();
    foreign["aud"] = json!("https://elsewhere.test");
    let mut future = good.clone();
    future["nbf"] = json!(now + 3600);

    let bad_signature = run(
        &config,
        &mut worker,
        &Request::get("/accounts", &forged(&good)),
    );
    assert_eq!(bad_signature.reason, Some("bad_signature"));
    assert!(
        bad_signature.trace.verified_by.is_some(),
        "the signature was checked"
    );
    let expected = challenge(&bad_signature);
    assert_eq!(
        expected.1.as_deref(),
        Some(
            "Bearer realm=\"bank.test\", error=\"invalid_token\", error_description=\"The access token is invalid\""
        )
    );
    for (claims, reason) in [
        (&expired, "expired"),
        (&foreign, "wrong_audience"),
        (&future, "not_yet_valid"),
        (&without(&good, &["jti"]), "missing_claim"),
    ] {
        for token in [forged(claims), kit::token("ES256", Key::P256, claims)] {
            let decision = run(&config, &mut worker, &Request::get("/accounts", &token));
            assert_eq!(decision.reason, Some(reason));
            assert_eq!(
                decision.trace.verified_by, None,
                "{reason}: no signature check"
            );
            // Forged or genuine, the caller sees exactly what a bad signature gets.
            assert_eq!(challenge(&decision), expected, "{reason}");
        }
    }
}

#[test]
fn bad_signatures_are_remembered_bounded_and_for_a_while() {
    let mut raw = kit::plugin_config();
    raw["cache"]["negative"] = json!({"max_entries": 2, "ttl_s": 60});
    let config = load(&raw);
    let mut worker = Worker::new(&config);
    let now = kit::now();
    let token = forged(&kit::claims("tpp-1", "accounts"));
    let at = |worker: &mut Worker, token: &str, t: u64| {
        let d = run_at(&config, worker, &Request::get("/accounts", token), t);
        (
            d.reason,
            d.trace.verified_by.is_some(),
            d.trace.rejected_from_cache,
        )
    };
    assert_eq!(
        at(&mut worker, &token, now),
        (Some("bad_signature"), true, false)
    );
    assert_eq!(
        at(&mut worker, &token, now + 1),
        (Some("bad_signature"), false, true)
    );
    assert_eq!(
        at(&mut worker, &token, now + 59),
        (Some("bad_signature"), false, true)
    );
    // After the TTL it is checked again (and remembered again).
    assert_eq!(
        at(&mut worker, &token, now + 60),
        (Some("bad_signature"), true, false)
    );
    // LRU-bounded: two newer forgeries push it out.
    for client in ["tpp-2", "tpp-3"] {
        let other = forged(&kit::claims(client, "accounts"));
        assert!(at(&mut worker, &other, now + 61).1);
    }
    assert_eq!(
        at(&mut worker, &token, now + 62),
        (Some("bad_signature"), true, false)
    );
    assert_eq!(worker.cache.rejected_len(), 2);
    // A genuine token is never affected; claim refusals are never remembered.
    let genuine = accounts_token("tpp-1");
    assert_eq!(at(&mut worker, &genuine, now + 62).0, None);

    let mut raw = kit::plugin_config();
    raw["cache"]["negative"] = json!({"ttl_s": 0});
    assert_eq!(
        load_err(&raw),
        "cache.negative.ttl_s: must be between 1 and 86400 (use max_entries: 0 to disable)"
    );
}

// ---------------------------------------------------------------------------------------
// 6. The client IP: Envoy's connection view, or a header only past trusted hops.

use obguard::assess::Verdict;
use obguard::assess::model::ClientIp;

fn xff(value: &str) -> Vec<(String, String)> {
    vec![("x-forwarded-for".to_owned(), value.to_owned())]
}

#[test]
fn client_ip_follows_envoys_xff_num_trusted_hops_semantics() {
    let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
    let connection = ClientIp::Connection;
    // The leftmost entry is whatever the client wrote: never used.
    let spoofed = xff("6.6.6.6, 203.0.113.10");
    assert_eq!(
        connection.resolve(&spoofed, Some("192.0.2.5:41234")),
        ip("192.0.2.5")
    );
    assert_eq!(
        connection.resolve(&[], Some("[2001:db8::1]:443")),
        ip("2001:db8::1")
    );
    assert_eq!(connection.resolve(&[], Some("192.0.2.5")), ip("192.0.2.5"));
    assert_eq!(connection.resolve(&spoofed, None), None);
    assert_eq!(ClientIp::None.resolve(&spoofed, Some("192.0.2.5:1")), None);

    let hops = |n: u32| ClientIp::Header {
        name: "x-forwarded-for".to_owned(),
        trusted_hops: n,
    };
    // Envoy's docs, example 3 (edge, two trusted proxies in front, use_remote_address: true):
    // the client sent `203.0.113.128, 203.0.113.10, 203.0.113.1` from 192.0.2.5, Envoy
    // appended the connection's address, and trusts 203.0.113.10.
    let seen = xff("203.0.113.128, 203.0.113.10, 203.0.113.1, 192.0.2.5");
    assert_eq!(
        hops(2).resolve(&seen, Some("192.0.2.5:1")),
        ip("203.0.113.10")
    );
    // Example 4 (internal Envoy, use_remote_address: false, xff_num_trusted_hops 2): the same
    // header as received, 3rd from the right.
    assert_eq!(
        hops(2).resolve(&seen, Some("10.11.12.13:1")),
        ip("203.0.113.10")
    );
    // Example 2 (zero hops): the last entry.
    assert_eq!(hops(0).resolve(&seen, None), ip("192.0.2.5"));
    // Repeated header lines are one list.
    let split = vec![
        (
            "x-forwarded-for".to_owned(),
            "203.0.113.128, 203.0.113.10".to_owned(),
        ),
        (
            "x-forwarded-for".to_owned(),
            "203.0.113.1, 192.0.2.5".to_owned(),
        ),
    ];
    assert_eq!(hops(2).resolve(&split, None), ip("203.0.113.10"));
    // Too few entries, or junk: the connection, as Envoy falls back.
    assert_eq!(hops(5).resolve(&seen, Some("192.0.2.9:1")), ip("192.0.2.9"));
    assert_eq!(
        hops(0).resolve(&xff("not-an-ip"), Some("192.0.2.9:1")),
        ip("192.0.2.9")
    );
}

fn prefix_model_config(client_ip: Option<Value>) -> Value {
    let mut config = kit::plugin_config();
    config["issuers"][0]["max_lifetime_s"] = json!(null);
    config["model"] = json!({
        "inline_base64": base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            kit::new_prefix_model(10.0),
        ),
        "allow_unsigned": true,
        "max_clients": 64,
    });
    if let Some(client_ip) = client_ip {
        config["model"]["client_ip"] = client_ip;
    }
    config
}

/// Scores `n` requests by one client, request `i` with `source(i)` and `headers(i)`; the
/// verdicts in order.
fn verdicts(
    config: &FilterConfig,
    worker: &mut Worker,
    n: u64,
    source: impl Fn(u64) -> String,
    headers: impl Fn(u64) -> Vec<(String, String)>,
) -> Vec<Verdict> {
    let token = accounts_token("tpp-ip");
    (0..n)
        .map(|i| {
            let address = source(i);
            let req = Request {
                headers: headers(i),
                source_address: Some(&address),
                ..Request::get("/accounts", &token)
            };
            run(config, worker, &req).trace.model.unwrap().verdict
        })
        .collect()
}

#[test]
fn the_model_sees_the_connection_not_the_leftmost_forwarded_for_entry() {
    let config = load(&prefix_model_config(None));
    let mut worker = Worker::new(&config);
    // One client from one network, writing a different "client" into x-forwarded-for on
    // every request: with the leftmost entry every request was from a new network.
    // Its first requests are its warm-up (novelty does not count yet); the churn of
    // networks it shows during them decides whether another one stands out afterwards.
    let seen = verdicts(
        &config,
        &mut worker,
        40,
        |_| "203.0.113.10:40000".to_owned(),
        |i| xff(&format!("10.{i}.0.1, 203.0.113.10")),
    );
    assert!(
        seen.iter().all(|v| *v == Verdict::Allow),
        "one network, familiar: {seen:?}"
    );
    // A request from another connection network is new again.
    let other = verdicts(
        &config,
        &mut worker,
        1,
        |_| "198.51.100.7:1".to_owned(),
        |_| xff("203.0.113.10"),
    );
    assert_eq!(other, vec![Verdict::StepUp]);

    // `source: header` with one trusted hop: the entry before the proxy's is the client.
    let config = load(&prefix_model_config(Some(
        json!({"source": "header", "xff_num_trusted_hops": 1}),
    )));
    let mut worker = Worker::new(&config);
    let seen = verdicts(
        &config,
        &mut worker,
        30,
        |i| format!("10.{i}.0.1:1"),
        |i| xff(&format!("10.{i}.9.9, 203.0.113.10, 10.0.0.1")),
    );
    assert!(seen.iter().all(|v| *v == Verdict::Allow), "{seen:?}");
}

#[test]
fn ip_header_is_replaced_by_client_ip() {
    let mut config = prefix_model_config(None);
    config["model"]["ip_header"] = json!("x-forwarded-for");
    let err = load_err(&config);
    assert!(
        err.starts_with("model.ip_header: replaced by `client_ip`: the first x-forwarded-for entry is written by the client."),
        "{err}"
    );
    // `null` still means "no IP".
    let mut config = prefix_model_config(None);
    config["model"]["ip_header"] = json!(null);
    load(&config);
    for (client_ip, error) in [
        (
            json!({"source": "header"}),
            "model.client_ip.xff_num_trusted_hops: required with `\"source\": \"header\"`",
        ),
        (
            json!({"source": "connection", "xff_num_trusted_hops": 1}),
            "model.client_ip.xff_num_trusted_hops: only with `\"source\": \"header\"`",
        ),
        (
            json!({"source": "header", "header": "X-Real-IP", "xff_num_trusted_hops": 0}),
            "model.client_ip.header: must be a lower-case header name",
        ),
        (
            json!({"source": "header", "xff_num_trusted_hops": 17}),
            "model.client_ip.xff_num_trusted_hops: must be at most 16",
        ),
    ] {
        let err = load_err(&prefix_model_config(Some(client_ip)));
        assert!(err.starts_with(error), "{err}");
    }
}

// ---------------------------------------------------------------------------------------
// 8. Client ids are namespaced by issuer.

use obguard::ratelimit::plan;
use obguard_rls_proto::envoy::service::ratelimit::v3::RateLimitRequest;
use prost::Message;

fn two_issuers(extra: Value) -> Value {
    let mut hmac = kit::config::hmac_issuer();
    hmac["max_lifetime_s"] = json!(null);
    let mut config = kit::config::with_issuer(hmac);
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

/// A token for `client` from the second (HMAC) issuer.
fn hmac_token(client: &str, claims: Option<Value>) -> String {
    kit::hmac_token(&claims.unwrap_or_else(|| kit::claims(client, "accounts")))
}

/// `GET /accounts` as `tpp-1` of the first issuer, then of the HMAC issuer.
fn tpp_1_of_each_issuer<'c>(
    config: &'c FilterConfig,
    worker: &mut Worker,
) -> (Decision<'c>, Decision<'c>) {
    let a = run(
        config,
        worker,
        &Request::get("/accounts", &accounts_token("tpp-1")),
    );
    let b = run(
        config,
        worker,
        &Request::get("/accounts", &hmac_token("tpp-1", None)),
    );
    (a, b)
}

fn set_headers(decision: &Decision<'_>) -> Vec<(String, String)> {
    match &decision.action {
        Action::Continue { set, .. } => set
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        Action::Reply(_) | Action::FetchConsent { .. } => {
            panic!("refused: {:?}", decision.reason)
        }
    }
}

#[test]
fn the_same_client_id_from_two_issuers_is_two_clients() {
    let config = load(&two_issuers(json!({
        "ratelimit": {
            "cluster": "rl", "domain": "bank",
            "descriptors": [
                {"entries": [{"key": "client", "from": "client_id"}]},
                {"entries": [{"key": "legacy", "from": "bare_client_id"}]},
                {"entries": [{"key": "ns", "from": "client_namespace"}, {"key": "id", "from": "bare_client_id"}]}
            ]
        }
    })));
    let mut worker = Worker::new(&config);
    let (a, b) = tpp_1_of_each_issuer(&config, &mut worker);
    assert_eq!(a.client_id.as_deref(), Some("tpp-1@idp.obguard.test"));
    assert_eq!(b.client_id.as_deref(), Some("tpp-1@hmac-idp.obguard.test"));

    let descriptors = |d: &Decision<'_>| {
        let facts = kit::ratelimit::request_facts(d, None);
        let call = plan(config.ratelimit.as_ref().unwrap(), &facts).unwrap();
        let request = RateLimitRequest::decode(call.message.as_slice()).unwrap();
        kit::ratelimit::descriptor_entries(&request)
            .iter()
            .map(|d| {
                d.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        descriptors(&a),
        [
            "client=tpp-1@idp.obguard.test",
            "legacy=tpp-1",
            "ns=idp.obguard.test,id=tpp-1"
        ]
    );
    assert_eq!(
        descriptors(&b),
        [
            "client=tpp-1@hmac-idp.obguard.test",
            "legacy=tpp-1",
            "ns=hmac-idp.obguard.test,id=tpp-1"
        ]
    );

    // The upstream sees the token's client id and, beside it, the namespace.
    let header = |d: &Decision<'_>, name: &str| {
        set_headers(d)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    };
    assert_eq!(header(&a, "x-obguard-client-id").as_deref(), Some("tpp-1"));
    assert_eq!(
        header(&a, "x-obguard-client-namespace").as_deref(),
        Some("idp.obguard.test")
    );
    assert_eq!(
        header(&b, "x-obguard-client-namespace").as_deref(),
        Some("hmac-idp.obguard.test")
    );
    // ...and cannot be spoofed.
    let spoofed = run(
        &config,
        &mut worker,
        &Request::get("/accounts", &accounts_token("tpp-1"))
            .header("x-obguard-client-namespace", "hmac-idp.obguard.test"),
    );
    assert!(
        removed(&spoofed)
            .iter()
            .any(|n| n == "x-obguard-client-namespace")
    );

    // A pin on the qualified id applies to that issuer's client only; a bare one to both.
    let config = load(&two_issuers(json!({
        "static_assessments": {"tpp-1@hmac-idp.obguard.test": {"verdict": "block", "risk_band": "high"}}
    })));
    let mut worker = Worker::new(&config);
    let (a, b) = tpp_1_of_each_issuer(&config, &mut worker);
    assert_eq!((a.outcome, b.outcome), (Outcome::Allowed, Outcome::Blocked));
}

#[test]
fn baselines_are_per_issuer() {
    let model = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        kit::new_country_model(10.0),
    );
    let mut raw = two_issuers(json!({}));
    raw["issuers"][0]["max_lifetime_s"] = json!(null);
    raw["model"] = json!({"inline_base64": model, "allow_unsigned": true, "max_clients": 64});
    let config = load(&raw);
    let mut worker = Worker::new(&config);
    fn from<'a>(token: &'a str, country: &'a str) -> Request<'a> {
        Request::get("/accounts", token).header("x-client-geo-country", country)
    }
    let a_token = accounts_token("tpp-1");
    let b_token = hmac_token("tpp-1", None);
    // Issuer A's `tpp-1` calls from GB, issuer B's (another client with the same id) from FR,
    // past their warm-up.
    for (token, country) in [(&a_token, "GB"), (&b_token, "FR")] {
        let verdicts: Vec<Verdict> = (0..40)
            .map(|_| {
                run(&config, &mut worker, &from(token, country))
                    .trace
                    .model
                    .unwrap()
                    .verdict
            })
            .collect();
        assert!(
            verdicts.iter().all(|v| *v == Verdict::Allow),
            "{verdicts:?}"
        );
    }
    // FR is familiar to issuer B's `tpp-1` only: for issuer A's it is new.
    let b = run(&config, &mut worker, &from(&b_token, "FR"));
    assert_eq!(b.trace.model.unwrap().verdict, Verdict::Allow);
    let a = run(&config, &mut worker, &from(&a_token, "FR"));
    assert_eq!(a.trace.model.unwrap().verdict, Verdict::StepUp);
}

#[test]
fn client_namespaces_are_validated() {
    let mut raw = two_issuers(json!({}));
    raw["issuers"][1]["client_namespace"] = json!("idp.obguard.test");
    assert_eq!(
        load_err(&raw),
        "issuers[1].client_namespace: `idp.obguard.test` is also issuers[0]'s client namespace; set a distinct `client_namespace`"
    );
    raw["issuers"][1]["client_namespace"] = json!("partner");
    load(&raw);
    raw["issuers"][1]["client_namespace"] = json!("a@b");
    assert_eq!(
        load_err(&raw),
        "issuers[1].client_namespace: must not contain `@` (it separates the client id from the namespace)"
    );
    let mut raw = two_issuers(json!({}));
    raw["issuers"][1]["issuer"] = json!("https://idp.obguard.test/");
    raw["issuers"][1]["audiences"] = json!([kit::AUDIENCE]);
    let err = load_err(&raw);
    assert!(
        err.starts_with("issuers[1].client_namespace: `idp.obguard.test` is also issuers[0]'s"),
        "{err}"
    );
    let mut raw = kit::plugin_config();
    raw["issuers"][0]["issuer"] = json!("urn:idp@bank");
    let err = load_err(&raw);
    assert!(
        err.starts_with(
            "issuers[0].client_namespace: the default derived from the issuer (`urn:idp@bank`)"
        ),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// 7. A `throttle` verdict is never forwarded without a rate-limit call.

fn throttle_config(ratelimit: Value) -> FilterConfig {
    let mut raw = kit::plugin_config();
    raw["ratelimit"] = ratelimit;
    raw["static_assessments"] = json!({"tpp-risky": {"verdict": "throttle", "risk_band": "high"}});
    load(&raw)
}

#[test]
fn a_throttle_without_a_rate_limit_call_is_answered_locally() {
    let section = |extra: Value| {
        let mut s = json!({
            "cluster": "rl", "domain": "bank",
            "descriptors": [{"entries": [{"key": "client", "from": "client_id"}]}]
        });
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    };
    let risky = accounts_token("tpp-risky");
    let cases = [
        // `call: never` for the route, and for everything.
        section(json!({"routes": {"accounts": {"call": "never"}}})),
        section(json!({"call": "never"})),
        // A descriptor value the request does not have: no descriptor, no call.
        section(json!({
            "descriptors": [{"entries": [{"key": "country", "from": "country"}]}],
            "country_header": "x-client-country"
        })),
    ];
    for ratelimit in cases {
        let config = throttle_config(ratelimit.clone());
        let mut worker = Worker::new(&config);
        let decision = run(&config, &mut worker, &Request::get("/accounts", &risky));
        assert_eq!(status(&decision), 429, "{ratelimit}");
        assert_eq!(decision.outcome, Outcome::Throttled);
        assert_eq!(decision.reason, Some("no_ratelimit_call"));
        assert_eq!(
            reply_header(&decision, "retry-after").as_deref(),
            Some("60")
        );
        assert_eq!(reply_body(&decision)["error"], "rate_limited");
        // Allowed clients are not affected.
        let allowed = run(
            &config,
            &mut worker,
            &Request::get("/accounts", &accounts_token("tpp-1")),
        );
        assert_eq!(allowed.outcome, Outcome::Allowed, "{ratelimit}");
    }

    // When the call will be made, the rate-limit service decides (the verdict goes with it).
    let config = throttle_config(section(json!({})));
    let mut worker = Worker::new(&config);
    let decision = run(&config, &mut worker, &Request::get("/accounts", &risky));
    assert!(matches!(decision.action, Action::Continue { .. }));
    let config = throttle_config(section(json!({
        "descriptors": [{"entries": [{"key": "country", "from": "country"}]}],
        "country_header": "x-client-country"
    })));
    let mut worker = Worker::new(&config);
    let decision = run(
        &config,
        &mut worker,
        &Request::get("/accounts", &risky).header("x-client-country", "GB"),
    );
    assert!(matches!(decision.action, Action::Continue { .. }));

    // `throttle_without_call: block`, top-level or per route.
    for ratelimit in [
        section(json!({"call": "never", "throttle_without_call": "block"})),
        section(
            json!({"routes": {"accounts": {"call": "never", "throttle_without_call": "block"}}}),
        ),
    ] {
        let config = throttle_config(ratelimit);
        let mut worker = Worker::new(&config);
        let decision = run(&config, &mut worker, &Request::get("/accounts", &risky));
        assert_eq!(status(&decision), 403);
        assert_eq!(decision.outcome, Outcome::Blocked);
        assert_eq!(decision.reason, Some("no_ratelimit_call"));
    }
}

// ---------------------------------------------------------------------------------------
// 10. The rate-limit service cannot write reserved headers.

use obguard::ratelimit::reply::{self, Answer, Direction, Dropped, Next};
use obguard_rls_proto::envoy::service::ratelimit::v3::RateLimitResponse;
use obguard_rls_proto::envoy::service::ratelimit::v3::rate_limit_response::Code;
use obguard_testkit::ratelimit::header_value as hv;

#[test]
fn the_rate_limit_service_cannot_write_identity_credentials_or_response_security_headers() {
    let mut raw = kit::plugin_config();
    raw["headers"]["client_id"] = json!("x-client-id");
    raw["ratelimit"] = json!({
        "cluster": "rl", "domain": "bank",
        "descriptors": [{"entries": [{"key": "client", "from": "client_id"}]}],
        "reserved_headers": ["x-internal-tier"]
    });
    let config = load(&raw);
    let rl = config.ratelimit.as_ref().unwrap();
    let request_attempts = [
        "x-obguard-client-id",
        "X_Obguard_Route",
        "x-client-id",
        "x-obguard-token-id",
        "x-obguard-anything",
        "authorization",
        "cookie",
        ":authority",
        "host",
        "x-fapi-interaction-id",
        "x-forwarded-for",
        "x-http-method-override",
        "x-envoy-retry-on",
        "x-internal-tier",
    ];
    let response_attempts = [
        "set-cookie",
        "Location",
        "x-fapi-interaction-id",
        "www-authenticate",
        "access-control-allow-origin",
        "strict-transport-security",
        ":status",
        "x-internal-tier",
    ];
    let response = RateLimitResponse {
        overall_code: Code::Ok as i32,
        request_headers_to_add: request_attempts
            .iter()
            .map(|n| hv(n, "evil"))
            .chain([hv("x-quota-tier", "gold"), hv("x-bad", "a\r\nb")])
            .collect(),
        response_headers_to_add: response_attempts
            .iter()
            .map(|n| hv(n, "evil"))
            .chain([hv("x-quota-note", "fine")])
            .collect(),
        ..Default::default()
    };
    let policy = rl.defaults;
    // The service's answer to a call that succeeded at once.
    let obey = |response: &RateLimitResponse| {
        reply::obey(
            &policy,
            0,
            std::time::Duration::ZERO,
            Some(&response.encode_to_vec()),
            &rl.reserved,
            "bank",
            "id",
        )
    };
    let obeyed = obey(&response);
    assert_eq!(obeyed.answer, Answer::Ok);
    assert_eq!(
        obeyed.next,
        Next::Resume {
            request_headers: vec![("x-quota-tier".into(), "gold".into())],
            response_headers: vec![("x-quota-note".into(), "fine".into())],
        }
    );
    let reserved: Vec<(Direction, String)> = obeyed
        .dropped
        .iter()
        .filter(|d| d.reserved)
        .map(|d| (d.direction, d.name.clone()))
        .collect();
    let expected: Vec<(Direction, String)> = request_attempts
        .iter()
        .map(|n| (Direction::Request, n.to_ascii_lowercase()))
        .chain(
            response_attempts
                .iter()
                .map(|n| (Direction::Response, n.to_ascii_lowercase())),
        )
        .collect();
    assert_eq!(reserved, expected);
    assert!(obeyed.dropped.contains(&Dropped {
        direction: Direction::Request,
        name: "x-bad".into(),
        reserved: false
    }));
    let line = reply::dropped_log_line(&obeyed.dropped, "rl").unwrap();
    assert!(
        line.starts_with("obguard: rate-limit service on cluster rl asked to set headers obguard does not let it write; dropped: request x-obguard-client-id (reserved), request x_obguard_route (reserved),"),
        "{line}"
    );
    assert!(!line.contains("evil"), "values are never logged");

    // OVER_LIMIT replies get the same treatment.
    let over = RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        response_headers_to_add: vec![
            hv("set-cookie", "s=1"),
            hv("retry-after", "0"),
            hv("x-note", "ok"),
        ],
        ..Default::default()
    };
    let obeyed = obey(&over);
    let Next::Reply(reply) = &obeyed.next else {
        panic!("not a reply")
    };
    assert!(!reply.headers.iter().any(|(n, _)| n == "set-cookie"));
    assert_eq!(
        reply
            .headers
            .iter()
            .filter(|(n, _)| n == "retry-after")
            .count(),
        1
    );
    assert!(
        reply
            .headers
            .iter()
            .any(|(n, v)| n == "x-note" && v == "ok")
    );
    assert_eq!(obeyed.dropped.len(), 2);

    let mut raw = kit::plugin_config();
    raw["ratelimit"] = json!({
        "cluster": "rl", "domain": "bank",
        "descriptors": [{"entries": [{"key": "client", "from": "client_id"}]}],
        "reserved_headers": ["X-Tier"]
    });
    assert_eq!(
        load_err(&raw),
        "ratelimit.reserved_headers[0]: must be a lower-case HTTP header name"
    );
}
