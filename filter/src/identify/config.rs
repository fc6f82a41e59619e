//! Stage 1's configuration: `issuers[]` (keys, JWKS, claims, delegation) and `cache`, as
//! users write them (public schema, documented in README.md), and their compilation into
//! [`Issuer`]s.

use serde::Deserialize;

use super::algorithm::{Algorithm, KeyFamily};
use super::issuer::Issuer;
use super::jwks_remote::RemoteJwks;
use super::keys::{key_from_jwk, key_from_secret};
use crate::config::ConfigError;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    /// Exact `iss` value.
    pub issuer: String,
    /// The token's `aud` must contain at least one of these.
    pub audiences: Vec<String>,
    /// Inline JWKS (RFC 7517). Remote JWKS fetching is a later addition beside this field.
    #[serde(default)]
    pub jwks: Option<RawJwks>,
    /// base64url shared secret; the only way to enable HS256/384/512 for an issuer.
    #[serde(default)]
    pub shared_secret: Option<String>,
    /// Allowed JWS `alg` values, e.g. `["PS256", "ES256"]`.
    pub algorithms: Vec<String>,
    /// Required JOSE `typ`, e.g. `at+jwt` (RFC 9068). Compared case-insensitively; the
    /// `application/` prefix is optional on both sides.
    #[serde(default)]
    pub require_typ: Option<String>,
    /// With `require_typ: at+jwt`: require RFC 9068's `sub`, `client_id`, `iat` and `jti`
    /// (besides `iss`, `aud`, `exp`). `false` relaxes it.
    #[serde(default = "default_true")]
    pub rfc9068_claims: bool,
    /// Longest accepted `exp - iat`; `null` disables the check.
    #[serde(default = "default_max_lifetime_s")]
    pub max_lifetime_s: Option<u64>,
    /// Tolerance applied to `exp`, `nbf` and `iat`.
    #[serde(default = "default_clock_skew_s")]
    pub clock_skew_s: u64,
    /// Claim naming the OAuth2 client (`client_id` per RFC 9068, or `azp`).
    #[serde(default = "default_client_id_claim")]
    pub client_id_claim: String,
    /// Qualifies this issuer's client ids (`<client id>@<namespace>`) for baselines,
    /// rate-limit descriptors and logs; default: the issuer without `https://` and a
    /// trailing `/`.
    #[serde(default)]
    pub client_namespace: Option<String>,
    #[serde(default)]
    pub scopes: RawScopeClaim,
    /// Let the proxy check RS*/ES* signatures natively (Envoy's `verify_signature` foreign
    /// function) when it offers one; `false` always verifies inside the wasm VM.
    #[serde(default = "default_true")]
    pub host_crypto: bool,
    /// Delegation: take this issuer's tokens as verified by Envoy's `jwt_authn` filter, which
    /// must run before obguard with `payload_in_metadata` set to the given key.
    #[serde(default)]
    pub jwt_authn: Option<RawJwtAuthn>,
    /// Keys fetched from the identity provider over an Envoy cluster (beside any inline
    /// `jwks`).
    #[serde(default)]
    pub jwks_remote: Option<RawRemoteJwks>,
    /// Where this issuer's tokens state their consent, for routes with `consent_params`:
    /// `{"resources_claim": "<claim>"}` (an array of resource ids) or
    /// `{"consent_id_claim": "openbanking_intent_id"}` (resolved by `consent_service`).
    #[serde(default)]
    pub consent: Option<RawIssuerConsent>,
    /// Sender-constrained tokens: RFC 8705 certificate binding and RFC 9449 DPoP.
    #[serde(default)]
    pub sender_constraint: RawSenderConstraint,
}

/// `issuers[].consent`: exactly one of the two fields.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawIssuerConsent {
    #[serde(default)]
    pub resources_claim: Option<String>,
    #[serde(default)]
    pub consent_id_claim: Option<String>,
}

/// Whether a proof of possession is checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum BindingMode {
    /// Every token must be bound (and the binding proven).
    Required,
    /// Checked when the token is bound (carries `cnf`): a bound token is never accepted
    /// without its proof (RFC 8705 §3, RFC 9449 §7).
    #[default]
    IfBound,
    /// Not checked: a bound token is accepted as a bearer token.
    Off,
}

