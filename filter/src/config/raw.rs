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

// Each stage owns its section's types (`<stage>/config.rs`); they are re-exported here so
// `config::raw` stays the one path to the whole public schema.
pub use crate::assess::config::{
    ClientIpSource, ModelMode, RawClientIp, RawModel, RawModelHttp, RawModelSource,
    RawStaticAssessment, RawStepUp, RawWhenUnavailable,
};
pub use crate::authorise::config::{
    ConsentUnavailablePolicy, FapiPolicy, RawConsentService, RawFapi, RawParam, RawRoute,
    RawScopeRule, UnmatchedPolicy,
};
pub use crate::enforce::config::{RawClaimHeader, RawHeaders};
pub use crate::identify::config::{
    BindingMode, RawCache, RawIssuer, RawIssuerConsent, RawJwk, RawJwks, RawJwtAuthn,
    RawNegativeCache, RawRemoteJwks, RawRouteSenderConstraint, RawScopeClaim, RawSenderConstraint,
    RawUnavailable, ScopeFormat,
};
pub use crate::intel::config::{FeedAction, RawFeed, RawFeedFormat, RawFeedKind, RawThreatIntel};
pub use crate::polled::RawPolledSource;
pub use crate::ratelimit::config::RawRateLimit;
pub use crate::respond::config::{
    PlaybookAction, RawContainment, RawEvents, RawPlaybook, RawTrigger,
};

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// How access-log fields are written (one property each, or one JSON object).
    #[serde(default)]
    pub access_log: crate::telemetry::RawAccessLog,
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
    /// Client id → pinned verdict and risk band, which replace the model's for that client
    /// (see `crate::assess`).
    #[serde(default)]
    pub static_assessments: HashMap<String, RawStaticAssessment>,
    /// Resolves consent ids to the resources they cover (issuers with
    /// `consent.consent_id_claim`). Schema in `crate::authorise::config`.
    #[serde(default)]
    pub consent_service: Option<RawConsentService>,
    /// FAPI request headers checked when present (absent: not checked).
    #[serde(default)]
    pub fapi: Option<RawFapi>,
    /// Security events (CloudEvents) to a webhook (absent: none). Schema in
    /// `crate::respond::config`.
    #[serde(default)]
    pub events: Option<RawEvents>,
    /// Quarantines and token revocations: playbooks and an external list (absent: none).
    #[serde(default)]
    pub containment: Option<RawContainment>,
    /// Threat-intelligence deny and watch feeds (absent: none). Schema in
    /// `crate::intel::config`.
    #[serde(default)]
    pub threat_intel: Option<RawThreatIntel>,
}

fn default_realm() -> String {
    "obguard".to_owned()
}

fn default_max_token_bytes() -> usize {
    8192
}
