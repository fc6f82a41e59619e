//! Counter ids, defined once per configuration so requests only increment.

use std::collections::HashMap;

use super::host;
use crate::config::FilterConfig;
use crate::identify::TokenError;
use crate::identify::cache::CacheLookup;
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
    ratelimit_ok: Option<u32>,
    ratelimit_over_limit: Option<u32>,
    ratelimit_failed_open: Option<u32>,
    ratelimit_failed_closed: Option<u32>,
    ratelimit_failure: HashMap<&'static str, Option<u32>>,
}

impl Metrics {
    pub fn define(config: &FilterConfig) -> Self {
        let mut metrics = Metrics {
            cache_hit: host::define_counter(metric::CACHE_HIT),
            cache_miss: host::define_counter(metric::CACHE_MISS),
            ..Default::default()
        };
        if config.ratelimit.is_some() {
            metrics.ratelimit_ok = host::define_counter(metric::RATELIMIT_OK);
            metrics.ratelimit_over_limit = host::define_counter(metric::RATELIMIT_OVER_LIMIT);
            metrics.ratelimit_failed_open = host::define_counter(metric::RATELIMIT_FAILED_OPEN);
            metrics.ratelimit_failed_closed = host::define_counter(metric::RATELIMIT_FAILED_CLOSED);
            for failure in Failure::ALL {
                metrics.ratelimit_failure.insert(
                    failure.as_str(),
                    host::define_counter(&metric::ratelimit_failure(failure)),
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

    /// Per-reason counters of a decision (everything but `requests.<outcome>`).
    pub fn record_details(&self, decision: &Decision<'_>) {
        match decision.cache {
            CacheLookup::Hit => host::increment(self.cache_hit),
            CacheLookup::Miss => host::increment(self.cache_miss),
            CacheLookup::Disabled => {}
        }
        if let Some(error) = decision.token_error {
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
