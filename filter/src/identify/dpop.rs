//! RFC 9449 DPoP proofs: the `DPoP` header's JWT is checked the way §4.3 lists (one proof,
//! `typ: dpop+jwt`, an allowed asymmetric `alg`, a public `jwk` whose signature verifies,
//! `htm`/`htu` of this request, `iat` within the window, `ath` of this access token, a `jti`
//! not seen before) and its key's RFC 7638 thumbprint must be the token's `cnf.jkt`.
//!
//! Signatures are checked with the RustCrypto `p256`/`p384` crates and `ed25519-compact`:
//! the proof's key travels in the proof itself, so jwt-simple (whose header model refuses an
//! embedded `jwk`) cannot be used here. RSA proofs (PS256/RS256) are not supported.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::assess::baselines::{
    BaselineStore, SlotSpace, SlotValue, encode_slot_value, resolve_in,
};

/// Proof algorithms obguard verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopAlgorithm {
    ES256,
    ES384,
    EdDSA,
}

impl DpopAlgorithm {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::ES256),
            "ES384" => Some(Self::ES384),
            "EdDSA" => Some(Self::EdDSA),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }
}

/// Why a proof is refused: `invalid_dpop_proof` (RFC 9449 §7.1) with this reason in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopError {
    /// No `DPoP` header, or more than one.
    Missing,
    /// Not a compact JWS, bad JSON, wrong `typ`, missing claims.
    Malformed,
    /// `alg` not in the issuer's `dpop_algorithms`, or a key of another type.
    Algorithm,
    /// The signature does not verify with the proof's own `jwk`.
    Signature,
    /// `htm` or `htu` is not this request's method and URI.
    Target,
    /// `iat` outside the window.
    Stale,
    /// `ath` is not the hash of this access token.
    TokenHash,
    /// The proof key's thumbprint is not the token's `cnf.jkt`.
    KeyMismatch,
    /// This proof (`jti`) was used before.
    Replayed,
    /// The replay cache has no room: refused rather than unchecked.
    ReplayCacheFull,
}

impl DpopError {
    pub const ALL: [DpopError; 10] = [
        DpopError::Missing,
        DpopError::Malformed,
        DpopError::Algorithm,
        DpopError::Signature,
        DpopError::Target,
        DpopError::Stale,
        DpopError::TokenHash,
        DpopError::KeyMismatch,
        DpopError::Replayed,
        DpopError::ReplayCacheFull,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            DpopError::Missing => "dpop_proof_missing",
            DpopError::Malformed => "dpop_proof_malformed",
            DpopError::Algorithm => "dpop_proof_algorithm",
            DpopError::Signature => "dpop_proof_signature",
            DpopError::Target => "dpop_proof_target",
            DpopError::Stale => "dpop_proof_stale",
            DpopError::TokenHash => "dpop_proof_token_hash",
            DpopError::KeyMismatch => "dpop_proof_key_mismatch",
            DpopError::Replayed => "dpop_proof_replayed",
            DpopError::ReplayCacheFull => "dpop_replay_cache_full",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            DpopError::Missing => "Exactly one DPoP proof is required",
            DpopError::Malformed => "The DPoP proof is malformed",
            DpopError::Algorithm => "The DPoP proof's algorithm is not accepted",
            DpopError::Signature => "The DPoP proof's signature does not verify",
            DpopError::Target => "The DPoP proof is for another method or URI",
            DpopError::Stale => "The DPoP proof is too old or from the future",
            DpopError::TokenHash => "The DPoP proof is for another access token",
            DpopError::KeyMismatch => "The DPoP proof key is not the one the token is bound to",
            DpopError::Replayed => "The DPoP proof was used before",
            DpopError::ReplayCacheFull => "The DPoP proof cannot be checked for replay now",
        }
    }
}

/// What a proof is checked against.
#[derive(Debug, Clone, Copy)]
pub struct ProofContext<'a> {
    /// Every `DPoP` header value of the request.
    pub proofs: &'a [&'a str],
    pub method: &'a str,
    /// `:scheme` and `:authority` of the request, and its path without the query.
    pub scheme: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    pub access_token: &'a str,
    pub now: u64,
}

/// The settings a proof is checked with.
#[derive(Debug, Clone, Copy)]
pub struct ProofRules<'a> {
    pub algorithms: &'a [DpopAlgorithm],
    pub max_age_s: u64,
    pub clock_skew_s: u64,
    /// Normalised origins accepted besides the request's own.
    pub origins: &'a [String],
    pub replay_entries: u32,
}

#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<String>,
    alg: String,
    jwk: ProofKey,
}

