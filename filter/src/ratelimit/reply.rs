//! Obeying the rate-limit service: `OK` forwards (with the service's request headers),
//! `OVER_LIMIT` is a 429 with `Retry-After` and the IETF RateLimit headers
//! (draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy`, `RateLimit`), and every failure
//! (timeout, UNAVAILABLE, a reply that does not decode, any other gRPC error, a call the host
//! refused to start) becomes the route's failure decision.
//!
//! The service's `request_headers_to_add` and `response_headers_to_add` are applied only for
//! names it may write ([`Reserved`]): never obguard's identity and verdict headers (in any
//! spelling), credentials, pseudo-headers, hop-by-hop and framing headers, the client-address
//! headers, method overrides or `x-envoy-*` on the request; never cookies, redirects,
//! challenges, security policies or CORS on the response. Dropped entries are reported in
//! [`Obeyed::dropped`] for the adapter to count and log.

use std::time::Duration;

use obguard_rls_proto::envoy::config::core::v3::HeaderValue;
use obguard_rls_proto::envoy::service::ratelimit::v3::RateLimitResponse;
use obguard_rls_proto::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, rate_limit::Unit,
};
use prost::Message;

use super::config::{FailureMode, RoutePolicy};
use crate::config::ConfigError;
use crate::enforce::reply::{self, Denial, LocalReply};
use crate::enforce::upstream::{HeaderPolicy, canonical, canonical_eq};

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
    /// Headers the service asked for that were not applied.
    pub dropped: Vec<Dropped>,
}

/// Which way a header from the service was meant to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `request_headers_to_add`: to the upstream.
    Request,
    /// `response_headers_to_add`: to the client.
    Response,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

/// A header from the rate-limit service that obguard did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub direction: Direction,
    /// Lower-cased; not header-safe names are shown escaped.
    pub name: String,
    /// `true`: the name is reserved; `false`: the name or value is not valid.
    pub reserved: bool,
}

/// The log line for dropped headers (`None` when nothing was dropped). Names only: values
/// may be secrets or garbage.
pub fn dropped_log_line(dropped: &[Dropped], cluster: &str) -> Option<String> {
    if dropped.is_empty() {
        return None;
    }
    let list: Vec<String> = dropped
        .iter()
        .map(|d| {
            format!(
                "{} {} ({})",
                d.direction.as_str(),
                d.name,
                if d.reserved { "reserved" } else { "invalid" }
            )
        })
        .collect();
    Some(format!(
        "obguard: rate-limit service on cluster {cluster} asked to set headers obguard does not let it write; dropped: {}",
        list.join(", ")
    ))
}

/// The decision for a call that ended with gRPC status `grpc_status` after `elapsed` and, when
/// the status is 0 (OK), the reply `body`.
pub fn obey(
    policy: &RoutePolicy,
    grpc_status: u32,
    elapsed: Duration,
    body: Option<&[u8]>,
    reserved: &Reserved,
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
    let mut dropped = Vec::new();
    match Code::try_from(response.overall_code) {
        Ok(Code::Ok) => {
            let request_headers = reserved.filter(
                Direction::Request,
                &response.request_headers_to_add,
                &mut dropped,
            );
            let response_headers = reserved.filter(
                Direction::Response,
                &response.response_headers_to_add,
                &mut dropped,
            );
            Obeyed {
                answer: Answer::Ok,
                next: Next::Resume {
                    request_headers,
                    response_headers,
                },
                dropped,
            }
        }
        Ok(Code::OverLimit) => {
            let mut reply = over_limit(&response, realm, interaction_id);
            reply.headers.extend(reserved.filter(
                Direction::Response,
                &response.response_headers_to_add,
                &mut dropped,
            ));
            Obeyed {
                answer: Answer::OverLimit,
                next: Next::Reply(reply),
                dropped,
            }
        }
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
            dropped: Vec::new(),
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
            dropped: Vec::new(),
        },
    }
}

/// Headers the rate-limit service may never set on the request to the upstream (compared in
/// canonical form: any case, `_` for `-`).
const REQUEST_RESERVED: &[&str] = &[
    // Routing, framing and hop-by-hop.
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    // Credentials.
    "authorization",
    "proxy-authorization",
    "cookie",
    // Correlation and the client's address, which upstreams trust from the proxy.
    "x-fapi-interaction-id",
    "x-request-id",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-fapi-customer-ip-address",
];

