//! Counter ids, defined once per configuration so requests only increment.

use std::collections::HashMap;
use std::rc::Rc;

use crate::assess::Verdict;
use crate::assess::model::BaselineWrite;
use crate::assess::model_source::{REJECTION_REASONS, Role};
use crate::authorise::consent::{ConsentDenial, ConsentFetchError, ConsentSource, FetchedConsent};
use crate::authorise::fapi::FapiViolation;
use crate::config::FilterConfig;
use crate::host::{Host, HostExt, LogLevel};
use crate::identify::TokenError;
use crate::identify::binding::BindingError;
use crate::identify::cache::CacheLookup;
use crate::identify::host_crypto::VerifyPath;
use crate::identify::jwks_remote::FetchError;
use crate::pipeline::Decision;
use crate::polled::PollError;
use crate::ratelimit::reply::{Answer, Failure};
use crate::respond::config::PlaybookAction;
use crate::respond::events::Dropped;
use crate::telemetry::{Outcome, metric, request_invalid_reasons};

pub struct Metrics {
    host: Rc<dyn Host>,
    requests: HashMap<&'static str, Option<u32>>,
    token_invalid: HashMap<&'static str, Option<u32>>,
    request_invalid: HashMap<&'static str, Option<u32>>,
    scope_denied: HashMap<String, Option<u32>>,
    cache_hit: Option<u32>,
    cache_miss: Option<u32>,
    verified_host: Option<u32>,
    verified_wasm: Option<u32>,
    verified_jwt_authn: Option<u32>,
    jwks_fetched: Option<u32>,
    jwks_failed: HashMap<&'static str, Option<u32>>,
    jwks_refetch_requested: Option<u32>,
    jwks_refetch_suppressed: Option<u32>,
    jwks_age: Option<u32>,
    verdicts: HashMap<&'static str, Option<u32>>,
    baseline_writes: HashMap<&'static str, Option<u32>>,
    ratelimit_ok: Option<u32>,
    ratelimit_over_limit: Option<u32>,
    ratelimit_failed_open: Option<u32>,
    ratelimit_failed_closed: Option<u32>,
    ratelimit_failure: HashMap<&'static str, Option<u32>>,
    ratelimit_headers_dropped: Option<u32>,
    /// Model-source counters by full name (polls and swaps are rare: no hot path here).
    model_events: HashMap<String, Option<u32>>,
    model_unavailable: Option<u32>,
    host_refused: Option<u32>,
    shadow_verdicts: HashMap<&'static str, Option<u32>>,
    /// By [`crate::rules::RULE_NAMES`] index.
    rule_hits: [Option<u32>; 2],
    /// `stored`, `slot_taken`, `lost`.
    rule_state: [Option<u32>; 3],
    /// Open Banking profile counters (consent, sender constraint, FAPI) by full name.
    profile: HashMap<String, Option<u32>>,
    /// Automated-response and threat-intelligence counters and gauges by full name (events,
    /// containment, feeds: rare or per-feed, so looked up by name).
    response: HashMap<String, Option<u32>>,
    /// Feed names by index (threat intelligence configured).
    intel_feeds: Option<Vec<String>>,
}

