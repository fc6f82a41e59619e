//! The `ratelimit` section of the plugin configuration: as written (`Raw*`, part of the public
//! schema documented in README.md and docs/ratelimit.md) and compiled.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use obguard_rls_proto::envoy::config::core::v3::{GrpcService, grpc_service};
use prost::Message;
use serde::Deserialize;

use crate::assess::RiskBand;
use crate::config::ConfigError;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Envoy cluster of the rate-limit service (HTTP/2).
    pub cluster: String,
    /// `domain` of every `ShouldRateLimit` request.
    pub domain: String,
    /// Descriptors sent with each call; each one a list of entries.
    pub descriptors: Vec<RawDescriptor>,
    /// Request header carrying the caller's country, for `from: country` entries.
    #[serde(default)]
    pub country_header: Option<String>,
    /// `hits_addend` per risk band.
    #[serde(default)]
    pub hits: RawHits,
    #[serde(default)]
    pub call: CallPolicy,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub failure_mode: FailureMode,
    #[serde(default = "default_failure_status")]
    pub failure_status: u16,
    /// A `throttle` verdict on a request no call will be made for (`call: never`, or no
    /// descriptor can be built): answered here, never forwarded.
    #[serde(default)]
    pub throttle_without_call: ThrottleWithoutCall,
    /// Further header names the service may not set (request or response), beside the
    /// built-in reserved list.
    #[serde(default)]
    pub reserved_headers: Vec<String>,
    /// Per-route overrides of `call`, `timeout_ms`, `failure_mode`, `failure_status`,
    /// `throttle_without_call`.
    #[serde(default)]
    pub routes: BTreeMap<String, RawRoutePolicy>,
}

fn default_timeout_ms() -> u64 {
    20
}

fn default_failure_status() -> u16 {
    503
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawDescriptor {
    pub entries: Vec<RawEntry>,
}

/// One descriptor entry: `key` plus either `from` (a request fact) or a fixed `value`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawEntry {
    pub key: String,
    #[serde(default)]
    pub from: Option<Source>,
    #[serde(default)]
    pub value: Option<String>,
}

/// Where a descriptor entry's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The verified client id qualified by its issuer: `<client id>@<namespace>`.
    ClientId,
    /// The verified client id alone, as the token states it (the format before client
    /// namespaces; ambiguous with several issuers).
    BareClientId,
    /// The client's issuer namespace (`issuers[].client_namespace`).
    ClientNamespace,
    /// The token's `sub`.
    Subject,
    /// The matched route's name.
    Route,
    /// The verdict (`allow`, `step_up`, `throttle`, `block`).
    Verdict,
    /// The risk band (`low`, `medium`, `high`).
    RiskBand,
    /// The value of `country_header`.
    Country,
    /// The request's `x-idempotency-key` (printable ASCII, at most
    /// `fapi.idempotency_key_max_bytes`): one payment retried under one key counts once per
    /// key.
    IdempotencyKey,
    /// The token's consent id (`issuers[].consent.consent_id_claim`): a limit per consent.
    ConsentId,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHits {
    #[serde(default = "one")]
    pub low: u32,
    #[serde(default = "one")]
    pub medium: u32,
    #[serde(default = "one")]
    pub high: u32,
}

fn one() -> u32 {
    1
}

impl Default for RawHits {
    fn default() -> Self {
        Self {
            low: 1,
            medium: 1,
            high: 1,
        }
    }
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawRoutePolicy {
    #[serde(default)]
    pub call: Option<CallPolicy>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub failure_mode: Option<FailureMode>,
    #[serde(default)]
    pub failure_status: Option<u16>,
    #[serde(default)]
    pub throttle_without_call: Option<ThrottleWithoutCall>,
}

/// When a request is checked with the rate-limit service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallPolicy {
    /// Every forwarded request.
    #[default]
    Always,
    /// Only authenticated requests whose verdict is not `allow`.
    NonAllow,
    Never,
}

/// What a `throttle` verdict becomes when the rate-limit service will not be asked about the
/// request. Forwarding is not an option: the verdict would be lost silently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ThrottleWithoutCall {
    /// 429 `rate_limited` with `Retry-After` (`model.throttle_retry_after_s`), as without a
    /// rate-limit service.
    #[default]
    Reply,
    /// 403 `access_denied`, as a `block` verdict.
    Block,
}

