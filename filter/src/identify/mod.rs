//! Identify (stage 3 of [`crate::pipeline`]; credential placement is checked in stage 1,
//! the sender constraint in stage 6, [`binding`] and [`dpop`]):
//! who is calling. Bearer token → JOSE header checks → claim checks →
//! key selection → signature → identity claims → [`Identity`], with verified tokens cached
//! and bad signatures remembered for a while.
//!
//! The cheap claim checks (issuer, audience, time window, lifetime, required claims) run on
//! the still unverified payload *before* the signature, so a forged token with a valid `kid`
//! but a stale `exp` costs no signature check; their refusals share one description with a
//! bad signature ([`token_error::UNVERIFIED_CLAIMS`]) so that order tells an attacker
//! nothing. A token whose signature did not verify is remembered (by hash, TTL- and
//! LRU-bounded) and refused again without another check.

pub mod algorithm;
pub mod binding;
pub mod cache;
pub mod claims;
pub mod config;
pub mod dpop;
pub mod extract;
pub mod host_crypto;
pub mod issuer;
pub mod jose_header;
pub mod jwks_remote;
pub mod keys;
pub mod strict_json;
pub mod token_error;

use std::sync::Arc;

use crate::authorise::consent::{self, ConsentClaim};

/// Most resource ids read from a token's consent claim (the token itself is bounded by
/// `max_token_bytes`; this bounds the work per request).
const MAX_CONSENTED_RESOURCES: usize = 4096;

use algorithm::Algorithm;
use cache::{CacheLookup, TokenCache};
use host_crypto::{HostVerifyFn, VerifyPath};
use issuer::Issuer;
use keys::{AlgVerifier, Claims, IssuerKey};
pub use token_error::TokenError;

/// The caller, as established by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Index into the configured issuers.
    pub issuer: usize,
    /// The client id as the token states it.
    pub client_id: String,
    /// The issuer's `client_namespace`.
    pub client_namespace: Arc<str>,
    pub subject: Option<String>,
    pub scopes: Vec<String>,
    /// `(header name, value)` for each configured claim header present in the token.
    pub claim_headers: Vec<(String, String)>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: u64,
    /// The consent the token states (issuer `consent` configured and the claim present).
    pub consent: Option<crate::authorise::consent::TokenConsent>,
    /// The token's `cnf`: the certificate or proof key it is bound to.
    pub confirmation: binding::Confirmation,
    /// The token's `jti` (for revocation), bounded in length.
    pub jti: Option<String>,
}

impl Identity {
    /// `<client id>@<namespace>`: the client, unambiguous across issuers.
    pub fn qualified_client_id(&self) -> String {
        format!("{}@{}", self.client_id, self.client_namespace)
    }
}

/// Splits a [`Identity::qualified_client_id`] into the client id and the namespace.
pub fn split_qualified(qualified: &str) -> Option<(&str, &str)> {
    qualified.rsplit_once('@')
}

/// The result of [`authenticate`], with how it was reached (for metrics).
#[derive(Debug)]
pub struct Authentication {
    pub result: Result<Arc<Identity>, TokenError>,
    pub cache: CacheLookup,
    /// Which implementation checked the signature; `None` on a cache hit or an early refusal.
    pub verified_by: Option<VerifyPath>,
    /// Refused as a bad signature remembered from an earlier attempt (no check this time).
    pub rejected_from_cache: bool,
}

/// Where verification gets its keys, settings and (optionally) the proxy's crypto.
#[derive(Clone, Copy)]
pub struct Verifier<'c> {
    pub issuers: &'c [Issuer],
    /// Configured `(claim, header)` pairs copied into [`Identity::claim_headers`].
    pub claim_headers: &'c [(String, String)],
    pub max_token_bytes: usize,
    pub host: Option<HostVerifyFn>,
    /// Keys from each issuer's remote JWKS (same order as `issuers`; `None`: none yet).
    pub remote_keys: &'c [Option<jwks_remote::RemoteKeySet>],
}

/// Verifies `token` (already extracted from `Authorization: Bearer`), using the cache.
pub fn authenticate(
    verifier: &Verifier<'_>,
    cache: &mut TokenCache,
    token: &str,
    now: u64,
) -> Authentication {
    if token.len() > verifier.max_token_bytes {
        return Authentication {
            result: Err(TokenError::Oversize),
            cache: CacheLookup::Disabled,
            verified_by: None,
            rejected_from_cache: false,
        };
    }
    let key = TokenCache::key(token);
    let (cached, lookup) = cache.get(&key, now);
    if let Some(identity) = cached {
        return Authentication {
            result: Ok(identity),
            cache: lookup,
            verified_by: None,
            rejected_from_cache: false,
        };
    }
    if cache.is_rejected(&key, now) {
        return Authentication {
            result: Err(TokenError::BadSignature),
            cache: lookup,
            verified_by: None,
            rejected_from_cache: true,
        };
    }
    let mut verified_by = None;
    let result = verify(verifier, token, now, &mut verified_by).map(Arc::new);
    match &result {
        Ok(identity) => cache.insert(key, identity.clone(), now),
        // Only a signature that was actually checked and failed is remembered: claim
        // refusals depend on the clock, and keys may arrive for an unknown `kid`.
        Err(TokenError::BadSignature) if verified_by.is_some() => cache.reject(key, now),
        Err(_) => {}
    }
    Authentication {
        result,
        cache: lookup,
        verified_by,
        rejected_from_cache: false,
    }
}

