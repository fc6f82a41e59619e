//! Claim checks after the signature verified: issuer, audience, time window, lifetime, and
//! the caller's identity (client id, subject, scopes).

use jwt_simple::prelude::Audiences;
use serde_json::Value;

use super::config::ScopeFormat;
use super::issuer::Issuer;
use super::keys::Claims;
use super::token_error::TokenError;

/// `application/at+JWT` and `at+jwt` name the same type (RFC 7515 §4.1.9).
pub fn normalise_typ(typ: &str) -> String {
    let lower = typ.trim().to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => lower,
    }
}

/// With `require_typ`, exactly that type; without, any JWT type (`JWT` or `…+jwt`), so a
/// token minted for another purpose (`JOSE`, a DPoP proof is still `…+jwt`) is refused.
pub fn check_typ(issuer: &Issuer, typ: Option<&str>) -> Result<(), TokenError> {
    match (&issuer.require_typ, typ) {
        (None, None) => Ok(()),
        (None, Some(typ)) => {
            let typ = normalise_typ(typ);
            if typ == "jwt" || typ.ends_with("+jwt") {
                Ok(())
            } else {
                Err(TokenError::WrongTyp)
            }
        }
        (Some(required), Some(typ)) if *required == normalise_typ(typ) => Ok(()),
        (Some(_), _) => Err(TokenError::WrongTyp),
    }
}

/// RFC 9068 §2.2: the claims a JWT access token always carries besides `iss`, `aud` and
/// `exp`.
pub const RFC9068_REQUIRED: [&str; 4] = ["sub", "client_id", "iat", "jti"];

/// Registered claims and time window, and RFC 9068's required claims when the issuer asks
/// for `at+jwt` tokens. `now` is seconds since the Unix epoch. Runs before the signature is
/// checked: see [`super::token_error::UNVERIFIED_CLAIMS`].
pub fn check(issuer: &Issuer, claims: &Claims, now: u64) -> Result<(), TokenError> {
    if claims.issuer.as_deref() != Some(issuer.issuer.as_str()) {
        return Err(TokenError::WrongIssuer);
    }
    let audience_ok = match &claims.audiences {
        Some(Audiences::AsString(aud)) => issuer.audiences.iter().any(|a| a == aud),
        Some(Audiences::AsSet(set)) => issuer.audiences.iter().any(|a| set.contains(a)),
        None => false,
    };
    if !audience_ok {
        return Err(TokenError::WrongAudience);
    }
    let skew = issuer.clock_skew_s;
    let exp = claims
        .expires_at
        .map(|t| t.as_secs())
        .ok_or(TokenError::MissingClaim)?;
    if now > exp.saturating_add(skew) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = claims.invalid_before.map(|t| t.as_secs())
        && nbf > now.saturating_add(skew)
    {
        return Err(TokenError::NotYetValid);
    }
    let iat = claims.issued_at.map(|t| t.as_secs());
    if let Some(iat) = iat
        && iat > now.saturating_add(skew)
    {
        return Err(TokenError::IssuedInFuture);
    }
    if let Some(max) = issuer.max_lifetime_s {
        let iat = iat.ok_or(TokenError::MissingClaim)?;
        if exp.saturating_sub(iat) > max {
            return Err(TokenError::LifetimeExceeded);
        }
    }
    if issuer.rfc9068_claims {
        for name in RFC9068_REQUIRED {
            match claim_value(claims, name) {
                None | Some(Value::Null) => return Err(TokenError::MissingClaim),
                // `sub`, `jti` and `iat` are typed by the claims model already.
                Some(Value::String(_)) | Some(Value::Number(_)) => {}
                Some(_) => return Err(TokenError::BadClaim),
            }
        }
    }
    Ok(())
}

/// A claim by name, registered or custom, as JSON.
pub fn claim_value(claims: &Claims, name: &str) -> Option<Value> {
    match name {
        "sub" => claims.subject.clone().map(Value::String),
        "iss" => claims.issuer.clone().map(Value::String),
        "jti" => claims.jwt_id.clone().map(Value::String),
        "nonce" => claims.nonce.clone().map(Value::String),
        "exp" => claims.expires_at.map(|t| Value::from(t.as_secs())),
        "iat" => claims.issued_at.map(|t| Value::from(t.as_secs())),
        "nbf" => claims.invalid_before.map(|t| Value::from(t.as_secs())),
        "aud" => claims.audiences.as_ref().map(|aud| match aud {
            Audiences::AsString(s) => Value::String(s.clone()),
            Audiences::AsSet(set) => {
                let mut list: Vec<&String> = set.iter().collect();
                list.sort();
                Value::from(list.into_iter().cloned().collect::<Vec<_>>())
            }
        }),
        other => claims.custom.get(other).cloned(),
    }
}

