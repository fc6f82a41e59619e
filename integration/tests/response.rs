#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Automated response through real Envoy: security events reach the webhook with their
//! evidence; a webhook that is down or slow never delays a request (bounded queue, drop and
//! failure counters); a playbook's quarantine and an external list's revocation are applied
//! by every worker; the external list fails safe.

use std::time::{Duration, Instant};

use base64::Engine as _;
use obguard_integration::{
    EchoUpstream, Envoy, EnvoyOptions, Fault, FaultServer, RawRequest, Response, Webhook,
    WebhookMode, loopback_cluster, workspace_root,
};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

const WORKERS: u32 = 2;

fn token(client: &str) -> String {
    kit::token_for("ES256", Key::P256, client, "accounts transactions:read")
}

fn token_with(client: &str, extra: Value) -> String {
    let mut claims = kit::claims(client, "accounts transactions:read");
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    kit::token("ES256", Key::P256, &claims)
}

fn start(config: Value, clusters: Vec<Value>, workers: u32) -> (EchoUpstream, Envoy) {
    let upstream = EchoUpstream::start();
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(config);
    opts.extra_clusters = clusters;
    opts.concurrency = workers;
    opts.exact_balance = workers > 1;
    let envoy = Envoy::start(opts);
    (upstream, envoy)
}

fn events_section(extra: Value) -> Value {
    let mut section = json!({
        "cluster": "soc",
        "path": "/intake",
        "source": "urn:obguard:test-bank",
        "headers": {"authorization": "Bearer soc-intake-token"},
    });
    for (name, value) in extra.as_object().unwrap() {
        section[name] = value.clone();
    }
    section
}

fn shipped_model() -> String {
    let bytes = std::fs::read(workspace_root().join("models/shipped/obguard-default.model"))
        .expect("shipped model");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn usual(token: &str, i: usize) -> RawRequest {
    RawRequest::get(format!("/accounts/acc-{}/transactions", i % 2))
        .bearer(token)
        .header("x-client-geo-country", "GB")
        .header("x-client-asn", "AS2856")
        .header("x-forwarded-for", "203.0.113.10")
        .header("user-agent", "AcmeAggregator/2.3")
        .header("x-fapi-customer-ip-address", "198.51.100.7")
}

#[test]
fn a_step_up_sends_a_pre_investigated_event() {
    let webhook = Webhook::start();
    let mut config = kit::plugin_config();
    let demo_key = std::fs::read_to_string(
        workspace_root().join("envoy/demo/keys/DEMO-ONLY-model-signing.pub"),
    )
    .unwrap();
    config["model"] = json!({
        "inline_base64": shipped_model(),
        "trusted_keys": [demo_key.trim()],
        "max_clients": 1000,
        "country_header": "x-client-geo-country",
        "asn_header": "x-client-asn",
        "client_ip": {"source": "header", "header": "x-forwarded-for", "xff_num_trusted_hops": 0}
    });
    config["routes"][3]["thresholds"] = json!({"step_up": 0.5, "throttle": 1.0, "block": 1.0});
    config["events"] = events_section(json!({"recent_requests": 5}));
    let (_upstream, envoy) = start(config, vec![loopback_cluster("soc", webhook.port())], 1);
    let token = token("tpp-model");
    for i in 0..40 {
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(envoy.send(&usual(&token, i)).status, 200);
    }
    let abroad = RawRequest::get("/accounts/acc-9917/transactions?page=2")
        .bearer(&token)
        .header("x-client-geo-country", "RU")
        .header("x-client-asn", "AS65100")
        .header("x-forwarded-for", "192.0.2.66")
        .header("user-agent", "curl/8.0");
    let challenged = envoy.send(&abroad);
    assert_eq!(challenged.status, 401, "{}", challenged.text());
    let interaction = challenged
        .header("x-fapi-interaction-id")
        .unwrap()
        .to_owned();

    assert!(
        webhook.wait_until(Duration::from_secs(5), |e| !e.is_empty()),
        "no event reached the webhook"
    );
    let events = webhook.events();
    assert_eq!(
        events.len(),
        1,
        "only the step-up sends an event: {events:?}"
    );
    let event = &events[0];
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["type"], "io.obguard.security.verdict");
    assert_eq!(event["source"], "urn:obguard:test-bank");
    assert_eq!(event["subject"], "tpp-model@idp.obguard.test");
    assert!(event["id"].as_str().is_some_and(|id| id.len() == 36));
    assert!(event["time"].as_str().unwrap().ends_with('Z'));
    let data = &event["data"];
    assert_eq!(data["interaction_id"], interaction.as_str());
    assert_eq!(data["client_id"], "tpp-model@idp.obguard.test");
    assert_eq!(data["subject"], "psu-tpp-model");
    assert_eq!(data["route"], "transactions");
    assert_eq!(
        data["path"], "/accounts/acc-9917/transactions",
        "no query string"
    );
    assert_eq!(data["client_ip"], "192.0.2.66");
    assert_eq!(
        (data["outcome"].as_str(), data["status"].as_u64()),
        (Some("challenged"), Some(401))
    );
    assert_eq!(data["verdict"], "step_up");
    assert!(data["score"].as_f64().unwrap() >= 0.5);
    let reasons = data["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty());
    assert!(
        reasons.iter().all(|r| r["feature"].is_string()
            && r["text"].is_string()
            && r["strength"].as_f64().is_some_and(|s| s > 0.0)),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r["text"].as_str().unwrap().contains("new_country(RU)")),
        "{reasons:?}"
    );
    assert_eq!(data["model"]["digest"].as_str().map(str::len), Some(64));
    let recent = data["recent"].as_array().unwrap();
    assert_eq!(recent.len(), 5, "the last 5 requests before this one");
    assert!(
        recent
            .iter()
            .all(|r| r["outcome"] == "allowed" && r["route"] == "transactions")
    );
    assert_eq!(webhook.posts(), ["application/cloudevents-batch+json"]);
    assert_eq!(envoy.counter("wasmcustom.obguard.events.sent"), 1);
}