/// Prefixes reserved on the request: obguard's own headers, and Envoy's (`x-envoy-*`
/// request headers steer the router: retries, timeouts, upstream selection).
const REQUEST_RESERVED_PREFIXES: &[&str] = &["x-obguard-", "x-envoy-"];

/// Headers the service's `response_headers_to_add` may never set on the response (obguard's
/// replies and forwarded responses alike).
const RESPONSE_RESERVED: &[&str] = &[
    // Framing and obguard's own reply headers.
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "cache-control",
    "x-fapi-interaction-id",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    // State, redirects and challenges a rate limiter has no business setting.
    "set-cookie",
    "set-cookie2",
    "location",
    "content-location",
    "refresh",
    "www-authenticate",
    "proxy-authenticate",
    // Browser security policy.
    "strict-transport-security",
    "content-security-policy",
    "x-frame-options",
];

const RESPONSE_RESERVED_PREFIXES: &[&str] = &["x-obguard-", "access-control-"];

/// What the rate-limit service may not write, compiled once: the fixed lists above, every
/// header name obguard sets or strips (`headers`, any spelling), method overrides, and the
/// operator's `ratelimit.reserved_headers`.
#[derive(Debug, Default)]
pub struct Reserved {
    /// Canonical names reserved on the request beyond the fixed list.
    request: Vec<String>,
    /// Canonical names reserved on the response beyond the fixed list.
    response: Vec<String>,
}

impl Reserved {
    /// `extra` is `ratelimit.reserved_headers` (reserved both ways), checked to be header
    /// names.
    pub fn compile(
        path: &str,
        headers: &HeaderPolicy,
        extra: &[String],
    ) -> Result<Self, ConfigError> {
        let mut request: Vec<String> = headers.strip.iter().map(|n| canonical(n)).collect();
        request.extend(
            crate::authorise::method_override::HEADERS
                .iter()
                .map(|n| (*n).to_owned()),
        );
        let mut response = Vec::new();
        for (index, name) in extra.iter().enumerate() {
            let token_byte = |b: u8| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            };
            if name.is_empty() || !name.bytes().all(token_byte) {
                return Err(ConfigError::new(
                    format!("{path}[{index}]"),
                    "must be a lower-case HTTP header name",
                ));
            }
            request.push(canonical(name));
            response.push(canonical(name));
        }
        Ok(Self { request, response })
    }

    fn is_reserved(&self, direction: Direction, name: &str) -> bool {
        let (fixed, prefixes, extra) = match direction {
            Direction::Request => (REQUEST_RESERVED, REQUEST_RESERVED_PREFIXES, &self.request),
            Direction::Response => (
                RESPONSE_RESERVED,
                RESPONSE_RESERVED_PREFIXES,
                &self.response,
            ),
        };
        // Pseudo-headers (`:path`, `:authority`, `:status`) are never the service's.
        name.starts_with(':')
            || fixed.iter().any(|r| canonical_eq(name, r))
            || extra.iter().any(|r| canonical_eq(name, r))
            || prefixes.iter().any(|p| {
                name.get(..p.len())
                    .is_some_and(|start| canonical_eq(start, p))
            })
    }

    /// The service's headers that may be applied, names lower-cased; the others are
    /// appended to `dropped` (reserved names, and invalid names or values with control
    /// characters).
    fn filter(
        &self,
        direction: Direction,
        headers: &[HeaderValue],
        dropped: &mut Vec<Dropped>,
    ) -> Vec<(String, String)> {
        let token_byte = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        let mut kept = Vec::new();
        for header in headers {
            let name = header.key.to_ascii_lowercase();
            let value = if header.value.is_empty() && !header.raw_value.is_empty() {
                String::from_utf8(header.raw_value.clone()).ok()
            } else {
                Some(header.value.clone())
            };
            let shown = || name.escape_default().to_string();
            if self.is_reserved(direction, &name) {
                dropped.push(Dropped {
                    direction,
                    name: shown(),
                    reserved: true,
                });
                continue;
            }
            let name_ok = !name.is_empty() && name.bytes().all(token_byte);
            let value =
                value.filter(|v| v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)));
            match value {
                Some(value) if name_ok => kept.push((name, value)),
                _ => dropped.push(Dropped {
                    direction,
                    name: shown(),
                    reserved: false,
                }),
            }
        }
        kept
    }
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
}
