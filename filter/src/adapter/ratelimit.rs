//! Glue for the rate-limit stage: start the `ShouldRateLimit` call, read its reply. What to
//! ask and what the answer means are decided in [`crate::ratelimit`].

use std::time::SystemTime;

use proxy_wasm::types::LogLevel;

use super::host;
use crate::ratelimit::config::{RateLimitConfig, RoutePolicy};
use crate::ratelimit::reply::{self, Answer, Failure, Obeyed, Reserved};
use crate::ratelimit::{self as stage, Call};

/// A call in flight for one request.
pub struct Pending {
    pub token: u32,
    pub policy: RoutePolicy,
    /// When the call started, on Envoy's clock.
    pub started: Option<SystemTime>,
}

/// Starts `call`. `Err` carries the failure decision when the host refused to start it.
pub fn dispatch(
    config: &RateLimitConfig,
    call: &Call,
    realm: &str,
    interaction_id: &str,
) -> Result<Pending, Obeyed> {
    // Read before the call: Envoy arms the call's timer inside `dispatch_grpc_call`.
    let started = host::now();
    match host::dispatch_grpc_call(
        &config.grpc_service,
        obguard_rls_proto::SERVICE,
        obguard_rls_proto::METHOD,
        &call.message,
        call.policy.timeout,
    ) {
        Some(token) => Ok(Pending {
            token,
            policy: call.policy,
            started,
        }),
        None => Err(reply::failed(
            &call.policy,
            Failure::Dispatch,
            realm,
            interaction_id,
        )),
    }
}

/// The decision for the reply delivered to `on_grpc_call_response`.
pub fn answer(
    pending: &Pending,
    grpc_status: u32,
    response_size: usize,
    reserved: &Reserved,
    realm: &str,
    interaction_id: &str,
) -> Obeyed {
    let body = if grpc_status == 0 {
        host::grpc_response_body(response_size)
    } else {
        None
    };
    let elapsed = pending
        .started
        .zip(host::now())
        .and_then(|(started, now)| now.duration_since(started).ok())
        .unwrap_or_default();
    reply::obey(
        &pending.policy,
        grpc_status,
        elapsed,
        body.as_deref(),
        reserved,
        realm,
        interaction_id,
    )
}

/// One log line per failed check, naming the failure and the decision taken.
pub fn log_answer(answer: Answer, grpc_status: u32, route: Option<&str>, cluster: &str) {
    let (failure, decision) = match answer {
        Answer::FailedOpen(failure) => (failure, "forwarding the request (fail_open)"),
        Answer::FailedClosed(failure) => (failure, "refusing the request (fail_closed)"),
        Answer::Ok | Answer::OverLimit => return,
    };
    host::log(
        LogLevel::Warn,
        &format!(
            "obguard: rate-limit check failed ({}, grpc status {grpc_status}) on cluster {cluster}, route {}: {decision}",
            failure.as_str(),
            route.unwrap_or("-"),
        ),
    );
}

pub use stage::plan;
