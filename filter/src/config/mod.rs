//! Plugin configuration: parsed strictly, validated completely, compiled once.
//!
//! [`load`] is all-or-nothing: any problem yields a [`ConfigError`] naming the field, and the
//! adapter then refuses to start the plugin rather than run half-configured.

mod error;
pub mod raw;

pub use error::ConfigError;
pub use raw::{ScopeFormat, UnmatchedPolicy};

use std::sync::Arc;

use crate::assess::StaticAssessments;
use crate::assess::model::{ClientIp, ModelStage, WhenUnavailable};
use crate::assess::model_source::{self, HttpSource, ModelSource, Trust};
use crate::authorise::routes::RouteTable;
use crate::enforce::upstream::HeaderPolicy;
use crate::identify::algorithm::{Algorithm, KeyFamily};
use crate::identify::host_crypto::HostVerifyFn;
use crate::identify::issuer::Issuer;
use crate::identify::jwks_remote::RemoteJwks;
use crate::identify::keys::{key_from_jwk, key_from_secret};
use crate::ratelimit::config::RateLimitConfig;
use raw::{RawConfig, RawIssuer};

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
}

/// Largest `max_token_bytes` accepted; Envoy's own default header limit is 60 KiB.
const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;
const MAX_CACHE_ENTRIES: usize = 1_000_000;

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
    if raw.cache.max_entries > MAX_CACHE_ENTRIES {
        return Err(ConfigError::new(
            "cache.max_entries",
            format!("must be at most {MAX_CACHE_ENTRIES}"),
        ));
    }
    if raw.cache.negative.max_entries > MAX_CACHE_ENTRIES {
        return Err(ConfigError::new(
            "cache.negative.max_entries",
            format!("must be at most {MAX_CACHE_ENTRIES}"),
        ));
    }
    if raw.cache.negative.ttl_s == 0 || raw.cache.negative.ttl_s > 86_400 {
        return Err(ConfigError::new(
            "cache.negative.ttl_s",
            "must be between 1 and 86400 (use max_entries: 0 to disable)",
        ));
    }
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
    })
}

fn compile_issuer(path: &str, raw: &RawIssuer) -> Result<Issuer, ConfigError> {
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
    })
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

impl FilterConfig {
    /// Whether any issuer delegates verification to `jwt_authn` (the adapter then reads its
    /// dynamic metadata; otherwise that host call is skipped).
    pub fn reads_jwt_authn_metadata(&self) -> bool {
        self.issuers
            .iter()
            .any(|i| i.jwt_authn_payload_key.is_some())
    }

    /// Whether the model may need Envoy's `source.address` (the adapter then reads it;
    /// otherwise that host call is skipped).
    pub fn reads_source_address(&self) -> bool {
        self.model
            .as_ref()
            .is_some_and(|m| m.client_ip != ClientIp::None)
    }
}

fn compile_model(path: &str, raw: &raw::RawModel) -> Result<ModelStage, ConfigError> {
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
        raw::RawWhenUnavailable::Allow => WhenUnavailable::Allow,
        raw::RawWhenUnavailable::Refuse => WhenUnavailable::Refuse {
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
    if raw.challenge.acr_values.is_empty() || !is_quoted_string_safe(&raw.challenge.acr_values) {
        return Err(ConfigError::new(
            format!("{path}.challenge.acr_values"),
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
        shadow: raw.mode == raw::ModelMode::Shadow,
        max_clients: raw.max_clients,
        client_ttl_s: raw.client_ttl_s,
        country_header: raw.country_header.clone(),
        asn_header: raw.asn_header.clone(),
        client_ip,
        challenge_acr_values: raw.challenge.acr_values.clone(),
        challenge_max_age_s: raw.challenge.max_age_s,
        throttle_retry_after_s: raw.throttle_retry_after_s,
    })
}

/// Most trusted hops accepted in `client_ip.xff_num_trusted_hops`.
const MAX_TRUSTED_HOPS: u32 = 16;

/// `model.client_ip` (and the retired `model.ip_header`).
fn compile_client_ip(path: &str, raw: &raw::RawModel) -> Result<ClientIp, ConfigError> {
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
    let field = |name: &str| format!("{path}.client_ip.{name}");
    let only_for_header =
        |name: &str| ConfigError::new(field(name), "only with `\"source\": \"header\"`");
    match client_ip.source {
        raw::ClientIpSource::Connection | raw::ClientIpSource::None => {
            if client_ip.header.is_some() {
                return Err(only_for_header("header"));
            }
            if client_ip.xff_num_trusted_hops.is_some() {
                return Err(only_for_header("xff_num_trusted_hops"));
            }
            Ok(if client_ip.source == raw::ClientIpSource::None {
                ClientIp::None
            } else {
                ClientIp::Connection
            })
        }
        raw::ClientIpSource::Header => {
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
    http: Option<&raw::RawModelHttp>,
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

/// Whether a value can sit inside an RFC 7230 quoted-string without escaping.
pub(crate) fn is_quoted_string_safe(value: &str) -> bool {
    value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}
