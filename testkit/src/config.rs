//! Plugin configurations the tests share, built on [`crate::plugin_config`].

use serde_json::{Value, json};

use crate::{AUDIENCE, HMAC_ISSUER, HMAC_SECRET, b64, plugin_config};

/// [`plugin_config`] with the top-level `section` set to `value` (`"rules"`, `"model"`...).
pub fn with(section: &str, value: Value) -> Value {
    let mut config = plugin_config();
    config[section] = value;
    config
}

/// Delegated mode: the test issuer without keys or algorithms, its tokens verified by
/// Envoy's `jwt_authn`, whose payload obguard reads from the `jwt_payload` metadata.
pub fn delegated() -> Value {
    let mut config = plugin_config();
    if let Some(issuer) = config["issuers"][0].as_object_mut() {
        issuer.remove("jwks");
        issuer.insert("algorithms".into(), json!([]));
        issuer.insert(
            "jwt_authn".into(),
            json!({"payload_in_metadata": "jwt_payload"}),
        );
    }
    config
}

/// The HMAC test issuer ([`HMAC_ISSUER`], HS256 with [`HMAC_SECRET`], the test audience).
pub fn hmac_issuer() -> Value {
    json!({
        "issuer": HMAC_ISSUER,
        "audiences": [AUDIENCE],
        "shared_secret": b64(HMAC_SECRET),
        "algorithms": ["HS256"],
    })
}

/// [`plugin_config`] with `issuer` as a second issuer.
pub fn with_issuer(issuer: Value) -> Value {
    let mut config = plugin_config();
    match config["issuers"].as_array_mut() {
        Some(issuers) => issuers.push(issuer),
        None => panic!("testkit: plugin_config has no issuers list"),
    }
    config
}

/// [`plugin_config`] with the [`hmac_issuer`] as a second issuer.
pub fn with_hmac_issuer() -> Value {
    with_issuer(hmac_issuer())
}

/// A `model` section for the shipped model ([`crate::SHIPPED_MODEL`], inline, the demo key
/// trusted) in `mode` (`"enforce"` or `"shadow"`).
pub fn shipped_model(mode: &str) -> Value {
    use base64::Engine as _;
    json!({
        "inline_base64": base64::engine::general_purpose::STANDARD.encode(crate::SHIPPED_MODEL),
        "trusted_keys": [crate::DEMO_MODEL_KEY.trim()],
        "mode": mode,
    })
}
