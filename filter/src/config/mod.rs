//! Plugin configuration: parsed strictly, validated completely, compiled once.
//!
//! [`load`] is all-or-nothing: any problem yields a [`ConfigError`] naming the field, and the
//! adapter then refuses to start the plugin rather than run half-configured.

pub mod defaults;
mod error;
pub mod raw;

pub use error::ConfigError;
pub use raw::{ScopeFormat, UnmatchedPolicy};

use crate::assess::StaticAssessments;
use crate::assess::config::compile_model;
use crate::assess::model::{ClientIp, ModelStage};
use crate::authorise::consent::{ConsentClaim, ConsentService};
use crate::authorise::fapi::FapiPolicyConfig;
use crate::authorise::routes::RouteTable;
use crate::enforce::reply::is_quoted_string_safe;
use crate::enforce::upstream::HeaderPolicy;
use crate::identify::config::compile_issuer;
use crate::identify::host_crypto::HostVerifyFn;
use crate::identify::issuer::Issuer;
use crate::intel::config::ThreatIntelConfig;
use crate::ratelimit::config::RateLimitConfig;
use crate::respond::config::{ContainmentConfig, EventsConfig};
use raw::RawConfig;

/// The compiled configuration every request is decided against.
pub struct FilterConfig {
    pub realm: String,
    pub issuers: Vec<Issuer>,
    pub routes: RouteTable,
    pub unmatched: UnmatchedPolicy,
    /// What a method-override header does to a request (refused or stripped).
    pub method_override: crate::authorise::method_override::MethodOverridePolicy,
    pub headers: HeaderPolicy,
    pub max_token_bytes: usize,
    pub access_log: crate::telemetry::AccessLogFormat,
    pub cache_entries: usize,
    /// Bad signatures remembered per worker, and for how long.
    pub negative_cache_entries: usize,
    pub negative_cache_ttl_s: u64,
    /// The proxy's signature check, when the adapter found one (never set natively unless a
    /// test injects one).
    pub host_verify: Option<HostVerifyFn>,
    /// `None`: no rate-limit calls.
    pub ratelimit: Option<RateLimitConfig>,
    pub static_assessments: StaticAssessments,
    /// The behavioural model stage, when configured.
    pub model: Option<ModelStage>,
    /// Hard rules (PSD2 unattended access, payment velocity), when configured.
    pub rules: Option<crate::rules::RulesConfig>,
    /// Resolves consent ids (issuers with `consent.consent_id_claim`).
    pub consent_service: Option<ConsentService>,
    /// FAPI header checks and idempotency-key rules.
    pub fapi: FapiPolicyConfig,
    /// DPoP proofs remembered for replay detection (shared data).
    pub dpop_replay_entries: u32,
    /// Security events to a webhook.
    pub events: Option<EventsConfig>,
    /// Quarantines and revocations (playbooks, external list).
    pub containment: Option<ContainmentConfig>,
    /// Threat-intelligence feeds.
    pub threat_intel: Option<ThreatIntelConfig>,
}

/// Largest `max_token_bytes` accepted; Envoy's own default header limit is 60 KiB.
const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;

/// Parses and validates the plugin configuration bytes.
pub fn load(bytes: &[u8]) -> Result<FilterConfig, ConfigError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let raw: RawConfig = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        ConfigError::new(path, err.into_inner().to_string())
    })?;
    deserializer.end().map_err(|err| {
        ConfigError::new("", format!("trailing data after the JSON object: {err}"))
    })?;
    compile(raw)
}

