//! The rate-limit stage through the real Envoy and a real gRPC rate-limit service
//! (`RateLimitService` in the harness): descriptors as configured, OVER_LIMIT obeyed,
//! risk-weighted hits, every failure mode, and the native-filter mode.

use std::time::{Duration, Instant};

use obguard_integration::{
    Behaviour, EchoUpstream, Envoy, EnvoyOptions, Limit, RateLimitService, RawRequest, Unit,
    grpc_cluster,
};
use obguard_testkit::ratelimit::pairs;
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

const INTERACTION_ID: &str = "6f0c1e2d-3b4a-4c5d-8e9f-0a1b2c3d4e5f";

fn token(client: &str) -> String {
    kit::token_for("ES256", Key::P256, client, "accounts payments")
}

/// The test plugin config with a `ratelimit` section calling cluster `ratelimit`.
fn plugin(ratelimit: Value) -> Value {
    let mut config = kit::plugin_config();
    let mut section = json!({
        "cluster": "ratelimit",
        "domain": "bank",
        // Generous: a loaded CI machine must not turn these tests into timeout tests.
        "timeout_ms": 2000,
        "descriptors": [
            {"entries": [{"key": "client", "from": "client_id"}]},
            {"entries": [{"key": "client", "from": "client_id"}, {"key": "route", "from": "route"}]},
            {"entries": [{"key": "verdict", "from": "verdict"}, {"key": "risk", "from": "risk_band"}]}
        ],
    });
    if let (Some(section), Some(extra)) = (section.as_object_mut(), ratelimit.as_object()) {
        for (k, v) in extra {
            section.insert(k.clone(), v.clone());
        }
    }
    config["ratelimit"] = section;
    config
}

fn start(upstream: &EchoUpstream, rls_port: u16, plugin_config: Value) -> Envoy {
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(plugin_config);
    opts.extra_clusters = vec![grpc_cluster("ratelimit", rls_port)];
    Envoy::start(opts)
}

#[test]
fn descriptors_reach_the_service_as_configured_and_ok_headers_are_applied() {
    let upstream = EchoUpstream::start();
    let rls = RateLimitService::start(Vec::new());
    rls.set_headers_to_add(&[("x-quota-tier", "gold")], &[("x-quota-note", "fine")]);
    let envoy = start(
        &upstream,
        rls.port(),
        plugin(json!({
            "descriptors": [
                {"entries": [{"key": "client", "from": "client_id"}]},
                {"entries": [{"key": "client", "from": "client_id"}, {"key": "route", "from": "route"}]},
                {"entries": [{"key": "sub", "from": "subject"}, {"key": "plan", "value": "open-banking"}]},
                {"entries": [{"key": "verdict", "from": "verdict"}, {"key": "risk", "from": "risk_band"}]},
                {"entries": [{"key": "country", "from": "country"}]}
            ],
            "country_header": "x-client-country",
        })),
    );

    let resp = envoy.send(
        &RawRequest::get("/accounts/acc-1")
            .bearer(token("tpp-1"))
            .header("x-client-country", "GB")
            // Spoofing attempts: stripped before descriptors and headers are built.
            .header("x-obguard-client-id", "tpp-admin")
            .header("x-obguard-verdict", "allow"),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("x-quota-note"), Some("fine"));
    let seen = &resp.json()["headers"];
    assert_eq!(seen["x-quota-tier"], json!(["gold"]));
    assert_eq!(seen["x-obguard-client-id"], json!(["tpp-1"]));
    assert_eq!(seen["x-obguard-verdict"], json!(["allow"]));
    assert_eq!(seen["x-obguard-risk-band"], json!(["low"]));

    let received = rls.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].domain, "bank");
    assert_eq!(received[0].hits_addend, 1);
    assert_eq!(
        rls.received_descriptors()[0],
        pairs(&[
            &[("client", "tpp-1@idp.obguard.test")],
            &[("client", "tpp-1@idp.obguard.test"), ("route", "account")],
            &[("sub", "psu-tpp-1"), ("plan", "open-banking")],
            &[("verdict", "allow"), ("risk", "low")],
            &[("country", "GB")],
        ])
    );

    // An anonymous route: identity descriptors are left out, the rest is asked.
    let resp = envoy.send(&RawRequest::get("/health").header("x-client-country", "FR"));
    assert_eq!(resp.status, 200);
    assert_eq!(
        rls.received_descriptors()[1],
        pairs(&[&[("country", "FR")]])
    );

    assert_eq!(envoy.counter("wasmcustom.obguard.ratelimit.ok"), 2);
    assert_eq!(envoy.counter("wasmcustom.obguard.requests.allowed"), 1);
    assert_eq!(envoy.counter("wasmcustom.obguard.requests.anonymous"), 1);
    let log = envoy.wait_access_log(2);
    assert_eq!(log[0]["ratelimit"], "ok");
}

