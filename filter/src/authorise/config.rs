//! Stage 2's configuration: `routes[]` and `unmatched`, as users write them (public
//! schema, documented in README.md). Compiled by [`super::routes::RouteTable::compile`].

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// balances): `{"step_up": 0.5, "throttle": 0.8, "block": 0.95}`
    /// (`challenge` is accepted for `step_up`).
    #[serde(default)]
    pub thresholds: Option<obguard_models::Thresholds>,
    /// Per path parameter: the characters and length its value may have. Parameters not
    /// listed accept RFC 3986 unreserved characters (`A-Za-z0-9-._~`), at most 256 bytes.
    #[serde(default)]
    pub params: std::collections::BTreeMap<String, RawParam>,
    /// Path parameters whose values must be among the resources the token's consent covers
    /// (e.g. `["AccountId"]`): the inline object-level check against BOLA. Every issuer then
    /// needs a `consent` section saying where its tokens state the consent.
    #[serde(default)]
    pub consent_params: Vec<String>,
    /// Require `x-idempotency-key` (payment initiation): absent, too long or with other
    /// characters than printable ASCII without spaces, the request is refused with 400.
    #[serde(default)]
    pub idempotency_key: bool,
    /// Sender-constraint modes for this route, replacing the issuer's per mechanism.
    #[serde(default)]
    pub sender_constraint: Option<crate::identify::config::RawRouteSenderConstraint>,
}

/// `routes[].params.<Name>`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// `consent_service`: resolves a token's consent id (e.g. `openbanking_intent_id`) to the
/// resources it covers, for issuers whose `consent` names a `consent_id_claim`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawConsentService {
    /// Envoy cluster serving the consents.
    pub cluster: String,
    /// Request path with `{consent_id}` where the (percent-encoded) consent id goes, e.g.
    /// `/consents/{consent_id}`.
    pub path: String,
    /// `:authority` of the request (default: the cluster name).
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_consent_timeout_ms")]
    pub timeout_ms: u64,
    /// How long an answer is used without asking again.
    #[serde(default = "default_consent_ttl_s")]
    pub ttl_s: u64,
    /// How long a `404` (no such consent) is remembered.
    #[serde(default = "default_consent_not_found_ttl_s")]
    pub not_found_ttl_s: u64,
    /// Beyond `ttl_s`, how long an answer is still used while the service fails
    /// (stale-if-error).
    #[serde(default = "default_consent_stale_if_error_s")]
    pub stale_if_error_s: u64,
    /// Consents cached in shared data (every worker); a bound, not a reservation.
    #[serde(default = "default_consent_max_entries")]
    pub max_entries: u32,
    /// Largest answer read.
    #[serde(default = "default_consent_max_bytes")]
    pub max_bytes: usize,
    /// Most resources one consent may list.
    #[serde(default = "default_consent_max_resources")]
    pub max_resources: usize,
    /// JSON pointer (RFC 6901) to the array of consented resource ids in the answer.
    #[serde(default = "default_resources_pointer")]
    pub resources_pointer: String,
    /// JSON pointer to the consent's status; absent: every consent found is active.
    #[serde(default)]
    pub status_pointer: Option<String>,
    /// Statuses that let the consent be used (with `status_pointer`).
    #[serde(default = "default_active_statuses")]
    pub active_statuses: Vec<String>,
    /// The answer when the consent cannot be resolved (service failing and no answer within
    /// `stale_if_error_s`): `unavailable` (503 with `Retry-After`) or `deny` (403).
    #[serde(default)]
    pub when_unavailable: ConsentUnavailablePolicy,
    /// `Retry-After` of the 503.
    #[serde(default = "default_consent_retry_after_s")]
    pub retry_after_s: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConsentUnavailablePolicy {
    #[default]
    Unavailable,
    Deny,
}

fn default_consent_timeout_ms() -> u64 {
    1000
}
fn default_consent_ttl_s() -> u64 {
    60
}
fn default_consent_not_found_ttl_s() -> u64 {
    10
}
fn default_consent_stale_if_error_s() -> u64 {
    300
}
fn default_consent_max_entries() -> u32 {
    10_000
}
fn default_consent_max_bytes() -> usize {
    64 * 1024
}
fn default_consent_max_resources() -> usize {
    1000
}
fn default_resources_pointer() -> String {
    "/resources".to_owned()
}
fn default_active_statuses() -> Vec<String> {
    vec!["Authorised".to_owned()]
}
fn default_consent_retry_after_s() -> u64 {
    5
}

/// `fapi`: the FAPI / UK Open Banking request headers.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawFapi {
    /// `x-fapi-auth-date` (HTTP-date), `x-fapi-customer-ip-address` (an IP address) and
    /// `x-fapi-interaction-id` (a UUID) are checked when present: `refuse` answers 400,
    /// `log` forwards the request with the reason in the log and a metric.
    #[serde(default)]
    pub on_invalid: FapiPolicy,
    /// Longest `x-idempotency-key` accepted (UK OBIE: 40).
    #[serde(default = "default_idempotency_key_max_bytes")]
    pub idempotency_key_max_bytes: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FapiPolicy {
    #[default]
    Refuse,
    Log,
}

fn default_idempotency_key_max_bytes() -> usize {
    40
}
