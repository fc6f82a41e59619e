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
    /// The JOSE header repeats a member name (two `alg`, two `kid`, ...).
    DuplicateHeader,
    /// The payload repeats a member name in some object (two `client_id`, ...).
    DuplicateClaim,
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
    /// Valid, but on the containment revocation list (by `jti` or hash).
    Revoked,
}

/// The one description of a bad signature and of every claim check that runs before it.
pub const UNVERIFIED_CLAIMS: &str = "The access token is invalid";

impl TokenError {
    pub const ALL: [TokenError; 23] = [
        TokenError::Oversize,
        TokenError::Malformed,
        TokenError::JweUnsupported,
        TokenError::DuplicateHeader,
        TokenError::DuplicateClaim,
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
        TokenError::Revoked,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            TokenError::Oversize => "oversize",
            TokenError::Malformed => "malformed",
            TokenError::JweUnsupported => "jwe_unsupported",
            TokenError::DuplicateHeader => "duplicate_header",
            TokenError::DuplicateClaim => "duplicate_claim",
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
            TokenError::Revoked => "token_revoked",
        }
    }

    /// Text for `error_description`. Deliberately generic and never derived from token
    /// content, so nothing an attacker wrote is reflected into headers.
    ///
    /// The claim checks (issuer, audience, time window, lifetime, required claims) run before
    /// the signature is checked, so a forged token gets their answer without a valid
    /// signature. They therefore share one description with a bad signature: a caller
    /// without the issuer's key cannot tell "your claims are wrong" from "your signature is
    /// wrong", and learns nothing the signature-first order would not have told it. The
    /// precise reason is in the access log and metrics only.
    pub fn description(self) -> &'static str {
        match self {
            TokenError::Oversize => "The access token is too large",
            TokenError::Malformed => "The access token is malformed",
            TokenError::JweUnsupported => "Encrypted access tokens are not accepted",
            TokenError::DuplicateHeader => "The access token header has a duplicate member",
            TokenError::DuplicateClaim => "The access token has a duplicate claim",
            TokenError::AlgNone | TokenError::AlgNotAllowed | TokenError::AlgKeyMismatch => {
                "The access token is signed with an algorithm that is not accepted"
            }
            TokenError::UnknownKid | TokenError::KidRequired => {
                "The access token is signed with an unknown key"
            }
            TokenError::CritUnsupported => "The access token uses an unsupported critical header",
            TokenError::BadSignature
            | TokenError::Expired
            | TokenError::NotYetValid
            | TokenError::IssuedInFuture
            | TokenError::LifetimeExceeded
            | TokenError::WrongIssuer
            | TokenError::WrongAudience
            | TokenError::MissingClaim => UNVERIFIED_CLAIMS,
            TokenError::WrongTyp => "The access token has the wrong type",
            TokenError::BadClaim => "The access token has an invalid claim",
            TokenError::KeysUnavailable => "The identity provider's keys are unavailable",
            TokenError::Revoked => "The access token has been revoked",
        }
    }
}