#[test]
fn over_limit_is_a_429_with_retry_after_ratelimit_headers_and_interaction_id() {
    let upstream = EchoUpstream::start();
    let rls = RateLimitService::start(vec![Limit::new(
        "per-client",
        &[("client", None)],
        2,
        Unit::Minute,
    )]);
    rls.set_headers_to_add(&[], &[("x-quota-note", "slow down")]);
    let envoy = start(&upstream, rls.port(), plugin(json!({})));
    let token = token("tpp-1");
    let request = RawRequest::get("/accounts")
        .bearer(&token)
        .header("x-fapi-interaction-id", INTERACTION_ID);

    for _ in 0..2 {
        assert_eq!(envoy.send(&request).status, 200);
    }
    let resp = envoy.send(&request);
    assert_eq!(resp.status, 429, "{}", resp.text());
    let retry_after: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        resp.header("ratelimit-policy"),
        Some("\"per-client\";q=2;w=60")
    );
    let current = resp.header("ratelimit").unwrap();
    assert!(current.starts_with("\"per-client\";r=0;t="), "{current}");
    assert_eq!(resp.header("x-fapi-interaction-id"), Some(INTERACTION_ID));
    assert_eq!(resp.header("x-quota-note"), Some("slow down"));
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(
        resp.json(),
        json!({
            "error": "rate_limited",
            "error_description": "Too many requests; retry later",
            "interaction_id": INTERACTION_ID,
        })
    );
    assert_eq!(upstream.count(), 2);
    assert_eq!(envoy.counter("wasmcustom.obguard.ratelimit.over_limit"), 1);
    assert_eq!(envoy.counter("wasmcustom.obguard.requests.rate_limited"), 1);
    assert_eq!(envoy.counter("wasmcustom.obguard.requests.allowed"), 2);
    let log = envoy.wait_access_log(3);
    assert_eq!(log[2]["status"], 429);
    assert_eq!(log[2]["outcome"], "rate_limited");
    assert_eq!(log[2]["reason"], "over_limit");
    assert_eq!(log[2]["ratelimit"], "over_limit");

    // Another client has its own quota.
    let resp = envoy.send(&RawRequest::get("/accounts").bearer(token_for_other()));
    assert_eq!(resp.status, 200);
}

#[test]
fn request_bodies_wait_for_the_answer() {
    let upstream = EchoUpstream::start();
    let rls = RateLimitService::start(vec![Limit::new(
        "per-client",
        &[("client", None)],
        1,
        Unit::Minute,
    )]);
    // Slow enough that the body has arrived long before the answer.
    rls.set_behaviour(Behaviour::Delay(Duration::from_millis(300)));
    let envoy = start(&upstream, rls.port(), plugin(json!({})));
    let body = json!({"Data": {"Initiation": {"Reference": "x".repeat(64 * 1024)}}});
    let request = RawRequest::post("/domestic-payments")
        .bearer(token("tpp-1"))
        .json(&body);

    let resp = envoy.send(&request);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json()["body"],
        body.to_string(),
        "the whole body went upstream"
    );
    let resp = envoy.send(&request);
    assert_eq!(resp.status, 429);
    assert_eq!(
        upstream.count(),
        1,
        "the refused request never reached the upstream"
    );
}

