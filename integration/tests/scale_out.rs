#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Several gateway replicas, one limit: two Envoy processes, each running obguard.wasm and
//! calling its own rate-limit service replica, both replicas counting with Limitador's engine
//! on one Redis server (real Envoy, real gRPC, real Redis). The control runs the same
//! traffic with a Redis per replica, which is what per-process counting amounts to, and lets
//! the client through twice as often.

use obguard_integration::{
    EchoUpstream, Envoy, EnvoyOptions, Limit, RateLimitService, RawRequest, Redis, Unit,
    grpc_cluster,
};
use obguard_testkit::{self as kit, Key};
use serde_json::json;

/// Requests a minute per client, across all replicas.
const LIMIT: u32 = 5;

fn limits() -> Vec<Limit> {
    vec![Limit::new(
        "per-client",
        &[("client", None)],
        LIMIT,
        Unit::Minute,
    )]
}

/// A gateway replica: Envoy with obguard, checking every request with the service `rls`.
fn replica(upstream: &EchoUpstream, rls: &RateLimitService) -> Envoy {
    let mut config = kit::plugin_config();
    config["ratelimit"] = json!({
        "cluster": "ratelimit",
        "domain": "bank",
        // Generous: a loaded CI machine must not turn this into a timeout test.
        "timeout_ms": 2000,
        "descriptors": [{"entries": [{"key": "client", "from": "client_id"}]}],
    });
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(config);
    opts.extra_clusters = vec![grpc_cluster("ratelimit", rls.port())];
    Envoy::start(opts)
}

/// Sends `n` requests of one client, alternating between the replicas (request 1 to the
/// first); returns each status.
fn alternate(replicas: [&Envoy; 2], n: usize) -> Vec<u16> {
    let token = kit::token_for("ES256", Key::P256, "tpp-1", "accounts");
    let request = RawRequest::get("/accounts").bearer(&token);
    (0..n)
        .map(|i| replicas[i % 2].send(&request).status)
        .collect()
}

#[test]
fn two_replicas_on_one_redis_enforce_one_limit_together() {
    let redis = Redis::start();
    let upstream = EchoUpstream::start();
    let rls = [
        RateLimitService::start_shared(&redis, limits()),
        RateLimitService::start_shared(&redis, limits()),
    ];
    let envoys = [replica(&upstream, &rls[0]), replica(&upstream, &rls[1])];

    // LIMIT + 2: the first refusal lands on each replica once.
    let statuses = alternate([&envoys[0], &envoys[1]], LIMIT as usize + 2);
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert_eq!(upstream.count(), LIMIT as usize);
    // Each replica asked its own service; neither saw all the traffic.
    assert_eq!(rls[0].received_count(), 4);
    assert_eq!(rls[1].received_count(), 3);
    for envoy in &envoys {
        assert_eq!(envoy.counter("wasmcustom.obguard.ratelimit.over_limit"), 1);
    }
    // Another client has its own budget on both replicas.
    let other = kit::token_for("ES256", Key::P256, "tpp-2", "accounts");
    for envoy in &envoys {
        assert_eq!(
            envoy
                .send(&RawRequest::get("/accounts").bearer(&other))
                .status,
            200
        );
    }
}

#[test]
fn control_replicas_counting_apart_let_the_client_through_twice_as_often() {
    let upstream = EchoUpstream::start();
    // `start` gives each service a Redis of its own: per-replica counting.
    let rls = [
        RateLimitService::start(limits()),
        RateLimitService::start(limits()),
    ];
    let envoys = [replica(&upstream, &rls[0]), replica(&upstream, &rls[1])];

    let statuses = alternate([&envoys[0], &envoys[1]], 2 * LIMIT as usize + 2);
    // Each replica grants the whole limit: 2 × LIMIT pass before either refuses.
    let passed = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(passed, 2 * LIMIT as usize, "{statuses:?}");
    assert_eq!(&statuses[2 * LIMIT as usize..], [429, 429]);
}
