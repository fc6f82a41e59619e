//! A bad plugin configuration is refused with the field path and the problem.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use obguard::config;
use obguard_testkit as kit;
use serde_json::json;

#[test]
fn the_shipped_test_config_loads() {
    assert!(config::load(kit::plugin_config().to_string().as_bytes()).is_ok());
}

/// The cases are in testkit/fixtures/bad-configs.json, shared with `obguard check-config`'s
/// tests (cli/tests/check_config.rs): both must give these messages.
#[test]
fn errors_name_the_field() {
    let cases = kit::bad_configs::bad_configs();
    assert!(cases.len() >= 26, "{} cases", cases.len());
    for case in cases {
        let error = match config::load(case.config.to_string().as_bytes()) {
            Ok(_) => panic!("accepted: {}", case.config),
            Err(err) => err.to_string(),
        };
        assert!(
            case.matches(&error),
            "expected `{}`, got `{error}`",
            case.error
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