impl Metrics {
    pub fn define(host: Rc<dyn Host>, config: &FilterConfig) -> Self {
        let h = host.as_ref();
        let mut metrics = Metrics {
            cache_hit: h.define_counter(metric::CACHE_HIT),
            cache_miss: h.define_counter(metric::CACHE_MISS),
            verified_host: h.define_counter(&metric::signature_checks(VerifyPath::Host)),
            verified_wasm: h.define_counter(&metric::signature_checks(VerifyPath::Wasm)),
            verified_jwt_authn: h.define_counter(&metric::signature_checks(VerifyPath::JwtAuthn)),
            requests: HashMap::new(),
            token_invalid: HashMap::new(),
            request_invalid: HashMap::new(),
            scope_denied: HashMap::new(),
            jwks_fetched: None,
            jwks_failed: HashMap::new(),
            jwks_refetch_requested: None,
            jwks_refetch_suppressed: None,
            jwks_age: None,
            verdicts: HashMap::new(),
            baseline_writes: HashMap::new(),
            ratelimit_ok: None,
            ratelimit_over_limit: None,
            ratelimit_failed_open: None,
            ratelimit_failed_closed: None,
            ratelimit_headers_dropped: None,
            ratelimit_failure: HashMap::new(),
            model_events: HashMap::new(),
            model_unavailable: None,
            host_refused: h.define_counter(metric::HOST_REFUSED),
            shadow_verdicts: HashMap::new(),
            rule_hits: [None; 2],
            rule_state: [None; 3],
            profile: HashMap::new(),
            response: HashMap::new(),
            intel_feeds: config
                .threat_intel
                .as_ref()
                .map(|t| t.feeds.iter().map(|f| f.name.clone()).collect()),
            host: host.clone(),
        };
        let (counters, gauges) = response_metric_names(config);
        for name in counters {
            let id = h.define_counter(&name);
            metrics.response.insert(name, id);
        }
        for name in gauges {
            let id = h.define_gauge(&name);
            metrics.response.insert(name, id);
        }
        for name in profile_metric_names(config) {
            let id = h.define_counter(&name);
            metrics.profile.insert(name, id);
        }
        if config.issuers.iter().any(|i| i.remote.is_some()) {
            metrics.jwks_fetched = h.define_counter(metric::JWKS_FETCHED);
            metrics.jwks_refetch_requested = h.define_counter(metric::JWKS_REFETCH_REQUESTED);
            metrics.jwks_refetch_suppressed = h.define_counter(metric::JWKS_REFETCH_SUPPRESSED);
            metrics.jwks_age = h.define_gauge(metric::JWKS_AGE);
            for err in FetchError::ALL {
                metrics.jwks_failed.insert(
                    err.reason(),
                    h.define_counter(&metric::jwks_fetch_failed(err.reason())),
                );
            }
        }
        if config.ratelimit.is_some() {
            metrics.ratelimit_ok = h.define_counter(metric::RATELIMIT_OK);
            metrics.ratelimit_over_limit = h.define_counter(metric::RATELIMIT_OVER_LIMIT);
            metrics.ratelimit_failed_open = h.define_counter(metric::RATELIMIT_FAILED_OPEN);
            metrics.ratelimit_failed_closed = h.define_counter(metric::RATELIMIT_FAILED_CLOSED);
            metrics.ratelimit_headers_dropped = h.define_counter(metric::RATELIMIT_HEADERS_DROPPED);
            for failure in Failure::ALL {
                metrics.ratelimit_failure.insert(
                    failure.as_str(),
                    h.define_counter(&metric::ratelimit_failure(failure)),
                );
            }
        }
        if let Some(stage) = &config.model {
            metrics.model_unavailable = h.define_counter(metric::MODEL_UNAVAILABLE);
            let mut roles = vec![Role::Primary];
            if stage.shadow_model.is_some() {
                roles.push(Role::Shadow);
            }
            for role in roles {
                let role = role.as_str();
                let mut names = vec![
                    metric::model_swapped(role),
                    metric::model_fetched(role),
                    metric::model_not_modified(role),
                ];
                names.extend(
                    REJECTION_REASONS
                        .iter()
                        .map(|reason| metric::model_rejected(role, reason)),
                );
                names.extend(
                    MODEL_FETCH_FAILURES
                        .iter()
                        .map(|reason| metric::model_fetch_failed(role, reason)),
                );
                for name in names {
                    let id = h.define_counter(&name);
                    metrics.model_events.insert(name, id);
                }
            }
            if stage.shadow_model.is_some() {
                for verdict in [
                    Verdict::Allow,
                    Verdict::StepUp,
                    Verdict::Throttle,
                    Verdict::Block,
                ] {
                    metrics.shadow_verdicts.insert(
                        verdict.as_str(),
                        h.define_counter(&metric::shadow_verdict(verdict.as_str())),
                    );
                }
            }
            for fate in [
                BaselineWrite::Stored,
                BaselineWrite::SlotTaken,
                BaselineWrite::Lost,
            ] {
                metrics.baseline_writes.insert(
                    fate.as_str(),
                    h.define_counter(&metric::baseline_write(fate.as_str())),
                );
            }
            for verdict in [
                Verdict::Allow,
                Verdict::StepUp,
                Verdict::Throttle,
                Verdict::Block,
            ] {
                metrics.verdicts.insert(
                    verdict.as_str(),
                    h.define_counter(&metric::verdict(verdict.as_str())),
                );
            }
        }
        if config.rules.is_some() {
            for (id, name) in metrics.rule_hits.iter_mut().zip(metric::RULES_HIT) {
                *id = h.define_counter(name);
            }
            for (id, name) in metrics.rule_state.iter_mut().zip(metric::RULES_STATE) {
                *id = h.define_counter(name);
            }
        }
        for outcome in Outcome::ALL {
            metrics.requests.insert(
                outcome.as_str(),
                h.define_counter(&metric::requests(outcome)),
            );
        }
        for error in TokenError::ALL {
            metrics.token_invalid.insert(
                error.reason(),
                h.define_counter(&metric::token_invalid(error)),
            );
        }
        for reason in request_invalid_reasons() {
            metrics
                .request_invalid
                .insert(reason, h.define_counter(&metric::request_invalid(reason)));
        }
        for name in config.routes.names() {
            metrics.scope_denied.insert(
                name.to_owned(),
                h.define_counter(&metric::scope_denied(name)),
            );
        }
        metrics
    }

