//! The plugin configuration exactly as users write it (JSON in the wasm filter's
//! `configuration`). This is a public interface: every field is documented in README.md
//! ("Configuration reference"); change it deliberately.
//!
//! Unknown fields are rejected everywhere except inside the JWKS (`issuers[].jwks`), which is
//! a document the identity provider writes: providers add their own members (Entra ID adds
//! `issuer` to each key), so unknown JWKS and JWK members are ignored and a JWKS can be pasted
//! unchanged. Private-key members are still refused explicitly.

use std::collections::HashMap;

use serde::Deserialize;

use crate::assess::RawStaticAssessment;
use crate::ratelimit::config::RawRateLimit;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `realm` in `WWW-Authenticate` challenges.
    #[serde(default = "default_realm")]
    pub realm: String,
    pub issuers: Vec<RawIssuer>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// What happens to requests that match no route.
    #[serde(default)]
    pub unmatched: UnmatchedPolicy,
    /// Requests carrying `X-HTTP-Method-Override` (and its variants): refused or stripped.
    #[serde(default)]
    pub method_override: crate::authorise::method_override::MethodOverridePolicy,
    #[serde(default)]
    pub headers: RawHeaders,
    /// Longest bearer token accepted, in bytes.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    #[serde(default)]
    pub cache: RawCache,
    /// The behavioural model; absent: no scoring (verdicts come from `static_assessments`).
    #[serde(default)]
    pub model: Option<RawModel>,
    /// Calls to Envoy's rate-limit service (absent: none). Schema in
    /// `crate::ratelimit::config`.
    #[serde(default)]
    pub ratelimit: Option<RawRateLimit>,
    /// Hard rules scored next to the model (absent: none). Schema in `crate::rules::config`
    /// (read from the JSON value by hand there, to keep parser code out of the module).
    #[serde(default)]
    pub rules: Option<serde_json::Value>,
    /// Client id → pinned verdict and risk band (placeholder input until the model lands;
    /// see `crate::assess`).
    #[serde(default)]
    pub static_assessments: HashMap<String, RawStaticAssessment>,
}

fn default_realm() -> String {
    "obguard".to_owned()
}

fn default_max_token_bytes() -> usize {
    8192
}

#[derive(Debug, Deserialize)]
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
}

#[derive(Debug, Deserialize)]
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
#[serde(rename_all = "snake_case")]
pub enum ScopeFormat {
    /// `"scope": "accounts payments"` (RFC 8693 / RFC 9068).
    #[default]
    SpaceDelimited,
    /// `"scp": ["accounts", "payments"]`.
    Array,
}

#[derive(Debug, Deserialize)]
pub struct RawJwks {
    pub keys: Vec<RawJwk>,
}

/// One JWK (RFC 7517 §4, RFC 7518 §6). Private members are listed so they can be refused
/// with a precise message; other unknown members are ignored (see the module comment).
#[derive(Debug, Deserialize)]
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
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Unique name, used in logs, metrics and the route header.
    pub name: String,
    /// HTTP methods (upper case); empty or absent means any method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Path template: literal segments and whole-segment parameters, e.g.
    /// `/accounts/{AccountId}/transactions`.
    pub path: String,
    #[serde(default)]
    pub scopes: Option<RawScopeRule>,
    /// Public route: no token needed, none checked.
    #[serde(default)]
    pub anonymous: bool,
    /// Verdict thresholds for this route instead of the model's (payments stricter than
    /// balances): `{"challenge": 0.5, "throttle": 0.8, "block": 0.95}`.
    #[serde(default)]
    pub thresholds: Option<obguard_models::Thresholds>,
    /// Per path parameter: the characters and length its value may have. Parameters not
    /// listed accept RFC 3986 unreserved characters (`A-Za-z0-9-._~`), at most 256 bytes.
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, RawParam>,
}

/// `routes[].params.<Name>`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParam {
    /// Allowed characters, listed, with `A-Z`-style ranges between two letters or two
    /// digits; default `A-Za-z0-9-._~`.
    #[serde(default)]
    pub charset: Option<String>,
    /// Longest value in bytes; default 256.
    #[serde(default)]
    pub max_length: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScopeRule {
    /// Every one of these scopes is required.
    #[serde(default)]
    pub all_of: Vec<String>,
    /// At least one of these scopes is required.
    #[serde(default)]
    pub any_of: Vec<String>,
}

