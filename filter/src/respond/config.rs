//! The `events` and `containment` sections as written, and their compiled forms. A public
//! interface: every field is in README.md's configuration reference and docs/events.md /
//! docs/containment.md.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::assess::Verdict;
use crate::config::ConfigError;
use crate::config::defaults::{default_u32, default_u64, default_usize};
use crate::polled::{PolledSource, RawPolledSource};
use crate::telemetry::Outcome;

/// `events`: security events (CloudEvents 1.0) POSTed to a webhook over an Envoy cluster.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawEvents {
    /// Envoy cluster of the webhook (a SIEM collector, a SOAR endpoint).
    pub cluster: String,
    #[serde(default = "default_events_path")]
    pub path: String,
    /// `:authority` of the POST (default: the cluster name).
    #[serde(default)]
    pub authority: Option<String>,
    /// Extra request headers, e.g. the collector's `authorization`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// CloudEvents `source` of every event.
    #[serde(default = "default_source")]
    pub source: String,
    /// Model and rule verdicts at or above this one send an event (`step_up`, `throttle`,
    /// `block`).
    #[serde(default = "default_min_verdict")]
    pub min_verdict: Verdict,
    /// Refusals that send an event, by outcome (`consent_denied`, `quarantined`...).
    #[serde(default = "default_outcomes")]
    pub outcomes: Vec<String>,
    /// Refusals that send an event, by reason (`dpop_proof_replayed`, `token_revoked`...).
    #[serde(default = "default_reasons")]
    pub reasons: Vec<String>,
    /// Events per POST (a CloudEvents JSON batch).
    #[serde(default = "default_usize::<20>")]
    pub batch_max: usize,
    /// Events waiting per worker; a new event finding it full is dropped (counted).
    #[serde(default = "default_usize::<512>")]
    pub queue_max: usize,
    #[serde(default = "default_u64::<2000>")]
    pub timeout_ms: u64,
    /// Attempts per batch before it is dropped (counted).
    #[serde(default = "default_u32::<4>")]
    pub max_attempts: u32,
    /// Wait before the first retry; doubled per attempt up to `backoff_max_ms`.
    #[serde(default = "default_u64::<1000>")]
    pub backoff_initial_ms: u64,
    #[serde(default = "default_u64::<30_000>")]
    pub backoff_max_ms: u64,
    /// The client's last requests carried in each event (as this worker saw them).
    #[serde(default = "default_usize::<10>")]
    pub recent_requests: usize,
    /// Clients whose recent requests a worker remembers (least recently seen evicted).
    #[serde(default = "default_usize::<1024>")]
    pub recent_clients: usize,
}

fn default_events_path() -> String {
    "/".to_owned()
}
fn default_source() -> String {
    "urn:obguard".to_owned()
}
fn default_min_verdict() -> Verdict {
    Verdict::StepUp
}
fn default_outcomes() -> Vec<String> {
    ["consent_denied", "quarantined", "threat_denied"]
        .map(str::to_owned)
        .to_vec()
}
fn default_reasons() -> Vec<String> {
    ["dpop_proof_replayed", "token_revoked"]
        .map(str::to_owned)
        .to_vec()
}

/// Compiled `events`.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub headers: Vec<(String, String)>,
    pub source: String,
    pub min_verdict: Verdict,
    pub outcomes: Vec<Outcome>,
    pub reasons: Vec<String>,
    pub batch_max: usize,
    pub queue_max: usize,
    pub timeout_ms: u64,
    pub max_attempts: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub recent_requests: usize,
    pub recent_clients: usize,
}

fn outcome_named(name: &str) -> Option<Outcome> {
    Outcome::ALL.into_iter().find(|o| o.as_str() == name)
}

fn token_safe(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| (0x21..0x7f).contains(&b))
}

