//! Test keys, token minting and model signing for obguard's tests and demo. The keys in
//! `keys/` are public and worthless; nothing here is for production.
//!
//! Tokens are signed with well-kept crates (`rsa`, `p256`, `p384`, `ed25519-dalek`, `hmac`)
//! rather than jwt-simple, so tests can craft any header (crit, jku, typ, alg confusion)
//! and tests of obguard's jwt-simple path are not checked by jwt-simple itself.
//!
//! [`host::MemoryHost`] is an in-memory proxy host for the filter's runtime tests. The
//! fixtures several suites share live here too: [`config`] (plugin configurations),
//! [`bad_configs`] (refused configurations and their messages), [`pipeline`] (driving the pipeline natively), [`ratelimit`] (rate-limit service messages)
//! and [`assert`] (assertions on obguard's answers).

pub mod assert;
pub mod bad_configs;
pub mod config;
pub mod dpop;
pub mod host;
pub mod pipeline;
pub mod ratelimit;

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub const ISSUER: &str = "https://idp.obguard.test";
pub const AUDIENCE: &str = "https://api.bank.test";
/// Shared secret of the HMAC test issuer (base64url of 32 bytes).
pub const HMAC_ISSUER: &str = "https://hmac-idp.obguard.test";
pub const HMAC_SECRET: &[u8; 32] = b"obguard-test-hmac-secret-32bytes";

/// The test keys. `Attacker*` keys are not in the issuer's JWKS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Rsa1,
    Rsa2,
    AttackerRsa,
    P256,
    P384,
    Ed25519,
    AttackerP256,
}

impl Key {
    pub fn kid(self) -> &'static str {
        match self {
            Key::Rsa1 => "rsa-1",
            Key::Rsa2 => "rsa-2",
            Key::AttackerRsa => "attacker-rsa",
            Key::P256 => "ec-p256",
            Key::P384 => "ec-p384",
            Key::Ed25519 => "ed25519",
            Key::AttackerP256 => "attacker-ec-p256",
        }
    }

    fn pem(self) -> &'static str {
        match self {
            Key::Rsa1 => include_str!("../keys/rsa-1.pem"),
            Key::Rsa2 => include_str!("../keys/rsa-2.pem"),
            Key::AttackerRsa => include_str!("../keys/attacker-rsa.pem"),
            Key::P256 => include_str!("../keys/ec-p256.pem"),
            Key::P384 => include_str!("../keys/ec-p384.pem"),
            Key::Ed25519 => include_str!("../keys/ed25519.pem"),
            Key::AttackerP256 => include_str!("../keys/attacker-ec-p256.pem"),
        }
    }
}

fn rsa_key(key: Key) -> &'static rsa::RsaPrivateKey {
    use rsa::pkcs8::DecodePrivateKey;
    static KEYS: OnceLock<Vec<(Key, rsa::RsaPrivateKey)>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [Key::Rsa1, Key::Rsa2, Key::AttackerRsa]
            .into_iter()
            .map(|k| {
                (
                    k,
                    rsa::RsaPrivateKey::from_pkcs8_pem(k.pem()).expect("test RSA key"),
                )
            })
            .collect()
    });
    &keys
        .iter()
        .find(|(k, _)| *k == key)
        .expect("not an RSA key")
        .1
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The public JWK of a key, with its kid.
pub fn jwk(key: Key) -> Value {
    jwk_from_pem(key.pem(), key.kid()).unwrap_or_else(|err| panic!("testkit: {err}"))
}

/// The issuer's JWKS: every non-attacker key.
pub fn jwks() -> Value {
    let keys: Vec<Value> = [Key::Rsa1, Key::Rsa2, Key::P256, Key::P384, Key::Ed25519]
        .into_iter()
        .map(jwk)
        .collect();
    json!({ "keys": keys })
}

/// SubjectPublicKeyInfo PEM of an RSA key: what a key-confusion attacker uses as HMAC secret.
pub fn rsa_public_pem(key: Key) -> String {
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    rsa_key(key)
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("PEM")
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Claims of a valid access token for `client_id` with `scope` (space separated).
pub fn claims(client_id: &str, scope: &str) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": format!("psu-{client_id}"),
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": format!("{client_id}-{now}"),
    })
}