fn compile(raw: RawConfig) -> Result<FilterConfig, ConfigError> {
    if !is_quoted_string_safe(&raw.realm) {
        return Err(ConfigError::new(
            "realm",
            "must be printable ASCII without `\"` or `\\`",
        ));
    }
    if raw.issuers.is_empty() {
        return Err(ConfigError::new(
            "issuers",
            "at least one issuer is required",
        ));
    }
    let mut issuers = Vec::with_capacity(raw.issuers.len());
    for (index, issuer) in raw.issuers.iter().enumerate() {
        let path = format!("issuers[{index}]");
        let compiled = compile_issuer(&path, issuer)?;
        if issuers
            .iter()
            .any(|other: &Issuer| other.issuer == compiled.issuer)
        {
            return Err(ConfigError::new(
                format!("{path}.issuer"),
                format!("duplicate issuer `{}`", compiled.issuer),
            ));
        }
        if let Some(other) = issuers
            .iter()
            .position(|other: &Issuer| other.client_namespace == compiled.client_namespace)
        {
            return Err(ConfigError::new(
                format!("{path}.client_namespace"),
                format!(
                    "`{}` is also issuers[{other}]'s client namespace; set a distinct `client_namespace`",
                    compiled.client_namespace
                ),
            ));
        }
        issuers.push(compiled);
    }
    if raw.max_token_bytes == 0 || raw.max_token_bytes > MAX_TOKEN_BYTES_LIMIT {
        return Err(ConfigError::new(
            "max_token_bytes",
            format!("must be between 1 and {MAX_TOKEN_BYTES_LIMIT}"),
        ));
    }
    raw.cache.validate("cache")?;
    let routes = RouteTable::compile("routes", &raw.routes)?;
    let headers = HeaderPolicy::compile("headers", &raw.headers)?;
    let ratelimit = match &raw.ratelimit {
        Some(section) => Some(RateLimitConfig::compile(
            "ratelimit",
            section,
            &routes.names().collect::<Vec<_>>(),
            &headers,
        )?),
        None => None,
    };
    let consent_service = match &raw.consent_service {
        Some(section) => Some(ConsentService::compile("consent_service", section)?),
        None => None,
    };
    check_consent_sources(&issuers, &routes, consent_service.is_some())?;
    if raw.cache.dpop_replay_entries == 0 {
        return Err(ConfigError::new(
            "cache.dpop_replay_entries",
            "must be at least 1",
        ));
    }
    if let Some(fapi) = &raw.fapi
        && fapi.idempotency_key_max_bytes == 0
    {
        return Err(ConfigError::new(
            "fapi.idempotency_key_max_bytes",
            "must be at least 1",
        ));
    }
    let rules = match &raw.rules {
        Some(section) => Some(crate::rules::RulesConfig::load("rules", section, &routes)?),
        None => None,
    };
    Ok(FilterConfig {
        realm: raw.realm,
        issuers,
        routes,
        unmatched: raw.unmatched,
        method_override: raw.method_override,
        headers,
        max_token_bytes: raw.max_token_bytes,
        access_log: raw.access_log.format,
        cache_entries: raw.cache.max_entries,
        negative_cache_entries: raw.cache.negative.max_entries,
        negative_cache_ttl_s: raw.cache.negative.ttl_s,
        host_verify: None,
        ratelimit,
        rules,
        model: match &raw.model {
            Some(model) => Some(compile_model("model", model)?),
            None => None,
        },
        static_assessments: StaticAssessments::compile(
            "static_assessments",
            &raw.static_assessments,
        )?,
        consent_service,
        fapi: FapiPolicyConfig::compile(raw.fapi.as_ref()),
        dpop_replay_entries: raw.cache.dpop_replay_entries,
        events: match &raw.events {
            Some(section) => Some(EventsConfig::compile("events", section)?),
            None => None,
        },
        containment: match &raw.containment {
            Some(section) => Some(ContainmentConfig::compile("containment", section)?),
            None => None,
        },
        threat_intel: match &raw.threat_intel {
            Some(section) => Some(ThreatIntelConfig::compile("threat_intel", section)?),
            None => None,
        },
    })
}

/// Consent-bound routes need every issuer to say where its tokens state the consent, and
/// consent ids need a consent service.
fn check_consent_sources(
    issuers: &[Issuer],
    routes: &RouteTable,
    has_service: bool,
) -> Result<(), ConfigError> {
    for (index, issuer) in issuers.iter().enumerate() {
        match &issuer.consent {
            None if routes.any_consent_bound() => {
                return Err(ConfigError::new(
                    format!("issuers[{index}].consent"),
                    "required: a route has `consent_params`; name the claim holding the consented resources or the consent id",
                ));
            }
            Some(ConsentClaim::ConsentId(_)) if !has_service => {
                return Err(ConfigError::new(
                    "consent_service",
                    format!("required: issuers[{index}].consent names a `consent_id_claim`"),
                ));
            }
            _ => {}
        }
    }
    if has_service
        && !issuers
            .iter()
            .any(|i| matches!(i.consent, Some(ConsentClaim::ConsentId(_))))
    {
        return Err(ConfigError::new(
            "consent_service",
            "no issuer names a `consent.consent_id_claim`, so it would never be asked",
        ));
    }
    Ok(())
}

impl FilterConfig {
    /// Whether any issuer delegates verification to `jwt_authn` (the adapter then reads its
    /// dynamic metadata; otherwise that host call is skipped).
    pub fn reads_jwt_authn_metadata(&self) -> bool {
        self.issuers
            .iter()
            .any(|i| i.jwt_authn_payload_key.is_some())
    }

    /// Whether cached consents or DPoP proofs may be kept in shared data.
    pub fn uses_shared_slots(&self) -> bool {
        self.consent_service.is_some()
            || self.containment.is_some()
            || self
                .issuers
                .iter()
                .any(|i| i.sender.dpop != crate::identify::config::BindingMode::Off)
            || self.routes.any_dpop_route()
    }

    /// Whether the model may need Envoy's `source.address` (the adapter then reads it;
    /// otherwise that host call is skipped).
    pub fn reads_source_address(&self) -> bool {
        self.model
            .as_ref()
            .is_some_and(|m| m.client_ip != ClientIp::None)
            || self
                .threat_intel
                .as_ref()
                .is_some_and(|t| t.client_ip != ClientIp::None)
    }
}