/// The proof's public key. Private members make the proof malformed (RFC 9449 §4.3 step 7).
#[derive(Deserialize)]
struct ProofKey {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    d: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: u64,
    ath: Option<String>,
}

/// Longest `jti` kept.
const MAX_JTI_BYTES: usize = 256;
/// Longest proof read.
pub const MAX_PROOF_BYTES: usize = 4096;

/// Where proofs are remembered in shared data.
pub const REPLAY_PREFIX: &str = "obguard.dpop";

/// Checks the proof and records its `jti`; `jkt` is the token's `cnf.jkt`.
pub fn check_proof(
    rules: &ProofRules<'_>,
    context: &ProofContext<'_>,
    jkt: &str,
    store: &mut dyn BaselineStore,
) -> Result<(), DpopError> {
    let proof = match context.proofs {
        [one] if one.len() <= MAX_PROOF_BYTES => one.trim(),
        _ => return Err(DpopError::Missing),
    };
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DpopError::Malformed);
    };
    let decode = |segment: &str| {
        URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| DpopError::Malformed)
    };
    let header: ProofHeader =
        serde_json::from_slice(&decode(header_b64)?).map_err(|_| DpopError::Malformed)?;
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
        || header.jwk.d.is_some()
    {
        return Err(DpopError::Malformed);
    }
    let alg = DpopAlgorithm::parse(&header.alg)
        .filter(|alg| rules.algorithms.contains(alg))
        .ok_or(DpopError::Algorithm)?;
    let signature = decode(signature_b64)?;
    let signed = proof
        .get(..header_b64.len() + 1 + claims_b64.len())
        .ok_or(DpopError::Malformed)?;
    verify_signature(alg, &header.jwk, signed.as_bytes(), &signature)?;
    let claims: ProofClaims =
        serde_json::from_slice(&decode(claims_b64)?).map_err(|_| DpopError::Malformed)?;
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_BYTES {
        return Err(DpopError::Malformed);
    }
    if claims.htm != context.method || !htu_matches(&claims.htu, context, rules.origins) {
        return Err(DpopError::Target);
    }
    let skew = rules.clock_skew_s;
    if claims.iat > context.now.saturating_add(skew)
        || claims
            .iat
            .saturating_add(rules.max_age_s)
            .saturating_add(skew)
            < context.now
    {
        return Err(DpopError::Stale);
    }
    let token_hash = URL_SAFE_NO_PAD.encode(Sha256::digest(context.access_token.as_bytes()));
    if claims.ath.as_deref() != Some(token_hash.as_str()) {
        return Err(DpopError::TokenHash);
    }
    if thumbprint(&header.jwk).as_deref() != Some(jkt) {
        return Err(DpopError::KeyMismatch);
    }
    let space = SlotSpace {
        prefix: REPLAY_PREFIX,
        slots: rules.replay_entries,
        // A proof is usable from `iat - skew` to `iat + max_age + skew`; recorded at the
        // earliest at `iat - skew`, it must be kept `max_age + 2 skew`.
        ttl_s: rules.max_age_s.saturating_add(skew.saturating_mul(2)),
    };
    remember(store, space, &format!("{jkt}.{}", claims.jti), context.now)
}

/// A remembered proof.
struct SeenProof {
    at_ms: u64,
}

impl SlotValue for SeenProof {
    fn decode_value(bytes: &[u8]) -> Option<Self> {
        let at: [u8; 8] = bytes.try_into().ok()?;
        Some(Self {
            at_ms: u64::from_be_bytes(at),
        })
    }
    fn encode_value(&self) -> Option<Vec<u8>> {
        Some(self.at_ms.to_be_bytes().to_vec())
    }
    fn last_seen_ms(&self) -> u64 {
        self.at_ms
    }
}

/// Records a proof id; seen before (on any worker) is a replay. A lost compare-and-swap is
/// retried once, so two workers racing with the same proof cannot both accept it.
fn remember(
    store: &mut dyn BaselineStore,
    space: SlotSpace<'_>,
    id: &str,
    now: u64,
) -> Result<(), DpopError> {
    let now_ms = now.saturating_mul(1000);
    for _attempt in 0..2 {
        let (slot, owner) = resolve_in::<SeenProof>(store, space, id, now_ms);
        if slot.value.is_some() {
            return Err(DpopError::Replayed);
        }
        let Some(key) = slot.key else {
            return Err(DpopError::ReplayCacheFull);
        };
        let bytes = encode_slot_value(owner, &SeenProof { at_ms: now_ms })
            .ok_or(DpopError::ReplayCacheFull)?;
        if store.store(&key, &bytes, slot.cas).is_ok() {
            return Ok(());
        }
    }
    Err(DpopError::ReplayCacheFull)
}