fn token_for_other() -> String {
    token("tpp-2")
}

#[test]
fn risk_weighted_hits_exhaust_a_suspicious_clients_quota_first() {
    let upstream = EchoUpstream::start();
    let rls = RateLimitService::start(vec![Limit::new(
        "per-client",
        &[("client", None)],
        10,
        Unit::Minute,
    )]);
    let mut config = plugin(json!({
        "descriptors": [{"entries": [{"key": "client", "from": "client_id"}]}],
        "hits": {"low": 1, "medium": 2, "high": 5},
    }));
    // The model is not there yet: the suspicious client's assessment is pinned.
    config["static_assessments"] =
        json!({"tpp-risky": {"verdict": "throttle", "risk_band": "high"}});
    let envoy = start(&upstream, rls.port(), config);
    let normal = token("tpp-normal");
    let risky = token("tpp-risky");

    let mut first_refusal = [None, None];
    for i in 0..12 {
        for (slot, token) in [&normal, &risky].into_iter().enumerate() {
            let status = envoy
                .send(&RawRequest::get("/accounts").bearer(token))
                .status;
            assert!(status == 200 || status == 429, "{status}");
            if status == 429 && first_refusal[slot].is_none() {
                first_refusal[slot] = Some(i);
            }
        }
    }
    // 10 hits per minute: 2 requests at 5 hits each, 10 requests at 1 hit.
    assert_eq!(first_refusal, [Some(10), Some(2)]);
    let hits: Vec<u32> = rls.received().iter().map(|r| r.hits_addend).collect();
    assert_eq!(&hits[..2], &[1, 5]);
}

/// Routes with each failure decision: accounts fails open, payments fails closed with 503,
/// balances fails closed with 429.
fn failure_config(timeout_ms: u64) -> Value {
    plugin(json!({
        "timeout_ms": timeout_ms,
        "routes": {
            "payments": {"failure_mode": "fail_closed"},
            "balances": {"failure_mode": "fail_closed", "failure_status": 429},
        },
    }))
}

/// Sends one request per route; checks each gets its decision quickly, and the counters.
fn check_failure_decisions(envoy: &Envoy, kind: &str, max: Duration) {
    let token = token("tpp-1");
    let cases = [
        (RawRequest::get("/accounts"), 200),
        (RawRequest::post("/domestic-payments").json(&json!({})), 503),
        (RawRequest::get("/accounts/acc-1/balances"), 429),
    ];
    for (request, status) in cases {
        let request = request
            .bearer(&token)
            .header("x-fapi-interaction-id", INTERACTION_ID);
        let started = Instant::now();
        let resp = envoy.send(&request);
        let took = started.elapsed();
        assert_eq!(
            resp.status,
            status,
            "{kind} {}: {}",
            request.target,
            resp.text()
        );
        assert!(took < max, "{kind} {} took {took:?}", request.target);
        assert_eq!(resp.header("x-fapi-interaction-id"), Some(INTERACTION_ID));
        if status != 200 {
            assert_eq!(resp.json()["interaction_id"], INTERACTION_ID);
            assert!(resp.header("retry-after").is_none());
        }
    }
    let counter = |name: &str| envoy.counter(&format!("wasmcustom.obguard.ratelimit.{name}"));
    assert_eq!(counter(&format!("failure.{kind}")), 3, "{kind}");
    assert_eq!(counter("failed_open"), 1, "{kind}");
    assert_eq!(counter("failed_closed"), 2, "{kind}");
    assert_eq!(
        envoy.counter("wasmcustom.obguard.requests.ratelimit_failed"),
        2
    );
    let line = format!("rate-limit check failed ({kind}, grpc status");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !envoy.log().contains(&line) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(envoy.log().contains(&line), "no log line for {kind}");
    let log = envoy.wait_access_log(3);
    assert_eq!(log[0]["ratelimit"], format!("failed_open:{kind}"));
    assert_eq!(log[1]["ratelimit"], format!("failed_closed:{kind}"));
    assert_eq!(log[1]["outcome"], "ratelimit_failed");
}

