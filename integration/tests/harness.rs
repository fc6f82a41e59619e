//! Smoke tests of the harness itself: Envoy without the plugin, the fixtures, path handling.

use obguard_integration::{
    DemoBank, EchoUpstream, Envoy, EnvoyOptions, RawRequest, demo_bank_fixtures, send,
};
use serde_json::json;

#[test]
fn request_flows_through_envoy_and_is_access_logged() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()));
    assert_ne!(envoy.port(), 0);
    assert_ne!(envoy.admin_port(), 0);

    let resp = send(
        envoy.port(),
        &RawRequest::get("/accounts?x=1")
            .header("x-fapi-interaction-id", "abc-123")
            .header("x-dup", "one")
            .header("X-Dup", "two"),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let echo = resp.json();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["path"], "/accounts?x=1");
    assert_eq!(echo["headers"]["x-dup"], json!(["one", "two"]));
    assert_eq!(echo["headers"]["x-fapi-interaction-id"], json!(["abc-123"]));
    assert_eq!(upstream.count(), 1);

    let lines = envoy.wait_access_log(1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["status"], 200);
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/accounts?x=1");
    assert_eq!(line["interaction_id"], "abc-123");
    // No obguard: its filter state is absent and logged as null.
    assert!(line["outcome"].is_null(), "{line}");
    assert!(line["client_id"].is_null(), "{line}");
    assert!(line["duration"].is_u64(), "{line}");

    assert_eq!(envoy.counter("http.ingress_http.downstream_rq_2xx"), 1);
    assert_eq!(envoy.counter("no.such.counter"), 0);
    assert!(
        envoy.wait_log("starting main dispatch loop"),
        "{}",
        envoy.log()
    );
}

#[test]
fn post_body_reaches_upstream() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()));
    let resp = envoy.send(&RawRequest::post("/domestic-payments").json(&json!({"a": 1})));
    assert_eq!(resp.status, 200);
    let echo = resp.json();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body"], r#"{"a":1}"#);
    assert_eq!(echo["headers"]["content-length"], json!(["7"]));
}

#[test]
fn envoy_normalises_paths_and_rejects_escaped_slashes() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()));
    let resp = envoy.send(&RawRequest::get("/accounts/../admin//x"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["path"], "/admin/x");
    let resp = envoy.send(&RawRequest::get("/accounts%2F..%2Fadmin"));
    assert_eq!(resp.status, 400);
    assert_eq!(upstream.count(), 1);
}

#[test]
fn raw_paths_reach_upstream_without_normalisation() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()).normalize_paths(false));
    let resp = envoy.send(&RawRequest::get("/a%2Fb"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["path"], "/a%2Fb");
    let resp = envoy.send(&RawRequest::get("/accounts/../admin"));
    assert_eq!(resp.json()["path"], "/accounts/../admin");
}

#[test]
fn several_envoys_run_side_by_side() {
    let upstream = EchoUpstream::start();
    let envoys: Vec<Envoy> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| Envoy::start(EnvoyOptions::new(upstream.port()))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for envoy in &envoys {
        assert_eq!(envoy.send(&RawRequest::get("/ping")).status, 200);
    }
    assert_eq!(upstream.count(), 3);
}

#[test]
fn missing_wasm_module_is_refused_at_startup() {
    let upstream = EchoUpstream::start();
    let opts = EnvoyOptions::new(upstream.port())
        .plugin(json!({}))
        .wasm("/nonexistent/obguard.wasm");
    let err = match Envoy::try_start(opts) {
        Ok(_) => panic!("Envoy started with a missing wasm module"),
        Err(log) => log,
    };
    assert!(err.contains("exited during startup"), "{err}");
    assert!(err.contains("/nonexistent/obguard.wasm"), "{err}");
}

#[test]
fn bootstrap_validates() {
    let out = Envoy::validate(&EnvoyOptions::new(8080));
    assert!(out.is_ok(), "{out:?}");
    let out = Envoy::validate(&EnvoyOptions::new(8080).normalize_paths(false));
    assert!(out.is_ok(), "{out:?}");
}

#[test]
fn demo_bank_serves_fixtures_and_reports_identity() {
    let bank = DemoBank::start(0, &demo_bank_fixtures()).unwrap();
    let resp = send(
        bank.port(),
        &RawRequest::get("/open-banking/v3.1/aisp/accounts").header("x-obguard-client-id", "tpp-1"),
    );
    assert_eq!(resp.status, 200);
    let body = resp.json();
    assert_eq!(body["Data"]["Account"].as_array().unwrap().len(), 3);
    assert_eq!(body["seen_identity"]["x-obguard-client-id"], "tpp-1");

    let resp = send(bank.port(), &RawRequest::get("/accounts/22289/balances"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["Data"]["Balance"].as_array().unwrap().len(), 2);
    let resp = send(
        bank.port(),
        &RawRequest::get("/accounts/22289/transactions"),
    );
    assert_eq!(
        resp.json()["Data"]["Transaction"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        send(bank.port(), &RawRequest::get("/accounts/nope")).status,
        404
    );
    assert_eq!(
        send(bank.port(), &RawRequest::delete("/accounts")).status,
        405
    );

    let resp = send(
        bank.port(),
        &RawRequest::post("/domestic-payments").json(&json!({
            "Data": {"ConsentId": "c-1", "Initiation": {"InstructedAmount": {"Amount": "1.00", "Currency": "GBP"}}},
            "Risk": {}
        })),
    );
    assert_eq!(resp.status, 201);
    let id = resp.json()["Data"]["DomesticPaymentId"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = send(
        bank.port(),
        &RawRequest::get(format!("/domestic-payments/{id}")),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["Data"]["ConsentId"], "c-1");
    let resp = send(
        bank.port(),
        &RawRequest::post("/account-access-consents")
            .json(&json!({"Data": {"Permissions": ["ReadAccountsDetail"]}})),
    );
    assert_eq!(resp.status, 201);
    assert_eq!(
        resp.json()["Data"]["Status"],
        "AwaitingAuthorisation",
        "{}",
        resp.text()
    );
}

#[test]
fn malformed_bytes_get_a_local_reply_quickly() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()));
    let started = std::time::Instant::now();
    let raw = obguard_integration::send_raw(
        envoy.port(),
        b"GET /accounts HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n",
    );
    let resp = obguard_integration::Response::parse(&raw).unwrap();
    assert_eq!(resp.status, 400, "{}", resp.text());
    // The client stops at the end of the response instead of waiting for Envoy's delayed close.
    assert!(started.elapsed() < std::time::Duration::from_millis(900));
    assert_eq!(upstream.count(), 0);
}
