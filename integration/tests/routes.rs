//! Route policy through the real Envoy: scopes, unmatched routes, anonymous routes, path
//! tricks with and without Envoy's normalisation, identity-header spoofing.

use obguard_integration::{EchoUpstream, Envoy, EnvoyOptions, RawRequest};
use obguard_testkit::{self as kit, Key};
use serde_json::json;

#[test]
fn missing_scope_is_403_with_the_required_scope() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()).plugin(kit::plugin_config()));
    let token = kit::token_for("ES256", Key::P256, "tpp-1", "accounts");

    let resp = envoy.send(
        &RawRequest::post("/domestic-payments")
            .bearer(&token)
            .json(&json!({"Data": {}})),
    );
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(
        resp.header("www-authenticate"),
        Some(
            "Bearer realm=\"bank.test\", error=\"insufficient_scope\", error_description=\"The access token lacks a scope this operation requires\", scope=\"payments\""
        )
    );
    assert_eq!(resp.json()["error"], "insufficient_scope");
    assert_eq!(
        resp.json()["interaction_id"],
        resp.header("x-fapi-interaction-id").unwrap()
    );

    let resp = envoy.send(&RawRequest::get("/accounts/acc-1/transactions").bearer(&token));
    assert_eq!(resp.status, 403);
    assert!(
        resp.header("www-authenticate")
            .unwrap()
            .ends_with("scope=\"accounts transactions:read transactions:all\"")
    );

    assert_eq!(upstream.count(), 0);
    assert_eq!(envoy.counter("wasmcustom.obguard.scope_denied.payments"), 1);
    assert_eq!(
        envoy.counter("wasmcustom.obguard.scope_denied.transactions"),
        1
    );
    let lines = envoy.wait_access_log(2);
    assert_eq!(lines[0]["outcome"], "insufficient_scope");
    assert_eq!(lines[0]["route"], "payments");
    assert_eq!(lines[0]["client_id"], "tpp-1@idp.obguard.test");
}

#[test]
fn unmatched_routes_are_denied_and_public_routes_pass() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()).plugin(kit::plugin_config()));
    let token = kit::token_for("ES256", Key::P256, "tpp-1", "accounts payments");

    for req in [
        RawRequest::get("/admin").bearer(&token),
        RawRequest::delete("/accounts").bearer(&token),
        RawRequest::get("/accounts/").bearer(&token),
    ] {
        let resp = envoy.send(&req);
        assert_eq!(resp.status, 403, "{} {}", req.method, req.target);
        assert_eq!(resp.json()["error"], "access_denied");
        assert!(resp.header("x-fapi-interaction-id").is_some());
    }
    let resp = envoy.send(&RawRequest::get("/health"));
    assert_eq!(resp.status, 200, "anonymous route needs no token");
    assert_eq!(resp.json()["headers"]["x-obguard-route"], json!(["health"]));
    assert_eq!(upstream.count(), 1);
    assert_eq!(envoy.counter("wasmcustom.obguard.requests.route_denied"), 3);
    assert_eq!(envoy.counter("wasmcustom.obguard.requests.anonymous"), 1);
}

#[test]
fn spoofed_identity_headers_are_stripped() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()).plugin(kit::plugin_config()));
    let token = kit::token_for("EdDSA", Key::Ed25519, "tpp-real", "accounts");
    let spoof = |req: RawRequest| {
        req.header("x-obguard-client-id", "tpp-admin")
            .header("X-Obguard-Scopes", "payments admin")
            .header("x-obguard-subject", "root")
            .header("x-obguard-token-id", "forged")
            .header("x-obguard-route", "admin")
    };
    let resp = envoy.send(&spoof(RawRequest::get("/accounts").bearer(&token)));
    assert_eq!(resp.status, 200);
    let seen = &resp.json()["headers"];
    assert_eq!(seen["x-obguard-client-id"], json!(["tpp-real"]));
    assert_eq!(seen["x-obguard-scopes"], json!(["accounts"]));
    assert_eq!(seen["x-obguard-subject"], json!(["psu-tpp-real"]));
    assert_eq!(seen["x-obguard-route"], json!(["accounts"]));
    assert_ne!(seen["x-obguard-token-id"], json!(["forged"]));

    // On a public route nothing is set, and the spoofed values are still removed.
    let resp = envoy.send(&spoof(RawRequest::get("/health")));
    assert_eq!(resp.status, 200);
    let seen = &resp.json()["headers"];
    for name in [
        "x-obguard-client-id",
        "x-obguard-scopes",
        "x-obguard-subject",
        "x-obguard-token-id",
    ] {
        assert!(seen.get(name).is_none(), "{name} leaked: {seen}");
    }
    assert_eq!(seen["x-obguard-route"], json!(["health"]));
}

#[test]
fn path_tricks_are_refused_even_without_envoy_normalisation() {
    let token = kit::token_for("ES256", Key::P256, "tpp-1", "accounts");
    let tricks = [
        "/accounts/../admin",
        "/accounts/%2e%2e/admin",
        "/accounts/%2E%2E/admin",
        "//accounts",
        "/accounts%2Facc-1",
        "/accounts/acc-1;x=1/balances",
        "/accounts/./acc-1",
    ];

    // Envoy passes the raw path: obguard itself refuses every trick.
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(
        EnvoyOptions::new(upstream.port())
            .plugin(kit::plugin_config())
            .normalize_paths(false),
    );
    for trick in tricks {
        let resp = envoy.send(&RawRequest::get(trick).bearer(&token));
        assert_eq!(resp.status, 400, "{trick}: {}", resp.text());
        assert_eq!(resp.json()["error"], "invalid_request", "{trick}");
        assert!(resp.header("x-fapi-interaction-id").is_some(), "{trick}");
    }
    assert_eq!(upstream.count(), 0);
    drop(envoy);

    // With the shipped normalisation, Envoy resolves or rejects first; nothing reaches an
    // upstream route the token was not checked for.
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()).plugin(kit::plugin_config()));
    for trick in tricks {
        let resp = envoy.send(&RawRequest::get(trick).bearer(&token));
        if resp.status == 200 {
            let forwarded = resp.json()["path"].as_str().unwrap_or_default().to_owned();
            assert!(
                forwarded.starts_with("/accounts"),
                "{trick} forwarded as {forwarded}"
            );
            assert!(
                !forwarded.contains(".."),
                "{trick} forwarded as {forwarded}"
            );
        } else {
            assert!(matches!(resp.status, 400 | 403), "{trick}: {}", resp.status);
        }
    }
    let resp = envoy.send(&RawRequest::get("/accounts/../admin").bearer(&token));
    assert_eq!(
        resp.status, 403,
        "normalised to /admin, which is not routed"
    );
}