/// Full verification, no cache. `verified_by` records which implementation checked the
/// signature, when one did.
pub fn verify(
    verifier: &Verifier<'_>,
    token: &str,
    now: u64,
    verified_by: &mut Option<VerifyPath>,
) -> Result<Identity, TokenError> {
    if !extract::is_b64token(token) {
        return Err(TokenError::Malformed);
    }
    let jws = jose_header::split(token)?;
    let header = jose_header::parse(jws.header)?;
    if header.alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgNone);
    }
    let alg: Algorithm = header.alg.parse().map_err(|()| TokenError::AlgNotAllowed)?;
    // Unverified until the signature checks out: it only picks the issuer and is checked
    // against it (cheaply) before any signature work, then used once the signature verified
    // (the same bytes the signature covers).
    let claims = jose_header::parse_payload(jws.payload)?;

    let (issuer_index, issuer) = match verifier.issuers {
        [only] => (0, only),
        issuers => {
            let iss = claims.issuer.as_deref().ok_or(TokenError::WrongIssuer)?;
            issuers
                .iter()
                .enumerate()
                .find(|(_, candidate)| candidate.issuer == iss)
                .ok_or(TokenError::WrongIssuer)?
        }
    };
    if !issuer.allows(alg) {
        return Err(TokenError::AlgNotAllowed);
    }
    claims::check_typ(issuer, header.typ.as_deref())?;
    claims::check(issuer, &claims, now)?;

    let remote = verifier
        .remote_keys
        .get(issuer_index)
        .and_then(Option::as_ref);
    let (key, alg_verifier) = select_verifier(issuer, remote, alg, header.kid.as_deref(), now)?;
    let host = verifier.host.filter(|_| issuer.host_crypto);
    match host.and_then(|host| verify_on_host(host, alg, key, token)) {
        Some(result) => {
            *verified_by = Some(VerifyPath::Host);
            result?;
        }
        None => {
            *verified_by = Some(VerifyPath::Wasm);
            // jwt-simple decodes the same payload bytes again; `claims` is what it covered.
            alg_verifier
                .verify(token)
                .map_err(|err| map_jwt_error(&err))?;
        }
    }
    identity(verifier, issuer_index, issuer, &claims)
}

/// Claim checks and the caller's identity, for claims verified elsewhere (`jwt_authn`).
fn identity_from_claims(
    verifier: &Verifier<'_>,
    issuer_index: usize,
    issuer: &Issuer,
    verified: &Claims,
    now: u64,
) -> Result<Identity, TokenError> {
    claims::check(issuer, verified, now)?;
    identity(verifier, issuer_index, issuer, verified)
}

/// The caller's identity from claims that passed [`claims::check`] and whose signature
/// verified.
fn identity(
    verifier: &Verifier<'_>,
    issuer_index: usize,
    issuer: &Issuer,
    verified: &Claims,
) -> Result<Identity, TokenError> {
    let client_id = claims::client_id(issuer, verified)?;
    let subject = claims::subject(verified)?;
    let scopes = claims::scopes(issuer, verified)?;
    let claim_headers = verifier
        .claim_headers
        .iter()
        .filter_map(|(claim, header)| {
            claims::header_value(verified, claim).map(|value| (header.clone(), value))
        })
        .collect();
    let expires_at = verified
        .expires_at
        .map(|t| t.as_secs())
        .ok_or(TokenError::MissingClaim)?;
    let consent = issuer.consent.as_ref().and_then(|claim| {
        let name = match claim {
            ConsentClaim::Resources(name) | ConsentClaim::ConsentId(name) => name,
        };
        consent::from_claim(
            claim,
            claims::claim_value(verified, name).as_ref(),
            MAX_CONSENTED_RESOURCES,
        )
    });
    let confirmation = binding::Confirmation::from_claim(verified.custom.get("cnf"));
    Ok(Identity {
        issuer: issuer_index,
        client_namespace: issuer.client_namespace.clone(),
        client_id,
        subject,
        scopes,
        claim_headers,
        expires_at,
        consent,
        confirmation,
        // A revocation list names tokens by `jti`; an absurdly long one is not kept (the
        // token can still be revoked by its hash).
        jti: verified
            .jwt_id
            .clone()
            .filter(|j| !j.is_empty() && j.len() <= 256),
    })
}

