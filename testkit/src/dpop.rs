//! RFC 9449 DPoP proofs and RFC 8705 certificate confirmations for tests: proofs signed with
//! the test keys, the JWK thumbprint a token's `cnf.jkt` names, and `cnf.x5t#S256` values.
//! The thumbprint is written out by hand from RFC 7638 §3.2 (not by obguard's code), so the
//! tests check obguard's canonical form against the RFC's.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Key, b64, jwk};

/// The proof key as it travels in a proof header: the public JWK without `kid` and `use`.
pub fn proof_jwk(key: Key) -> Value {
    let mut jwk = jwk(key);
    if let Some(members) = jwk.as_object_mut() {
        members.remove("kid");
        members.remove("use");
    }
    jwk
}

/// RFC 7638 thumbprint of `key`'s public JWK (base64url SHA-256): a DPoP-bound token's
/// `cnf.jkt`.
pub fn jkt(key: Key) -> String {
    let jwk = jwk(key);
    let member = |name: &str| jwk[name].as_str().unwrap_or_default().to_owned();
    let canonical = match member("kty").as_str() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            member("crv"),
            member("x"),
            member("y")
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            member("crv"),
            member("x")
        ),
        other => panic!("testkit: no DPoP thumbprint for kty {other}"),
    };
    b64(Sha256::digest(canonical.as_bytes()))
}

/// `ath`: base64url SHA-256 of the access token.
pub fn ath(access_token: &str) -> String {
    b64(Sha256::digest(access_token.as_bytes()))
}

/// `cnf.x5t#S256` of a DER certificate.
pub fn x5t_s256(certificate_der: &[u8]) -> String {
    b64(Sha256::digest(certificate_der))
}

/// What a proof says; [`Proof::sign`] mints it.
#[derive(Debug, Clone)]
pub struct Proof {
    pub key: Key,
    pub alg: &'static str,
    pub typ: &'static str,
    pub method: String,
    pub htu: String,
    /// `None`: no `ath` claim.
    pub access_token: Option<String>,
    pub iat: u64,
    pub jti: String,
}

impl Proof {
    /// A proof by `key` (ES256 for P-256, ES384 for P-384, EdDSA for Ed25519) for `method`
    /// `htu` and `access_token`, issued now, with a fresh `jti`.
    pub fn new(key: Key, method: &str, htu: &str, access_token: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let alg = match key {
            Key::P256 | Key::AttackerP256 => "ES256",
            Key::P384 => "ES384",
            Key::Ed25519 => "EdDSA",
            other => panic!("testkit: no DPoP algorithm for {other:?}"),
        };
        Self {
            key,
            alg,
            typ: "dpop+jwt",
            method: method.to_owned(),
            htu: htu.to_owned(),
            access_token: Some(access_token.to_owned()),
            iat: crate::now(),
            jti: format!("proof-{}-{n}", crate::now()),
        }
    }

    pub fn sign(&self) -> String {
        let header = json!({"typ": self.typ, "alg": self.alg, "jwk": proof_jwk(self.key)});
        let mut claims = json!({
            "jti": self.jti,
            "htm": self.method,
            "htu": self.htu,
            "iat": self.iat,
        });
        if let Some(token) = &self.access_token {
            claims["ath"] = json!(ath(token));
        }
        crate::sign(self.alg, self.key, &header, &claims)
    }
}