    /// Everything about a finished decision.
    pub fn record(&self, decision: &Decision<'_>) {
        self.record_outcome(decision.outcome);
        self.record_details(decision);
    }

    /// `requests.<outcome>`: once per request, when its outcome is final.
    pub fn record_outcome(&self, outcome: Outcome) {
        self.host
            .increment(self.requests.get(outcome.as_str()).copied().flatten());
    }

    pub fn record_ratelimit(&self, answer: Answer) {
        match answer {
            Answer::Ok => self.host.increment(self.ratelimit_ok),
            Answer::OverLimit => self.host.increment(self.ratelimit_over_limit),
            Answer::FailedOpen(failure) | Answer::FailedClosed(failure) => {
                self.host.increment(
                    self.ratelimit_failure
                        .get(failure.as_str())
                        .copied()
                        .flatten(),
                );
                self.host
                    .increment(if matches!(answer, Answer::FailedOpen(_)) {
                        self.ratelimit_failed_open
                    } else {
                        self.ratelimit_failed_closed
                    });
            }
        }
    }

    /// Headers from a rate-limit answer that were not applied.
    pub fn ratelimit_headers_dropped(&self, count: usize) {
        for _ in 0..count {
            self.host.increment(self.ratelimit_headers_dropped);
        }
    }

    /// Adds `delta` to a response or feed counter (defined at configure; unknown names are
    /// ignored).
    pub fn count(&self, name: &str, delta: usize) {
        if delta == 0 {
            return;
        }
        if let Some(Some(id)) = self.response.get(name) {
            let delta = i64::try_from(delta).unwrap_or(i64::MAX);
            let _ = self.host.increment_metric(*id, delta);
        }
    }

    /// Sets a response or feed gauge.
    pub fn gauge(&self, name: &str, value: usize) {
        let value = u64::try_from(value).unwrap_or(u64::MAX);
        self.host
            .record(self.response.get(name).copied().flatten(), value);
    }

    fn profile_event(&self, name: &str) {
        self.host
            .increment(self.profile.get(name).copied().flatten());
    }

    /// A consent-service answer, or why there was none.
    pub fn record_consent_fetch(&self, answer: &FetchedConsent) {
        match answer {
            Ok(_) => self.profile_event(&metric::consent_source(ConsentSource::Fetched.as_str())),
            Err(err) => self.profile_event(&metric::consent_fetch_failed(err.reason())),
        }
    }