/// `issuers[].sender_constraint`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawSenderConstraint {
    /// RFC 8705: `cnf.x5t#S256` against the SHA-256 of the TLS client certificate Envoy saw.
    #[serde(default)]
    pub mtls: BindingMode,
    /// RFC 9449: the `DPoP` proof against `cnf.jkt`.
    #[serde(default)]
    pub dpop: BindingMode,
    /// Proof algorithms accepted (ES256, ES384, EdDSA).
    #[serde(default = "default_dpop_algorithms")]
    pub dpop_algorithms: Vec<String>,
    /// A proof's `iat` may be this old (and `clock_skew_s` in the future).
    #[serde(default = "default_dpop_max_age_s")]
    pub dpop_max_age_s: u64,
    /// Origins (`https://host[:port]`) a proof's `htu` may name instead of the request's
    /// own scheme and authority (TLS terminated before Envoy, or a public host name).
    #[serde(default)]
    pub dpop_origins: Vec<String>,
}

impl Default for RawSenderConstraint {
    fn default() -> Self {
        Self {
            mtls: BindingMode::default(),
            dpop: BindingMode::default(),
            dpop_algorithms: default_dpop_algorithms(),
            dpop_max_age_s: default_dpop_max_age_s(),
            dpop_origins: Vec::new(),
        }
    }
}

/// `routes[].sender_constraint`: replaces the issuer's mode per mechanism.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRouteSenderConstraint {
    #[serde(default)]
    pub mtls: Option<BindingMode>,
    #[serde(default)]
    pub dpop: Option<BindingMode>,
}

fn default_dpop_algorithms() -> Vec<String> {
    vec!["ES256".to_owned(), "ES384".to_owned(), "EdDSA".to_owned()]
}

