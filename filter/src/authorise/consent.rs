//! Consent-bound resources (stage 5 of [`crate::pipeline`]): the path parameters a route
//! names in `consent_params` (e.g. `{AccountId}`) must be among the resources the token's
//! consent covers. This is the inline object-level authorisation check (OWASP API1, BOLA):
//! a valid token for one account does not open another.
//!
//! The consent comes from the token (a claim listing the resource ids) or from the consent
//! service, asked over an Envoy cluster with the token's consent id (e.g.
//! `openbanking_intent_id`). Answers are cached in shared data (every worker) with a TTL,
//! a stale-if-error window and a bound; the rules for using them are here, the callout is in
//! `runtime/consent_fetch.rs`.

use serde::{Deserialize, Serialize};

use super::config::{ConsentUnavailablePolicy, RawConsentService};
use crate::assess::baselines::{
    BaselineStore, SlotSpace, SlotValue, encode_slot_value, resolve_in,
};
use crate::config::ConfigError;

/// Where an issuer's tokens state their consent (`issuers[].consent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentClaim {
    /// A claim holding the consented resource ids (array of strings).
    Resources(String),
    /// A claim holding the consent id, resolved through `consent_service`.
    ConsentId(String),
}

/// What a verified token says about its consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenConsent {
    Resources(Vec<String>),
    ConsentId(String),
}

/// Longest consent id accepted from a token (it becomes part of a request path and a
/// shared-data key).
pub const MAX_CONSENT_ID_BYTES: usize = 256;

/// The compiled `consent_service`.
#[derive(Debug, Clone)]
pub struct ConsentService {
    pub cluster: String,
    pub authority: String,
    /// The path before and after `{consent_id}`.
    pub path_prefix: String,
    pub path_suffix: String,
    pub timeout_ms: u64,
    pub ttl_s: u64,
    pub not_found_ttl_s: u64,
    pub stale_if_error_s: u64,
    pub max_entries: u32,
    pub max_bytes: usize,
    pub max_resources: usize,
    pub resources_pointer: String,
    pub status_pointer: Option<String>,
    pub active_statuses: Vec<String>,
    pub when_unavailable: ConsentUnavailablePolicy,
    pub retry_after_s: u64,
}

/// Where cached consents live in shared data.
pub const CONSENT_PREFIX: &str = "obguard.consent";

impl ConsentService {
    pub fn compile(path: &str, raw: &RawConsentService) -> Result<Self, ConfigError> {
        if raw.cluster.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.cluster"),
                "must name an Envoy cluster",
            ));
        }
        let Some((prefix, suffix)) = raw.path.split_once("{consent_id}") else {
            return Err(ConfigError::new(
                format!("{path}.path"),
                "must contain `{consent_id}`, e.g. `/consents/{consent_id}`",
            ));
        };
        if !prefix.starts_with('/') || suffix.contains("{consent_id}") {
            return Err(ConfigError::new(
                format!("{path}.path"),
                "must start with `/` and contain `{consent_id}` once",
            ));
        }
        for (field, pointer) in [
            ("resources_pointer", Some(&raw.resources_pointer)),
            ("status_pointer", raw.status_pointer.as_ref()),
        ] {
            if let Some(pointer) = pointer
                && !pointer.is_empty()
                && !pointer.starts_with('/')
            {
                return Err(ConfigError::new(
                    format!("{path}.{field}"),
                    "must be a JSON pointer (RFC 6901), e.g. `/Data/AccountIds`",
                ));
            }
        }
        if raw.max_entries == 0 || raw.max_resources == 0 || raw.max_bytes == 0 {
            return Err(ConfigError::new(
                path,
                "`max_entries`, `max_resources` and `max_bytes` must be at least 1",
            ));
        }
        if raw.timeout_ms == 0 {
            return Err(ConfigError::new(
                format!("{path}.timeout_ms"),
                "must be at least 1",
            ));
        }
        Ok(Self {
            cluster: raw.cluster.clone(),
            authority: raw.authority.clone().unwrap_or_else(|| raw.cluster.clone()),
            path_prefix: prefix.to_owned(),
            path_suffix: suffix.to_owned(),
            timeout_ms: raw.timeout_ms,
            ttl_s: raw.ttl_s,
            not_found_ttl_s: raw.not_found_ttl_s,
            stale_if_error_s: raw.stale_if_error_s,
            max_entries: raw.max_entries,
            max_bytes: raw.max_bytes,
            max_resources: raw.max_resources,
            resources_pointer: raw.resources_pointer.clone(),
            status_pointer: raw.status_pointer.clone(),
            active_statuses: raw.active_statuses.clone(),
            when_unavailable: raw.when_unavailable,
            retry_after_s: raw.retry_after_s,
        })
    }

    /// The request path for a consent id (percent-encoded: ids are the token's, not ours).
    pub fn path_for(&self, consent_id: &str) -> String {
        let encoded =
            percent_encoding::utf8_percent_encode(consent_id, percent_encoding::NON_ALPHANUMERIC);
        format!("{}{encoded}{}", self.path_prefix, self.path_suffix)
    }

    fn space(&self) -> SlotSpace<'static> {
        SlotSpace {
            prefix: CONSENT_PREFIX,
            slots: self.max_entries,
            // An entry keeps its slot while it can still be used (fresh or stale-if-error).
            ttl_s: self.ttl_s.max(self.not_found_ttl_s) + self.stale_if_error_s,
        }
    }
}

