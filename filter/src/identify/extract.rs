//! Finding the access token: only in `Authorization`, as `Bearer` (RFC 6750 §2.1) or `DPoP`
//! (RFC 9449 §7.1, checked against its proof in stage 6). Form and query tokens (RFC 6750
//! §2.2, §2.3) are refused: query strings end up in logs and caches.

/// What the request carries.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    /// No `Authorization` header.
    Missing,
    /// `Authorization` with a scheme other than Bearer or DPoP (e.g. Basic).
    OtherScheme,
    Bearer(&'a str),
    /// `Authorization: DPoP` (RFC 9449 §7.1): a DPoP-bound token, with its proof in the
    /// `DPoP` header.
    Dpop(&'a str),
}

/// Requests that are malformed rather than unauthenticated (RFC 6750 `invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractError {
    MultipleAuthorization,
    TokenInQuery,
}

impl ExtractError {
    pub fn reason(self) -> &'static str {
        match self {
            ExtractError::MultipleAuthorization => "multiple_authorization",
            ExtractError::TokenInQuery => "token_in_query",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            ExtractError::MultipleAuthorization => "More than one Authorization header",
            ExtractError::TokenInQuery => {
                "Access tokens are accepted only in the Authorization header"
            }
        }
    }
}

/// `authorization` holds every `Authorization` header value of the request, `query` the
/// part of the path after `?`.
pub fn credential<'a>(
    authorization: &[&'a str],
    query: Option<&str>,
) -> Result<Credential<'a>, ExtractError> {
    if query.is_some_and(has_access_token_param) {
        return Err(ExtractError::TokenInQuery);
    }
    let value = match authorization {
        [] => return Ok(Credential::Missing),
        [one] => one.trim(),
        _ => return Err(ExtractError::MultipleAuthorization),
    };
    // A single header carrying a comma-joined list is two credentials folded together.
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Ok(if value.eq_ignore_ascii_case("bearer") {
            Credential::Bearer("")
        } else if value.eq_ignore_ascii_case("dpop") {
            Credential::Dpop("")
        } else {
            Credential::OtherScheme
        });
    };
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credential::OtherScheme);
    }
    // Envoy folds repeated `Authorization` headers into one, comma-joined; a bearer token
    // (token68) never contains a comma, so one means two credentials.
    if rest.contains(',') {
        return Err(ExtractError::MultipleAuthorization);
    }
    let token = rest.trim_start_matches(' ');
    Ok(if dpop {
        Credential::Dpop(token)
    } else {
        Credential::Bearer(token)
    })
}

fn has_access_token_param(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        let decoded = percent_decode_lossy(name);
        decoded.eq_ignore_ascii_case("access_token")
    })
}

/// Decodes `%XX` escapes so `acc%65ss_token` cannot slip past the query check.
fn percent_decode_lossy(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(decoded) = hex {
                out.push(decoded);
                i += 3;
                continue;
            }
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(
            credential(&["Bearer abc"], None),
            Ok(Credential::Bearer("abc"))
        );
        assert_eq!(
            credential(&["bearer abc"], None),
            Ok(Credential::Bearer("abc"))
        );
        assert_eq!(
            credential(&["BEARER  abc "], None),
            Ok(Credential::Bearer("abc"))
        );
    }

    #[test]
    fn missing_and_other_schemes() {
        assert_eq!(credential(&[], None), Ok(Credential::Missing));
        assert_eq!(
            credential(&["Basic dXNlcjpwYXNz"], None),
            Ok(Credential::OtherScheme)
        );
        assert_eq!(
            credential(&["Token abc"], None),
            Ok(Credential::OtherScheme)
        );
        assert_eq!(credential(&["Bearer"], None), Ok(Credential::Bearer("")));
    }

    #[test]
    fn two_headers_are_rejected() {
        assert_eq!(
            credential(&["Bearer a", "Bearer b"], None),
            Err(ExtractError::MultipleAuthorization)
        );
        assert_eq!(
            credential(&["Bearer a,Bearer b"], None),
            Err(ExtractError::MultipleAuthorization),
            "folded by the proxy"
        );
    }

    #[test]
    fn token_in_query_is_rejected_even_when_encoded() {
        for query in [
            "access_token=x",
            "a=1&access_token=x",
            "ACCESS_TOKEN=x",
            "acc%65ss_token=x",
            "access_token",
        ] {
            assert_eq!(
                credential(&[], Some(query)),
                Err(ExtractError::TokenInQuery),
                "{query}"
            );
        }
        assert_eq!(
            credential(&[], Some("token=x&access=1")),
            Ok(Credential::Missing)
        );
    }

    #[test]
    fn b64token_syntax() {
        assert!(is_b64token("eyJ.eyJ.sig-_"));
        assert!(is_b64token("abc=="));
        assert!(!is_b64token(""));
        assert!(!is_b64token("a b"));
        assert!(!is_b64token("a\"b"));
        assert!(!is_b64token("ä"));
    }
}