/// What a failed check (timeout, UNAVAILABLE, malformed reply, other error) becomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Forward the request (and count it).
    #[default]
    FailOpen,
    /// Refuse it with `failure_status`.
    FailClosed,
}

/// The compiled policy of one route (or the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutePolicy {
    pub call: CallPolicy,
    pub timeout: Duration,
    pub failure: FailureMode,
    /// 429 or 503, used when `failure` is `FailClosed`.
    pub failure_status: u16,
    pub throttle_without_call: ThrottleWithoutCall,
}

/// One descriptor entry, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryValue {
    From(Source),
    Fixed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: EntryValue,
}

#[derive(Debug)]
pub struct RateLimitConfig {
    pub cluster: String,
    /// `envoy.config.core.v3.GrpcService{envoy_grpc{cluster_name}}`, serialised once: what
    /// `proxy_grpc_call` receives as its upstream. ASCII, because the cluster name is short
    /// printable ASCII (so every length prefix is a single byte below 0x80).
    pub grpc_service: String,
    pub domain: String,
    pub descriptors: Vec<Vec<Entry>>,
    pub country_header: Option<String>,
    pub hits_low: u32,
    pub hits_medium: u32,
    pub hits_high: u32,
    pub defaults: RoutePolicy,
    pub routes: HashMap<String, RoutePolicy>,
    /// Headers the service's answers may not set.
    pub reserved: super::reply::Reserved,
}

impl RateLimitConfig {
    /// The policy of `route` (the defaults for unrouted requests and routes without override).
    pub fn policy(&self, route: Option<&str>) -> RoutePolicy {
        route
            .and_then(|name| self.routes.get(name))
            .copied()
            .unwrap_or(self.defaults)
    }

    /// `hits_addend` for a request of this risk band (`low` when unassessed).
    pub fn hits(&self, risk_band: Option<RiskBand>) -> u32 {
        match risk_band {
            None | Some(RiskBand::Low) => self.hits_low,
            Some(RiskBand::Medium) => self.hits_medium,
            Some(RiskBand::High) => self.hits_high,
        }
    }
}

const MAX_TIMEOUT_MS: u64 = 10_000;
const MAX_HITS: u32 = 1_000;
/// Keeps the serialised `GrpcService` ASCII (every protobuf length prefix below 0x80).
const MAX_CLUSTER_NAME: usize = 100;

fn timeout(path: String, ms: u64) -> Result<Duration, ConfigError> {
    if ms == 0 || ms > MAX_TIMEOUT_MS {
        return Err(ConfigError::new(
            path,
            format!("must be between 1 and {MAX_TIMEOUT_MS} (milliseconds)"),
        ));
    }
    Ok(Duration::from_millis(ms))
}

fn failure_status(path: String, status: u16) -> Result<u16, ConfigError> {
    if status == 429 || status == 503 {
        Ok(status)
    } else {
        Err(ConfigError::new(path, "must be 429 or 503"))
    }
}

fn non_blank(path: String, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::new(path, "must not be empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(ConfigError::new(
            path,
            "must not contain control characters",
        ));
    }
    Ok(())
}