/// A pinned `block` client, a consent-bound account route and the events section.
fn blocking_config(events: Value) -> Value {
    let mut config = kit::plugin_config();
    config["static_assessments"] = json!({"tpp-bad": {"verdict": "block", "risk_band": "high"}});
    config["issuers"][0]["consent"] = json!({"resources_claim": "consented_accounts"});
    config["routes"][1]["consent_params"] = json!(["AccountId"]);
    config["events"] = events;
    config
}

#[test]
fn refusals_are_batched_and_listed_ones_only() {
    let webhook = Webhook::start();
    let config = blocking_config(events_section(json!({"batch_max": 10})));
    let (_upstream, envoy) = start(config, vec![loopback_cluster("soc", webhook.port())], 1);
    let bad = token("tpp-bad");
    let good = token_with("tpp-good", json!({"consented_accounts": ["acc-1"]}));
    for _ in 0..3 {
        assert_eq!(
            envoy
                .send(&RawRequest::get("/accounts").bearer(&bad))
                .status,
            403
        );
    }
    assert_eq!(
        envoy
            .send(&RawRequest::get("/accounts/acc-1").bearer(&good))
            .status,
        200
    );
    assert_eq!(
        envoy
            .send(&RawRequest::get("/accounts/acc-2").bearer(&good))
            .status,
        403
    );
    // Not listed: an expired token is answered, not reported.
    let expired = {
        let mut claims = kit::claims("tpp-good", "accounts");
        claims["exp"] = json!(kit::now() - 600);
        claims["iat"] = json!(kit::now() - 900);
        claims["nbf"] = json!(kit::now() - 900);
        kit::token("ES256", Key::P256, &claims)
    };
    assert_eq!(
        envoy
            .send(&RawRequest::get("/accounts").bearer(&expired))
            .status,
        401
    );
    assert!(webhook.wait_until(Duration::from_secs(5), |e| e.len() >= 4));
    std::thread::sleep(Duration::from_millis(1500));
    let events = webhook.events();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["data"]["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("io.obguard.security.verdict", "blocked"),
            ("io.obguard.security.verdict", "blocked"),
            ("io.obguard.security.verdict", "blocked"),
            ("io.obguard.security.refusal", "consent_denied"),
        ]
    );
    assert_eq!(events[3]["data"]["reason"], "consent_mismatch");
    assert_eq!(events[3]["data"]["recent"][0]["outcome"], "allowed");
    assert!(
        webhook.posts().len() < 4,
        "events queued within one timer period go in one batch: {:?}",
        webhook.posts()
    );
}

fn timed(envoy: &Envoy, req: &RawRequest) -> (Response, Duration) {
    let started = Instant::now();
    let resp = envoy.send(req);
    (resp, started.elapsed())
}

