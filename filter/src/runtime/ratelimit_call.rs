//! The rate-limit stage's callout: start the `ShouldRateLimit` call, read its reply. What to
//! ask and what the answer means are decided in [`crate::ratelimit`].

use std::time::Duration;

use crate::host::{Buffer, Host, LogLevel};
use crate::ratelimit::config::RateLimitConfig;
use crate::ratelimit::config::RoutePolicy;
use crate::ratelimit::reply::{self, Answer, Failure, Obeyed, Reserved};
use crate::ratelimit::{self as stage, Call};

/// A call in flight for one request.
pub struct Pending {
    pub token: u32,
    pub policy: RoutePolicy,
    /// When the call started, on the host's clock (ns since the epoch).
    pub started_ns: Option<u64>,
}

/// Starts `call`. `Err` carries the failure decision when the host refused to start it.
pub fn dispatch(
    host: &dyn Host,
    config: &RateLimitConfig,
    call: &Call,
    realm: &str,
    interaction_id: &str,
) -> Result<Pending, Obeyed> {
    // Read before the call: Envoy arms the call's timer inside `proxy_grpc_call`.
    let started_ns = host.now_nanos().ok();
    match host.grpc_call(
        config.grpc_service.as_bytes(),
        obguard_rls_proto::SERVICE,
        obguard_rls_proto::METHOD,
        &call.message,
        call.policy.timeout,
    ) {
        Ok(token) => Ok(Pending {
            token,
            policy: call.policy,
            started_ns,
        }),
        Err(err) => {
            host.log(
                LogLevel::Warn,
                &format!(
                    "obguard: cannot start gRPC call {}/{}: {err}",
                    obguard_rls_proto::SERVICE,
                    obguard_rls_proto::METHOD
                ),
            );
            Err(reply::failed(
                &call.policy,
                Failure::Dispatch,
                realm,
                interaction_id,
            ))
        }
    }
}

/// The decision for a reply (`grpc_status` 0 with `response_size` bytes waiting in the gRPC
/// buffer) or a failure (any other status, nothing to read).
pub fn answer(
    host: &dyn Host,
    pending: &Pending,
    grpc_status: u32,
    response_size: usize,
    reserved: &Reserved,
    realm: &str,
    interaction_id: &str,
) -> Obeyed {
    let body = if grpc_status == 0 {
        match host.buffer(Buffer::GrpcReceiveBuffer, 0, response_size) {
            Ok(body) => Some(body),
            Err(err) => {
                host.log(
                    LogLevel::Warn,
                    &format!("obguard: cannot read the rate-limit reply: {err}"),
                );
                None
            }
        }
    } else {
        None
    };
    let elapsed = pending
        .started_ns
        .zip(host.now_nanos().ok())
        .map(|(started, now)| Duration::from_nanos(now.saturating_sub(started)))
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
pub fn log_answer(
    host: &dyn Host,
    answer: Answer,
    grpc_status: u32,
    route: Option<&str>,
    cluster: &str,
) {
    let (failure, decision) = match answer {
        Answer::FailedOpen(failure) => (failure, "forwarding the request (fail_open)"),
        Answer::FailedClosed(failure) => (failure, "refusing the request (fail_closed)"),
        Answer::Ok | Answer::OverLimit => return,
    };
    host.log(
        LogLevel::Warn,
        &format!(
            "obguard: rate-limit check failed ({}, grpc status {grpc_status}) on cluster {cluster}, route {}: {decision}",
            failure.as_str(),
            route.unwrap_or("-"),
        ),
    );
}

pub use stage::plan;