/// Policy for requests matching no configured route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmatchedPolicy {
    /// 403: anything not explicitly routed is refused.
    #[default]
    Deny,
    /// A valid token is required, no scope.
    Authenticate,
    /// Passed through without checks (identity headers are still stripped).
    Allow,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaders {
    /// Header carrying the verified client id to the upstream (`null` disables).
    #[serde(default = "default_client_id_header")]
    pub client_id: Option<String>,
    #[serde(default = "default_subject_header")]
    pub subject: Option<String>,
    /// Space-separated granted scopes.
    #[serde(default = "default_scopes_header")]
    pub scopes: Option<String>,
    /// Matched route name.
    #[serde(default = "default_route_header")]
    pub route: Option<String>,
    /// The verified client's issuer namespace (`issuers[].client_namespace`).
    #[serde(default = "default_client_namespace_header")]
    pub client_namespace: Option<String>,
    /// The request's verdict (`allow`, `throttle`, ...), for Envoy's own rate-limit filter.
    #[serde(default = "default_verdict_header")]
    pub verdict: Option<String>,
    /// The request's risk band (`low`, `medium`, `high`).
    #[serde(default = "default_risk_band_header")]
    pub risk_band: Option<String>,
    /// Further claims copied to headers.
    #[serde(default)]
    pub claims: Vec<RawClaimHeader>,
    /// Extra request headers removed before the upstream sees the request.
    #[serde(default)]
    pub strip: Vec<String>,
    /// Whether the upstream receives the `Authorization` header.
    #[serde(default = "default_true")]
    pub forward_authorization: bool,
}

impl Default for RawHeaders {
    fn default() -> Self {
        Self {
            client_id: default_client_id_header(),
            subject: default_subject_header(),
            scopes: default_scopes_header(),
            route: default_route_header(),
            client_namespace: default_client_namespace_header(),
            verdict: default_verdict_header(),
            risk_band: default_risk_band_header(),
            claims: Vec::new(),
            strip: Vec::new(),
            forward_authorization: true,
        }
    }
}