fn default_dpop_max_age_s() -> u64 {
    300
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRemoteJwks {
    /// Envoy cluster serving the JWKS.
    pub cluster: String,
    /// Request path, e.g. `/.well-known/jwks.json`.
    pub path: String,
    /// `:authority` of the request (default: the cluster name).
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_refresh_s")]
    pub refresh_s: u64,
    #[serde(default = "default_jwks_timeout_ms")]
    pub timeout_ms: u64,
    /// At most one refetch per this interval per issuer, whatever the cause (unknown `kid`s,
    /// failures).
    #[serde(default = "default_min_refetch_s")]
    pub min_refetch_interval_s: u64,
    /// Keys older than this are no longer used (stale-if-error bound).
    #[serde(default = "default_max_stale_s")]
    pub max_stale_s: u64,
    #[serde(default = "default_jwks_max_bytes")]
    pub max_bytes: usize,
    #[serde(default = "default_jwks_max_keys")]
    pub max_keys: usize,
    /// The answer while no usable keys exist (before the first fetch, or stale beyond
    /// `max_stale_s`).
    #[serde(default)]
    pub unavailable: RawUnavailable,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawUnavailable {
    #[serde(default = "default_unavailable_status")]
    pub status: u16,
    #[serde(default = "default_retry_after_s")]
    pub retry_after_s: u64,
}

impl Default for RawUnavailable {
    fn default() -> Self {
        Self {
            status: default_unavailable_status(),
            retry_after_s: default_retry_after_s(),
        }
    }
}

fn default_refresh_s() -> u64 {
    300
}
fn default_jwks_timeout_ms() -> u64 {
    2000
}
fn default_min_refetch_s() -> u64 {
    30
}
fn default_max_stale_s() -> u64 {
    86_400
}
fn default_jwks_max_bytes() -> usize {
    65_536
}
fn default_jwks_max_keys() -> usize {
    20
}
fn default_unavailable_status() -> u16 {
    503
}
fn default_retry_after_s() -> u64 {
    30
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawJwtAuthn {
    /// The `payload_in_metadata` value of the matching `jwt_authn` provider.
    pub payload_in_metadata: String,
}

fn default_max_lifetime_s() -> Option<u64> {
    Some(86_400)
}

fn default_clock_skew_s() -> u64 {
    60
}

fn default_client_id_claim() -> String {
    "client_id".to_owned()
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawScopeClaim {
    #[serde(default = "default_scope_claim")]
    pub claim: String,
    #[serde(default)]
    pub format: ScopeFormat,
}

impl Default for RawScopeClaim {
    fn default() -> Self {
        Self {
            claim: default_scope_claim(),
            format: ScopeFormat::default(),
        }
    }
}

fn default_scope_claim() -> String {
    "scope".to_owned()
}

/// How the scope claim carries scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ScopeFormat {
    /// `"scope": "accounts payments"` (RFC 8693 / RFC 9068).
    #[default]
    SpaceDelimited,
    /// `"scp": ["accounts", "payments"]`.
    Array,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawJwks {
    pub keys: Vec<RawJwk>,
}

/// One JWK (RFC 7517 §4, RFC 7518 §6). Private members are listed so they can be refused
/// with a precise message; other unknown members are ignored (see the module comment).
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RawJwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub key_ops: Option<Vec<String>>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
    // Accepted, never used: certificates are not a trust path here.
    #[serde(default)]
    pub x5c: Option<serde_json::Value>,
    #[serde(default)]
    pub x5t: Option<serde_json::Value>,
    #[serde(default, rename = "x5t#S256")]
    pub x5t_s256: Option<serde_json::Value>,
    #[serde(default)]
    pub x5u: Option<serde_json::Value>,
    // Private key members: present only to reject them explicitly.
    #[serde(default)]
    pub d: Option<serde_json::Value>,
    #[serde(default)]
    pub p: Option<serde_json::Value>,
    #[serde(default)]
    pub q: Option<serde_json::Value>,
    #[serde(default)]
    pub dp: Option<serde_json::Value>,
    #[serde(default)]
    pub dq: Option<serde_json::Value>,
    #[serde(default)]
    pub qi: Option<serde_json::Value>,
    #[serde(default)]
    pub k: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// Verified tokens kept per Envoy worker; 0 disables the cache.
    #[serde(default = "default_cache_entries")]
    pub max_entries: usize,
    /// Tokens whose signature did not verify, refused again without a check.
    #[serde(default)]
    pub negative: RawNegativeCache,
    /// DPoP proofs remembered (shared data, every worker) for replay detection until their
    /// `iat` window passes; size it above the peak proofs per `dpop_max_age_s`.
    #[serde(default = "default_dpop_replay_entries")]
    pub dpop_replay_entries: u32,
}

impl Default for RawCache {
    fn default() -> Self {
        Self {
            max_entries: default_cache_entries(),
            negative: RawNegativeCache::default(),
            dpop_replay_entries: default_dpop_replay_entries(),
        }
    }
}

fn default_dpop_replay_entries() -> u32 {
    100_000
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawNegativeCache {
    /// Bad signatures remembered per Envoy worker (LRU); 0 disables.
    #[serde(default = "default_cache_entries")]
    pub max_entries: usize,
    /// How long one is remembered.
    #[serde(default = "default_negative_ttl_s")]
    pub ttl_s: u64,
}

impl Default for RawNegativeCache {
    fn default() -> Self {
        Self {
            max_entries: default_cache_entries(),
            ttl_s: default_negative_ttl_s(),
        }
    }
}

fn default_negative_ttl_s() -> u64 {
    300
}

fn default_cache_entries() -> usize {
    10_000
}

pub fn compile_issuer(path: &str, raw: &RawIssuer) -> Result<Issuer, ConfigError> {
    if raw.issuer.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.issuer"),
            "must not be empty",
        ));
    }
    if raw.audiences.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.audiences"),
            "at least one audience is required",
        ));
    }
    if let Some(index) = raw.audiences.iter().position(String::is_empty) {
        return Err(ConfigError::new(
            format!("{path}.audiences[{index}]"),
            "must not be empty",
        ));
    }
    let delegated_only =
        raw.jwt_authn.is_some() && raw.jwks.is_none() && raw.shared_secret.is_none();
    if raw.algorithms.is_empty() && !delegated_only {
        return Err(ConfigError::new(
            format!("{path}.algorithms"),
            "at least one algorithm is required",
        ));
    }
    if raw
        .jwt_authn
        .as_ref()
        .is_some_and(|d| d.payload_in_metadata.is_empty())
    {
        return Err(ConfigError::new(
            format!("{path}.jwt_authn.payload_in_metadata"),
            "must not be empty",
        ));
    }
    let mut algorithms = Vec::new();
    for (index, name) in raw.algorithms.iter().enumerate() {
        let field = format!("{path}.algorithms[{index}]");
        let alg = name.parse::<Algorithm>().map_err(|()| {
            if name.eq_ignore_ascii_case("none") {
                ConfigError::new(&field, "`none` (unsigned tokens) can never be allowed")
            } else {
                ConfigError::new(
                    &field,
                    format!("unsupported algorithm `{name}` (one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, HS256, HS384, HS512)"),
                )
            }
        })?;
        if alg.is_hmac() && raw.shared_secret.is_none() {
            return Err(ConfigError::new(
                &field,
                format!(
                    "`{alg}` needs the issuer's `shared_secret`; HMAC is never checked against public keys"
                ),
            ));
        }
        if algorithms.contains(&alg) {
            return Err(ConfigError::new(
                &field,
                format!("duplicate algorithm `{alg}`"),
            ));
        }
        algorithms.push(alg);
    }

    let mut keys = Vec::new();
    if let Some(jwks) = &raw.jwks {
        for (index, jwk) in jwks.keys.iter().enumerate() {
            let key_path = format!("{path}.jwks.keys[{index}]");
            let Some(key) = key_from_jwk(&key_path, jwk, &algorithms)? else {
                continue;
            };
            if key.kid.is_some()
                && keys
                    .iter()
                    .any(|k: &crate::identify::keys::IssuerKey| k.kid == key.kid)
            {
                return Err(ConfigError::new(format!("{key_path}.kid"), "duplicate kid"));
            }
            keys.push(key);
        }
    }
    let secret = match &raw.shared_secret {
        Some(secret) => {
            if !algorithms.iter().any(|alg| alg.is_hmac()) {
                return Err(ConfigError::new(
                    format!("{path}.shared_secret"),
                    "set, but no HS256/HS384/HS512 in `algorithms`",
                ));
            }
            Some(key_from_secret(
                &format!("{path}.shared_secret"),
                secret,
                &algorithms,
            )?)
        }
        None => None,
    };
    if keys.is_empty() && secret.is_none() && raw.jwt_authn.is_none() && raw.jwks_remote.is_none() {
        return Err(ConfigError::new(
            path,
            "no verification key: set `jwks` (with at least one signing key), `jwks_remote`, `shared_secret`, or delegate with `jwt_authn`",
        ));
    }
    let remote = match &raw.jwks_remote {
        Some(remote) => Some(RemoteJwks::compile(
            &format!("{path}.jwks_remote"),
            &raw.issuer,
            remote,
        )?),
        None => None,
    };
    // Keys for an algorithm may arrive with the remote JWKS; only inline-only issuers can be
    // checked now.
    for alg in algorithms.iter().filter(|_| remote.is_none()) {
        let family = alg.key_family();
        let has_key = if family == KeyFamily::SharedSecret {
            secret.is_some()
        } else {
            keys.iter().any(|k| k.verifier_for(*alg).is_some())
        };
        if !has_key {
            return Err(ConfigError::new(
                format!("{path}.algorithms"),
                format!("`{alg}` is allowed but no configured key can verify it"),
            ));
        }
    }

    let require_typ = match &raw.require_typ {
        None => None,
        Some(typ) if typ.trim().is_empty() => {
            return Err(ConfigError::new(
                format!("{path}.require_typ"),
                "must not be empty",
            ));
        }
        Some(typ) => Some(crate::identify::claims::normalise_typ(typ)),
    };
    if raw.max_lifetime_s == Some(0) {
        return Err(ConfigError::new(
            format!("{path}.max_lifetime_s"),
            "must be positive (use null to disable the check)",
        ));
    }
    if raw.clock_skew_s > 3600 {
        return Err(ConfigError::new(
            format!("{path}.clock_skew_s"),
            "must be at most 3600",
        ));
    }
    if raw.client_id_claim.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.client_id_claim"),
            "must not be empty",
        ));
    }
    if raw.scopes.claim.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.scopes.claim"),
            "must not be empty",
        ));
    }
    let client_namespace = client_namespace(path, raw)?;

    Ok(Issuer {
        issuer: raw.issuer.clone(),
        audiences: raw.audiences.clone(),
        algorithms,
        keys,
        secret,
        rfc9068_claims: raw.rfc9068_claims && require_typ.as_deref() == Some("at+jwt"),
        require_typ,
        max_lifetime_s: raw.max_lifetime_s,
        clock_skew_s: raw.clock_skew_s,
        client_id_claim: raw.client_id_claim.clone(),
        client_namespace: client_namespace.into(),
        scope_claim: raw.scopes.claim.clone(),
        scope_format: raw.scopes.format,
        host_crypto: raw.host_crypto,
        jwt_authn_payload_key: raw
            .jwt_authn
            .as_ref()
            .map(|d| d.payload_in_metadata.clone()),
        remote,
        consent: compile_consent(path, raw)?,
        sender: super::binding::SenderPolicy::compile(
            &format!("{path}.sender_constraint"),
            &raw.sender_constraint,
        )?,
    })
}

