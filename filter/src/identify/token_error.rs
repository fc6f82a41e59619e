//! Every way a bearer token can be refused. The reason names are a public interface: they are
//! metric name suffixes (`obguard.token_invalid.<reason>`) and the `reason` access-log field.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Longer than `max_token_bytes`.
    Oversize,
    /// Not three base64url segments, or a segment that is not the JSON it should be.
    Malformed,
    /// Five segments: an encrypted token (JWE), which obguard does not accept.
    JweUnsupported,
    /// `alg` is `none` in any spelling.
    AlgNone,
    /// `alg` unknown or not on the issuer's allow-list.
    AlgNotAllowed,
    /// The selected key cannot verify `alg` (e.g. HS256 presented against an RSA key).
    AlgKeyMismatch,
    UnknownKid,
    /// No `kid`, and the issuer has several keys.
    KidRequired,
    /// `crit` lists extensions obguard does not understand (it understands none).
    CritUnsupported,
    BadSignature,
    Expired,
    NotYetValid,
    IssuedInFuture,
    LifetimeExceeded,
    WrongIssuer,
    WrongAudience,
    WrongTyp,
    MissingClaim,
    /// A claim with the wrong JSON type or characters unfit for a header.
    BadClaim,
    /// The issuer's keys come from its remote JWKS and none are usable yet (never fetched,
    /// or older than `max_stale_s`): the identity provider is unavailable, not the token bad.
    KeysUnavailable,
}

impl TokenError {
    pub const ALL: [TokenError; 20] = [
        TokenError::Oversize,
        TokenError::Malformed,
        TokenError::JweUnsupported,
        TokenError::AlgNone,
        TokenError::AlgNotAllowed,
        TokenError::AlgKeyMismatch,
        TokenError::UnknownKid,
        TokenError::KidRequired,
        TokenError::CritUnsupported,
        TokenError::BadSignature,
        TokenError::Expired,
        TokenError::NotYetValid,
        TokenError::IssuedInFuture,
        TokenError::LifetimeExceeded,
        TokenError::WrongIssuer,
        TokenError::WrongAudience,
        TokenError::WrongTyp,
        TokenError::MissingClaim,
        TokenError::BadClaim,
        TokenError::KeysUnavailable,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            TokenError::Oversize => "oversize",
            TokenError::Malformed => "malformed",
            TokenError::JweUnsupported => "jwe_unsupported",
            TokenError::AlgNone => "alg_none",
            TokenError::AlgNotAllowed => "alg_not_allowed",
            TokenError::AlgKeyMismatch => "alg_key_mismatch",
            TokenError::UnknownKid => "unknown_kid",
            TokenError::KidRequired => "kid_required",
            TokenError::CritUnsupported => "crit_unsupported",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::IssuedInFuture => "issued_in_future",
            TokenError::LifetimeExceeded => "lifetime_exceeded",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::WrongTyp => "wrong_typ",
            TokenError::MissingClaim => "missing_claim",
            TokenError::BadClaim => "bad_claim",
            TokenError::KeysUnavailable => "keys_unavailable",
        }
    }

    /// Text for `error_description`. Deliberately generic and never derived from token
    /// content, so nothing an attacker wrote is reflected into headers.
    pub fn description(self) -> &'static str {
        match self {
            TokenError::Oversize => "The access token is too large",
            TokenError::Malformed => "The access token is malformed",
            TokenError::JweUnsupported => "Encrypted access tokens are not accepted",
            TokenError::AlgNone | TokenError::AlgNotAllowed | TokenError::AlgKeyMismatch => {
                "The access token is signed with an algorithm that is not accepted"
            }
            TokenError::UnknownKid | TokenError::KidRequired => {
                "The access token is signed with an unknown key"
            }
            TokenError::CritUnsupported => "The access token uses an unsupported critical header",
            TokenError::BadSignature => "The access token signature is invalid",
            TokenError::Expired => "The access token expired",
            TokenError::NotYetValid => "The access token is not valid yet",
            TokenError::IssuedInFuture => "The access token is issued in the future",
            TokenError::LifetimeExceeded => "The access token lifetime is too long",
            TokenError::WrongIssuer => "The access token issuer is not trusted",
            TokenError::WrongAudience => "The access token is not meant for this API",
            TokenError::WrongTyp => "The access token has the wrong type",
            TokenError::MissingClaim => "The access token lacks a required claim",
            TokenError::BadClaim => "The access token has an invalid claim",
            TokenError::KeysUnavailable => "The identity provider's keys are unavailable",
        }
    }
}