impl RateLimitConfig {
    /// `route_names` are the configured routes, so overrides for unknown routes are refused.
    pub fn compile(
        path: &str,
        raw: &RawRateLimit,
        route_names: &[&str],
        headers: &crate::enforce::upstream::HeaderPolicy,
    ) -> Result<Self, ConfigError> {
        non_blank(format!("{path}.cluster"), &raw.cluster)?;
        if raw.cluster.len() > MAX_CLUSTER_NAME
            || !raw.cluster.bytes().all(|b| (0x21..0x7f).contains(&b))
        {
            return Err(ConfigError::new(
                format!("{path}.cluster"),
                format!("must be printable ASCII without spaces, at most {MAX_CLUSTER_NAME} bytes"),
            ));
        }
        non_blank(format!("{path}.domain"), &raw.domain)?;
        if raw.descriptors.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.descriptors"),
                "at least one descriptor is required",
            ));
        }
        let mut descriptors = Vec::with_capacity(raw.descriptors.len());
        let mut uses_country = None;
        for (d, descriptor) in raw.descriptors.iter().enumerate() {
            let dpath = format!("{path}.descriptors[{d}].entries");
            if descriptor.entries.is_empty() {
                return Err(ConfigError::new(dpath, "at least one entry is required"));
            }
            let mut entries = Vec::with_capacity(descriptor.entries.len());
            for (e, entry) in descriptor.entries.iter().enumerate() {
                let epath = format!("{dpath}[{e}]");
                non_blank(format!("{epath}.key"), &entry.key)?;
                let value = match (&entry.from, &entry.value) {
                    (Some(source), None) => {
                        if *source == Source::Country && uses_country.is_none() {
                            uses_country = Some(format!("{epath}.from"));
                        }
                        EntryValue::From(*source)
                    }
                    (None, Some(value)) => {
                        non_blank(format!("{epath}.value"), value)?;
                        EntryValue::Fixed(value.clone())
                    }
                    _ => {
                        return Err(ConfigError::new(
                            epath,
                            "set exactly one of `from` or `value`",
                        ));
                    }
                };
                entries.push(Entry {
                    key: entry.key.clone(),
                    value,
                });
            }
            descriptors.push(entries);
        }
        if let Some(name) = &raw.country_header {
            let valid = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
                });
            if !valid {
                return Err(ConfigError::new(
                    format!("{path}.country_header"),
                    "must be a lower-case HTTP header name",
                ));
            }
        } else if let Some(field) = uses_country {
            return Err(ConfigError::new(
                field,
                "`country` needs `ratelimit.country_header`",
            ));
        }
        for (band, hits) in [
            ("low", raw.hits.low),
            ("medium", raw.hits.medium),
            ("high", raw.hits.high),
        ] {
            if hits == 0 || hits > MAX_HITS {
                return Err(ConfigError::new(
                    format!("{path}.hits.{band}"),
                    format!("must be between 1 and {MAX_HITS}"),
                ));
            }
        }
        let defaults = RoutePolicy {
            call: raw.call,
            timeout: timeout(format!("{path}.timeout_ms"), raw.timeout_ms)?,
            failure: raw.failure_mode,
            failure_status: failure_status(format!("{path}.failure_status"), raw.failure_status)?,
            throttle_without_call: raw.throttle_without_call,
        };
        let mut routes = HashMap::with_capacity(raw.routes.len());
        for (name, over) in &raw.routes {
            let rpath = format!("{path}.routes.{name}");
            if !route_names.contains(&name.as_str()) {
                return Err(ConfigError::new(rpath, "no route has this name"));
            }
            let policy = RoutePolicy {
                call: over.call.unwrap_or(defaults.call),
                timeout: match over.timeout_ms {
                    Some(ms) => timeout(format!("{rpath}.timeout_ms"), ms)?,
                    None => defaults.timeout,
                },
                failure: over.failure_mode.unwrap_or(defaults.failure),
                failure_status: match over.failure_status {
                    Some(status) => failure_status(format!("{rpath}.failure_status"), status)?,
                    None => defaults.failure_status,
                },
                throttle_without_call: over
                    .throttle_without_call
                    .unwrap_or(defaults.throttle_without_call),
            };
            routes.insert(name.clone(), policy);
        }
        let grpc_service = GrpcService {
            target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(
                grpc_service::EnvoyGrpc {
                    cluster_name: raw.cluster.clone(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
        .encode_to_vec();
        let grpc_service = String::from_utf8(grpc_service).map_err(|_| {
            ConfigError::new(
                format!("{path}.cluster"),
                "cannot be encoded as a GrpcService",
            )
        })?;
        Ok(Self {
            cluster: raw.cluster.clone(),
            grpc_service,
            domain: raw.domain.clone(),
            descriptors,
            country_header: raw.country_header.clone(),
            hits_low: raw.hits.low,
            hits_medium: raw.hits.medium,
            hits_high: raw.hits.high,
            defaults,
            routes,
            reserved: super::reply::Reserved::compile(
                &format!("{path}.reserved_headers"),
                headers,
                &raw.reserved_headers,
            )?,
        })
    }
}
