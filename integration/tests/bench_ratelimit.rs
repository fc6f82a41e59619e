//! Rough throughput of the rate-limit stage through the real Envoy, with wrk (ignored by
//! default; `make bench-ratelimit` runs it). Envoy (one worker) is pinned to CPU 0 and wrk to
//! CPU 1 with taskset; the echo upstream and the test rate-limit service run in this process.
//! Configurations, measured in the same run, round-robin:
//!
//! * `bare`          — Envoy without obguard
//! * `obguard`       — obguard, no `ratelimit` section
//! * `rl_non_allow`  — `call: non_allow`; the client is `allow`, so no call is made
//! * `rl_always`     — a `ShouldRateLimit` call on every request
//!
//! Environment: `BENCH_ROUNDS` (default 3), `BENCH_SECONDS` (default 10),
//! `BENCH_CONNECTIONS` (default 32), `BENCH_ONLY` (a configuration name: run `bare` and it).

use std::process::Command;

use obguard_integration::{EchoUpstream, Envoy, EnvoyOptions, RateLimitService, grpc_cluster};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn plugin(call: Option<&str>) -> Value {
    let mut config = kit::plugin_config();
    if let Some(call) = call {
        config["ratelimit"] = json!({
            "cluster": "ratelimit",
            "domain": "bench",
            "call": call,
            "timeout_ms": 100,
            "descriptors": [
                {"entries": [{"key": "client", "from": "client_id"}]},
                {"entries": [{"key": "client", "from": "client_id"}, {"key": "route", "from": "route"}]}
            ],
        });
    }
    config
}

/// Requests per second from wrk's output.
fn wrk(port: u16, token: &str, seconds: u64, connections: u64) -> (f64, String) {
    let out = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .arg(format!("http://127.0.0.1:{port}/accounts"))
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let p50 = text
        .lines()
        .find(|l| l.trim_start().starts_with("50%"))
        .map(|l| l.trim().to_owned())
        .unwrap_or_default();
    assert!(!text.contains("Non-2xx"), "non-2xx responses:\n{text}");
    (rps, p50)
}

#[test]
#[ignore = "benchmark: make bench-ratelimit"]
fn bench_ratelimit() {
    let rounds = env("BENCH_ROUNDS", 3);
    let seconds = env("BENCH_SECONDS", 10);
    let connections = env("BENCH_CONNECTIONS", 32);
    let upstream = EchoUpstream::start();
    let rls = RateLimitService::start_in_memory(Vec::new());
    let configs: [(&str, Option<Value>); 4] = [
        ("bare", None),
        ("obguard", Some(plugin(None))),
        ("rl_non_allow", Some(plugin(Some("non_allow")))),
        ("rl_always", Some(plugin(Some("always")))),
    ];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for round in 0..rounds {
        for (i, (name, config)) in configs.iter().enumerate() {
            if let Ok(only) = std::env::var("BENCH_ONLY")
                && *name != "bare"
                && *name != only
            {
                continue;
            }
            let mut opts = EnvoyOptions::new(upstream.port());
            opts.plugin_config = config.clone();
            opts.extra_clusters = vec![grpc_cluster("ratelimit", rls.port())];
            opts.component_log_level = Some("wasm:warning".into());
            let envoy = Envoy::start(opts);
            let pid = envoy.pid().expect("envoy pid");
            let pinned = Command::new("taskset")
                .args(["-a", "-p", "-c", "0", &pid.to_string()])
                .output()
                .expect("taskset");
            assert!(pinned.status.success());
            let token = kit::token_for("ES256", Key::P256, "tpp-bench", "accounts");
            wrk(envoy.port(), &token, 2, connections); // warm-up
            let (rps, p50) = wrk(envoy.port(), &token, seconds, connections);
            println!("round {round} {name:>13}: {rps:>9.0} rps, latency {p50}");
            results[i].push(rps);
        }
    }
    let bare_median = median(&results[0]);
    println!("\nconfiguration   median rps   min      max      × bare (median)");
    for ((name, _), values) in configs.iter().zip(&results) {
        if values.is_empty() {
            continue;
        }
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(0.0, f64::max);
        let med = median(values);
        println!(
            "{name:<15} {med:>10.0} {min:>8.0} {max:>8.0}   {:.3}",
            med / bare_median
        );
    }
    println!("rate-limit calls answered: {}", rls.received().len());
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