    /// Per-reason counters of a decision (everything but `requests.<outcome>`).
    pub fn record_details(&self, decision: &Decision<'_>) {
        let trace = &decision.trace;
        if let Some(source) = trace.consent.filter(|s| *s != ConsentSource::Fetched) {
            self.profile_event(&metric::consent_source(source.as_str()));
        }
        if let Some(kind) = trace.sender_constraint {
            self.profile_event(&metric::sender_constraint_verified(kind));
        }
        if let Some(reason) = trace.fapi_logged {
            self.profile_event(&metric::fapi_logged(reason));
        }
        if let Some(intel) = &self.intel_feeds {
            for hit in &trace.intel {
                if let Some(name) = intel.get(hit.feed) {
                    let action = match hit.action {
                        crate::intel::config::FeedAction::Deny => "denied",
                        crate::intel::config::FeedAction::Watch => "watched",
                    };
                    self.count(&metric::intel_hits(name, action), 1);
                }
            }
        }
        if let Some(hit) = trace.containment {
            let kind = if hit.kind.is_revocation() {
                "revocation"
            } else {
                "quarantine"
            };
            self.count(&metric::containment_hits(kind), 1);
        }
        if let Some(reason) = decision.reason {
            match decision.outcome {
                Outcome::ConsentDenied => self.profile_event(&metric::consent_denied(reason)),
                Outcome::InvalidToken if trace.token_error.is_none() => {
                    self.profile_event(&metric::sender_constraint_refused(reason));
                }
                _ => {}
            }
        }
        match decision.trace.cache {
            CacheLookup::Hit => self.host.increment(self.cache_hit),
            CacheLookup::Miss => self.host.increment(self.cache_miss),
            CacheLookup::Disabled => {}
        }
        match decision.trace.verified_by {
            Some(VerifyPath::Host) => self.host.increment(self.verified_host),
            Some(VerifyPath::Wasm) => self.host.increment(self.verified_wasm),
            Some(VerifyPath::JwtAuthn) => self.host.increment(self.verified_jwt_authn),
            None => {}
        }
        // Unavailable keys are the IdP's failure, counted as `requests.idp_unavailable`.
        if let Some(error) = decision
            .trace
            .token_error
            .filter(|e| *e != TokenError::KeysUnavailable)
        {
            self.host
                .increment(self.token_invalid.get(error.reason()).copied().flatten());
        }
        match decision.outcome {
            Outcome::InvalidRequest => {
                if let Some(reason) = decision.reason {
                    self.host
                        .increment(self.request_invalid.get(reason).copied().flatten());
                }
            }
            Outcome::InsufficientScope => {
                if let Some(route) = decision.route {
                    self.host
                        .increment(self.scope_denied.get(route).copied().flatten());
                }
            }
            _ => {}
        }
    }
}

impl Metrics {
    pub fn jwks_fetched(&self) {
        self.host.increment(self.jwks_fetched);
    }

    pub fn jwks_fetch_failed(&self, err: FetchError) {
        self.host
            .increment(self.jwks_failed.get(err.reason()).copied().flatten());
    }

    pub fn jwks_refetch_requested(&self) {
        self.host.increment(self.jwks_refetch_requested);
    }

    pub fn jwks_refetch_suppressed(&self) {
        self.host.increment(self.jwks_refetch_suppressed);
    }

    pub fn jwks_age(&self, seconds: u64) {
        self.host.record(self.jwks_age, seconds);
    }
}

/// In [`metric::RULES_STATE`] order.
const RULE_STATE_FATES: [BaselineWrite; 3] = [
    BaselineWrite::Stored,
    BaselineWrite::SlotTaken,
    BaselineWrite::Lost,
];

/// `model.<role>.fetch_failed.<reason>` reasons.
pub const MODEL_FETCH_FAILURES: [&str; 5] =
    ["unreachable", "status", "too_large", "dispatch", "store"];

impl Metrics {
    fn model_event(&self, name: &str) {
        self.host
            .increment(self.model_events.get(name).copied().flatten());
    }

    pub fn model_swapped(&self, role: Role) {
        self.model_event(&metric::model_swapped(role.as_str()));
    }

    pub fn model_fetched(&self, role: Role) {
        self.model_event(&metric::model_fetched(role.as_str()));
    }

    pub fn model_not_modified(&self, role: Role) {
        self.model_event(&metric::model_not_modified(role.as_str()));
    }

    pub fn model_rejected(&self, role: Role, reason: &str) {
        self.model_event(&metric::model_rejected(role.as_str(), reason));
    }

    pub fn model_fetch_failed(&self, role: Role, reason: &str) {
        self.model_event(&metric::model_fetch_failed(role.as_str(), reason));
    }

    /// A request refused because the host failed it (see [`metric::HOST_REFUSED`]).
    pub fn host_refused(&self) {
        self.host.increment(self.host_refused);
    }

    pub fn model_unavailable(&self) {
        self.host.increment(self.model_unavailable);
    }

    pub fn record_shadow_verdict(&self, verdict: Verdict) {
        self.host.increment(
            self.shadow_verdicts
                .get(verdict.as_str())
                .copied()
                .flatten(),
        );
    }
}

impl Metrics {
    /// The model's verdict, counted in shadow mode too.
    pub fn record_verdict(&self, verdict: Verdict) {
        self.host
            .increment(self.verdicts.get(verdict.as_str()).copied().flatten());
    }

    /// A baseline update's fate; a lost one is also logged (it means shared-data contention
    /// or failure, worth seeing).
    pub fn record_baseline(&self, fate: BaselineWrite) {
        self.host
            .increment(self.baseline_writes.get(fate.as_str()).copied().flatten());
        if fate == BaselineWrite::Lost {
            self.host.log(
                LogLevel::Warn,
                "obguard: a client baseline update was lost (shared data contention or failure); the verdict stands",
            );
        }
    }
}