pub fn client_id(issuer: &Issuer, claims: &Claims) -> Result<String, TokenError> {
    match claim_value(claims, &issuer.client_id_claim) {
        Some(Value::String(id)) if is_header_safe(&id) && !id.is_empty() => Ok(id),
        Some(_) => Err(TokenError::BadClaim),
        None => Err(TokenError::MissingClaim),
    }
}

pub fn subject(claims: &Claims) -> Result<Option<String>, TokenError> {
    match &claims.subject {
        Some(sub) if !is_header_safe(sub) => Err(TokenError::BadClaim),
        other => Ok(other.clone()),
    }
}

/// Granted scopes; a token without the scope claim simply has none.
pub fn scopes(issuer: &Issuer, claims: &Claims) -> Result<Vec<String>, TokenError> {
    let Some(value) = claim_value(claims, &issuer.scope_claim) else {
        return Ok(Vec::new());
    };
    let scopes: Vec<String> = match (issuer.scope_format, value) {
        (ScopeFormat::SpaceDelimited, Value::String(s)) => {
            s.split_ascii_whitespace().map(str::to_owned).collect()
        }
        (ScopeFormat::Array, Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(TokenError::BadClaim),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(TokenError::BadClaim),
    };
    // RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E.
    let valid = |s: &String| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
    };
    if scopes.iter().all(valid) {
        Ok(scopes)
    } else {
        Err(TokenError::BadClaim)
    }
}

/// A claim rendered as a header value: strings as they are, arrays joined with `,`,
/// anything else as compact JSON. `None` when the claim is absent or not header-safe.
pub fn header_value(claims: &Claims, name: &str) -> Option<String> {
    let rendered = match claim_value(claims, name)? {
        Value::String(s) => s,
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Null => return None,
        other => other.to_string(),
    };
    is_header_safe(&rendered).then_some(rendered)
}

/// Visible ASCII and spaces only, bounded: nothing that could split or smuggle a header.
pub fn is_header_safe(value: &str) -> bool {
    value.len() <= 4096 && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_normalisation() {
        assert_eq!(normalise_typ("application/AT+JWT"), "at+jwt");
        assert_eq!(normalise_typ("at+jwt"), "at+jwt");
        assert_eq!(normalise_typ("JWT"), "jwt");
    }

    fn claims(json: serde_json::Value) -> Claims {
        serde_json::from_value(json).unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn claim_header_values() {
        let c = claims(serde_json::json!({
            "sub": "psu-1",
            "aud": ["https://b.test", "https://a.test"],
            "groups": ["ops", "payments"],
            "mixed": ["a", 1, true],
            "acr": "urn:openbanking:psd2:sca",
            "level": 3,
            "cnf": {"x5t#S256": "abc"},
            "evil": "a\r\nx-injected: 1",
            "nothing": null
        }));
        assert_eq!(header_value(&c, "groups").as_deref(), Some("ops,payments"));
        assert_eq!(header_value(&c, "mixed").as_deref(), Some("a,1,true"));
        assert_eq!(
            header_value(&c, "acr").as_deref(),
            Some("urn:openbanking:psd2:sca")
        );
        assert_eq!(header_value(&c, "level").as_deref(), Some("3"));
        assert_eq!(
            header_value(&c, "cnf").as_deref(),
            Some(r#"{"x5t#S256":"abc"}"#)
        );
        assert_eq!(header_value(&c, "sub").as_deref(), Some("psu-1"));
        assert_eq!(
            header_value(&c, "aud").as_deref(),
            Some("https://a.test,https://b.test")
        );
        assert_eq!(header_value(&c, "evil"), None, "never split a header");
        assert_eq!(header_value(&c, "nothing"), None);
        assert_eq!(header_value(&c, "absent"), None);
    }

    #[test]
    fn header_safety() {
        assert!(is_header_safe("client-1 abc"));
        assert!(!is_header_safe("a\r\nx-evil: 1"));
        assert!(!is_header_safe("ümlaut"));
    }
}
