//! Obeying the rate-limit service: `OK` forwards (with the service's request headers),
//! `OVER_LIMIT` is a 429 with `Retry-After` and the IETF RateLimit headers
//! (draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy`, `RateLimit`), and every failure
//! (timeout, UNAVAILABLE, a reply that does not decode, any other gRPC error, a call the host
//! refused to start) becomes the route's failure decision.

use std::time::Duration;

use obguard_rls_proto::envoy::config::core::v3::HeaderValue;
use obguard_rls_proto::envoy::service::ratelimit::v3::RateLimitResponse;
use obguard_rls_proto::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, rate_limit::Unit,
};
use prost::Message;

use super::config::{FailureMode, RoutePolicy};
use crate::enforce::reply::{self, Denial, LocalReply};

/// Why a check failed. Each has a counter `obguard.ratelimit.failure.<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No answer within the route's `timeout_ms` (gRPC DEADLINE_EXCEEDED).
    Timeout,
    /// The service is down or unreachable (gRPC UNAVAILABLE before the timeout).
    Unavailable,
    /// A reply that is not a `RateLimitResponse`, or one whose `overall_code` is neither `OK`
    /// nor `OVER_LIMIT`.
    Malformed,
    /// Any other gRPC status.
    Error,
    /// The host refused to start the call (e.g. the cluster does not exist).
    Dispatch,
}

impl Failure {
    pub const ALL: [Failure; 5] = [
        Failure::Timeout,
        Failure::Unavailable,
        Failure::Malformed,
        Failure::Error,
        Failure::Dispatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Unavailable => "unavailable",
            Failure::Malformed => "malformed",
            Failure::Error => "error",
            Failure::Dispatch => "dispatch",
        }
    }

    /// From a gRPC status code other than OK. `timed_out`: the call lasted at least its
    /// timeout. Envoy reports its own timeout of a wasm gRPC call as UNAVAILABLE (measured
    /// with Envoy 1.40), so the elapsed time is what tells a timeout from a refused
    /// connection.
    pub fn from_grpc_status(code: u32, timed_out: bool) -> Failure {
        match code {
            4 => Failure::Timeout,
            _ if timed_out => Failure::Timeout,
            14 => Failure::Unavailable,
            _ => Failure::Error,
        }
    }
}

/// What the check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Ok,
    OverLimit,
    FailedOpen(Failure),
    FailedClosed(Failure),
}

impl Answer {
    /// The access-log value of `obguard.ratelimit`.
    pub fn log_value(self) -> String {
        match self {
            Answer::Ok => "ok".to_owned(),
            Answer::OverLimit => "over_limit".to_owned(),
            Answer::FailedOpen(failure) => format!("failed_open:{}", failure.as_str()),
            Answer::FailedClosed(failure) => format!("failed_closed:{}", failure.as_str()),
        }
    }
}

/// What the adapter does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Resume the request, setting `request_headers` upstream and `response_headers` on the
    /// response.
    Resume {
        request_headers: Vec<(String, String)>,
        response_headers: Vec<(String, String)>,
    },
    Reply(LocalReply),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Obeyed {
    pub answer: Answer,
    pub next: Next,
}

/// The decision for a call that ended with gRPC status `grpc_status` after `elapsed` and, when
/// the status is 0 (OK), the reply `body`.
pub fn obey(
    policy: &RoutePolicy,
    grpc_status: u32,
    elapsed: Duration,
    body: Option<&[u8]>,
    realm: &str,
    interaction_id: &str,
) -> Obeyed {
    if grpc_status != 0 {
        // Envoy's timer and the host clock read around the call differ by a little; a
        // refusal is immediate, so the last tenth of the timeout counts as timed out.
        let timed_out = elapsed >= policy.timeout.saturating_sub(policy.timeout / 10);
        return failed(
            policy,
            Failure::from_grpc_status(grpc_status, timed_out),
            realm,
            interaction_id,
        );
    }
    let Some(response) = body.and_then(|b| RateLimitResponse::decode(b).ok()) else {
        return failed(policy, Failure::Malformed, realm, interaction_id);
    };
    match Code::try_from(response.overall_code) {
        Ok(Code::Ok) => Obeyed {
            answer: Answer::Ok,
            next: Next::Resume {
                request_headers: sanitise(&response.request_headers_to_add, REQUEST_RESERVED),
                response_headers: sanitise(&response.response_headers_to_add, REPLY_RESERVED),
            },
        },
        Ok(Code::OverLimit) => Obeyed {
            answer: Answer::OverLimit,
            next: Next::Reply(over_limit(&response, realm, interaction_id)),
        },
        Ok(Code::Unknown) | Err(_) => failed(policy, Failure::Malformed, realm, interaction_id),
    }
}