/// What the consent service said about one consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentRecord {
    Found {
        /// The status is one of `active_statuses` (or none is configured).
        active: bool,
        resources: Vec<String>,
    },
    /// `404`: the consent does not exist (revoked and purged, or never granted).
    NotFound,
}

/// A cached answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedConsent {
    pub fetched_ms: u64,
    pub record: ConsentRecord,
}

impl SlotValue for CachedConsent {
    fn decode_value(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
    fn encode_value(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok()
    }
    fn last_seen_ms(&self) -> u64 {
        self.fetched_ms
    }
}

/// Why a consent could not be fetched (the metric suffix and the log's reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentFetchError {
    /// Envoy could not dispatch the call (unknown cluster...).
    Dispatch,
    /// No answer in time, connection refused or reset.
    Unreachable,
    /// A status other than 200 or 404.
    Status,
    TooLarge,
    /// Not JSON, or no array of strings at `resources_pointer`, or too many resources.
    Garbage,
}

impl ConsentFetchError {
    pub const ALL: [ConsentFetchError; 5] = [
        ConsentFetchError::Dispatch,
        ConsentFetchError::Unreachable,
        ConsentFetchError::Status,
        ConsentFetchError::TooLarge,
        ConsentFetchError::Garbage,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            ConsentFetchError::Dispatch => "dispatch",
            ConsentFetchError::Unreachable => "unreachable",
            ConsentFetchError::Status => "status",
            ConsentFetchError::TooLarge => "too_large",
            ConsentFetchError::Garbage => "garbage",
        }
    }
}

/// The consent service's answer, as the runtime hands it back to the pipeline.
pub type FetchedConsent = Result<ConsentRecord, ConsentFetchError>;

/// Reads the consent service's answer: `status` 0 means no response arrived.
pub fn parse_answer(
    service: &ConsentService,
    status: u16,
    body: Option<&[u8]>,
    body_size: usize,
) -> FetchedConsent {
    match status {
        0 => return Err(ConsentFetchError::Unreachable),
        200 => {}
        404 => return Ok(ConsentRecord::NotFound),
        _ => return Err(ConsentFetchError::Status),
    }
    if body_size > service.max_bytes {
        return Err(ConsentFetchError::TooLarge);
    }
    let value: serde_json::Value = body
        .and_then(|b| serde_json::from_slice(b).ok())
        .ok_or(ConsentFetchError::Garbage)?;
    let resources = value
        .pointer(&service.resources_pointer)
        .and_then(serde_json::Value::as_array)
        .ok_or(ConsentFetchError::Garbage)?;
    if resources.len() > service.max_resources {
        return Err(ConsentFetchError::Garbage);
    }
    let resources = resources
        .iter()
        .map(|r| r.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .ok_or(ConsentFetchError::Garbage)?;
    let active = match &service.status_pointer {
        None => true,
        Some(pointer) => match value.pointer(pointer).and_then(serde_json::Value::as_str) {
            Some(status) => service.active_statuses.iter().any(|s| s == status),
            None => return Err(ConsentFetchError::Garbage),
        },
    };
    Ok(ConsentRecord::Found { active, resources })
}

/// Why a request is refused for its consent (the access log's reason, the metric suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentDenial {
    /// A consent-bound parameter is not among the consented resources.
    Mismatch,
    /// The token states no consent (claim absent or not the configured shape).
    Missing,
    /// The consent exists but is not in an active status (revoked, expired, awaiting).
    Inactive,
    /// The consent service does not know the consent id (404).
    Unknown,
    /// The consent could not be resolved and `when_unavailable` is `deny`.
    Unresolved,
}