fn compile_consent(
    path: &str,
    raw: &RawIssuer,
) -> Result<Option<crate::authorise::consent::ConsentClaim>, ConfigError> {
    use crate::authorise::consent::ConsentClaim;
    let Some(consent) = &raw.consent else {
        return Ok(None);
    };
    let field = format!("{path}.consent");
    match (&consent.resources_claim, &consent.consent_id_claim) {
        (Some(claim), None) if !claim.is_empty() => {
            Ok(Some(ConsentClaim::Resources(claim.clone())))
        }
        (None, Some(claim)) if !claim.is_empty() => {
            Ok(Some(ConsentClaim::ConsentId(claim.clone())))
        }
        _ => Err(ConfigError::new(
            field,
            "give exactly one non-empty claim name: `resources_claim` or `consent_id_claim`",
        )),
    }
}

/// Longest `client_namespace`.
const MAX_NAMESPACE: usize = 255;

/// `issuers[].client_namespace`, or its default: the issuer without its `https://` (or
/// `http://`) scheme and trailing `/`, so `https://idp.bank.example/` → `idp.bank.example`
/// (readable in descriptors, distinct for issuers that differ in host or path).
fn client_namespace(path: &str, raw: &RawIssuer) -> Result<String, ConfigError> {
    let field = format!("{path}.client_namespace");
    let (namespace, explicit) = match &raw.client_namespace {
        Some(namespace) => (namespace.clone(), true),
        None => {
            let issuer = raw.issuer.as_str();
            let lower = issuer.to_ascii_lowercase();
            let rest = ["https://", "http://"]
                .iter()
                .find(|scheme| lower.starts_with(**scheme))
                .and_then(|scheme| issuer.get(scheme.len()..))
                .unwrap_or(issuer);
            (rest.trim_end_matches('/').to_owned(), false)
        }
    };
    let problem = if namespace.is_empty() {
        Some("must not be empty")
    } else if namespace.len() > MAX_NAMESPACE {
        Some("must be at most 255 bytes")
    } else if namespace.contains('@') {
        Some("must not contain `@` (it separates the client id from the namespace)")
    } else if !namespace.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        Some("must be printable ASCII without spaces")
    } else {
        None
    };
    match problem {
        None => Ok(namespace),
        Some(problem) if explicit => Err(ConfigError::new(field, problem)),
        Some(problem) => Err(ConfigError::new(
            field,
            format!(
                "the default derived from the issuer (`{namespace}`) {}; set `client_namespace`",
                problem.replacen("must", "does not fit: it must", 1)
            ),
        )),
    }
}

fn default_true() -> bool {
    true
}

/// Most entries either token cache may hold.
const MAX_CACHE_ENTRIES: usize = 1_000_000;

impl RawCache {
    /// Bounds of the verified-token and bad-signature caches (`path` is `cache`).
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.max_entries > MAX_CACHE_ENTRIES {
            return Err(ConfigError::new(
                format!("{path}.max_entries"),
                format!("must be at most {MAX_CACHE_ENTRIES}"),
            ));
        }
        if self.negative.max_entries > MAX_CACHE_ENTRIES {
            return Err(ConfigError::new(
                format!("{path}.negative.max_entries"),
                format!("must be at most {MAX_CACHE_ENTRIES}"),
            ));
        }
        if self.negative.ttl_s == 0 || self.negative.ttl_s > 86_400 {
            return Err(ConfigError::new(
                format!("{path}.negative.ttl_s"),
                "must be between 1 and 86400 (use max_entries: 0 to disable)",
            ));
        }
        Ok(())
    }
}