/// The route's failure decision for `failure`.
pub fn failed(policy: &RoutePolicy, failure: Failure, realm: &str, interaction_id: &str) -> Obeyed {
    match policy.failure {
        FailureMode::FailOpen => Obeyed {
            answer: Answer::FailedOpen(failure),
            next: Next::Resume {
                request_headers: Vec::new(),
                response_headers: Vec::new(),
            },
        },
        FailureMode::FailClosed => Obeyed {
            answer: Answer::FailedClosed(failure),
            next: Next::Reply(reply::build(
                &Denial::RateLimitUnavailable {
                    status: policy.failure_status,
                },
                realm,
                interaction_id,
            )),
        },
    }
}

/// Headers the rate-limit service may not set on the request.
const REQUEST_RESERVED: &[&str] = &[
    "host",
    "authorization",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "x-fapi-interaction-id",
];

/// Headers of obguard's own replies that the service's `response_headers_to_add` cannot
/// replace.
const REPLY_RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "cache-control",
    "x-fapi-interaction-id",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
];

/// Valid, non-reserved headers from the service, names lower-cased. Anything else (pseudo
/// headers, bad names, values with control characters) is dropped.
fn sanitise(headers: &[HeaderValue], reserved: &[&str]) -> Vec<(String, String)> {
    let token_byte = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    headers
        .iter()
        .filter_map(|header| {
            let name = header.key.to_ascii_lowercase();
            let value = if header.value.is_empty() && !header.raw_value.is_empty() {
                String::from_utf8(header.raw_value.clone()).ok()?
            } else {
                header.value.clone()
            };
            let name_ok = !name.is_empty() && name.bytes().all(token_byte);
            let value_ok = value
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
            (name_ok && value_ok && !reserved.contains(&name.as_str())).then_some((name, value))
        })
        .collect()
}

fn unit_seconds(unit: i32) -> Option<u64> {
    match Unit::try_from(unit).ok()? {
        Unit::Second => Some(1),
        Unit::Minute => Some(60),
        Unit::Hour => Some(3_600),
        Unit::Day => Some(86_400),
        Unit::Week => Some(604_800),
        Unit::Month => Some(2_592_000),
        Unit::Year => Some(31_536_000),
        Unit::Unknown => None,
    }
}

/// Seconds until the status's window resets, rounded up.
fn reset_seconds(status: &DescriptorStatus) -> Option<u64> {
    let duration = status.duration_until_reset.as_ref()?;
    let seconds = u64::try_from(duration.seconds).ok()?;
    Some(seconds + u64::from(duration.nanos > 0))
}

/// An sf-string policy name: the limit's name when it is printable ASCII, else its position.
fn policy_name(index: usize, status: &DescriptorStatus) -> String {
    let name = status
        .current_limit
        .as_ref()
        .map(|limit| limit.name.as_str())
        .filter(|n| !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| (0x20..0x7f).contains(&b)));
    match name {
        Some(name) => name.replace('\\', "\\\\").replace('"', "\\\""),
        None => format!("descriptor-{index}"),
    }
}

/// `(RateLimit-Policy, RateLimit)` values for the statuses that carry a current limit.
pub fn ratelimit_headers(response: &RateLimitResponse) -> Option<(String, String)> {
    let mut policies = Vec::new();
    let mut limits = Vec::new();
    for (index, status) in response.statuses.iter().enumerate() {
        let Some(limit) = &status.current_limit else {
            continue;
        };
        let name = policy_name(index, status);
        let mut policy = format!("\"{name}\";q={}", limit.requests_per_unit);
        if let Some(window) = unit_seconds(limit.unit) {
            policy.push_str(&format!(";w={window}"));
        }
        policies.push(policy);
        let mut current = format!("\"{name}\";r={}", status.limit_remaining);
        if let Some(reset) = reset_seconds(status) {
            current.push_str(&format!(";t={reset}"));
        }
        limits.push(current);
    }
    if policies.is_empty() {
        return None;
    }
    Some((policies.join(", "), limits.join(", ")))
}

/// Seconds the client should wait: the longest reset among the descriptors over their limit,
/// else their window, else 1.
fn retry_after(response: &RateLimitResponse) -> u64 {
    let over = || {
        response
            .statuses
            .iter()
            .filter(|s| s.code == Code::OverLimit as i32)
    };
    over()
        .filter_map(reset_seconds)
        .max()
        .or_else(|| {
            over()
                .filter_map(|s| s.current_limit.as_ref().and_then(|l| unit_seconds(l.unit)))
                .max()
        })
        .unwrap_or(1)
        .max(1)
}

fn over_limit(response: &RateLimitResponse, realm: &str, interaction_id: &str) -> LocalReply {
    let mut reply = reply::build(&Denial::RateLimited, realm, interaction_id);
    reply
        .headers
        .push(("retry-after".to_owned(), retry_after(response).to_string()));
    if let Some((policy, current)) = ratelimit_headers(response) {
        reply.headers.push(("ratelimit-policy".to_owned(), policy));
        reply.headers.push(("ratelimit".to_owned(), current));
    }
    reply
        .headers
        .extend(sanitise(&response.response_headers_to_add, REPLY_RESERVED));
    reply
}