fn default_client_id_header() -> Option<String> {
    Some("x-obguard-client-id".to_owned())
}
fn default_subject_header() -> Option<String> {
    Some("x-obguard-subject".to_owned())
}
fn default_scopes_header() -> Option<String> {
    Some("x-obguard-scopes".to_owned())
}
fn default_route_header() -> Option<String> {
    Some("x-obguard-route".to_owned())
}
fn default_client_namespace_header() -> Option<String> {
    Some("x-obguard-client-namespace".to_owned())
}
fn default_verdict_header() -> Option<String> {
    Some("x-obguard-verdict".to_owned())
}
fn default_risk_band_header() -> Option<String> {
    Some("x-obguard-risk-band".to_owned())
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClaimHeader {
    pub claim: String,
    pub header: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// Verified tokens kept per Envoy worker; 0 disables the cache.
    #[serde(default = "default_cache_entries")]
    pub max_entries: usize,
    /// Tokens whose signature did not verify, refused again without a check.
    #[serde(default)]
    pub negative: RawNegativeCache,
}

impl Default for RawCache {
    fn default() -> Self {
        Self {
            max_entries: default_cache_entries(),
            negative: RawNegativeCache::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// The model file (`obguard-models train` output), base64. One of `inline_base64`, `http`.
    #[serde(default)]
    pub inline_base64: Option<String>,
    /// Poll the model file over an Envoy cluster (swapped in when a new file passes).
    #[serde(default)]
    pub http: Option<RawModelHttp>,
    /// Hex SHA-256 digest: only that exact file is accepted (pin for rollbacks).
    #[serde(default)]
    pub sha256: Option<String>,
    /// ed25519 public keys (base64 of the 32 raw bytes) allowed to sign model files; several
    /// for rotation. Required unless `allow_unsigned`.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Development only: accept unsigned model files.
    #[serde(default)]
    pub allow_unsigned: bool,
    /// Before the first file of an HTTP source is accepted: `allow` (unscored) or `refuse`.
    #[serde(default)]
    pub when_unavailable: RawWhenUnavailable,
    /// `Retry-After` of the `refuse` answer.
    #[serde(default = "default_unavailable_retry_after_s")]
    pub unavailable_retry_after_s: u64,
    /// A second model scored and logged next to the primary, never enforced.
    #[serde(default)]
    pub shadow_model: Option<RawModelSource>,
    /// `enforce` acts on verdicts; `shadow` scores and logs them but allows.
    #[serde(default)]
    pub mode: ModelMode,
    /// Time zone of the hour-of-day features, as minutes east of UTC.
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// Request header carrying the caller's ISO country, set by the edge.
    #[serde(default = "default_country_header")]
    pub country_header: Option<String>,
    /// Request header carrying the caller's autonomous system number, set by the edge.
    #[serde(default = "default_asn_header")]
    pub asn_header: Option<String>,
    /// Where the caller's IP comes from: Envoy's connection (default), a header with trusted
    /// hops, or nowhere.
    #[serde(default)]
    pub client_ip: Option<RawClientIp>,
    /// Replaced by `client_ip` (it took the leftmost `x-forwarded-for` entry, which the
    /// client writes). Only `null` is still accepted (no IP, as before).
    #[serde(default, deserialize_with = "present")]
    pub ip_header: Option<Option<String>>,
    /// Baseline slots (bounded memory: about 320 bytes per occupied slot in Envoy, shared by
    /// all workers); each client id has two candidate slots.
    #[serde(default = "default_max_clients")]
    pub max_clients: u32,
    /// A slot held by another client is reclaimed after this much inactivity.
    #[serde(default = "default_client_ttl_s")]
    pub client_ttl_s: u64,
    #[serde(default)]
    pub challenge: RawChallenge,
    /// `Retry-After` of a `throttle` verdict answered without a rate-limit service.
    #[serde(default = "default_throttle_retry_after_s")]
    pub throttle_retry_after_s: u64,
}

/// `model.client_ip`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientIp {
    #[serde(default)]
    pub source: ClientIpSource,
    /// With `source: header`: the header (default `x-forwarded-for`).
    #[serde(default)]
    pub header: Option<String>,
    /// With `source: header`, required: Envoy's `xff_num_trusted_hops` semantics.
    #[serde(default)]
    pub xff_num_trusted_hops: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientIpSource {
    /// Envoy's `source.address` (the connection's peer, or the address Envoy itself derived
    /// from trusted `x-forwarded-for` hops).
    #[default]
    Connection,
    /// A header, read from the right past trusted hops.
    Header,
    /// No IP: the network features see none.
    None,
}

/// `Some(value)` for a field that is present, even as `null` (absent stays `None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Where a shadow model comes from (same rules and trusted keys as the primary).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModelSource {
    #[serde(default)]
    pub inline_base64: Option<String>,
    #[serde(default)]
    pub http: Option<RawModelHttp>,
    #[serde(default)]
    pub sha256: Option<String>,
}

/// A model file polled over an Envoy cluster with `If-None-Match`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModelHttp {
    pub cluster: String,
    pub path: String,
    /// `:authority` of the request; default: the cluster name.
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_model_poll_s")]
    pub poll_s: u64,
    #[serde(default = "default_model_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_model_max_bytes")]
    pub max_bytes: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawWhenUnavailable {
    #[default]
    Allow,
    Refuse,
}

fn default_unavailable_retry_after_s() -> u64 {
    5
}
fn default_model_poll_s() -> u64 {
    30
}
fn default_model_timeout_ms() -> u64 {
    5000
}
fn default_model_max_bytes() -> usize {
    1 << 20
}

/// RFC 9470 step-up parameters of a `challenge` verdict.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChallenge {
    #[serde(default = "default_acr_values")]
    pub acr_values: String,
    #[serde(default)]
    pub max_age_s: Option<u64>,
}

impl Default for RawChallenge {
    fn default() -> Self {
        Self {
            acr_values: default_acr_values(),
            max_age_s: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelMode {
    #[default]
    Enforce,
    Shadow,
}

fn default_country_header() -> Option<String> {
    Some("x-client-geo-country".to_owned())
}
fn default_asn_header() -> Option<String> {
    Some("x-client-asn".to_owned())
}
fn default_max_clients() -> u32 {
    100_000
}
fn default_client_ttl_s() -> u64 {
    30 * 86_400
}
fn default_throttle_retry_after_s() -> u64 {
    60
}
fn default_acr_values() -> String {
    "urn:openbanking:psd2:sca".to_owned()
}