#[test]
fn a_slow_or_failing_webhook_never_delays_a_request() {
    let webhook = Webhook::start();
    webhook.set_mode(WebhookMode::Delay(Duration::from_secs(4)));
    let config = blocking_config(events_section(json!({
        "queue_max": 5, "batch_max": 2, "timeout_ms": 500, "max_attempts": 2,
        "backoff_initial_ms": 500, "backoff_max_ms": 500
    })));
    let (_upstream, envoy) = start(config, vec![loopback_cluster("soc", webhook.port())], 1);
    let bad = token("tpp-bad");
    let good = token("tpp-good");
    let mut slowest = Duration::ZERO;
    for _ in 0..30 {
        let (resp, took) = timed(&envoy, &RawRequest::get("/accounts").bearer(&bad));
        assert_eq!(resp.status, 403);
        slowest = slowest.max(took);
        let (resp, took) = timed(&envoy, &RawRequest::get("/accounts").bearer(&good));
        assert_eq!(resp.status, 200);
        slowest = slowest.max(took);
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a request waited {slowest:?} with the webhook answering after 4 s"
    );
    assert!(envoy.counter("wasmcustom.obguard.events.dropped.queue_full") > 0);
    assert!(envoy.log().contains("security-event queue full (5 events"));
    envoy.wait_counter("wasmcustom.obguard.events.failed.status", 1);
    // Envoy's own timeout answers 504: a failed POST, retried then dropped.
    envoy.wait_counter("wasmcustom.obguard.events.retried", 1);
    envoy.wait_counter("wasmcustom.obguard.events.dropped.undeliverable", 1);
    assert!(
        envoy
            .log()
            .contains("security events not accepted by cluster soc")
    );

    // Down: nothing listens.
    webhook.set_mode(WebhookMode::Status(503));
    let before = envoy.counter("wasmcustom.obguard.events.failed.status");
    for _ in 0..5 {
        let (resp, took) = timed(&envoy, &RawRequest::get("/accounts").bearer(&bad));
        assert_eq!(resp.status, 403);
        assert!(took < Duration::from_millis(500), "{took:?}");
    }
    envoy.wait_counter("wasmcustom.obguard.events.failed.status", before + 1);
}

#[test]
fn a_webhook_that_refuses_connections_is_counted_and_survived() {
    let down = FaultServer::json(&json!({}));
    down.set_fault(Fault::Refused);
    let config = blocking_config(events_section(json!({"max_attempts": 1})));
    let (_upstream, envoy) = start(config, vec![loopback_cluster("soc", down.port())], 1);
    let bad = token("tpp-bad");
    for _ in 0..3 {
        let (resp, took) = timed(&envoy, &RawRequest::get("/accounts").bearer(&bad));
        assert_eq!(resp.status, 403);
        assert!(took < Duration::from_millis(500), "{took:?}");
    }
    // Envoy answers a refused connection with its own 503.
    envoy.wait_counter("wasmcustom.obguard.events.dropped.undeliverable", 1);
    assert_eq!(envoy.counter("wasmcustom.obguard.events.sent"), 0);
    assert_eq!(envoy.send(&RawRequest::get("/health")).status, 200);
}

/// Sends `req` over one connection per worker slot until every answer is `status` (the
/// other workers load the shared list on their timer, within a second).
fn wait_everywhere(envoy: &Envoy, req: &RawRequest, status: u16) -> Vec<Response> {
    envoy.send_until_every_worker_answers(req, status, Duration::from_secs(5))
}

#[test]
fn a_playbook_quarantines_a_client_on_every_worker() {
    let webhook = Webhook::start();
    let mut config = blocking_config(events_section(json!({})));
    // Probing accounts outside the consent: three within a minute quarantine the client.
    config["containment"] = json!({"playbooks": [{
        "name": "consent-probing",
        "when": {"outcomes": ["consent_denied"], "reasons": ["consent_mismatch"]},
        "count": 3, "within_s": 60,
        "action": "quarantine_client", "duration_s": 3600
    }]});
    let (_upstream, envoy) = start(
        config,
        vec![loopback_cluster("soc", webhook.port())],
        WORKERS,
    );
    let prober = token_with("tpp-prober", json!({"consented_accounts": ["acc-1"]}));
    let other = token_with("tpp-other", json!({"consented_accounts": ["acc-1"]}));
    let own = RawRequest::get("/accounts/acc-1").bearer(&prober);
    assert_eq!(envoy.send(&own).status, 200);
    for n in 2..5 {
        let probe = envoy.send(&RawRequest::get(format!("/accounts/acc-{n}")).bearer(&prober));
        assert_eq!(probe.json()["error"], "access_denied", "{}", probe.text());
    }
    let responses = wait_everywhere(&envoy, &own, 403);
    for resp in &responses {
        assert_eq!(resp.status, 403, "{}", resp.text());
        assert_eq!(resp.json()["error"], "access_denied");
        assert!(resp.text().contains("quarantined"));
    }
    assert_eq!(
        envoy
            .send(&RawRequest::get("/accounts/acc-1").bearer(&other))
            .status,
        200,
        "another client is not affected"
    );
    let log = envoy.access_log_lines();
    assert!(
        log.iter()
            .any(|l| l["outcome"] == "quarantined" && l["reason"] == "quarantined")
    );
    assert_eq!(
        envoy.counter("wasmcustom.obguard.containment.added.quarantine_client"),
        1
    );
    assert_eq!(
        envoy.counter("wasmcustom.obguard.containment.playbook.consent-probing.triggered"),
        1
    );
    assert!(envoy.counter("wasmcustom.obguard.containment.hits.quarantine") >= 4);
    assert!(envoy.log().contains(
        "playbook consent-probing took quarantine_client for tpp-prober@idp.obguard.test"
    ));

    // The SOC hears of it: the containment event carries the playbook and its expiry.
    assert!(webhook.wait_until(Duration::from_secs(5), |events| {
        events
            .iter()
            .any(|e| e["type"] == "io.obguard.security.containment")
    }));
    let events = webhook.events();
    let taken = events
        .iter()
        .find(|e| e["type"] == "io.obguard.security.containment")
        .unwrap();
    assert_eq!(taken["data"]["containment"]["playbook"], "consent-probing");
    assert_eq!(taken["data"]["containment"]["action"], "quarantine_client");
    assert!(
        taken["data"]["containment"]["until"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(events.iter().any(|e| e["data"]["outcome"] == "quarantined"));

    // The analyst's (and the TPP's) view: the incident report renders from Envoy's access
    // log and the events the webhook took.
    let events_file = envoy.dir().join("events.jsonl");
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&events_file, lines.join("\n")).unwrap();
    let page = envoy.dir().join("report.html");
    let models = std::env::var("MODELS_BIN").map_or_else(
        |_| workspace_root().join("target/debug/obguard-models"),
        std::path::PathBuf::from,
    );
    let output = std::process::Command::new(&models)
        .arg("report")
        .arg("--input")
        .arg(envoy.dir().join("access.log"))
        .arg("--input")
        .arg(&events_file)
        .args(["--client", "tpp-prober", "--out"])
        .arg(&page)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "run {} (make build-fixtures builds it): {e}",
                models.display()
            )
        });
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    for needle in [
        "id=\"plot-requests\"",
        "id=\"plot-scores\"",
        "class=\"containment\"",
        "quarantined",
        "consent_mismatch",
    ] {
        assert!(html.contains(needle), "the report lacks {needle}");
    }
    assert!(!html.contains("tpp-other"), "one client's report only");
}