impl ConsentDenial {
    pub const ALL: [ConsentDenial; 5] = [
        ConsentDenial::Mismatch,
        ConsentDenial::Missing,
        ConsentDenial::Inactive,
        ConsentDenial::Unknown,
        ConsentDenial::Unresolved,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            ConsentDenial::Mismatch => "consent_mismatch",
            ConsentDenial::Missing => "consent_missing",
            ConsentDenial::Inactive => "consent_inactive",
            ConsentDenial::Unknown => "consent_unknown",
            ConsentDenial::Unresolved => "consent_unresolved",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            ConsentDenial::Mismatch => "The resource is not covered by the token's consent",
            ConsentDenial::Missing => "The token carries no consent",
            ConsentDenial::Inactive => "The token's consent is not authorised",
            ConsentDenial::Unknown => "The token's consent does not exist",
            ConsentDenial::Unresolved => "The token's consent could not be checked",
        }
    }
}

/// How the consent was known (for metrics and the access log's `consent` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentSource {
    Claim,
    Cache,
    Fetched,
    /// Past its TTL, used because the service failed (stale-if-error).
    Stale,
}

impl ConsentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::Claim => "claim",
            ConsentSource::Cache => "cache",
            ConsentSource::Fetched => "fetched",
            ConsentSource::Stale => "stale",
        }
    }
}

/// The stage's answer.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsentCheck {
    /// Every consent-bound parameter is covered.
    Within(ConsentSource),
    Denied(ConsentDenial, Option<ConsentSource>),
    /// Ask the consent service for this consent id, then decide again with its answer.
    Fetch(String),
    /// Not resolvable and `when_unavailable` is `unavailable`: 503.
    Unavailable,
}

/// `params` are the route's consent-bound `(name, value)` pairs; `fetched` is the consent
/// service's answer when the request is decided again after a fetch.
pub fn check(
    service: Option<&ConsentService>,
    store: &mut dyn BaselineStore,
    consent: Option<&TokenConsent>,
    params: &[&str],
    fetched: Option<&FetchedConsent>,
    now_ms: u64,
) -> (ConsentCheck, Option<ConsentFetchError>) {
    let covers = |resources: &[String]| params.iter().all(|p| resources.iter().any(|r| r == p));
    let judge = |record: &ConsentRecord, source: ConsentSource| match record {
        ConsentRecord::NotFound => ConsentCheck::Denied(ConsentDenial::Unknown, Some(source)),
        ConsentRecord::Found { active: false, .. } => {
            ConsentCheck::Denied(ConsentDenial::Inactive, Some(source))
        }
        ConsentRecord::Found { resources, .. } if covers(resources) => ConsentCheck::Within(source),
        ConsentRecord::Found { .. } => ConsentCheck::Denied(ConsentDenial::Mismatch, Some(source)),
    };
    let consent_id = match consent {
        None => return (ConsentCheck::Denied(ConsentDenial::Missing, None), None),
        Some(TokenConsent::Resources(resources)) => {
            let source = ConsentSource::Claim;
            let result = if covers(resources) {
                ConsentCheck::Within(source)
            } else {
                ConsentCheck::Denied(ConsentDenial::Mismatch, Some(source))
            };
            return (result, None);
        }
        Some(TokenConsent::ConsentId(id)) => id,
    };
    // Configuration guarantees a service for issuers with a consent id claim.
    let Some(service) = service else {
        return (ConsentCheck::Denied(ConsentDenial::Unresolved, None), None);
    };
    let space = service.space();
    let (slot, owner) = resolve_in::<CachedConsent>(store, space, consent_id, now_ms);
    let cached = slot.value.as_ref();
    match fetched {
        Some(Ok(record)) => {
            if let Some(key) = &slot.key {
                let entry = CachedConsent {
                    fetched_ms: now_ms,
                    record: record.clone(),
                };
                if let Some(bytes) = encode_slot_value(owner, &entry) {
                    // A lost race means another worker stored an answer just now: fine.
                    let _ = store.store(key, &bytes, slot.cas);
                }
            }
            (judge(record, ConsentSource::Fetched), None)
        }
        Some(Err(error)) => {
            let usable = cached.filter(|c| {
                let ttl_s = match c.record {
                    ConsentRecord::NotFound => service.not_found_ttl_s,
                    ConsentRecord::Found { .. } => service.ttl_s,
                };
                let age_ms = now_ms.saturating_sub(c.fetched_ms);
                age_ms < (ttl_s + service.stale_if_error_s).saturating_mul(1000)
            });
            let result = match (usable, service.when_unavailable) {
                (Some(entry), _) => judge(&entry.record, ConsentSource::Stale),
                (None, ConsentUnavailablePolicy::Unavailable) => ConsentCheck::Unavailable,
                (None, ConsentUnavailablePolicy::Deny) => {
                    ConsentCheck::Denied(ConsentDenial::Unresolved, None)
                }
            };
            (result, Some(*error))
        }
        None => match cached {
            Some(entry) if is_fresh(service, entry, now_ms) => {
                (judge(&entry.record, ConsentSource::Cache), None)
            }
            _ => (ConsentCheck::Fetch(consent_id.clone()), None),
        },
    }
}

