//! What every target shares: a fixed clock, the test issuer's configuration (the one
//! `filter/tests/decisions.rs` uses, from `obguard_testkit::plugin_config`), a fuller variant
//! with every kind of issuer and stage, tokens minted for that clock, and model files.
//!
//! Tokens are committed in `fixtures/tokens.json` rather than minted at run time, so the fuzz
//! binaries need no signing code and every run sees the same bytes. `tests/fixtures.rs` checks
//! them against the configurations and regenerates them (`OBGUARD_FUZZ_REGEN=1`).

use std::sync::OnceLock;

use obguard::config::{self, FilterConfig};
use obguard::identify::jwks_remote::{self, RemoteKeySet};
use obguard::pipeline::Worker;
use serde_json::{Value, json};

/// The fixed clock every target decides at (2027-01-15T08:00:00Z). Tokens were minted for it.
pub const NOW: u64 = 1_800_000_000;

pub const ISSUER: &str = "https://idp.obguard.test";
pub const AUDIENCE: &str = "https://api.bank.test";
pub const HMAC_ISSUER: &str = "https://hmac-idp.obguard.test";
/// `obguard_testkit::HMAC_SECRET`.
pub const HMAC_SECRET: &[u8; 32] = b"obguard-test-hmac-secret-32bytes";
/// An issuer whose keys arrive only from its remote JWKS (set in the worker by the targets).
pub const REMOTE_ISSUER: &str = "https://remote-idp.obguard.test";
/// An issuer that delegates verification to Envoy's `jwt_authn` (payload under this key).
pub const GATEWAY_ISSUER: &str = "https://gateway-idp.obguard.test";
pub const GATEWAY_PAYLOAD_KEY: &str = "gw";

/// The access token DPoP proofs in the `dpop_proof` corpus are bound to (`ath`).
pub const DPOP_ACCESS_TOKEN: &str = "dpop-fuzz-access-token";
/// The RFC 7638 thumbprint of testkit's P-256 key (`obguard_testkit::dpop::jkt(Key::P256)`,
/// checked by `tests/fixtures.rs`): the `cnf.jkt` the proofs are checked against.
pub const DPOP_JKT: &str = "RkqkYYFr1Jvdo5t5VAyWQzzbxwhGumO6cGpXcLc5m9Y";
/// The request the proofs are for.
pub const DPOP_HTU: &str = "https://api.bank.test/accounts";

/// `obguard_testkit::plugin_config()`, as committed.
pub const CONFIG_JSON: &str = include_str!("../fixtures/config.json");
pub const TOKENS_JSON: &str = include_str!("../fixtures/tokens.json");
/// The shipped, demo-signed model.
pub const SHIPPED_MODEL: &[u8] = include_bytes!("../../models/shipped/obguard-default.model");
pub const DEMO_MODEL_KEY: &str = include_str!("../../envoy/demo/keys/DEMO-ONLY-model-signing.pub");
pub const MODEL_KEY_1: &str = include_str!("../../testkit/keys/model-signing-1.pub");
pub const MODEL_KEY_2: &str = include_str!("../../testkit/keys/model-signing-2.pub");

/// Which of the two configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `plugin_config()`: one issuer, Open Banking routes, unmatched requests denied.
    Basic,
    /// Four issuers (inline JWKS, HMAC, remote JWKS, `jwt_authn`), the shipped model, a
    /// rate-limit section, static assessments, unmatched requests authenticated.
    Full,
}

/// A committed token and what it is.
#[derive(Debug, Clone)]
pub struct Token {
    pub name: String,
    pub token: String,
    pub iss: String,
    pub client_id: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    /// Signed by a key its issuer trusts (false: forged, alg confusion, `none`).
    pub trusted: bool,
    /// Claims that pass the issuer's checks (audience...) at [`NOW`].
    pub claims_ok: bool,
}

impl Token {
    /// Header and payload: what the signature covers.
    pub fn signed_text(&self) -> &str {
        signed_text(&self.token)
    }
}

/// Everything before the last `.` of a compact JWS.
pub fn signed_text(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(text, _)| text)
}

pub struct Fixtures {
    pub basic: FilterConfig,
    pub full: FilterConfig,
    pub tokens: Vec<Token>,
    /// The test issuer's JWKS document, as the remote issuer would serve it.
    pub jwks: Vec<u8>,
}

impl Fixtures {
    pub fn config(&self, variant: Variant) -> &FilterConfig {
        match variant {
            Variant::Basic => &self.basic,
            Variant::Full => &self.full,
        }
    }

    /// The committed token whose header and payload are exactly those of `token`.
    pub fn token_signing(&self, token: &str) -> Option<&Token> {
        let text = signed_text(token);
        self.tokens.iter().find(|t| t.signed_text() == text)
    }

    /// A worker for `config` whose remote-JWKS issuers have the test JWKS, fetched at
    /// `fetched_at` (`None`: no keys yet).
    pub fn worker(&self, config: &FilterConfig, fetched_at: Option<u64>) -> Worker {
        let mut worker = Worker::new(config);
        for (slot, issuer) in worker.remote_keys.iter_mut().zip(&config.issuers) {
            if issuer.remote.is_none() {
                continue;
            }
            *slot = fetched_at.and_then(|fetched_at| {
                jwks_remote::parse(&self.jwks, &issuer.algorithms, 20)
                    .ok()
                    .map(|keys| RemoteKeySet { keys, fetched_at })
            });
        }
        worker
    }
}

