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
