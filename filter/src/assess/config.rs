//! The `model` section as users write it (public schema, documented in README.md), and its
//! compilation into the [`ModelStage`].

use std::sync::Arc;

use serde::Deserialize;

use super::model::{ClientIp, ModelStage, WhenUnavailable};
use super::model_source::{self, HttpSource, ModelSource, Trust};
use super::{RiskBand, Verdict};
use crate::config::ConfigError;
use crate::enforce::reply::is_quoted_string_safe;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// `challenge` in earlier releases, still accepted.
    #[serde(alias = "challenge")]
    pub step_up: RawStepUp,
    /// `Retry-After` of a `throttle` verdict answered without a rate-limit service.
    #[serde(default = "default_throttle_retry_after_s")]
    pub throttle_retry_after_s: u64,
}

/// `model.client_ip`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// RFC 9470 parameters of a `step_up` verdict's reply.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawStepUp {
    #[serde(default = "default_acr_values")]
    pub acr_values: String,
    #[serde(default)]
    pub max_age_s: Option<u64>,
}

impl Default for RawStepUp {
    fn default() -> Self {
        Self {
            acr_values: default_acr_values(),
            max_age_s: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

pub fn compile_model(path: &str, raw: &RawModel) -> Result<ModelStage, ConfigError> {
    let mut keys = Vec::with_capacity(raw.trusted_keys.len());
    for (i, key) in raw.trusted_keys.iter().enumerate() {
        let key = obguard_models::PublicKey::from_base64(key).map_err(|err| {
            ConfigError::new(format!("{path}.trusted_keys[{i}]"), err.to_string())
        })?;
        keys.push(key);
    }
    if keys.is_empty() && !raw.allow_unsigned {
        return Err(ConfigError::new(
            format!("{path}.trusted_keys"),
            "required: the ed25519 public keys that sign model files (or allow_unsigned: true, \
             for development only)",
        ));
    }
    let trust = Trust {
        keys,
        allow_unsigned: raw.allow_unsigned,
    };
    let primary = compile_model_source(
        path,
        raw.inline_base64.as_deref(),
        raw.http.as_ref(),
        raw.sha256.as_deref(),
        &trust,
    )?;
    let shadow_model = match &raw.shadow_model {
        Some(source) => Some(compile_model_source(
            &format!("{path}.shadow_model"),
            source.inline_base64.as_deref(),
            source.http.as_ref(),
            source.sha256.as_deref(),
            &trust,
        )?),
        None => None,
    };
    let when_unavailable = match raw.when_unavailable {
        RawWhenUnavailable::Allow => WhenUnavailable::Allow,
        RawWhenUnavailable::Refuse => WhenUnavailable::Refuse {
            retry_after_s: raw.unavailable_retry_after_s,
        },
    };
    if raw.max_clients == 0 || raw.max_clients > 10_000_000 {
        return Err(ConfigError::new(
            format!("{path}.max_clients"),
            "must be between 1 and 10000000",
        ));
    }
    if !(-14 * 60..=14 * 60).contains(&raw.utc_offset_minutes) {
        return Err(ConfigError::new(
            format!("{path}.utc_offset_minutes"),
            "must be within ±840",
        ));
    }
    if raw.step_up.acr_values.is_empty() || !is_quoted_string_safe(&raw.step_up.acr_values) {
        return Err(ConfigError::new(
            format!("{path}.step_up.acr_values"),
            "must be non-empty printable ASCII without `\"` or `\\`",
        ));
    }
    let client_ip = compile_client_ip(path, raw)?;
    for (field, name) in [
        ("country_header", &raw.country_header),
        ("asn_header", &raw.asn_header),
    ] {
        if let Some(name) = name
            && (name.is_empty()
                || name
                    .bytes()
                    .any(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')))
        {
            return Err(ConfigError::new(
                format!("{path}.{field}"),
                "must be a lower-case header name",
            ));
        }
    }
    Ok(ModelStage {
        primary,
        shadow_model,
        trust,
        when_unavailable,
        extract: obguard_models::ExtractConfig {
            utc_offset_minutes: raw.utc_offset_minutes,
        },
        shadow: raw.mode == ModelMode::Shadow,
        max_clients: raw.max_clients,
        client_ttl_s: raw.client_ttl_s,
        country_header: raw.country_header.clone(),
        asn_header: raw.asn_header.clone(),
        client_ip,
        step_up_acr_values: raw.step_up.acr_values.clone(),
        step_up_max_age_s: raw.step_up.max_age_s,
        throttle_retry_after_s: raw.throttle_retry_after_s,
    })
}

/// Most trusted hops accepted in `client_ip.xff_num_trusted_hops`.
const MAX_TRUSTED_HOPS: u32 = 16;

/// `model.client_ip` (and the retired `model.ip_header`).
fn compile_client_ip(path: &str, raw: &RawModel) -> Result<ClientIp, ConfigError> {
    match (&raw.ip_header, &raw.client_ip) {
        (Some(Some(_)), _) => {
            return Err(ConfigError::new(
                format!("{path}.ip_header"),
                "replaced by `client_ip`: the first x-forwarded-for entry is written by the client.                  Use `\"client_ip\": {\"source\": \"connection\"}` (Envoy's view of the client, the default) or                  `{\"source\": \"header\", \"header\": \"x-forwarded-for\", \"xff_num_trusted_hops\": N}`",
            ));
        }
        (Some(None), Some(_)) => {
            return Err(ConfigError::new(
                format!("{path}.ip_header"),
                "set `client_ip` only (`ip_header: null` is the old spelling of `{\"source\": \"none\"}`)",
            ));
        }
        (Some(None), None) => return Ok(ClientIp::None),
        (None, None) => return Ok(ClientIp::Connection),
        (None, Some(_)) => {}
    }
    let Some(client_ip) = &raw.client_ip else {
        return Ok(ClientIp::Connection);
    };
    compile_raw_client_ip(path, client_ip)
}

/// A `client_ip` section (`<path>.client_ip`): the model's, and the threat-intelligence
/// feeds'.
pub fn compile_raw_client_ip(path: &str, client_ip: &RawClientIp) -> Result<ClientIp, ConfigError> {
    let field = |name: &str| format!("{path}.client_ip.{name}");
    let only_for_header =
        |name: &str| ConfigError::new(field(name), "only with `\"source\": \"header\"`");
    match client_ip.source {
        ClientIpSource::Connection | ClientIpSource::None => {
            if client_ip.header.is_some() {
                return Err(only_for_header("header"));
            }
            if client_ip.xff_num_trusted_hops.is_some() {
                return Err(only_for_header("xff_num_trusted_hops"));
            }
            Ok(if client_ip.source == ClientIpSource::None {
                ClientIp::None
            } else {
                ClientIp::Connection
            })
        }
        ClientIpSource::Header => {
            let name = client_ip
                .header
                .clone()
                .unwrap_or_else(|| "x-forwarded-for".to_owned());
            if name.is_empty()
                || name
                    .bytes()
                    .any(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
            {
                return Err(ConfigError::new(
                    field("header"),
                    "must be a lower-case header name",
                ));
            }
            let Some(trusted_hops) = client_ip.xff_num_trusted_hops else {
                return Err(ConfigError::new(
                    field("xff_num_trusted_hops"),
                    "required with `\"source\": \"header\"`: how many proxies in front of Envoy append to the header (Envoy's `xff_num_trusted_hops`)",
                ));
            };
            if trusted_hops > MAX_TRUSTED_HOPS {
                return Err(ConfigError::new(
                    field("xff_num_trusted_hops"),
                    format!("must be at most {MAX_TRUSTED_HOPS}"),
                ));
            }
            Ok(ClientIp::Header { name, trusted_hops })
        }
    }
}

/// One model source: exactly one of `inline_base64` (checked now: a refused file fails the
/// configuration) and `http` (checked when fetched: a refused file keeps the last good one).
fn compile_model_source(
    path: &str,
    inline_base64: Option<&str>,
    http: Option<&RawModelHttp>,
    sha256: Option<&str>,
    trust: &Trust,
) -> Result<ModelSource, ConfigError> {
    use base64::Engine as _;
    let pin = match sha256 {
        Some(pin) if pin.len() == 64 && pin.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(pin.to_ascii_lowercase())
        }
        Some(_) => {
            return Err(ConfigError::new(
                format!("{path}.sha256"),
                "must be 64 hex digits (the digest `obguard-models inspect` prints)",
            ));
        }
        None => None,
    };
    match (inline_base64, http) {
        (Some(text), None) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| ConfigError::new(format!("{path}.inline_base64"), "not base64"))?;
            let loaded = model_source::accept(&bytes, trust, pin.as_deref()).map_err(|err| {
                ConfigError::new(
                    format!("{path}.inline_base64"),
                    format!("model refused ({}): {}", err.reason, err.message),
                )
            })?;
            Ok(ModelSource {
                inline: Some(Arc::new(loaded)),
                http: None,
                pin,
            })
        }
        (None, Some(http)) => {
            let field = |name: &str| format!("{path}.http.{name}");
            if http.cluster.is_empty() {
                return Err(ConfigError::new(field("cluster"), "must not be empty"));
            }
            if !http.path.starts_with('/') {
                return Err(ConfigError::new(field("path"), "must start with `/`"));
            }
            if http.poll_s == 0 || http.poll_s > 86_400 {
                return Err(ConfigError::new(field("poll_s"), "must be 1 to 86400"));
            }
            if http.timeout_ms == 0 || http.timeout_ms > 60_000 {
                return Err(ConfigError::new(field("timeout_ms"), "must be 1 to 60000"));
            }
            if http.max_bytes == 0 || http.max_bytes > obguard_models::model::MAX_MODEL_BYTES {
                return Err(ConfigError::new(
                    field("max_bytes"),
                    format!("must be 1 to {}", obguard_models::model::MAX_MODEL_BYTES),
                ));
            }
            Ok(ModelSource {
                inline: None,
                http: Some(HttpSource {
                    cluster: http.cluster.clone(),
                    path: http.path.clone(),
                    authority: http
                        .authority
                        .clone()
                        .unwrap_or_else(|| http.cluster.clone()),
                    poll_s: http.poll_s,
                    timeout_ms: http.timeout_ms,
                    max_bytes: http.max_bytes,
                }),
                pin,
            })
        }
        _ => Err(ConfigError::new(
            path.to_owned(),
            "exactly one of `inline_base64` and `http` is required",
        )),
    }
}

/// `static_assessments[<client id>]` as written in the configuration.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawStaticAssessment {
    pub verdict: Verdict,
    pub risk_band: RiskBand,
}