/// The committed `plugin_config()`.
pub fn basic_config() -> Value {
    serde_json::from_str(CONFIG_JSON).unwrap_or(Value::Null)
}

/// The fuller configuration, built from the basic one.
pub fn full_config() -> Value {
    let mut config = basic_config();
    let jwks = config
        .pointer("/issuers/0/jwks")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(issuers) = config.get_mut("issuers").and_then(Value::as_array_mut) {
        issuers.push(json!({
            "issuer": HMAC_ISSUER,
            "audiences": [AUDIENCE],
            "shared_secret": b64url(HMAC_SECRET),
            "algorithms": ["HS256", "HS512"],
        }));
        issuers.push(json!({
            "issuer": REMOTE_ISSUER,
            "audiences": [AUDIENCE],
            "algorithms": ["ES256", "RS256", "EdDSA"],
            "jwks_remote": {"cluster": "idp", "path": "/jwks", "max_stale_s": 600,
                            "unavailable": {"status": 503, "retry_after_s": 7}},
        }));
        issuers.push(json!({
            "issuer": GATEWAY_ISSUER,
            "audiences": [AUDIENCE],
            "algorithms": ["ES256"],
            "jwks": jwks,
            "jwt_authn": {"payload_in_metadata": GATEWAY_PAYLOAD_KEY},
            "scopes": {"claim": "scp", "format": "array"},
        }));
    }
    if let Some(object) = config.as_object_mut() {
        object.insert("unmatched".into(), json!("authenticate"));
        object.insert(
            "model".into(),
            json!({
                "inline_base64": b64std(SHIPPED_MODEL),
                "trusted_keys": [DEMO_MODEL_KEY.trim()],
                "max_clients": 64,
            }),
        );
        object.insert(
            "ratelimit".into(),
            json!({
                "cluster": "ratelimit",
                "domain": "bank",
                "descriptors": [
                    {"entries": [{"key": "client", "from": "client_id"}]},
                    {"entries": [{"key": "client", "from": "client_id"}, {"key": "route", "from": "route"}]},
                    {"entries": [{"key": "verdict", "from": "verdict"}, {"key": "risk", "from": "risk_band"}]},
                    {"entries": [{"key": "country", "from": "country"}]}
                ],
                "country_header": "x-client-country",
                "hits": {"low": 1, "medium": 3, "high": 5},
                "routes": {"payments": {"call": "non_allow", "failure_mode": "fail_closed", "failure_status": 429}}
            }),
        );
        object.insert(
            "static_assessments".into(),
            json!({"tpp-risky": {"verdict": "throttle", "risk_band": "high"}}),
        );
    }
    if let Some(headers) = config.get_mut("headers").and_then(Value::as_object_mut) {
        headers.insert("strip".into(), json!(["x-internal-user"]));
    }
    config
}

/// [`full_config`] with the small documentation model (unsigned) instead of the shipped one:
/// the same shape, loaded ten times faster (the configuration targets load it per input).
pub fn full_config_light() -> Value {
    let mut config = full_config();
    if let Some(model) = config.get_mut("model").and_then(Value::as_object_mut) {
        model.insert(
            "inline_base64".into(),
            json!(b64std(obguard_models::model::doc_example_model())),
        );
        model.insert("allow_unsigned".into(), json!(true));
        model.insert("trusted_keys".into(), json!([]));
    }
    config
}

pub fn b64url(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64std(bytes: impl AsRef<[u8]>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn parse_tokens(json: &str) -> Vec<Token> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let number = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let flag = |v: &Value, k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    items
        .iter()
        .map(|v| Token {
            name: text(v, "name"),
            token: text(v, "token"),
            iss: text(v, "iss"),
            client_id: text(v, "client_id"),
            iat: number(v, "iat"),
            nbf: number(v, "nbf"),
            exp: number(v, "exp"),
            trusted: flag(v, "trusted"),
            claims_ok: flag(v, "claims_ok"),
        })
        .collect()
}

fn load(config: &Value, which: &str) -> FilterConfig {
    match config::load(config.to_string().as_bytes()) {
        Ok(config) => config,
        // A fixture that does not load is a broken checkout, not a finding.
        Err(err) => std::panic::panic_any(format!("fuzz fixture {which} config: {err}")),
    }
}

/// The shared fixtures, built on first use.
pub fn get() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let basic = basic_config();
        let jwks = basic
            .pointer("/issuers/0/jwks")
            .map(|v| v.to_string().into_bytes())
            .unwrap_or_default();
        Fixtures {
            basic: load(&basic, "basic"),
            full: load(&full_config(), "full"),
            tokens: parse_tokens(TOKENS_JSON),
            jwks,
        }
    })
}

/// The trusted model-signing public keys of the model targets: both test keys and the demo
/// key that signed the shipped model.
pub fn model_keys() -> &'static [obguard_models::PublicKey] {
    static KEYS: OnceLock<Vec<obguard_models::PublicKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [MODEL_KEY_1, MODEL_KEY_2, DEMO_MODEL_KEY]
            .iter()
            .filter_map(|k| obguard_models::PublicKey::from_base64(k).ok())
            .collect()
    })
}
