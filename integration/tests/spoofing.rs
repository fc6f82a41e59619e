//! Spoofing and smuggling holes found by outside testers, through the real Envoy with the
//! built obguard.wasm: for each, the status the client gets and what the upstream (the echo
//! server, which reflects request headers) received. The same cases run natively in
//! `filter/tests/spoofing.rs`.

use base64::Engine as _;
use obguard_integration::{
    EchoUpstream, Envoy, EnvoyOptions, Limit, RateLimitService, RawRequest, Response, Unit,
    grpc_cluster, workspace_root,
};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

fn start(config: Value) -> (EchoUpstream, Envoy) {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()).plugin(config));
    (upstream, envoy)
}

fn token(client: &str) -> String {
    kit::token_for("ES256", Key::P256, client, "accounts transactions:read")
}

fn seen(resp: &Response) -> Value {
    resp.json()["headers"].clone()
}

/// Every header name the upstream received.
fn names(resp: &Response) -> Vec<String> {
    seen(resp)
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

// 1. ------------------------------------------------------------------------------------

#[test]
fn underscore_spellings_of_obguards_headers_never_reach_the_upstream() {
    let (upstream, envoy) = start(kit::plugin_config());
    let resp = envoy.send(
        &RawRequest::get("/accounts")
            .bearer(token("tpp-real"))
            .header("x_obguard_client_id", "tpp-admin")
            .header("X_Obguard_Scopes", "payments admin")
            .header("x-obguard_subject", "root")
            .header("x_obguard_route", "admin")
            .header("x_obguard_verdict", "allow")
            .header("x_obguard_client_namespace", "other-idp")
            .header("x_obguard_token_id", "forged")
            .header("x_fapi_interaction_id", "forged")
            .header("x_other_header", "kept"),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let names = names(&resp);
    for name in &names {
        let canonical = name.replace('_', "-");
        assert!(
            !(name.contains('_')
                && (canonical.starts_with("x-obguard-") || canonical == "x-fapi-interaction-id")),
            "{name} reached the upstream: {names:?}"
        );
    }
    assert!(names.iter().any(|n| n == "x_other_header"), "{names:?}");
    let seen = seen(&resp);
    assert_eq!(seen["x-obguard-client-id"], json!(["tpp-real"]));
    assert_eq!(
        seen["x-obguard-scopes"],
        json!(["accounts transactions:read"])
    );
    assert_eq!(upstream.count(), 1);
}

#[test]
fn the_shipped_envoy_configs_reject_header_names_with_underscores() {
    let mut files = Vec::new();
    let mut dirs = vec![workspace_root().join("envoy")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    let mut managers = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let hcms = text.matches("v3.HttpConnectionManager").count();
        let rejects = text
            .matches("headers_with_underscores_action: REJECT_REQUEST")
            .count();
        assert_eq!(hcms, rejects, "{}", file.display());
        managers += hcms;
    }
    assert!(managers >= 8, "{managers}");

    // And Envoy does refuse them with that setting (before obguard runs).
    let upstream = EchoUpstream::start();
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(kit::plugin_config());
    opts.hcm_overrides = json!({
        "common_http_protocol_options": {"headers_with_underscores_action": "REJECT_REQUEST"}
    });
    let envoy = Envoy::start(opts);
    let resp = envoy.send(
        &RawRequest::get("/accounts")
            .bearer(token("tpp-real"))
            .header("x_obguard_client_id", "tpp-admin"),
    );
    assert_eq!(resp.status, 400);
    assert_eq!(upstream.count(), 0);
}

// 2. ------------------------------------------------------------------------------------

#[test]
fn method_override_headers_are_refused_or_stripped() {
    let (upstream, envoy) = start(kit::plugin_config());
    for name in [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        let resp = envoy.send(
            &RawRequest::get("/accounts/acc-1")
                .bearer(token("tpp-1"))
                .header(name, "DELETE"),
        );
        assert_eq!(resp.status, 400, "{name}: {}", resp.text());
        assert_eq!(resp.json()["error"], "invalid_request");
        assert_eq!(
            resp.json()["error_description"],
            "Method override headers are not accepted"
        );
    }
    assert_eq!(upstream.count(), 0);
    assert_eq!(
        envoy.counter("wasmcustom.obguard.request_invalid.method_override"),
        3
    );
    let log = envoy.wait_access_log(3);
    assert_eq!(log[0]["reason"], "method_override");
    assert_eq!(log[0]["route"], "account");
    drop(envoy);

    let mut config = kit::plugin_config();
    config["method_override"] = json!("strip");
    let (upstream, envoy) = start(config);
    let resp = envoy.send(
        &RawRequest::get("/accounts/acc-1")
            .bearer(token("tpp-1"))
            .header("X-HTTP-Method-Override", "DELETE")
            .header("x-method-override", "DELETE"),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["method"], "GET");
    let names = names(&resp);
    assert!(
        !names.iter().any(|n| n.contains("method")),
        "override reached the upstream: {names:?}"
    );
    assert_eq!(upstream.count(), 1);
}

// 3. ------------------------------------------------------------------------------------

#[test]
fn path_parameters_outside_their_charset_are_never_forwarded() {
    let attacks = [
        "/accounts/%c0%ae%c0%ae",
        "/accounts/%C0%AE%C0%AE/transactions",
        "/accounts/%EF%BC%8E%EF%BC%8E",
        "/accounts/%EF%BC%8E%EF%BC%8E/balances",
        "/accounts/acc-1%3B",
        "/accounts/acc-1%3F",
        "/accounts/acc-1%23",
    ];
    for normalise in [true, false] {
        let upstream = EchoUpstream::start();
        let envoy = Envoy::start(
            EnvoyOptions::new(upstream.port())
                .plugin(kit::plugin_config())
                .normalize_paths(normalise),
        );
        for path in attacks {
            let resp = envoy.send(&RawRequest::get(path).bearer(token("tpp-1")));
            assert_eq!(
                resp.status,
                400,
                "{path} (normalise {normalise}): {}",
                resp.text()
            );
            assert_eq!(resp.json()["error"], "invalid_request", "{path}");
        }
        assert_eq!(upstream.count(), 0, "normalise {normalise}");
        let log = envoy.wait_access_log(attacks.len());
        assert!(
            log.iter().all(|l| l["reason"] == "path_parameter"),
            "{log:?}"
        );
        let resp = envoy.send(&RawRequest::get("/accounts/acc-1.x_y~9").bearer(token("tpp-1")));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.json()["path"], "/accounts/acc-1.x_y~9");
    }

    // A per-route charset: digits only.
    let mut config = kit::plugin_config();
    config["routes"][1]["params"] = json!({"AccountId": {"charset": "0-9", "max_length": 10}});
    let (upstream, envoy) = start(config);
    assert_eq!(
        envoy
            .send(&RawRequest::get("/accounts/22289").bearer(token("tpp-1")))
            .status,
        200
    );
    assert_eq!(
        envoy
            .send(&RawRequest::get("/accounts/acc-1").bearer(token("tpp-1")))
            .status,
        400
    );
    assert_eq!(upstream.count(), 1);
}

// 4. ------------------------------------------------------------------------------------

#[test]
fn at_jwt_tokens_without_rfc9068_claims_are_refused() {
    let (upstream, envoy) = start(kit::plugin_config());
    let claims = kit::claims("tpp-1", "accounts");
    for name in ["sub", "jti", "client_id", "iat"] {
        let resp = envoy.send(&RawRequest::get("/accounts").bearer(kit::token(
            "ES256",
            Key::P256,
            &kit::without(&claims, &[name]),
        )));
        assert_eq!(resp.status, 401, "{name}");
        assert_eq!(resp.json()["error"], "invalid_token", "{name}");
    }
    assert_eq!(upstream.count(), 0);
    assert_eq!(
        envoy.counter("wasmcustom.obguard.token_invalid.missing_claim"),
        4
    );
    let log = envoy.wait_access_log(4);
    assert!(
        log.iter().all(|l| l["reason"] == "missing_claim"),
        "{log:?}"
    );
    drop(envoy);

    let mut config = kit::plugin_config();
    config["issuers"][0]["rfc9068_claims"] = json!(false);
    let (upstream, envoy) = start(config);
    let resp = envoy.send(&RawRequest::get("/accounts").bearer(kit::token(
        "ES256",
        Key::P256,
        &kit::without(&claims, &["jti"]),
    )));
    assert_eq!(resp.status, 200, "relaxed: {}", resp.text());
    assert_eq!(upstream.count(), 1);
}

// 5. ------------------------------------------------------------------------------------

#[test]
fn duplicate_claims_and_header_members_are_refused() {
    let (upstream, envoy) = start(kit::plugin_config());
    let now = kit::now();
    let claims = |extra: &str| kit::raw_claims(now, extra);
    let header = r#"{"alg":"ES256","typ":"at+jwt","kid":"ec-p256"}"#;
    let resp = envoy.send(&RawRequest::get("/accounts").bearer(kit::sign_raw(
        "ES256",
        Key::P256,
        header,
        &claims(""),
    )));
    assert_eq!(resp.status, 200);
    assert_eq!(seen(&resp)["x-obguard-client-id"], json!(["tpp-1"]));

    let resp = envoy.send(&RawRequest::get("/accounts").bearer(kit::sign_raw(
        "ES256",
        Key::P256,
        header,
        &claims(r#","client_id":"tpp-admin""#),
    )));
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert_eq!(
        resp.json()["error_description"],
        "The access token has a duplicate claim"
    );
    let resp = envoy.send(&RawRequest::get("/accounts").bearer(kit::sign_raw(
        "ES256",
        Key::P256,
        r#"{"alg":"ES256","typ":"at+jwt","kid":"ec-p256","kid":"rsa-1"}"#,
        &claims(""),
    )));
    assert_eq!(resp.status, 401);
    assert_eq!(upstream.count(), 1, "no duplicate reached the upstream");
    assert_eq!(
        envoy.counter("wasmcustom.obguard.token_invalid.duplicate_claim"),
        1
    );
    assert_eq!(
        envoy.counter("wasmcustom.obguard.token_invalid.duplicate_header"),
        1
    );
}

// 6. ------------------------------------------------------------------------------------

fn prefix_model(client_ip: Option<Value>) -> Value {
    let mut config = kit::plugin_config();
    config["model"] = json!({
        "inline_base64": base64::engine::general_purpose::STANDARD.encode(kit::new_prefix_model(10.0)),
        "allow_unsigned": true,
        "max_clients": 64,
    });
    if let Some(client_ip) = client_ip {
        config["model"]["client_ip"] = client_ip;
    }
    config
}

fn start_edge(config: Value) -> (EchoUpstream, Envoy) {
    let upstream = EchoUpstream::start();
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(config);
    // An edge Envoy: the connection's peer is the client, x-forwarded-for is appended to.
    opts.hcm_overrides = json!({"use_remote_address": true});
    (upstream, Envoy::start(opts))
}

#[test]
fn the_model_takes_the_client_ip_from_the_connection_not_from_x_forwarded_for() {
    let (upstream, envoy) = start_edge(prefix_model(None));
    let token = token("tpp-ip");
    // The same client (one connection address), past its warm-up (32 requests) with one
    // x-forwarded-for value, then claims another network in x-forwarded-for: were the
    // leftmost entry the caller, that would be a new network (401 step-up); the connection's
    // network is familiar, so it is allowed.
    let statuses: Vec<u16> = (0..41)
        .map(|i| {
            let claimed = if i < 40 { "10.0.0.1" } else { "10.99.0.1" };
            envoy
                .send(
                    &RawRequest::get("/accounts")
                        .bearer(&token)
                        .header("x-forwarded-for", claimed),
                )
                .status
        })
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let last = upstream.received().pop().unwrap();
    let forwarded = last["headers"]["x-forwarded-for"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let entries: Vec<&str> = forwarded.split(',').collect();
    assert_eq!(
        entries.len(),
        2,
        "Envoy appended the connection's address: {forwarded}"
    );
    assert_eq!(entries[0], "10.99.0.1", "{forwarded}");
    drop(envoy);

    // From a header past one trusted proxy: the proxy's own entry (right) is skipped, the
    // client's spoofed entries (left) are ignored, the address the proxy saw counts.
    let (_upstream, envoy) = start_edge(prefix_model(Some(
        json!({"source": "header", "xff_num_trusted_hops": 1}),
    )));
    let send = |spoof: &str, client: &str| {
        envoy
            .send(
                &RawRequest::get("/accounts")
                    .bearer(&token)
                    .header("x-forwarded-for", format!("{spoof}, {client}")),
            )
            .status
    };
    let statuses: Vec<u16> = (0..40)
        .map(|i| send(&format!("10.{i}.0.1"), "203.0.113.10"))
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        send("203.0.113.10", "198.51.100.99"),
        401,
        "a new network for this client"
    );
}

// 7. ------------------------------------------------------------------------------------

fn ratelimited(ratelimit: Value, statics: Value) -> Value {
    let mut config = kit::plugin_config();
    let mut section = json!({
        "cluster": "ratelimit",
        "domain": "bank",
        "timeout_ms": 2000,
        "descriptors": [{"entries": [{"key": "client", "from": "client_id"}]}],
    });
    for (k, v) in ratelimit.as_object().unwrap() {
        section[k] = v.clone();
    }
    config["ratelimit"] = section;
    config["static_assessments"] = statics;
    config
}

fn start_with_rls(config: Value, rls: &RateLimitService) -> (EchoUpstream, Envoy) {
    let upstream = EchoUpstream::start();
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(config);
    opts.extra_clusters = vec![grpc_cluster("ratelimit", rls.port())];
    (upstream, Envoy::start(opts))
}

#[test]
fn a_throttle_with_no_rate_limit_call_is_answered_not_forwarded() {
    let rls = RateLimitService::start(Vec::new());
    let (upstream, envoy) = start_with_rls(
        ratelimited(
            json!({"routes": {"accounts": {"call": "never"}}}),
            json!({"tpp-risky": {"verdict": "throttle", "risk_band": "high"}}),
        ),
        &rls,
    );
    let resp = envoy.send(&RawRequest::get("/accounts").bearer(token("tpp-risky")));
    assert_eq!(resp.status, 429, "{}", resp.text());
    assert_eq!(resp.header("retry-after"), Some("60"));
    assert_eq!(resp.json()["error"], "rate_limited");
    assert_eq!(upstream.count(), 0, "the throttle was not forwarded");
    assert_eq!(rls.received().len(), 0);
    // A route that is checked still goes to the service, verdict and all.
    let resp = envoy.send(&RawRequest::get("/accounts/acc-1").bearer(token("tpp-risky")));
    assert_eq!(resp.status, 200);
    assert_eq!(rls.received().len(), 1);
    assert_eq!(envoy.counter("wasmcustom.obguard.requests.throttled"), 1);
    let log = envoy.wait_access_log(2);
    assert_eq!(log[0]["outcome"], "throttled");
    assert_eq!(log[0]["reason"], "no_ratelimit_call");
}

// 8. ------------------------------------------------------------------------------------

#[test]
fn the_same_client_id_from_two_issuers_gets_two_buckets() {
    let rls = RateLimitService::start(vec![Limit::new(
        "per-client",
        &[("client", None)],
        1,
        Unit::Minute,
    )]);
    let mut config = ratelimited(json!({}), json!({}));
    config["issuers"].as_array_mut().unwrap().push(json!({
        "issuer": kit::HMAC_ISSUER,
        "audiences": [kit::AUDIENCE],
        "shared_secret": kit::b64(kit::HMAC_SECRET),
        "algorithms": ["HS256"],
    }));
    let (_upstream, envoy) = start_with_rls(config, &rls);
    let mut claims = kit::claims("tpp-1", "accounts");
    claims["iss"] = json!(kit::HMAC_ISSUER);
    let issuer_b = kit::sign_hmac("HS256", kit::HMAC_SECRET, &json!({"alg": "HS256"}), &claims);

    let a = envoy.send(&RawRequest::get("/accounts").bearer(token("tpp-1")));
    assert_eq!(a.status, 200);
    assert_eq!(
        envoy
            .send(&RawRequest::get("/accounts").bearer(token("tpp-1")))
            .status,
        429,
        "issuer A's tpp-1 used its quota"
    );
    let b = envoy.send(&RawRequest::get("/accounts").bearer(&issuer_b));
    assert_eq!(b.status, 200, "issuer B's tpp-1 has its own: {}", b.text());
    let descriptors = rls.received_descriptors();
    assert_eq!(descriptors[0][0][0].1, "tpp-1@idp.obguard.test");
    assert_eq!(descriptors[2][0][0].1, "tpp-1@hmac-idp.obguard.test");
    assert_eq!(seen(&a)["x-obguard-client-id"], json!(["tpp-1"]));
    assert_eq!(
        seen(&a)["x-obguard-client-namespace"],
        json!(["idp.obguard.test"])
    );
    assert_eq!(
        seen(&b)["x-obguard-client-namespace"],
        json!(["hmac-idp.obguard.test"])
    );
    let log = envoy.wait_access_log(3);
    assert_eq!(log[2]["client_id"], "tpp-1@hmac-idp.obguard.test");
}

// 9. ------------------------------------------------------------------------------------

fn signature_checks(envoy: &Envoy) -> u64 {
    envoy.counter("wasmcustom.obguard.signature_checks.host")
        + envoy.counter("wasmcustom.obguard.signature_checks.wasm")
}

#[test]
fn forged_tokens_cost_one_signature_check_and_claims_are_checked_first() {
    let (upstream, envoy) = start(kit::plugin_config());
    let forged = |claims: &Value| {
        kit::sign(
            "ES256",
            Key::AttackerP256,
            &kit::header("ES256", Key::P256),
            claims,
        )
    };
    let replayed = forged(&kit::claims("tpp-1", "accounts payments"));
    let mut descriptions = Vec::new();
    for _ in 0..5 {
        let resp = envoy.send(&RawRequest::get("/accounts").bearer(&replayed));
        assert_eq!(resp.status, 401);
        descriptions.push(
            resp.header("www-authenticate")
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(
        signature_checks(&envoy),
        1,
        "the replays were refused from the negative cache"
    );
    assert_eq!(
        envoy.counter("wasmcustom.obguard.token_invalid.bad_signature"),
        5
    );

    // A forged token with an expired `exp` costs no signature check, and looks the same.
    let mut expired = kit::claims("tpp-1", "accounts payments");
    expired["exp"] = json!(kit::now() - 600);
    expired["iat"] = json!(kit::now() - 900);
    let mut elsewhere = kit::claims("tpp-1", "accounts payments");
    elsewhere["aud"] = json!("https://guessed-audience.test");
    for claims in [expired, elsewhere] {
        let resp = envoy.send(&RawRequest::get("/accounts").bearer(forged(&claims)));
        assert_eq!(resp.status, 401);
        descriptions.push(
            resp.header("www-authenticate")
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(signature_checks(&envoy), 1);
    descriptions.dedup();
    assert_eq!(
        descriptions,
        [
            "Bearer realm=\"bank.test\", error=\"invalid_token\", error_description=\"The access token is invalid\""
        ]
    );
    assert_eq!(upstream.count(), 0);
    let log = envoy.wait_access_log(7);
    assert_eq!(log[5]["reason"], "expired");
    assert_eq!(log[6]["reason"], "wrong_audience");
}

// 10. -----------------------------------------------------------------------------------

#[test]
fn the_rate_limit_service_cannot_write_reserved_headers() {
    let rls = RateLimitService::start(Vec::new());
    rls.set_headers_to_add(
        &[
            ("x-obguard-client-id", "tpp-admin"),
            ("x_obguard_route", "admin"),
            ("x-obguard-scopes", "payments"),
            ("authorization", "Bearer stolen"),
            ("x-envoy-upstream-rq-timeout-ms", "1"),
            ("x-quota-tier", "gold"),
        ],
        &[
            ("set-cookie", "session=evil"),
            ("location", "https://evil.test/"),
            ("x-fapi-interaction-id", "forged"),
            ("www-authenticate", "Basic realm=\"evil\""),
            ("x-quota-note", "fine"),
        ],
    );
    let (_upstream, envoy) = start_with_rls(ratelimited(json!({}), json!({})), &rls);
    let interaction = "6f0c1e2d-3b4a-4c5d-8e9f-0a1b2c3d4e5f";
    let resp = envoy.send(
        &RawRequest::get("/accounts")
            .bearer(token("tpp-1"))
            .header("x-fapi-interaction-id", interaction),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let seen = seen(&resp);
    assert_eq!(seen["x-obguard-client-id"], json!(["tpp-1"]));
    assert_eq!(seen["x-obguard-route"], json!(["accounts"]));
    assert_eq!(
        seen["x-obguard-scopes"],
        json!(["accounts transactions:read"])
    );
    assert!(seen.get("x_obguard_route").is_none());
    assert!(
        seen.get("authorization").is_none(),
        "forward_authorization: false"
    );
    assert!(seen.get("x-envoy-upstream-rq-timeout-ms").is_none());
    assert_eq!(seen["x-quota-tier"], json!(["gold"]));
    for name in ["set-cookie", "location", "www-authenticate"] {
        assert!(resp.header(name).is_none(), "{name} reached the client");
    }
    assert_eq!(resp.header("x-fapi-interaction-id"), Some(interaction));
    assert_eq!(resp.header("x-quota-note"), Some("fine"));
    assert_eq!(
        envoy.wait_counter("wasmcustom.obguard.ratelimit.headers_dropped", 9),
        9
    );
    assert!(envoy.wait_log(
        "asked to set headers obguard does not let it write; dropped: request x-obguard-client-id (reserved)"
    ));
    assert!(
        !envoy.log().contains("session=evil"),
        "values are never logged"
    );
}