/// Delegation mode: Envoy's `jwt_authn` already verified the token and left its payload in
/// dynamic metadata (`payloads` is its `envoy.filters.http.jwt_authn` namespace). The claims
/// are still checked here (issuer, audience, time window, client id, scopes), so a drift
/// between the two configurations fails closed. `None` when no delegating issuer has a
/// payload for this request.
pub fn from_jwt_authn(
    verifier: &Verifier<'_>,
    payloads: &serde_json::Map<String, serde_json::Value>,
    now: u64,
) -> Option<Result<Identity, TokenError>> {
    verifier
        .issuers
        .iter()
        .enumerate()
        .find_map(|(index, issuer)| {
            let payload = payloads.get(issuer.jwt_authn_payload_key.as_deref()?)?;
            // Read in place: `&Value` is a deserializer, no copy of the payload.
            let result = <Claims as serde::Deserialize>::deserialize(payload)
                .map_err(|_| TokenError::Malformed)
                .and_then(|claims| identity_from_claims(verifier, index, issuer, &claims, now));
            Some(result)
        })
}

/// The proxy checks the signature (the claims were decoded before). `None` when this
/// key/algorithm is not for the host or the host could not answer, so the in-wasm verifier
/// takes over.
fn verify_on_host(
    host: HostVerifyFn,
    alg: Algorithm,
    key: &IssuerKey,
    token: &str,
) -> Option<Result<(), TokenError>> {
    let hash = host_crypto::host_hash(alg)?;
    let spki = key.spki_der.as_deref()?;
    let (signed_text, signature_b64) = token.rsplit_once('.')?;
    let Ok(raw_signature) = jose_header::decode_segment(signature_b64) else {
        return Some(Err(TokenError::BadSignature));
    };
    let signature = if alg.key_family() == algorithm::KeyFamily::Rsa {
        raw_signature
    } else {
        match host_crypto::ecdsa_der(alg, &raw_signature) {
            Some(der) => der,
            None => return Some(Err(TokenError::BadSignature)),
        }
    };
    match host(hash, spki, &signature, signed_text.as_bytes())? {
        false => Some(Err(TokenError::BadSignature)),
        true => Some(Ok(())),
    }
}

fn select_verifier<'a>(
    issuer: &'a Issuer,
    remote: Option<&'a jwks_remote::RemoteKeySet>,
    alg: Algorithm,
    kid: Option<&str>,
    now: u64,
) -> Result<(&'a IssuerKey, &'a AlgVerifier), TokenError> {
    if alg.is_hmac() {
        // Only reachable when the issuer has a shared secret (config validation).
        return issuer
            .secret
            .as_ref()
            .and_then(|key| key.verifier_for(alg).map(|v| (key, v)))
            .ok_or(TokenError::AlgKeyMismatch);
    }
    // Remote keys count only while fresh; with none usable, an issuer that relies on its
    // remote JWKS is unavailable rather than the token bad.
    let remote_keys: &[IssuerKey] = match (&issuer.remote, remote) {
        (Some(settings), Some(set)) if set.is_fresh(settings, now) => &set.keys,
        _ => &[],
    };
    let keys_unavailable = issuer.remote.is_some() && remote_keys.is_empty();
    let mut candidates = issuer.keys.iter().chain(remote_keys);
    let key = match kid {
        Some(kid) => match candidates.find(|key| key.kid.as_deref() == Some(kid)) {
            Some(key) => key,
            None if keys_unavailable => return Err(TokenError::KeysUnavailable),
            None => return Err(TokenError::UnknownKid),
        },
        None => match (candidates.next(), candidates.next()) {
            (Some(only), None) => only,
            (None, _) if keys_unavailable => return Err(TokenError::KeysUnavailable),
            _ => return Err(TokenError::KidRequired),
        },
    };
    key.verifier_for(alg)
        .map(|v| (key, v))
        .ok_or(TokenError::AlgKeyMismatch)
}

fn map_jwt_error(err: &jwt_simple::Error) -> TokenError {
    use jwt_simple::JWTError;
    if err.downcast_ref::<serde_json::Error>().is_some() {
        // jwt-simple's own header model rejected the header (e.g. an embedded `jwk` object),
        // or the signature verified but the payload is not a JSON claims set.
        return TokenError::Malformed;
    }
    match err.downcast_ref::<JWTError>() {
        Some(JWTError::NotJWT | JWTError::RequiredSignatureTypeMismatch) => TokenError::WrongTyp,
        Some(JWTError::UnknownCriticalExtension) => TokenError::CritUnsupported,
        Some(JWTError::AlgorithmMismatch) => TokenError::AlgKeyMismatch,
        Some(
            JWTError::CompactEncodingError | JWTError::HeaderTooLarge | JWTError::TokenTooLong,
        ) => TokenError::Malformed,
        // Everything else, including signature bytes that are not valid base64url or not a
        // valid encoding for the curve, is a signature that does not verify.
        _ => TokenError::BadSignature,
    }
}