fn is_fresh(service: &ConsentService, entry: &CachedConsent, now_ms: u64) -> bool {
    let ttl_s = match entry.record {
        ConsentRecord::NotFound => service.not_found_ttl_s,
        ConsentRecord::Found { .. } => service.ttl_s,
    };
    now_ms.saturating_sub(entry.fetched_ms) < ttl_s.saturating_mul(1000)
}

/// The consent a verified token states, by the issuer's `consent` setting (`None`: the claim
/// is absent or has another shape, or the consent id is unusable).
pub fn from_claim(
    claim: &ConsentClaim,
    value: Option<&serde_json::Value>,
    max_resources: usize,
) -> Option<TokenConsent> {
    match (claim, value?) {
        (ConsentClaim::Resources(_), serde_json::Value::Array(items)) => {
            if items.len() > max_resources {
                return None;
            }
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(TokenConsent::Resources)
        }
        (ConsentClaim::ConsentId(_), serde_json::Value::String(id))
            if !id.is_empty() && id.len() <= MAX_CONSENT_ID_BYTES =>
        {
            Some(TokenConsent::ConsentId(id.clone()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::baselines::MemoryStore;

    fn service(policy: ConsentUnavailablePolicy) -> ConsentService {
        let raw: RawConsentService = serde_json::from_value(serde_json::json!({
            "cluster": "consent",
            "path": "/consents/{consent_id}",
            "resources_pointer": "/Data/AccountIds",
            "status_pointer": "/Data/Status",
            "when_unavailable": match policy {
                ConsentUnavailablePolicy::Deny => "deny",
                ConsentUnavailablePolicy::Unavailable => "unavailable",
            },
        }))
        .unwrap();
        ConsentService::compile("consent_service", &raw).unwrap()
    }

    fn found(ids: &[&str]) -> ConsentRecord {
        ConsentRecord::Found {
            active: true,
            resources: ids.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn claim_form_checks_every_bound_parameter() {
        let mut store = MemoryStore::default();
        let consent = TokenConsent::Resources(vec!["acc-1".into(), "acc-2".into()]);
        let (ok, _) = check(None, &mut store, Some(&consent), &["acc-2"], None, 0);
        assert_eq!(ok, ConsentCheck::Within(ConsentSource::Claim));
        let (bad, _) = check(None, &mut store, Some(&consent), &["acc-3"], None, 0);
        assert_eq!(
            bad,
            ConsentCheck::Denied(ConsentDenial::Mismatch, Some(ConsentSource::Claim))
        );
        let (none, _) = check(None, &mut store, None, &["acc-1"], None, 0);
        assert_eq!(none, ConsentCheck::Denied(ConsentDenial::Missing, None));
    }

    #[test]
    fn service_form_fetches_caches_and_serves_stale_on_error() {
        let service = service(ConsentUnavailablePolicy::Unavailable);
        let mut store = MemoryStore::default();
        let consent = TokenConsent::ConsentId("intent-7".into());
        let t0 = 1_000_000;
        let (first, _) = check(Some(&service), &mut store, Some(&consent), &["a"], None, t0);
        assert_eq!(first, ConsentCheck::Fetch("intent-7".into()));
        let answer = Ok(found(&["a", "b"]));
        let (after, _) = check(
            Some(&service),
            &mut store,
            Some(&consent),
            &["a"],
            Some(&answer),
            t0,
        );
        assert_eq!(after, ConsentCheck::Within(ConsentSource::Fetched));
        // Within the TTL: from the cache, mismatches included.
        let (cached, _) = check(
            Some(&service),
            &mut store,
            Some(&consent),
            &["z"],
            None,
            t0 + 1,
        );
        assert_eq!(
            cached,
            ConsentCheck::Denied(ConsentDenial::Mismatch, Some(ConsentSource::Cache))
        );
        // Past the TTL: fetched again; the fetch fails: the stale answer is used.
        let later = t0 + 61_000;
        let (due, _) = check(
            Some(&service),
            &mut store,
            Some(&consent),
            &["a"],
            None,
            later,
        );
        assert_eq!(due, ConsentCheck::Fetch("intent-7".into()));
        let failed = Err(ConsentFetchError::Unreachable);
        let (stale, error) = check(
            Some(&service),
            &mut store,
            Some(&consent),
            &["a"],
            Some(&failed),
            later,
        );
        assert_eq!(stale, ConsentCheck::Within(ConsentSource::Stale));
        assert_eq!(error, Some(ConsentFetchError::Unreachable));
        // Beyond the stale window: unavailable.
        let (gone, _) = check(
            Some(&service),
            &mut store,
            Some(&consent),
            &["a"],
            Some(&failed),
            t0 + 400_000,
        );
        assert_eq!(gone, ConsentCheck::Unavailable);
    }

    #[test]
    fn revoked_and_unknown_consents_are_refused() {
        let service = service(ConsentUnavailablePolicy::Unavailable);
        let consent = TokenConsent::ConsentId("c".into());
        for (record, denial) in [
            (
                ConsentRecord::Found {
                    active: false,
                    resources: vec!["a".into()],
                },
                ConsentDenial::Inactive,
            ),
            (ConsentRecord::NotFound, ConsentDenial::Unknown),
        ] {
            let mut store = MemoryStore::default();
            let answer = Ok(record);
            let (result, _) = check(
                Some(&service),
                &mut store,
                Some(&consent),
                &["a"],
                Some(&answer),
                1,
            );
            assert_eq!(
                result,
                ConsentCheck::Denied(denial, Some(ConsentSource::Fetched))
            );
            // Remembered (a 404 for `not_found_ttl_s`).
            let (again, _) = check(Some(&service), &mut store, Some(&consent), &["a"], None, 2);
            assert_eq!(
                again,
                ConsentCheck::Denied(denial, Some(ConsentSource::Cache))
            );
        }
    }

    #[test]
    fn never_fetched_follows_the_policy() {
        let deny = service(ConsentUnavailablePolicy::Deny);
        let mut store = MemoryStore::default();
        let consent = TokenConsent::ConsentId("x".into());
        let failed = Err(ConsentFetchError::Status);
        let (result, _) = check(
            Some(&deny),
            &mut store,
            Some(&consent),
            &["a"],
            Some(&failed),
            5,
        );
        assert_eq!(
            result,
            ConsentCheck::Denied(ConsentDenial::Unresolved, None)
        );
    }

    #[test]
    fn the_cache_is_bounded_by_max_entries() {
        let mut service = service(ConsentUnavailablePolicy::Unavailable);
        service.max_entries = 4;
        let mut store = MemoryStore::default();
        for n in 0..100 {
            let consent = TokenConsent::ConsentId(format!("intent-{n}"));
            let answer = Ok(found(&["a"]));
            check(
                Some(&service),
                &mut store,
                Some(&consent),
                &["a"],
                Some(&answer),
                1000,
            );
        }
        assert!(store.len() <= 4, "{} slots", store.len());
    }

    #[test]
    fn answers_are_read_strictly() {
        let service = service(ConsentUnavailablePolicy::Unavailable);
        let body = br#"{"Data":{"Status":"Authorised","AccountIds":["a","b"]}}"#;
        assert_eq!(
            parse_answer(&service, 200, Some(body), body.len()),
            Ok(found(&["a", "b"]))
        );
        let revoked = br#"{"Data":{"Status":"Revoked","AccountIds":["a"]}}"#;
        assert_eq!(
            parse_answer(&service, 200, Some(revoked), revoked.len()),
            Ok(ConsentRecord::Found {
                active: false,
                resources: vec!["a".into()]
            })
        );
        assert_eq!(
            parse_answer(&service, 404, None, 0),
            Ok(ConsentRecord::NotFound)
        );
        assert_eq!(
            parse_answer(&service, 500, None, 0),
            Err(ConsentFetchError::Status)
        );
        assert_eq!(
            parse_answer(&service, 0, None, 0),
            Err(ConsentFetchError::Unreachable)
        );
        assert_eq!(
            parse_answer(&service, 200, Some(b"{\"Data\":"), 8),
            Err(ConsentFetchError::Garbage)
        );
        let numbers = br#"{"Data":{"Status":"Authorised","AccountIds":[1]}}"#;
        assert_eq!(
            parse_answer(&service, 200, Some(numbers), numbers.len()),
            Err(ConsentFetchError::Garbage)
        );
        assert_eq!(
            parse_answer(&service, 200, None, service.max_bytes + 1),
            Err(ConsentFetchError::TooLarge)
        );
        assert_eq!(service.path_for("urn:a b"), "/consents/urn%3Aa%20b");
    }
}