/// The claims of [`claims`] as JSON text (`sub` `psu-1`, `client_id` `tpp-1`, scope
/// `accounts`, issued at `now`), with `extra` appended inside the object as it is: for
/// payloads a `Value` cannot express, such as duplicate members (`extra` starts with a comma).
pub fn raw_claims(now: u64, extra: &str) -> String {
    format!(
        r#"{{"iss":"{}","aud":"{}","sub":"psu-1","client_id":"tpp-1","scope":"accounts","iat":{now},"exp":{},"jti":"j-{now}"{extra}}}"#,
        ISSUER,
        AUDIENCE,
        now + 300,
    )
}

/// `claims` without the members `names`.
pub fn without(claims: &Value, names: &[&str]) -> Value {
    let mut claims = claims.clone();
    if let Some(members) = claims.as_object_mut() {
        for name in names {
            members.remove(*name);
        }
    }
    claims
}

/// `claims` (`iss` replaced by [`HMAC_ISSUER`]) signed HS256 with [`HMAC_SECRET`] under the
/// header `{"alg": "HS256"}`: a valid token of [`config::hmac_issuer`].
pub fn hmac_token(claims: &Value) -> String {
    let mut claims = claims.clone();
    claims["iss"] = json!(HMAC_ISSUER);
    sign_hmac("HS256", HMAC_SECRET, &json!({"alg": "HS256"}), &claims)
}

/// The JOSE header obguard's issuers expect by default (RFC 9068 `at+jwt`).
pub fn header(alg: &str, key: Key) -> Value {
    json!({"alg": alg, "typ": "at+jwt", "kid": key.kid()})
}

/// Signs `header`.`claims` with `key` using `alg`; `alg` decides the signature scheme, so a
/// mismatched pair (RS256 with a P-256 key) panics: craft those by hand.
pub fn sign(alg: &str, key: Key, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = signature(alg, key, input.as_bytes());
    format!("{input}.{}", b64(signature))
}

/// Signs the JSON texts `header` and `claims` exactly as given (for tokens a `Value` cannot
/// express, such as duplicate members).
pub fn sign_raw(alg: &str, key: Key, header: &str, claims: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = signature(alg, key, input.as_bytes());
    format!("{input}.{}", b64(signature))
}

/// A valid token: standard header for `key`, the given claims.
pub fn token(alg: &str, key: Key, claims: &Value) -> String {
    sign(alg, key, &header(alg, key), claims)
}

/// A valid token for `client_id` with `scope`: [`token`] over [`claims`].
pub fn token_for(alg: &str, key: Key, client_id: &str, scope: &str) -> String {
    token(alg, key, &claims(client_id, scope))
}

/// HMAC over `header`.`claims` with an arbitrary secret (HS256/384/512).
pub fn sign_hmac(alg: &str, secret: &[u8], header: &Value, claims: &Value) -> String {
    use hmac::{Hmac, Mac};
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let tag = match alg {
        "HS256" => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("hmac");
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        "HS384" => {
            let mut mac = Hmac::<sha2::Sha384>::new_from_slice(secret).expect("hmac");
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        "HS512" => {
            let mut mac = Hmac::<sha2::Sha512>::new_from_slice(secret).expect("hmac");
            mac.update(input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        other => panic!("not an HMAC algorithm: {other}"),
    };
    format!("{input}.{}", b64(tag))
}

/// Signs with any PKCS#8 PEM private key (RSA, P-256, P-384, Ed25519), e.g. the demo keys.
pub fn sign_with_pem(
    alg: &str,
    pem: &str,
    header: &Value,
    claims: &Value,
) -> Result<String, String> {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = pem_signature(alg, pem, input.as_bytes())?;
    Ok(format!("{input}.{}", b64(signature)))
}

/// The public JWK of a PKCS#8 PEM private key.
pub fn jwk_from_pem(pem: &str, kid: &str) -> Result<Value, String> {
    use rsa::pkcs8::DecodePrivateKey;
    if let Ok(key) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
        use rsa::traits::PublicKeyParts;
        return Ok(
            json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be())}),
        );
    }
    if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
        let point = key.verifying_key().to_encoded_point(false);
        return Ok(
            json!({"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256", "x": b64(point.x().ok_or("x")?), "y": b64(point.y().ok_or("y")?)}),
        );
    }
    if let Ok(key) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
        let point = key.verifying_key().to_encoded_point(false);
        return Ok(
            json!({"kty": "EC", "kid": kid, "use": "sig", "crv": "P-384", "x": b64(point.x().ok_or("x")?), "y": b64(point.y().ok_or("y")?)}),
        );
    }
    if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
        return Ok(
            json!({"kty": "OKP", "kid": kid, "use": "sig", "crv": "Ed25519", "x": b64(key.verifying_key().to_bytes())}),
        );
    }
    Err("not a PKCS#8 PEM RSA, P-256, P-384 or Ed25519 private key".into())
}