fn verify_signature(
    alg: DpopAlgorithm,
    key: &ProofKey,
    signed: &[u8],
    signature: &[u8],
) -> Result<(), DpopError> {
    use p256::ecdsa::signature::Verifier as _;
    let coordinate = |c: &Option<String>| {
        c.as_deref()
            .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
            .ok_or(DpopError::Malformed)
    };
    let sec1 = |size: usize| -> Result<Vec<u8>, DpopError> {
        let (x, y) = (coordinate(&key.x)?, coordinate(&key.y)?);
        if x.len() != size || y.len() != size {
            return Err(DpopError::Malformed);
        }
        Ok([&[4u8][..], &x, &y].concat())
    };
    let verified = match (alg, key.kty.as_str(), key.crv.as_deref()) {
        (DpopAlgorithm::ES256, "EC", Some("P-256")) => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1(32)?)
                .map_err(|_| DpopError::Malformed)?;
            let signature =
                p256::ecdsa::Signature::from_slice(signature).map_err(|_| DpopError::Signature)?;
            key.verify(signed, &signature).is_ok()
        }
        (DpopAlgorithm::ES384, "EC", Some("P-384")) => {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1(48)?)
                .map_err(|_| DpopError::Malformed)?;
            let signature =
                p384::ecdsa::Signature::from_slice(signature).map_err(|_| DpopError::Signature)?;
            key.verify(signed, &signature).is_ok()
        }
        (DpopAlgorithm::EdDSA, "OKP", Some("Ed25519")) => {
            let key = ed25519_compact::PublicKey::from_slice(&coordinate(&key.x)?)
                .map_err(|_| DpopError::Malformed)?;
            let signature = ed25519_compact::Signature::from_slice(signature)
                .map_err(|_| DpopError::Signature)?;
            key.verify(signed, &signature).is_ok()
        }
        _ => return Err(DpopError::Algorithm),
    };
    if verified {
        Ok(())
    } else {
        Err(DpopError::Signature)
    }
}

/// RFC 7638: SHA-256 of the required members, lexicographically ordered, no whitespace
/// (a `BTreeMap` serialised by serde_json is exactly that).
fn thumbprint(key: &ProofKey) -> Option<String> {
    let mut members = BTreeMap::new();
    members.insert("kty", key.kty.as_str());
    members.insert("crv", key.crv.as_deref()?);
    members.insert("x", key.x.as_deref()?);
    if key.kty == "EC" {
        members.insert("y", key.y.as_deref()?);
    }
    let canonical = serde_json::to_string(&members).ok()?;
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// `scheme://authority` lower-cased with the scheme's default port dropped, and the rest
/// (path) of `uri` without query and fragment. RFC 9449 §4.3 asks for RFC 3986 syntax- and
/// scheme-based normalisation; these are the parts that vary in practice (case, default
/// port). `None` for anything but an absolute http(s) URI.
pub fn normalise_origin(uri: &str) -> Option<(String, &str)> {
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    let path = tail.split(['?', '#']).next().unwrap_or("");
    Some((format!("{scheme}://{authority}"), path))
}

fn htu_matches(htu: &str, context: &ProofContext<'_>, origins: &[String]) -> bool {
    let Some((origin, path)) = normalise_origin(htu) else {
        return false;
    };
    let path = if path.is_empty() { "/" } else { path };
    if path != context.path {
        return false;
    }
    let own_uri = format!("{}://{}", context.scheme, context.authority);
    let own = normalise_origin(&own_uri);
    own.is_some_and(|(own, _)| own == origin) || origins.contains(&origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_normalise_case_and_default_ports() {
        assert_eq!(
            normalise_origin("HTTPS://Bank.Example:443/accounts?x=1"),
            Some(("https://bank.example".to_owned(), "/accounts"))
        );
        assert_eq!(
            normalise_origin("http://h:8080"),
            Some(("http://h:8080".to_owned(), ""))
        );
        assert_eq!(normalise_origin("ftp://h/"), None);
        assert_eq!(normalise_origin("https://user@h/"), None);
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 §3.1 uses an RSA key; this is the EC shape: members in order, no spaces.
        let key = ProofKey {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some("a".into()),
            y: Some("b".into()),
            d: None,
        };
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(
            br#"{"crv":"P-256","kty":"EC","x":"a","y":"b"}"#,
        ));
        assert_eq!(thumbprint(&key), Some(expected));
    }
}
