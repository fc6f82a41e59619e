//! Local replies. Status codes and `WWW-Authenticate` follow RFC 6750 §3; the JSON body is a
//! public interface documented in README.md ("Responses"):
//! `{"error": ..., "error_description": ..., "interaction_id": ...}`.

use serde::Serialize;

use super::interaction_id;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No credentials at all (or another scheme): 401 without an error code (RFC 6750 §3.1).
    MissingToken,
    /// Malformed request: 400 `invalid_request`.
    InvalidRequest { description: &'static str },
    /// Token refused: 401 `invalid_token`.
    InvalidToken { description: &'static str },
    /// 403 `insufficient_scope` with the scopes that would do.
    InsufficientScope { scope: String },
    /// No route matched and unmatched requests are denied: 403.
    RouteNotAllowed,
    /// The path is ambiguous (dot segments, encoded separators...): 400.
    BadPath,
    /// A method-override header on a route obguard authorises: 400, no challenge (a new
    /// token would not help).
    MethodOverride,
    /// The identity provider's keys are unavailable: by default 503 with `Retry-After`,
    /// distinct from the 401 of a bad token.
    IdpUnavailable { status: u16, retry_after_s: u64 },
    /// RFC 9470: the behavioural model asks for a stronger authentication.
    StepUp {
        acr_values: String,
        max_age_s: Option<u64>,
    },
    /// The behavioural model's `throttle` without a rate-limit service: 429.
    Throttled { retry_after_s: u64 },
    /// The behavioural model's `block`: 403.
    Blocked,
    /// The rate-limit service answered `OVER_LIMIT`: 429 (the rate-limit stage adds
    /// `Retry-After` and the RateLimit headers).
    RateLimited,
    /// The rate-limit check failed and the route fails closed: 429 or 503.
    RateLimitUnavailable { status: u16 },
    /// No behavioural model accepted yet and `model.when_unavailable` is `refuse`: 503.
    ModelUnavailable { retry_after_s: u64 },
    /// A resource outside the token's consent (or no usable consent): 403 `access_denied`.
    AccessDenied { description: &'static str },
    /// The consent service cannot be asked and no answer is usable: 503.
    ConsentUnavailable { retry_after_s: u64 },
    /// RFC 9449 §7.1: a DPoP problem, challenged with the `DPoP` scheme and the accepted
    /// proof algorithms; `proof` picks `invalid_dpop_proof` over `invalid_token`.
    InvalidDpop {
        proof: bool,
        description: &'static str,
        algorithms: String,
    },
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
    interaction_id: &'a str,
}

pub fn build(denial: &Denial, realm: &str, interaction_id: &str) -> LocalReply {
    let realm_param = format!("Bearer realm=\"{realm}\"");
    let challenge = |error: &str, description: &str| {
        format!("{realm_param}, error=\"{error}\", error_description=\"{description}\"")
    };
    let (status, error, description, www_authenticate) = match denial {
        Denial::MissingToken => (
            401,
            "unauthorized",
            "An access token is required",
            Some(realm_param.clone()),
        ),
        Denial::InvalidRequest { description } => (
            400,
            "invalid_request",
            *description,
            Some(challenge("invalid_request", description)),
        ),
        Denial::InvalidToken { description } => (
            401,
            "invalid_token",
            *description,
            Some(challenge("invalid_token", description)),
        ),
        Denial::InsufficientScope { scope } => {
            let description = "The access token lacks a scope this operation requires";
            (
                403,
                "insufficient_scope",
                description,
                Some(format!(
                    "{}, scope=\"{scope}\"",
                    challenge("insufficient_scope", description)
                )),
            )
        }
        Denial::RouteNotAllowed => (
            403,
            "access_denied",
            "This operation is not available",
            None,
        ),
        Denial::BadPath => (
            400,
            "invalid_request",
            "The request path is not acceptable",
            None,
        ),
        Denial::MethodOverride => (
            400,
            "invalid_request",
            "Method override headers are not accepted",
            None,
        ),
        Denial::IdpUnavailable { status, .. } => (
            *status,
            "temporarily_unavailable",
            "The identity provider is unavailable; retry later",
            None,
        ),
        Denial::StepUp {
            acr_values,
            max_age_s,
        } => {
            let description = "A stronger authentication is required for this request";
            let mut challenge = format!(
                "{}, acr_values=\"{acr_values}\"",
                challenge("insufficient_user_authentication", description)
            );
            if let Some(max_age) = max_age_s {
                challenge.push_str(&format!(", max_age={max_age}"));
            }
            (
                401,
                "insufficient_user_authentication",
                description,
                Some(challenge),
            )
        }
        Denial::Throttled { .. } => (
            429,
            "rate_limited",
            "Too many unusual requests; retry later",
            None,
        ),
        Denial::Blocked => (
            403,
            "access_denied",
            "This request was refused by risk policy",
            None,
        ),
        Denial::RateLimited => (429, "rate_limited", "Too many requests; retry later", None),
        Denial::RateLimitUnavailable { status: 429 } => (
            429,
            "rate_limited",
            "The request rate could not be checked; retry later",
            None,
        ),
        Denial::RateLimitUnavailable { status } => (
            *status,
            "temporarily_unavailable",
            "The request rate could not be checked; retry later",
            None,
        ),
        Denial::ModelUnavailable { .. } => (
            503,
            "temporarily_unavailable",
            "The risk assessment is not available yet; retry later",
            None,
        ),
        Denial::AccessDenied { description } => (403, "access_denied", *description, None),
        Denial::ConsentUnavailable { .. } => (
            503,
            "temporarily_unavailable",
            "The consent could not be checked; retry later",
            None,
        ),
        Denial::InvalidDpop {
            proof,
            description,
            algorithms,
        } => {
            let error = if *proof {
                "invalid_dpop_proof"
            } else {
                "invalid_token"
            };
            (
                401,
                error,
                *description,
                Some(format!(
                    "DPoP realm=\"{realm}\", error=\"{error}\", error_description=\"{description}\", algs=\"{algorithms}\""
                )),
            )
        }
    };
    let body = serde_json::to_string(&ErrorBody {
        error,
        error_description: description,
        interaction_id,
    })
    .unwrap_or_default();
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("cache-control".to_owned(), "no-store".to_owned()),
        (interaction_id::HEADER.to_owned(), interaction_id.to_owned()),
    ];
    if let Some(value) = www_authenticate {
        headers.push(("www-authenticate".to_owned(), value));
    }
    match denial {
        Denial::IdpUnavailable { retry_after_s, .. }
        | Denial::Throttled { retry_after_s }
        | Denial::ModelUnavailable { retry_after_s }
        | Denial::ConsentUnavailable { retry_after_s } => {
            headers.push(("retry-after".to_owned(), retry_after_s.to_string()));
        }
        _ => {}
    }
    LocalReply {
        status,
        headers,
        body,
    }
}

/// Whether a value can sit inside an RFC 7230 quoted-string without escaping.
pub fn is_quoted_string_safe(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn missing_token_has_no_error_code() {
        let reply = build(&Denial::MissingToken, "bank", "id-1");
        assert_eq!(reply.status, 401);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some("Bearer realm=\"bank\"")
        );
        assert_eq!(header(&reply, "x-fapi-interaction-id"), Some("id-1"));
    }

    #[test]
    fn invalid_token_and_scope_challenges() {
        let reply = build(
            &Denial::InvalidToken {
                description: "The access token expired",
            },
            "bank",
            "i",
        );
        assert_eq!(reply.status, 401);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some(
                "Bearer realm=\"bank\", error=\"invalid_token\", error_description=\"The access token expired\""
            )
        );
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["interaction_id"], "i");

        let reply = build(
            &Denial::InsufficientScope {
                scope: "payments".into(),
            },
            "bank",
            "i",
        );
        assert_eq!(reply.status, 403);
        let challenge = header(&reply, "www-authenticate").unwrap_or_default();
        assert!(challenge.contains("error=\"insufficient_scope\""));
        assert!(challenge.ends_with("scope=\"payments\""));
    }
}