fn pem_signature(alg: &str, pem: &str, message: &[u8]) -> Result<Vec<u8>, String> {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
    let mut rng = rand_core::OsRng;
    let rsa = || {
        rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| format!("{alg} needs an RSA key: {e}"))
    };
    Ok(match alg {
        "RS256" => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rsa()?)
            .sign(message)
            .to_vec(),
        "RS384" => rsa::pkcs1v15::SigningKey::<sha2::Sha384>::new(rsa()?)
            .sign(message)
            .to_vec(),
        "RS512" => rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(rsa()?)
            .sign(message)
            .to_vec(),
        "PS256" => rsa::pss::BlindedSigningKey::<sha2::Sha256>::new(rsa()?)
            .sign_with_rng(&mut rng, message)
            .to_vec(),
        "PS384" => rsa::pss::BlindedSigningKey::<sha2::Sha384>::new(rsa()?)
            .sign_with_rng(&mut rng, message)
            .to_vec(),
        "PS512" => rsa::pss::BlindedSigningKey::<sha2::Sha512>::new(rsa()?)
            .sign_with_rng(&mut rng, message)
            .to_vec(),
        "ES256" => {
            let key = p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
                .map_err(|e| format!("ES256 needs a P-256 key: {e}"))?;
            let sig: p256::ecdsa::Signature = key.sign(message);
            sig.to_bytes().to_vec()
        }
        "ES384" => {
            let key = p384::ecdsa::SigningKey::from_pkcs8_pem(pem)
                .map_err(|e| format!("ES384 needs a P-384 key: {e}"))?;
            let sig: p384::ecdsa::Signature = key.sign(message);
            sig.to_bytes().to_vec()
        }
        "EdDSA" => {
            use ed25519_dalek::Signer as _;
            let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
                .map_err(|e| format!("EdDSA needs an Ed25519 key: {e}"))?;
            key.sign(message).to_bytes().to_vec()
        }
        other => return Err(format!("unsupported algorithm {other}")),
    })
}

fn signature(alg: &str, key: Key, message: &[u8]) -> Vec<u8> {
    pem_signature(alg, key.pem(), message).unwrap_or_else(|err| panic!("testkit: {err}"))
}

/// A plugin configuration for the test issuer: every asymmetric algorithm, `at+jwt`
/// required, and Open Banking style routes.
pub fn plugin_config() -> Value {
    json!({
        "realm": "bank.test",
        "issuers": [{
            "issuer": ISSUER,
            "audiences": [AUDIENCE, "https://other.bank.test"],
            "jwks": jwks(),
            "algorithms": ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"],
            "require_typ": "at+jwt",
            "max_lifetime_s": 3600,
            "clock_skew_s": 30,
            "client_id_claim": "client_id",
            "scopes": {"claim": "scope", "format": "space_delimited"}
        }],
        "routes": [
            {"name": "accounts", "methods": ["GET"], "path": "/accounts", "scopes": {"all_of": ["accounts"]}},
            {"name": "account", "methods": ["GET"], "path": "/accounts/{AccountId}", "scopes": {"all_of": ["accounts"]}},
            {"name": "balances", "methods": ["GET"], "path": "/accounts/{AccountId}/balances", "scopes": {"all_of": ["accounts"]}},
            {"name": "transactions", "methods": ["GET"], "path": "/accounts/{AccountId}/transactions", "scopes": {"all_of": ["accounts"], "any_of": ["transactions:read", "transactions:all"]}},
            {"name": "payments", "methods": ["POST"], "path": "/domestic-payments", "scopes": {"all_of": ["payments"]}},
            {"name": "health", "methods": ["GET"], "path": "/health", "anonymous": true}
        ],
        "headers": {
            "claims": [{"claim": "jti", "header": "x-obguard-token-id"}, {"claim": "aud", "header": "x-obguard-audience"}],
            "forward_authorization": false
        },
        "max_token_bytes": 4096,
        "cache": {"max_entries": 1000}
    })
}