impl Metrics {
    /// A rule check: its hit (by rule) and its state update's fate; a lost update is also
    /// logged, like a lost baseline update.
    pub fn record_rules(&self, check: &crate::rules::RuleCheck) {
        if let Some(hit) = &check.hit {
            let at = crate::rules::RULE_NAMES.iter().position(|r| *r == hit.rule);
            self.host
                .increment(at.and_then(|i| self.rule_hits.get(i)).copied().flatten());
        }
        if let Some(fate) = check.state {
            let at = RULE_STATE_FATES.iter().position(|f| *f == fate);
            self.host
                .increment(at.and_then(|i| self.rule_state.get(i)).copied().flatten());
            if fate == BaselineWrite::Lost {
                self.host.log(
                    LogLevel::Warn,
                    "obguard: a rule state update was lost (shared data contention or failure); the check stands",
                );
            }
        }
    }
}

/// The Open Banking profile's counters, defined only for what the configuration uses.
fn profile_metric_names(config: &FilterConfig) -> Vec<String> {
    let mut names = Vec::new();
    if config.routes.any_consent_bound() {
        names.extend(ConsentDenial::ALL.map(|d| metric::consent_denied(d.reason())));
        names.extend(
            [
                ConsentSource::Claim,
                ConsentSource::Cache,
                ConsentSource::Fetched,
                ConsentSource::Stale,
            ]
            .map(|s| metric::consent_source(s.as_str())),
        );
        if config.consent_service.is_some() {
            names.extend(ConsentFetchError::ALL.map(|e| metric::consent_fetch_failed(e.reason())));
        }
    }
    names.extend(BindingError::all_reasons().map(metric::sender_constraint_refused));
    names.extend(
        ["mtls", "dpop", "mtls_dpop"]
            .into_iter()
            .map(metric::sender_constraint_verified),
    );
    if config.fapi.on_invalid.is_some() {
        names.extend(FapiViolation::ALL.map(|v| metric::fapi_logged(v.reason())));
    }
    names
}

/// Counters and gauges of the automated response (events, containment) and the
/// threat-intelligence feeds, defined only for what the configuration uses.
fn response_metric_names(config: &FilterConfig) -> (Vec<String>, Vec<String>) {
    let mut counters = Vec::new();
    let mut gauges = Vec::new();
    if config.events.is_some() {
        counters.extend(
            [
                metric::EVENTS_QUEUED,
                metric::EVENTS_SENT,
                metric::EVENTS_RETRIED,
            ]
            .map(str::to_owned),
        );
        counters.extend(
            [Dropped::QueueFull, Dropped::Undeliverable]
                .map(|d| metric::events_dropped(d.as_str())),
        );
        counters.extend(metric::EVENT_FAILURES.map(metric::events_failed));
        gauges.push(metric::EVENTS_QUEUE_DEPTH.to_owned());
    }
    if let Some(containment) = &config.containment {
        counters.extend(
            [
                PlaybookAction::QuarantineClient,
                PlaybookAction::QuarantineSubject,
                PlaybookAction::RevokeToken,
            ]
            .map(|a| metric::containment_added(a.as_str())),
        );
        counters.extend(["quarantine", "revocation"].map(metric::containment_hits));
        gauges.extend(["quarantine", "revocation"].map(metric::containment_active));
        counters.extend(
            [
                metric::CONTAINMENT_EXPIRED,
                metric::CONTAINMENT_EVICTED,
                metric::CONTAINMENT_NOT_COUNTED,
                metric::CONTAINMENT_LOST,
            ]
            .map(str::to_owned),
        );
        counters.extend(
            containment
                .playbooks
                .iter()
                .map(|p| metric::playbook_triggered(&p.name)),
        );
        if containment.list.is_some() {
            counters.extend(["loaded", "not_modified", "stale"].map(metric::containment_list));
            counters.extend(PollError::ALL.map(|e| metric::containment_list_failed(e.reason())));
        }
    }
    if let Some(intel) = &config.threat_intel {
        for feed in &intel.feeds {
            let name = feed.name.as_str();
            counters.extend(
                ["denied", "watched", "loaded", "not_modified", "stale"]
                    .map(|event| metric::intel_feed(name, event)),
            );
            counters.extend(PollError::ALL.map(|e| metric::intel_fetch_failed(name, e.reason())));
            gauges.push(metric::intel_entries(name));
        }
    }
    (counters, gauges)
}