#[test]
fn service_down_gives_the_configured_decision() {
    let upstream = EchoUpstream::start();
    // A port that was free a moment ago and has no listener now.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let envoy = start(&upstream, dead_port, failure_config(1000));
    check_failure_decisions(&envoy, "unavailable", Duration::from_millis(1500));
}

#[test]
fn unavailable_gives_the_configured_decision() {
    let upstream = EchoUpstream::start();
    let rls = RateLimitService::start(Vec::new());
    rls.set_behaviour(Behaviour::Unavailable);
    let envoy = start(&upstream, rls.port(), failure_config(1000));
    check_failure_decisions(&envoy, "unavailable", Duration::from_millis(1500));
    assert_eq!(rls.received().len(), 3);
}

#[test]
fn slow_service_past_the_timeout_gives_the_configured_decision() {
    let upstream = EchoUpstream::start();
    let rls = RateLimitService::start(Vec::new());
    rls.set_behaviour(Behaviour::Delay(Duration::from_millis(1500)));
    let envoy = start(&upstream, rls.port(), failure_config(50));
    // Far below the service's delay: the filter gives up at its own timeout.
    check_failure_decisions(&envoy, "timeout", Duration::from_millis(1000));
}

#[test]
fn garbage_replies_give_the_configured_decision() {
    let upstream = EchoUpstream::start();
    let rls = RateLimitService::start(Vec::new());
    rls.set_behaviour(Behaviour::Garbage);
    let envoy = start(&upstream, rls.port(), failure_config(1000));
    check_failure_decisions(&envoy, "malformed", Duration::from_millis(1500));
}

#[test]
fn a_missing_cluster_is_a_dispatch_failure_not_a_trap() {
    let upstream = EchoUpstream::start();
    let mut config = failure_config(1000);
    config["ratelimit"]["cluster"] = json!("no-such-cluster");
    // Still give Envoy a `ratelimit` cluster, just not the one configured.
    let envoy = start(&upstream, 9, config);
    let resp = envoy.send(&RawRequest::get("/accounts").bearer(token("tpp-1")));
    assert_eq!(resp.status, 200, "fail_open");
    let resp = envoy.send(
        &RawRequest::post("/domestic-payments")
            .bearer(token("tpp-1"))
            .json(&json!({})),
    );
    assert_eq!(resp.status, 503, "fail_closed");
    // The VM survived: a later request is still decided.
    assert_eq!(envoy.send(&RawRequest::get("/accounts")).status, 401);
    // Envoy 1.40 refuses to start the call (InternalFailure), which the SDK reports as an
    // error rather than a panic.
    assert_eq!(
        envoy.counter("wasmcustom.obguard.ratelimit.failure.dispatch"),
        2
    );
}

#[test]
fn non_allow_routes_only_call_for_non_allow_verdicts() {
    let upstream = EchoUpstream::start();
    let rls = RateLimitService::start(Vec::new());
    let mut config = plugin(json!({"call": "non_allow"}));
    config["static_assessments"] =
        json!({"tpp-risky": {"verdict": "throttle", "risk_band": "medium"}});
    let envoy = start(&upstream, rls.port(), config);
    assert_eq!(
        envoy
            .send(&RawRequest::get("/accounts").bearer(token("tpp-1")))
            .status,
        200
    );
    assert_eq!(rls.received().len(), 0);
    assert_eq!(
        envoy
            .send(&RawRequest::get("/accounts").bearer(token("tpp-risky")))
            .status,
        200
    );
    assert_eq!(
        rls.received_descriptors(),
        vec![pairs(&[
            &[("client", "tpp-risky@idp.obguard.test")],
            &[
                ("client", "tpp-risky@idp.obguard.test"),
                ("route", "accounts")
            ],
            &[("verdict", "throttle"), ("risk", "medium")],
        ])]
    );
}