/// A native stand-in for Envoy's `verify_signature` foreign function (same inputs: hash name,
/// SubjectPublicKeyInfo DER, DER ECDSA or PKCS#1 v1.5 signature, signed text), so the filter's
/// host-crypto path can be tested without Envoy. Counts its calls in [`HOST_CALLS`].
pub fn host_verify_stand_in(
    hash: &str,
    spki_der: &[u8],
    signature: &[u8],
    text: &[u8],
) -> Option<bool> {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    HOST_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if let Ok(key) = rsa::RsaPublicKey::from_public_key_der(spki_der) {
        let sig = rsa::pkcs1v15::Signature::try_from(signature).ok()?;
        let ok = match hash {
            "sha256" => rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(text, &sig)
                .is_ok(),
            "sha384" => rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(key)
                .verify(text, &sig)
                .is_ok(),
            "sha512" => rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(key)
                .verify(text, &sig)
                .is_ok(),
            _ => return None,
        };
        return Some(ok);
    }
    if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der) {
        let Ok(sig) = p256::ecdsa::Signature::from_der(signature) else {
            return Some(false);
        };
        return Some(hash == "sha256" && key.verify(text, &sig).is_ok());
    }
    if let Ok(key) = p384::ecdsa::VerifyingKey::from_public_key_der(spki_der) {
        let Ok(sig) = p384::ecdsa::Signature::from_der(signature) else {
            return Some(false);
        };
        return Some(hash == "sha384" && key.verify(text, &sig).is_ok());
    }
    None
}

/// Calls made to [`host_verify_stand_in`].
pub static HOST_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The shipped model file (`models/shipped/obguard-default.model`), signed with the demo key.
pub const SHIPPED_MODEL: &[u8] = include_bytes!("../../models/shipped/obguard-default.model");

/// The DEMO-ONLY public key the shipped model is signed with (envoy/demo/keys/README.md):
/// the `.pub` file's text, newline included (trim it for a trusted key).
pub const DEMO_MODEL_KEY: &str = include_str!("../../envoy/demo/keys/DEMO-ONLY-model-signing.pub");

/// PKCS#8 PEM secret key and base64 public key of test model-signing key `n` (1 or 2).
fn model_signing_key_files(n: u8) -> (&'static str, &'static str) {
    match n {
        1 => (
            include_str!("../keys/model-signing-1.key"),
            include_str!("../keys/model-signing-1.pub"),
        ),
        2 => (
            include_str!("../keys/model-signing-2.key"),
            include_str!("../keys/model-signing-2.pub"),
        ),
        other => panic!("testkit: there is no model signing key {other} (use 1 or 2)"),
    }
}

/// Test model-signing key `n` (1 or 2) as configured in a filter's trusted keys: standard
/// base64 of the 32 raw Ed25519 public key bytes (the `.pub` file's line).
pub fn model_signing_public_key_b64(n: u8) -> String {
    model_signing_key_files(n).1.trim().to_string()
}

/// Test model-signing key `n` (1 or 2) parsed, for its key id.
pub fn model_signing_public_key(n: u8) -> obguard_models::PublicKey {
    obguard_models::PublicKey::from_base64(model_signing_key_files(n).1).expect("test public key")
}

