//! The JWS protected header, read before any signature work to pick the key and refuse
//! what must never be verified. `jku`, `x5u`, `jwk` and `x5c` are never read: keys come only
//! from configuration.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::keys::Claims;
use super::strict_json::{self, StrictJsonError};
use super::token_error::TokenError;

#[derive(Debug, Deserialize)]
pub struct JoseHeader {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub crit: Option<Vec<String>>,
    /// Only its presence matters: see [`parse`].
    #[serde(default)]
    jwk: Option<serde::de::IgnoredAny>,
}

/// The three segments of a compact JWS.
pub struct CompactJws<'a> {
    pub header: &'a str,
    pub payload: &'a str,
}

pub fn split(token: &str) -> Result<CompactJws<'_>, TokenError> {
    let segments = token.split('.').count();
    if segments == 5 {
        return Err(TokenError::JweUnsupported);
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None)
            if !header.is_empty() && !payload.is_empty() && !signature.is_empty() =>
        {
            Ok(CompactJws { header, payload })
        }
        // An empty third segment is a stripped signature: treated as malformed, never as
        // an unsigned token.
        _ => Err(TokenError::Malformed),
    }
}

pub fn decode_segment(segment: &str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Malformed)
}

/// RFC 7515 §5.2: the header must be UTF-8 and a JSON *object*. serde alone fills a struct
/// from an array too (fields by position: `["HS256"]` is `alg` HS256) and does not check the
/// UTF-8 of members it skips; both were found by fuzzing (docs/fuzzing.md).
fn is_utf8_object(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| {
        text.trim_start_matches([' ', '\t', '\n', '\r'])
            .starts_with('{')
    })
}

pub fn parse(segment: &str) -> Result<JoseHeader, TokenError> {
    let bytes = decode_segment(segment)?;
    // The cheap shape check first; then duplicates; then the typed read.
    if !is_utf8_object(&bytes) {
        return Err(TokenError::Malformed);
    }
    match strict_json::check(&bytes) {
        Ok(()) => {}
        Err(StrictJsonError::Duplicate) => return Err(TokenError::DuplicateHeader),
        Err(StrictJsonError::Invalid) => return Err(TokenError::Malformed),
    }
    let header: JoseHeader = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    match &header.crit {
        // RFC 7515 §4.1.11: an empty list is not allowed, and we implement no extensions.
        Some(list) if list.is_empty() => return Err(TokenError::Malformed),
        Some(_) => return Err(TokenError::CritUnsupported),
        None => {}
    }
    // A token carrying its own verification key is an attack pattern, not an access token,
    // and jwt-simple's header model cannot represent one: refuse it the same way whichever
    // verifier would have run.
    if header.jwk.is_some() {
        return Err(TokenError::Malformed);
    }
    Ok(header)
}

/// The payload (claims set), still unverified: base64url JSON without duplicate members,
/// with the registered claims of the right types. Read before the signature so the cheap
/// claim checks can refuse a token first.
pub fn parse_payload(segment: &str) -> Result<Claims, TokenError> {
    let bytes = decode_segment(segment)?;
    match strict_json::check(&bytes) {
        Ok(()) => {}
        Err(StrictJsonError::Duplicate) => return Err(TokenError::DuplicateClaim),
        Err(StrictJsonError::Invalid) => return Err(TokenError::Malformed),
    }
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn splits_three_segments_only() {
        assert!(split("a.b.c").is_ok());
        assert_eq!(split("a.b.").err(), Some(TokenError::Malformed));
        assert_eq!(split("a.b").err(), Some(TokenError::Malformed));
        assert_eq!(split("a.b.c.d").err(), Some(TokenError::Malformed));
        assert_eq!(split("a.b.c.d.e").err(), Some(TokenError::JweUnsupported));
    }

    #[test]
    fn crit_is_refused() {
        let seg = b64(r#"{"alg":"RS256","crit":["exp"],"exp":1}"#);
        assert_eq!(parse(&seg).err(), Some(TokenError::CritUnsupported));
        let seg = b64(r#"{"alg":"RS256","crit":[]}"#);
        assert_eq!(parse(&seg).err(), Some(TokenError::Malformed));
    }

    #[test]
    fn non_base64url_and_non_json_are_malformed() {
        assert_eq!(parse("eyJ+/==").err(), Some(TokenError::Malformed));
        assert_eq!(parse(&b64("not json")).err(), Some(TokenError::Malformed));
        assert_eq!(
            parse(&b64(r#"{"kid":"a"}"#)).err(),
            Some(TokenError::Malformed)
        );
        assert_eq!(
            parse(&b64(r#"{"alg":"RS256","alg":"none"}"#)).err(),
            Some(TokenError::DuplicateHeader),
            "duplicate members are ambiguous"
        );
        assert_eq!(
            parse(&b64(r#"{"alg":"RS256","x5u":"a","x5u":"b"}"#)).err(),
            Some(TokenError::DuplicateHeader),
            "members obguard ignores count too"
        );
    }

    #[test]
    fn key_hint_headers_are_ignored() {
        let seg = b64(r#"{"alg":"ES256","kid":"k","jku":"https://evil","x5u":"x","x5c":["y"]}"#);
        let header = parse(&seg).ok();
        assert_eq!(header.and_then(|h| h.kid), Some("k".to_owned()));
        let seg = b64(r#"{"alg":"ES256","kid":"k","jwk":{"kty":"EC"}}"#);
        assert_eq!(
            parse(&seg).err(),
            Some(TokenError::Malformed),
            "embedded keys are refused"
        );
    }
}
