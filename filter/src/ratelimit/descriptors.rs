//! Building the `ShouldRateLimit` request: descriptors from the configured entries and the
//! request's facts, `hits_addend` from the risk band.
//!
//! Like Envoy's own rate-limit filter, a descriptor with an entry whose value the request does
//! not have (no subject, no route, no country header, an unauthenticated request's verdict)
//! is left out; when no descriptor is left, there is nothing to ask and no call is made.

use obguard_rls_proto::envoy::extensions::common::ratelimit::v3::{
    RateLimitDescriptor, rate_limit_descriptor,
};
use obguard_rls_proto::envoy::service::ratelimit::v3::RateLimitRequest;

use super::config::{Entry, EntryValue, RateLimitConfig, Source};
use crate::assess::Assessment;

/// What a descriptor entry can be built from.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts<'a> {
    /// The qualified client id, `<client id>@<namespace>` (the decision's `client_id`).
    pub client_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub route: Option<&'a str>,
    /// `None` for requests that were not authenticated (anonymous routes, pass-through).
    pub assessment: Option<Assessment>,
    /// The value of the configured `country_header`, if the request has it.
    pub country: Option<&'a str>,
    /// A valid `x-idempotency-key`.
    pub idempotency_key: Option<&'a str>,
    /// The token's consent id.
    pub consent_id: Option<&'a str>,
}

/// Longest value copied from a request header into a descriptor.
const MAX_HEADER_VALUE: usize = 256;

fn value_of<'a>(entry: &'a Entry, facts: &RequestFacts<'a>) -> Option<&'a str> {
    match &entry.value {
        EntryValue::Fixed(value) => Some(value),
        EntryValue::From(source) => match source {
            Source::ClientId => facts.client_id,
            Source::BareClientId => facts
                .client_id
                .and_then(crate::identify::split_qualified)
                .map(|(client, _)| client),
            Source::ClientNamespace => facts
                .client_id
                .and_then(crate::identify::split_qualified)
                .map(|(_, namespace)| namespace),
            Source::Subject => facts.subject,
            Source::Route => facts.route,
            Source::Verdict => facts.assessment.map(|a| a.verdict.as_str()),
            Source::RiskBand => facts.assessment.map(|a| a.risk_band.as_str()),
            Source::Country => facts
                .country
                .map(str::trim)
                .filter(|c| !c.is_empty() && c.len() <= MAX_HEADER_VALUE),
            Source::IdempotencyKey => facts.idempotency_key,
            Source::ConsentId => facts.consent_id,
        },
    }
}

/// The request to send, or `None` when no configured descriptor can be built.
pub fn build(config: &RateLimitConfig, facts: &RequestFacts<'_>) -> Option<RateLimitRequest> {
    let descriptors: Vec<RateLimitDescriptor> = config
        .descriptors
        .iter()
        .filter_map(|entries| {
            let entries = entries
                .iter()
                .map(|entry| {
                    value_of(entry, facts).map(|value| rate_limit_descriptor::Entry {
                        key: entry.key.clone(),
                        value: value.to_owned(),
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            Some(RateLimitDescriptor {
                entries,
                ..Default::default()
            })
        })
        .collect();
    if descriptors.is_empty() {
        return None;
    }
    Some(RateLimitRequest {
        domain: config.domain.clone(),
        descriptors,
        hits_addend: config.hits(facts.assessment.map(|a| a.risk_band)),
    })
}