/// `bytes` (a model file) signed with test model-signing key `n` (1 or 2); an existing
/// signature is replaced. Deterministic.
pub fn sign_model(bytes: &[u8], n: u8) -> Vec<u8> {
    let secret =
        obguard_models::secret_key_from_pem(model_signing_key_files(n).0).expect("test secret key");
    obguard_models::sign_model_file(bytes, &secret)
        .unwrap_or_else(|e| panic!("testkit: signing the model file: {e}"))
}

/// An unsigned model file that only looks at "new country for this client": `weight` 0
/// allows everything, 10 challenges a request from a country the client has not used once
/// the client is past its warm-up (its first 32 requests; a country becomes familiar after
/// about a dozen requests). For lifecycle tests.
pub fn new_country_model(new_country_weight: f32) -> Vec<u8> {
    novelty_model(obguard_models::Feature::NewCountry, new_country_weight)
}

/// Like [`new_country_model`], for "new network (/24 or /48 of the client IP) for this
/// client": the IP the filter attributes to the caller decides.
pub fn new_prefix_model(new_prefix_weight: f32) -> Vec<u8> {
    novelty_model(obguard_models::Feature::NewPrefix, new_prefix_weight)
}

fn novelty_model(feature: obguard_models::Feature, weight: f32) -> Vec<u8> {
    use obguard_models::model::linear::Logistic;
    use obguard_models::model::{ModelBody, ModelKind, TrainingMetadata};
    use obguard_models::{FEATURE_COUNT, Model, PopulationBaseline, Thresholds};
    let mut weights = vec![0.0; FEATURE_COUNT];
    if let Some(w) = weights.get_mut(feature as usize) {
        *w = weight;
    }
    let body = ModelBody {
        kind: ModelKind::Logistic(Logistic {
            mean: vec![0.0; FEATURE_COUNT],
            scale: vec![1.0; FEATURE_COUNT],
            weights,
            bias: -5.0,
        }),
        thresholds: Thresholds {
            step_up: 0.5,
            throttle: 0.99,
            block: 0.999,
        },
        population: PopulationBaseline::default(),
        metadata: TrainingMetadata::default(),
    };
    Model::new(body)
        .and_then(|m| m.to_bytes())
        .unwrap_or_else(|e| panic!("testkit: new_country_model: {e}"))
}

/// The model digest (lowercase hex) of a model file, signed or not; what the filter reports.
pub fn model_digest_hex(bytes: &[u8]) -> String {
    let digest = obguard_models::file_digest(bytes)
        .unwrap_or_else(|e| panic!("testkit: not a model file: {e}"));
    obguard_models::schema::hex(&digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use obguard_models::model::doc_example_model;
    use obguard_models::{Model, ModelError, PublicKey, SignaturePolicy};

    #[test]
    fn model_signing_keys_sign_and_verify() {
        let unsigned = doc_example_model();
        let k1 = model_signing_public_key(1);
        let k2 = model_signing_public_key(2);
        assert_ne!(k1.key_id(), k2.key_id());
        assert_eq!(
            PublicKey::from_base64(&model_signing_public_key_b64(2)).unwrap(),
            k2
        );
        for (n, key) in [(1, &k1), (2, &k2)] {
            let signed = sign_model(&unsigned, n);
            assert_eq!(sign_model(&unsigned, n), signed, "deterministic");
            let m = Model::load_verified(
                &signed,
                SignaturePolicy::Required(std::slice::from_ref(key)),
            )
            .unwrap();
            assert_eq!(m.signature().unwrap().key_id, key.key_id());
            assert_eq!(model_digest_hex(&signed), model_digest_hex(&unsigned));
            assert_eq!(m.digest_hex(), model_digest_hex(&signed));
        }
        let by_1 = sign_model(&unsigned, 1);
        let err = Model::load_verified(&by_1, SignaturePolicy::Required(&[k2])).unwrap_err();
        assert!(
            matches!(err, ModelError::UnknownKey(ref id) if id == k1.key_id()),
            "{err}"
        );
    }

    #[test]
    #[should_panic(expected = "no model signing key 3")]
    fn only_two_model_signing_keys() {
        sign_model(&doc_example_model(), 3);
    }
}
