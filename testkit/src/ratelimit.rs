//! Rate-limit service messages for tests: descriptors as `(key, value)` lists, and the
//! pieces of a `RateLimitResponse`.

use obguard_rls_proto::envoy::config::core::v3::HeaderValue;
use obguard_rls_proto::envoy::service::ratelimit::v3::RateLimitRequest;
use obguard_rls_proto::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, RateLimit, rate_limit::Unit,
};

/// A request's descriptors, each as its `(key, value)` entries.
pub fn descriptor_entries(request: &RateLimitRequest) -> Vec<Vec<(String, String)>> {
    request
        .descriptors
        .iter()
        .map(|d| {
            d.entries
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect()
        })
        .collect()
}

/// Expected descriptors written as literals, in [`descriptor_entries`]'s form.
pub fn pairs(list: &[&[(&str, &str)]]) -> Vec<Vec<(String, String)>> {
    list.iter()
        .map(|d| {
            d.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        })
        .collect()
}

/// A header the service asks to add.
pub fn header_value(key: &str, value: &str) -> HeaderValue {
    HeaderValue {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

/// A descriptor's status under limit `name` (`requests_per_unit` per `unit`), with
/// `remaining` requests left and the window resetting in `reset`.
pub fn descriptor_status(
    code: Code,
    (name, requests_per_unit, unit): (&str, u32, Unit),
    remaining: u32,
    reset: prost_types::Duration,
) -> DescriptorStatus {
    DescriptorStatus {
        code: code as i32,
        current_limit: Some(RateLimit {
            name: name.into(),
            requests_per_unit,
            unit: unit as i32,
        }),
        limit_remaining: remaining,
        duration_until_reset: Some(reset),
        ..Default::default()
    }
}

/// What the rate-limit stage reads of a pipeline decision, plus the request's `country`.
pub fn request_facts<'d>(
    decision: &'d obguard::pipeline::Decision<'_>,
    country: Option<&'d str>,
) -> obguard::ratelimit::RequestFacts<'d> {
    obguard::ratelimit::RequestFacts {
        client_id: decision.client_id.as_deref(),
        subject: decision.subject.as_deref(),
        route: decision.route,
        assessment: decision.assessment,
        country,
        ..Default::default()
    }
}