#[test]
fn a_listed_revocation_is_applied_on_every_worker_and_the_list_fails_safe() {
    let revoked_token = token_with("tpp-1", json!({"jti": "stolen-jti-1"}));
    let fine = token_with("tpp-1", json!({"jti": "fine-jti-2"}));
    let until = kit::now() + 3600;
    let list = FaultServer::list(
        json!({
            "quarantine": [{"client_id": "tpp-q@idp.obguard.test", "expires_at": until}],
            "revoked": [{"jti": "stolen-jti-1", "expires_at": until}]
        })
        .to_string()
        .into_bytes(),
        "application/json",
    );
    let mut config = kit::plugin_config();
    config["containment"] = json!({"list": {
        "cluster": "soc_lists", "path": "/containment.json", "refresh_s": 1, "retry_s": 1,
        "timeout_ms": 500, "max_bytes": 4096, "max_stale_s": 3600
    }});
    let (_upstream, envoy) = start(
        config,
        vec![loopback_cluster("soc_lists", list.port())],
        WORKERS,
    );
    envoy.wait_counter("wasmcustom.obguard.containment.list.loaded", 1);
    let refused = wait_everywhere(
        &envoy,
        &RawRequest::get("/accounts").bearer(&revoked_token),
        401,
    );
    for resp in &refused {
        assert_eq!(resp.status, 401);
        let challenge = resp.header("www-authenticate").unwrap();
        assert!(challenge.contains("invalid_token"), "{challenge}");
        assert!(challenge.contains("revoked"), "{challenge}");
    }
    assert_eq!(
        envoy
            .send(&RawRequest::get("/accounts").bearer(&fine))
            .status,
        200
    );
    let quarantined = envoy.send(&RawRequest::get("/accounts").bearer(token("tpp-q")));
    assert_eq!(quarantined.status, 403);
    assert!(envoy.counter("wasmcustom.obguard.token_invalid.token_revoked") >= 4);
    assert!(envoy.counter("wasmcustom.obguard.containment.hits.revocation") >= 4);

    // The list fails every way: the last good one stays in force.
    for (fault, reason) in Fault::list_failures(b"{not json", 8192) {
        let name = format!("wasmcustom.obguard.containment.list.fetch_failed.{reason}");
        let before = envoy.counter(&name);
        list.set_fault(fault.clone());
        envoy.wait_counter(&name, before + 1);
        assert_eq!(
            envoy
                .send(&RawRequest::get("/accounts").bearer(&revoked_token))
                .status,
            401,
            "after {fault:?} the revocation still holds"
        );
    }
    assert!(envoy.log().contains("keeping the last good list"));
    // ETag: an unchanged list is answered 304.
    list.set_fault(Fault::Good);
    envoy.wait_counter("wasmcustom.obguard.containment.list.not_modified", 1);
    assert_eq!(envoy.send(&RawRequest::get("/health")).status, 200);
}