impl EventsConfig {
    pub fn compile(path: &str, raw: &RawEvents) -> Result<Self, ConfigError> {
        let field = |name: &str| format!("{path}.{name}");
        if raw.cluster.is_empty() {
            return Err(ConfigError::new(field("cluster"), "must not be empty"));
        }
        if !raw.path.starts_with('/') || !token_safe(&raw.path) {
            return Err(ConfigError::new(
                field("path"),
                "must be an absolute request path",
            ));
        }
        if raw.min_verdict == Verdict::Allow {
            return Err(ConfigError::new(
                field("min_verdict"),
                "must be step_up, throttle or block (an event per allowed request is an access log)",
            ));
        }
        let mut outcomes = Vec::new();
        for (i, name) in raw.outcomes.iter().enumerate() {
            match outcome_named(name) {
                Some(Outcome::Allowed | Outcome::Anonymous | Outcome::Passthrough) => {
                    return Err(ConfigError::new(
                        format!("{path}.outcomes[{i}]"),
                        format!("`{name}` is not a refusal"),
                    ));
                }
                Some(o) => outcomes.push(o),
                None => {
                    return Err(ConfigError::new(
                        format!("{path}.outcomes[{i}]"),
                        format!("unknown outcome `{name}` (see docs/errors.md)"),
                    ));
                }
            }
        }
        for (name, value) in &raw.headers {
            let lower = name.to_ascii_lowercase();
            if !token_safe(name) || name.starts_with(':') || lower == "content-type" {
                return Err(ConfigError::new(
                    format!("{path}.headers.{name}"),
                    "must be a header name other than content-type",
                ));
            }
            if value.bytes().any(|b| b < 0x20 || b == 0x7f) {
                return Err(ConfigError::new(
                    format!("{path}.headers.{name}"),
                    "the value must not contain control characters",
                ));
            }
        }
        let bounded = |name: &str, value: usize, max: usize| {
            if value == 0 || value > max {
                Err(ConfigError::new(
                    field(name),
                    format!("must be between 1 and {max}"),
                ))
            } else {
                Ok(())
            }
        };
        bounded("batch_max", raw.batch_max, 500)?;
        bounded("queue_max", raw.queue_max, 100_000)?;
        bounded("recent_clients", raw.recent_clients, 100_000)?;
        if raw.recent_requests > 50 {
            return Err(ConfigError::new(
                field("recent_requests"),
                "must be at most 50",
            ));
        }
        if raw.timeout_ms == 0 || raw.timeout_ms > 60_000 {
            return Err(ConfigError::new(
                field("timeout_ms"),
                "must be between 1 and 60000",
            ));
        }
        if raw.max_attempts == 0 || raw.max_attempts > 20 {
            return Err(ConfigError::new(
                field("max_attempts"),
                "must be between 1 and 20",
            ));
        }
        if raw.backoff_initial_ms == 0 || raw.backoff_max_ms < raw.backoff_initial_ms {
            return Err(ConfigError::new(
                field("backoff_max_ms"),
                "backoff_initial_ms must be positive and at most backoff_max_ms",
            ));
        }
        Ok(Self {
            cluster: raw.cluster.clone(),
            path: raw.path.clone(),
            authority: raw.authority.clone().unwrap_or_else(|| raw.cluster.clone()),
            headers: raw
                .headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                .collect(),
            source: raw.source.clone(),
            min_verdict: raw.min_verdict,
            outcomes,
            reasons: raw.reasons.clone(),
            batch_max: raw.batch_max,
            queue_max: raw.queue_max,
            timeout_ms: raw.timeout_ms,
            max_attempts: raw.max_attempts,
            backoff_initial_ms: raw.backoff_initial_ms,
            backoff_max_ms: raw.backoff_max_ms,
            recent_requests: raw.recent_requests,
            recent_clients: raw.recent_clients,
        })
    }
}

/// `containment`: quarantined clients and revoked tokens, shared by every worker.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawContainment {
    /// Entries the playbooks may add (quarantines and revocations together); when full the
    /// entry expiring first gives way.
    #[serde(default = "default_usize::<4096>")]
    pub max_entries: usize,
    /// Clients whose playbook counts are kept (shared-data slots, per playbook).
    #[serde(default = "default_u32::<4096>")]
    pub counter_slots: u32,
    #[serde(default)]
    pub playbooks: Vec<RawPlaybook>,
    /// An external list (quarantines and revocations a SOC decides), polled.
    #[serde(default)]
    pub list: Option<RawPolledSource>,
    /// Most entries the external list may hold.
    #[serde(default = "default_usize::<10_000>")]
    pub list_max_entries: usize,
}

/// One playbook: when matching requests of one client reach `count` within `within_s`,
/// take `action` for `duration_s`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawPlaybook {
    pub name: String,
    pub when: RawTrigger,
    #[serde(default = "default_u32::<1>")]
    pub count: u32,
    #[serde(default = "default_u64::<600>")]
    pub within_s: u64,
    pub action: PlaybookAction,
    #[serde(default = "default_u64::<3600>")]
    pub duration_s: u64,
}

/// Which requests count: each list given must match (an empty list matches anything), and
/// at least one list must be given.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawTrigger {
    #[serde(default)]
    pub outcomes: Vec<String>,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub verdicts: Vec<Verdict>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum PlaybookAction {
    /// Every request of the client is refused (403 `quarantined`).
    QuarantineClient,
    /// Requests of the client for this subject (the token's `sub`) are refused.
    QuarantineSubject,
    /// The token is refused (401 `invalid_token`, reason `token_revoked`): by `jti`, or by
    /// its SHA-256 when it has none.
    RevokeToken,
}

impl PlaybookAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PlaybookAction::QuarantineClient => "quarantine_client",
            PlaybookAction::QuarantineSubject => "quarantine_subject",
            PlaybookAction::RevokeToken => "revoke_token",
        }
    }
}

