//! A bad plugin configuration is refused with the field path and the problem.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use obguard::config;
use obguard_testkit as kit;
use serde_json::{Value, json};

type Edit = Box<dyn FnOnce(&mut Value)>;

fn error_for(edit: impl FnOnce(&mut Value)) -> String {
    let mut config = kit::plugin_config();
    edit(&mut config);
    match config::load(config.to_string().as_bytes()) {
        Ok(_) => panic!("accepted: {config}"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn the_shipped_test_config_loads() {
    assert!(config::load(kit::plugin_config().to_string().as_bytes()).is_ok());
}

#[test]
fn errors_name_the_field() {
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|c| c["issuers"][0]["jwks"]["keys"][1]["n"] = json!("not*base64")),
            "issuers[0].jwks.keys[1].n: not base64url",
        ),
        (
            Box::new(|c| c["issuers"][0]["jwks"]["keys"][0]["n"] = json!("AQAB")),
            "issuers[0].jwks.keys[0].n: RSA modulus of 17 bits is too small",
        ),
        (
            Box::new(|c| c["issuers"][0]["jwks"]["keys"][2]["x"] = json!(kit::b64([7u8; 32]))),
            "issuers[0].jwks.keys[2]: `x`/`y` is not a point on the curve",
        ),
        (
            Box::new(|c| c["issuers"][0]["jwks"]["keys"][0]["d"] = json!("AQAB")),
            "issuers[0].jwks.keys[0].d: private or symmetric key material",
        ),
        (
            Box::new(|c| c["issuers"][0]["jwks"]["keys"][0]["kty"] = json!("oct")),
            "issuers[0].jwks.keys[0].kty: symmetric keys are not accepted",
        ),
        (
            Box::new(|c| c["issuers"][0]["jwks"]["keys"][1]["kid"] = json!("rsa-1")),
            "issuers[0].jwks.keys[1].kid: duplicate kid",
        ),
        (
            Box::new(|c| c["issuers"][0]["algorithms"] = json!(["RS256", "none"])),
            "issuers[0].algorithms[1]: `none` (unsigned tokens) can never be allowed",
        ),
        (
            Box::new(|c| c["issuers"][0]["algorithms"] = json!(["HS256"])),
            "issuers[0].algorithms[0]: `HS256` needs the issuer's `shared_secret`",
        ),
        (
            Box::new(|c| c["issuers"][0]["algorithms"] = json!(["RS257"])),
            "issuers[0].algorithms[0]: unsupported algorithm `RS257`",
        ),
        (
            Box::new(|c| c["issuers"][0]["audiences"] = json!([])),
            "issuers[0].audiences: at least one audience is required",
        ),
        (
            Box::new(|c| c["issuers"][0]["audience"] = json!("x")),
            "issuers[0].audience: unknown field `audience`",
        ),
        (
            Box::new(|c| c["issuers"][0]["max_lifetime_s"] = json!("1h")),
            "issuers[0].max_lifetime_s: invalid type",
        ),
        (
            Box::new(|c| c["issuers"][0]["scopes"]["format"] = json!("csv")),
            "issuers[0].scopes.format: unknown variant `csv`",
        ),
        (
            Box::new(|c| c["routes"][1]["path"] = json!("/accounts/{AccountId")),
            "routes[1].path:",
        ),
        (
            Box::new(|c| c["routes"][2]["methods"] = json!(["get"])),
            "routes[2].methods[0]: `get` is not an upper-case HTTP method",
        ),
        (
            Box::new(|c| c["routes"][5]["scopes"] = json!({"all_of": ["x"]})),
            "routes[5].scopes: an anonymous route cannot require scopes",
        ),
        (
            Box::new(|c| c["routes"][0]["scopes"] = json!({"one_of": ["x"]})),
            "routes[0].scopes.one_of: unknown field `one_of`",
        ),
        (
            Box::new(|c| c["headers"]["client_id"] = json!("X-Client")),
            "headers.client_id: must be a lower-case HTTP header name",
        ),
        (
            Box::new(|c| c["headers"]["subject"] = json!("x-obguard-client-id")),
            "headers.subject: header `x-obguard-client-id` is configured twice",
        ),
        (
            Box::new(|c| c["headers"]["strip"] = json!(["authorization"])),
            "headers.strip[0]: `authorization` is reserved",
        ),
        (
            Box::new(|c| c["unmatched"] = json!("maybe")),
            "unmatched: unknown variant `maybe`",
        ),
        (
            Box::new(|c| c["max_token_bytes"] = json!(0)),
            "max_token_bytes: must be between",
        ),
        (
            Box::new(|c| c["cache"] = json!({"size": 10})),
            "cache.size: unknown field `size`",
        ),
        (
            Box::new(|c| c["issuers"] = json!([])),
            "issuers: at least one issuer is required",
        ),
        (
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("issuers");
            }),
            "missing field `issuers`",
        ),
        (
            Box::new(|c| c["realm"] = json!("a\"b")),
            "realm: must be printable ASCII",
        ),
    ];
    for (edit, expected) in cases {
        let error = error_for(edit);
        assert!(
            error.starts_with(expected)
                || (expected.starts_with("missing") && error.contains(expected)),
            "expected `{expected}`, got `{error}`"
        );
    }
}

#[test]
fn not_json_at_all() {
    let err = config::load(b"issuers: []")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("expected value"), "{err}");
    let err = config::load(b"")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(!err.is_empty());
}

#[test]
fn a_jwks_pasted_from_an_identity_provider_loads() {
    let mut config = kit::plugin_config();
    // Provider-specific members (Entra ID's `issuer`), X.509 members and a top-level extra.
    config["issuers"][0]["jwks"]["keys"][0]["issuer"] = json!("https://login.example/tenant/v2.0");
    config["issuers"][0]["jwks"]["keys"][0]["x5t"] = json!("abc");
    config["issuers"][0]["jwks"]["keys"][0]["x5c"] = json!(["MIIB"]);
    config["issuers"][0]["jwks"]["next_rotation"] = json!("2027-01-01");
    // An encryption key and a key restricted to other operations are skipped, not errors.
    let mut enc = kit::jwk(kit::Key::AttackerRsa);
    enc["use"] = json!("enc");
    enc["kid"] = json!("enc-1");
    let mut wrap = kit::jwk(kit::Key::AttackerP256);
    wrap.as_object_mut().unwrap().remove("use");
    wrap["key_ops"] = json!(["wrapKey"]);
    wrap["kid"] = json!("wrap-1");
    config["issuers"][0]["jwks"]["keys"]
        .as_array_mut()
        .unwrap()
        .extend([enc, wrap]);
    assert!(config::load(config.to_string().as_bytes()).is_ok());
}
