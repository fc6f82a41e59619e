//! A trusted token issuer, compiled from `issuers[]`.

use super::algorithm::Algorithm;
use super::config::ScopeFormat;
use super::keys::IssuerKey;

pub struct Issuer {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    /// Public keys from the JWKS, in configuration order.
    pub keys: Vec<IssuerKey>,
    /// The HMAC key, only when the issuer has a `shared_secret`.
    pub secret: Option<IssuerKey>,
    /// Normalised (lower case, no `application/`), see [`super::claims::normalise_typ`].
    pub require_typ: Option<String>,
    pub max_lifetime_s: Option<u64>,
    /// `require_typ` is `at+jwt` and `rfc9068_claims` is on: `sub`, `client_id`, `iat` and
    /// `jti` are required (RFC 9068 §2.2).
    pub rfc9068_claims: bool,
    pub clock_skew_s: u64,
    pub client_id_claim: String,
    /// Qualifies client ids: `<client id>@<namespace>` (no `@` in a namespace, so the split
    /// at the last `@` is unambiguous). Unique among issuers.
    pub client_namespace: std::sync::Arc<str>,
    pub scope_claim: String,
    pub scope_format: ScopeFormat,
    /// Whether RS*/ES* signatures may be checked by the proxy (see `host_crypto.rs`).
    pub host_crypto: bool,
    /// Key under `jwt_authn`'s dynamic metadata holding this issuer's verified payload.
    pub jwt_authn_payload_key: Option<String>,
    /// Keys fetched from the IdP, beside `keys`.
    pub remote: Option<super::jwks_remote::RemoteJwks>,
    /// Where tokens state their consent (`None`: consent-bound routes refuse them).
    pub consent: Option<crate::authorise::consent::ConsentClaim>,
    /// RFC 8705 / RFC 9449 checks.
    pub sender: super::binding::SenderPolicy,
}

impl Issuer {
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }
}
