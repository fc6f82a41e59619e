//! Rate limit (stage 10 of [`crate::pipeline`]): ask Envoy's rate-limit service
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`) about a request the
//! pipeline would forward, and obey the answer. Pure: [`plan`] says whether and what to ask,
//! [`reply::obey`] / [`reply::failed`] turn the answer (or its absence) into the next step.
//! The runtime only dispatches the call and resumes or replies.
//!
//! * [`config`]      — the `ratelimit` configuration section and per-route policies.
//! * [`descriptors`] — descriptors and `hits_addend` from the request's facts.
//! * [`reply`]       — OK / OVER_LIMIT / failures → resume or a local reply.

pub mod config;
pub mod descriptors;
pub mod reply;

use prost::Message;

use config::{CallPolicy, RateLimitConfig, RoutePolicy};
pub use descriptors::RequestFacts;

/// A `ShouldRateLimit` call to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The serialised `RateLimitRequest`.
    pub message: Vec<u8>,
    /// The route's timeout and failure decision.
    pub policy: RoutePolicy,
}

/// Whether to ask the rate-limit service about this request, and what. `None` when the
/// route's `call` policy says no, or when no descriptor can be built from the request.
pub fn plan(config: &RateLimitConfig, facts: &RequestFacts<'_>) -> Option<Call> {
    let policy = config.policy(facts.route);
    let wanted = match policy.call {
        CallPolicy::Always => true,
        CallPolicy::NonAllow => facts
            .assessment
            .is_some_and(|a| a.verdict != crate::assess::Verdict::Allow),
        CallPolicy::Never => false,
    };
    if !wanted {
        return None;
    }
    let request = descriptors::build(config, facts)?;
    Some(Call {
        message: request.encode_to_vec(),
        policy,
    })
}
