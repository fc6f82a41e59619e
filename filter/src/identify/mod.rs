//! Stage 1, identify: who is calling. Bearer token → JOSE header checks → key selection →
//! signature → claims → [`Identity`], with verified tokens cached.

pub mod algorithm;
pub mod cache;
pub mod claims;
pub mod extract;
pub mod issuer;
pub mod jose_header;
pub mod keys;
pub mod token_error;

use std::sync::Arc;

use serde::Deserialize;

use algorithm::Algorithm;
use cache::{CacheLookup, TokenCache};
use issuer::Issuer;
use keys::AlgVerifier;
pub use token_error::TokenError;

/// The caller, as established by a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Index into the configured issuers.
    pub issuer: usize,
    pub client_id: String,
    pub subject: Option<String>,
    pub scopes: Vec<String>,
    /// `(header name, value)` for each configured claim header present in the token.
    pub claim_headers: Vec<(String, String)>,
    /// `exp`, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Verifies `token` (already extracted from `Authorization: Bearer`), using the cache.
/// `claim_headers` is the configured `(claim, header)` list.
pub fn authenticate(
    issuers: &[Issuer],
    claim_headers: &[(String, String)],
    cache: &mut TokenCache,
    token: &str,
    max_token_bytes: usize,
    now: u64,
) -> (Result<Arc<Identity>, TokenError>, CacheLookup) {
    if token.len() > max_token_bytes {
        return (Err(TokenError::Oversize), CacheLookup::Disabled);
    }
    let key = TokenCache::key(token);
    let (cached, lookup) = cache.get(&key, now);
    if let Some(identity) = cached {
        return (Ok(identity), lookup);
    }
    let result = verify(issuers, claim_headers, token, now).map(Arc::new);
    if let Ok(identity) = &result {
        cache.insert(key, identity.clone(), now);
    }
    (result, lookup)
}

#[derive(Deserialize)]
struct UnverifiedIssuer {
    #[serde(default)]
    iss: Option<String>,
}

/// Full verification, no cache.
pub fn verify(
    issuers: &[Issuer],
    claim_headers: &[(String, String)],
    token: &str,
    now: u64,
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

    // The unverified `iss` only picks which keys to try; it is checked again once signed.
    let (issuer_index, issuer) = match issuers {
        [only] => (0, only),
        _ => {
            let payload = jose_header::decode_segment(jws.payload)?;
            let peek: UnverifiedIssuer =
                serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
            let iss = peek.iss.ok_or(TokenError::WrongIssuer)?;
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

    let verifier = select_verifier(issuer, alg, header.kid.as_deref())?;
    let verified = verifier.verify(token).map_err(|err| map_jwt_error(&err))?;
    claims::check(issuer, &verified, now)?;

    let client_id = claims::client_id(issuer, &verified)?;
    let subject = claims::subject(&verified)?;
    let scopes = claims::scopes(issuer, &verified)?;
    let claim_headers = claim_headers
        .iter()
        .filter_map(|(claim, header)| {
            claims::header_value(&verified, claim).map(|value| (header.clone(), value))
        })
        .collect();
    let expires_at = verified
        .expires_at
        .map(|t| t.as_secs())
        .ok_or(TokenError::MissingClaim)?;
    Ok(Identity {
        issuer: issuer_index,
        client_id,
        subject,
        scopes,
        claim_headers,
        expires_at,
    })
}

fn select_verifier<'a>(
    issuer: &'a Issuer,
    alg: Algorithm,
    kid: Option<&str>,
) -> Result<&'a AlgVerifier, TokenError> {
    if alg.is_hmac() {
        // Only reachable when the issuer has a shared secret (config validation).
        return issuer
            .secret
            .as_ref()
            .and_then(|key| key.verifier_for(alg))
            .ok_or(TokenError::AlgKeyMismatch);
    }
    let key = match kid {
        Some(kid) => issuer
            .keys
            .iter()
            .find(|key| key.kid.as_deref() == Some(kid))
            .ok_or(TokenError::UnknownKid)?,
        None => match issuer.keys.as_slice() {
            [only] => only,
            _ => return Err(TokenError::KidRequired),
        },
    };
    key.verifier_for(alg).ok_or(TokenError::AlgKeyMismatch)
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