/// Compiled playbook.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub name: String,
    pub outcomes: Vec<Outcome>,
    pub reasons: Vec<String>,
    pub verdicts: Vec<Verdict>,
    pub count: u32,
    pub within_s: u64,
    pub action: PlaybookAction,
    pub duration_s: u64,
}

impl Playbook {
    /// Whether a request with this outcome, reason and verdict counts.
    pub fn matches(
        &self,
        outcome: Outcome,
        reason: Option<&str>,
        verdict: Option<Verdict>,
    ) -> bool {
        (self.outcomes.is_empty() || self.outcomes.contains(&outcome))
            && (self.reasons.is_empty()
                || reason.is_some_and(|r| self.reasons.iter().any(|x| x == r)))
            && (self.verdicts.is_empty() || verdict.is_some_and(|v| self.verdicts.contains(&v)))
    }
}

/// Compiled `containment`.
#[derive(Debug, Clone)]
pub struct ContainmentConfig {
    pub max_entries: usize,
    pub counter_slots: u32,
    pub playbooks: Vec<Playbook>,
    pub list: Option<PolledSource>,
    pub list_max_entries: usize,
}

/// Shared-data key of the playbooks' entries (one value, every worker).
pub const LOCAL_LIST_KEY: &str = "obguard.containment.local";
/// Shared-data key (prefix) of the external list.
pub const EXTERNAL_LIST_KEY: &str = "obguard.containment.external";
/// Longest containment a playbook may decide (30 days).
const MAX_DURATION_S: u64 = 30 * 24 * 3600;

impl ContainmentConfig {
    /// Whether a playbook may revoke a token (then tokens without `jti` are hashed).
    pub fn revokes_tokens(&self) -> bool {
        self.playbooks
            .iter()
            .any(|p| p.action == PlaybookAction::RevokeToken)
    }

    pub fn compile(path: &str, raw: &RawContainment) -> Result<Self, ConfigError> {
        if raw.max_entries == 0 || raw.max_entries > 100_000 {
            return Err(ConfigError::new(
                format!("{path}.max_entries"),
                "must be between 1 and 100000",
            ));
        }
        if raw.counter_slots == 0 || raw.counter_slots > 1_000_000 {
            return Err(ConfigError::new(
                format!("{path}.counter_slots"),
                "must be between 1 and 1000000",
            ));
        }
        if raw.list_max_entries == 0 || raw.list_max_entries > 1_000_000 {
            return Err(ConfigError::new(
                format!("{path}.list_max_entries"),
                "must be between 1 and 1000000",
            ));
        }
        let mut playbooks: Vec<Playbook> = Vec::with_capacity(raw.playbooks.len());
        for (i, p) in raw.playbooks.iter().enumerate() {
            let at = format!("{path}.playbooks[{i}]");
            if p.name.is_empty()
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    "must be letters, digits, `_` or `-` (it names metrics)",
                ));
            }
            if playbooks.iter().any(|q| q.name == p.name) {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    format!("duplicate playbook `{}`", p.name),
                ));
            }
            let when = &p.when;
            if when.outcomes.is_empty() && when.reasons.is_empty() && when.verdicts.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.when"),
                    "name at least one of outcomes, reasons, verdicts",
                ));
            }
            let mut outcomes = Vec::new();
            for (j, name) in when.outcomes.iter().enumerate() {
                match outcome_named(name) {
                    Some(o) => outcomes.push(o),
                    None => {
                        return Err(ConfigError::new(
                            format!("{at}.when.outcomes[{j}]"),
                            format!("unknown outcome `{name}` (see docs/errors.md)"),
                        ));
                    }
                }
            }
            if p.count == 0 || p.count > 10_000 {
                return Err(ConfigError::new(
                    format!("{at}.count"),
                    "must be between 1 and 10000",
                ));
            }
            if p.within_s == 0 {
                return Err(ConfigError::new(
                    format!("{at}.within_s"),
                    "must be positive",
                ));
            }
            if p.duration_s == 0 || p.duration_s > MAX_DURATION_S {
                return Err(ConfigError::new(
                    format!("{at}.duration_s"),
                    format!("must be between 1 and {MAX_DURATION_S}"),
                ));
            }
            playbooks.push(Playbook {
                name: p.name.clone(),
                outcomes,
                reasons: when.reasons.clone(),
                verdicts: when.verdicts.clone(),
                count: p.count,
                within_s: p.within_s,
                action: p.action,
                duration_s: p.duration_s,
            });
        }
        let list = match &raw.list {
            Some(list) => Some(PolledSource::compile(
                &format!("{path}.list"),
                "containment list".to_owned(),
                EXTERNAL_LIST_KEY.to_owned(),
                list,
            )?),
            None => None,
        };
        Ok(Self {
            max_entries: raw.max_entries,
            counter_slots: raw.counter_slots,
            playbooks,
            list,
            list_max_entries: raw.list_max_entries,
        })
    }
}
