//! Delegation mode through real Envoy: `jwt_authn` verifies, obguard reads the payload it
//! left in dynamic metadata, checks claims and scopes, and sets identity headers.

use obguard_integration::{EchoUpstream, Envoy, EnvoyOptions, RawRequest};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

fn jwt_authn_filter() -> Value {
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {
                "bank-idp": {
                    "issuer": kit::ISSUER,
                    "audiences": [kit::AUDIENCE],
                    "local_jwks": {"inline_string": kit::jwks().to_string()},
                    "payload_in_metadata": "jwt_payload",
                    "forward": true
                }
            },
            "rules": [
                {"match": {"prefix": "/health"}},
                {"match": {"prefix": "/"}, "requires": {"provider_name": "bank-idp"}}
            ]
        }
    })
}

#[test]
fn obguard_trusts_what_jwt_authn_verified() {
    let upstream = EchoUpstream::start();
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(kit::config::delegated());
    opts.extra_http_filters.push(jwt_authn_filter());
    let envoy = Envoy::start(opts);

    let token = kit::token_for("ES256", Key::P256, "tpp-deleg", "accounts");
    let resp = envoy.send(&RawRequest::get("/accounts").bearer(&token));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let seen = &resp.json()["headers"];
    assert_eq!(seen["x-obguard-client-id"], json!(["tpp-deleg"]));
    assert_eq!(seen["x-obguard-scopes"], json!(["accounts"]));
    assert_eq!(
        envoy.counter("wasmcustom.obguard.signature_checks.jwt_authn"),
        1
    );
    assert_eq!(envoy.counter("wasmcustom.obguard.signature_checks.host"), 0);
    assert_eq!(envoy.counter("wasmcustom.obguard.signature_checks.wasm"), 0);

    // Scopes stay obguard's: jwt_authn let it through, obguard refuses the payment.
    let resp = envoy.send(&RawRequest::post("/domestic-payments").bearer(&token));
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert!(
        resp.header("www-authenticate")
            .unwrap_or_default()
            .contains("scope=\"payments\"")
    );

    // A forged token never reaches obguard: jwt_authn answers 401 itself.
    let forged = kit::token_for("ES256", Key::AttackerP256, "tpp-deleg", "accounts payments");
    let resp = envoy.send(&RawRequest::get("/accounts").bearer(&forged));
    assert_eq!(resp.status, 401);
    assert_eq!(upstream.count(), 1);
    let lines = envoy.wait_access_log(3);
    assert_eq!(lines[0]["outcome"], "allowed");
    assert_eq!(lines[0]["client_id"], "tpp-deleg@idp.obguard.test");
}