/// Envoy's own rate-limit filter after obguard, building descriptors from obguard's headers.
fn native_filter(bootstrap: &mut Value) {
    let hcm = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    let filters = hcm["http_filters"].as_array_mut().unwrap();
    let router = filters.len() - 1;
    filters.insert(
        router,
        json!({
            "name": "envoy.filters.http.ratelimit",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
                "domain": "bank",
                "timeout": "0.5s",
                "failure_mode_deny": false,
                "enable_x_ratelimit_headers": "DRAFT_VERSION_03",
                "rate_limit_service": {
                    "transport_api_version": "V3",
                    "grpc_service": {"envoy_grpc": {"cluster_name": "ratelimit"}},
                },
            },
        }),
    );
    hcm["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["rate_limits"] = json!([{
        "actions": [
            {"request_headers": {"header_name": "x-obguard-client-id", "descriptor_key": "client"}},
            {"request_headers": {"header_name": "x-obguard-verdict", "descriptor_key": "verdict"}},
            {"request_headers": {"header_name": "x-obguard-risk-band", "descriptor_key": "risk"}},
        ],
    }]);
}

#[test]
fn native_filter_mode_limits_through_envoys_ratelimit_filter() {
    let upstream = EchoUpstream::start();
    let rls = RateLimitService::start(vec![Limit::new(
        "per-client",
        &[("client", None), ("verdict", None), ("risk", None)],
        2,
        Unit::Minute,
    )]);
    // No `ratelimit` section: obguard only sets its headers.
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(kit::plugin_config());
    opts.extra_clusters = vec![grpc_cluster("ratelimit", rls.port())];
    opts.customize = Some(native_filter);
    let envoy = Envoy::start(opts);
    let request = RawRequest::get("/accounts")
        .bearer(token("tpp-1"))
        .header("x-obguard-client-id", "someone-else");
    assert_eq!(envoy.send(&request).status, 200);
    assert_eq!(envoy.send(&request).status, 200);
    let resp = envoy.send(&request);
    assert_eq!(resp.status, 429);
    assert_eq!(
        resp.header("x-ratelimit-limit").map(|v| v.starts_with('2')),
        Some(true)
    );
    assert_eq!(upstream.count(), 2);
    assert_eq!(
        rls.received_descriptors()[0],
        pairs(&[&[("client", "tpp-1"), ("verdict", "allow"), ("risk", "low")]])
    );
    // Refusals by obguard never reach the rate-limit filter.
    assert_eq!(envoy.send(&RawRequest::get("/accounts")).status, 401);
    assert_eq!(rls.received().len(), 3);
}

/// `envoy --mode validate` (which also loads obguard and runs its `on_configure`) on a
/// bootstrap file, from the workspace root; `replace` edits its text first.
fn validate_example(path: &str, replace: &[(&str, String)]) {
    let root = obguard_integration::workspace_root();
    let mut text = std::fs::read_to_string(root.join(path)).unwrap();
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bootstrap.yaml");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(obguard_integration::envoy_bin())
        .args(["--mode", "validate", "--use-dynamic-base-id", "-c"])
        .arg(&file)
        .current_dir(&root)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{path}: {log}");
}

#[test]
fn the_ratelimit_examples_are_valid() {
    let wasm = obguard_integration::wasm_path()
        .to_string_lossy()
        .into_owned();
    for path in [
        "envoy/ratelimit/test-service.yaml",
        "envoy/ratelimit/limitador.yaml",
        "envoy/ratelimit/native-filter.yaml",
    ] {
        validate_example(
            path,
            &[("target/wasm32-wasip1/release/obguard.wasm", wasm.clone())],
        );
    }
    validate_example(
        "envoy/ratelimit/envoyproxy-ratelimit/envoy.yaml",
        &[("/etc/envoy/obguard.wasm", wasm)],
    );
}
