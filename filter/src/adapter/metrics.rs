//! Counter ids, defined once per configuration so requests only increment.

use std::collections::HashMap;

use super::host;
use crate::assess::Verdict;
use crate::assess::model::BaselineWrite;
use crate::assess::model_source::{REJECTION_REASONS, Role};
use crate::config::FilterConfig;
use crate::identify::TokenError;
use crate::identify::cache::CacheLookup;
use crate::identify::host_crypto::VerifyPath;
use crate::identify::jwks_remote::FetchError;
use crate::pipeline::Decision;
use crate::ratelimit::reply::{Answer, Failure};
use crate::telemetry::{Outcome, metric, request_invalid_reasons};

#[derive(Default)]
pub struct Metrics {
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
    shadow_verdicts: HashMap<&'static str, Option<u32>>,
}

impl Metrics {
    pub fn define(config: &FilterConfig) -> Self {
        let mut metrics = Metrics {
            cache_hit: host::define_counter(metric::CACHE_HIT),
            cache_miss: host::define_counter(metric::CACHE_MISS),
            verified_host: host::define_counter(&metric::signature_checks(VerifyPath::Host)),
            verified_wasm: host::define_counter(&metric::signature_checks(VerifyPath::Wasm)),
            verified_jwt_authn: host::define_counter(&metric::signature_checks(
                VerifyPath::JwtAuthn,
            )),
            ..Default::default()
        };
        if config.issuers.iter().any(|i| i.remote.is_some()) {
            metrics.jwks_fetched = host::define_counter(metric::JWKS_FETCHED);
            metrics.jwks_refetch_requested = host::define_counter(metric::JWKS_REFETCH_REQUESTED);
            metrics.jwks_refetch_suppressed = host::define_counter(metric::JWKS_REFETCH_SUPPRESSED);
            metrics.jwks_age = host::define_gauge(metric::JWKS_AGE);
            for err in FetchError::ALL {
                metrics.jwks_failed.insert(
                    err.reason(),
                    host::define_counter(&metric::jwks_fetch_failed(err.reason())),
                );
            }
        }
        if config.ratelimit.is_some() {
            metrics.ratelimit_ok = host::define_counter(metric::RATELIMIT_OK);
            metrics.ratelimit_over_limit = host::define_counter(metric::RATELIMIT_OVER_LIMIT);
            metrics.ratelimit_failed_open = host::define_counter(metric::RATELIMIT_FAILED_OPEN);
            metrics.ratelimit_failed_closed = host::define_counter(metric::RATELIMIT_FAILED_CLOSED);
            metrics.ratelimit_headers_dropped =
                host::define_counter(metric::RATELIMIT_HEADERS_DROPPED);
            for failure in Failure::ALL {
                metrics.ratelimit_failure.insert(
                    failure.as_str(),
                    host::define_counter(&metric::ratelimit_failure(failure)),
                );
            }
        }
        if let Some(stage) = &config.model {
            metrics.model_unavailable = host::define_counter(metric::MODEL_UNAVAILABLE);
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
                    let id = host::define_counter(&name);
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
                        host::define_counter(&metric::shadow_verdict(verdict.as_str())),
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
                    host::define_counter(&metric::baseline_write(fate.as_str())),
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
                    host::define_counter(&metric::verdict(verdict.as_str())),
                );
            }
        }
        for outcome in Outcome::ALL {
            metrics.requests.insert(
                outcome.as_str(),
                host::define_counter(&metric::requests(outcome)),
            );
        }
        for error in TokenError::ALL {
            metrics.token_invalid.insert(
                error.reason(),
                host::define_counter(&metric::token_invalid(error)),
            );
        }
        for reason in request_invalid_reasons() {
            metrics.request_invalid.insert(
                reason,
                host::define_counter(&metric::request_invalid(reason)),
            );
        }
        for name in config.routes.names() {
            metrics.scope_denied.insert(
                name.to_owned(),
                host::define_counter(&metric::scope_denied(name)),
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
        host::increment(self.requests.get(outcome.as_str()).copied().flatten());
    }

    pub fn record_ratelimit(&self, answer: Answer) {
        match answer {
            Answer::Ok => host::increment(self.ratelimit_ok),
            Answer::OverLimit => host::increment(self.ratelimit_over_limit),
            Answer::FailedOpen(failure) | Answer::FailedClosed(failure) => {
                host::increment(
                    self.ratelimit_failure
                        .get(failure.as_str())
                        .copied()
                        .flatten(),
                );
                host::increment(if matches!(answer, Answer::FailedOpen(_)) {
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
            host::increment(self.ratelimit_headers_dropped);
        }
    }

    /// Per-reason counters of a decision (everything but `requests.<outcome>`).
    pub fn record_details(&self, decision: &Decision<'_>) {
        match decision.cache {
            CacheLookup::Hit => host::increment(self.cache_hit),
            CacheLookup::Miss => host::increment(self.cache_miss),
            CacheLookup::Disabled => {}
        }
        match decision.verified_by {
            Some(VerifyPath::Host) => host::increment(self.verified_host),
            Some(VerifyPath::Wasm) => host::increment(self.verified_wasm),
            Some(VerifyPath::JwtAuthn) => host::increment(self.verified_jwt_authn),
            None => {}
        }
        // Unavailable keys are the IdP's failure, counted as `requests.idp_unavailable`.
        if let Some(error) = decision
            .token_error
            .filter(|e| *e != TokenError::KeysUnavailable)
        {
            host::increment(self.token_invalid.get(error.reason()).copied().flatten());
        }
        match decision.outcome {
            Outcome::InvalidRequest => {
                if let Some(reason) = decision.reason {
                    host::increment(self.request_invalid.get(reason).copied().flatten());
                }
            }
            Outcome::InsufficientScope => {
                if let Some(route) = decision.route {
                    host::increment(self.scope_denied.get(route).copied().flatten());
                }
            }
            _ => {}
        }
    }
}

impl Metrics {
    pub fn jwks_fetched(&self) {
        host::increment(self.jwks_fetched);
    }

    pub fn jwks_fetch_failed(&self, err: FetchError) {
        host::increment(self.jwks_failed.get(err.reason()).copied().flatten());
    }

    pub fn jwks_refetch_requested(&self) {
        host::increment(self.jwks_refetch_requested);
    }

    pub fn jwks_refetch_suppressed(&self) {
        host::increment(self.jwks_refetch_suppressed);
    }

    pub fn jwks_age(&self, seconds: u64) {
        host::record(self.jwks_age, seconds);
    }
}

/// `model.<role>.fetch_failed.<reason>` reasons.
pub const MODEL_FETCH_FAILURES: [&str; 5] =
    ["unreachable", "status", "too_large", "dispatch", "store"];

impl Metrics {
    fn model_event(&self, name: &str) {
        host::increment(self.model_events.get(name).copied().flatten());
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

    pub fn model_unavailable(&self) {
        host::increment(self.model_unavailable);
    }

    pub fn record_shadow_verdict(&self, verdict: Verdict) {
        host::increment(
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
        host::increment(self.verdicts.get(verdict.as_str()).copied().flatten());
    }

    /// A baseline update's fate; a lost one is also logged (it means shared-data contention
    /// or failure, worth seeing).
    pub fn record_baseline(&self, fate: BaselineWrite) {
        host::increment(self.baseline_writes.get(fate.as_str()).copied().flatten());
        if fate == BaselineWrite::Lost {
            host::log(
                proxy_wasm::types::LogLevel::Warn,
                "obguard: a client baseline update was lost (shared data contention or failure); the verdict stands",
            );
        }
    }
}
