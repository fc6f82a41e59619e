//! Automated response natively, against the in-memory host: a playbook's quarantine is
//! applied at once by the worker that took it and by another worker on its next tick; the
//! external list's revocation; events are queued, batched into one POST per tick and
//! retried with back-off; a full queue drops and counts. Through real Envoy the same runs in
//! integration/tests/response.rs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::rc::Rc;
use std::time::Duration;

use obguard::runtime::{Flow, Plugin, Stream};
use obguard_testkit::host::MemoryHost;
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

fn configured(host: &Rc<MemoryHost>, config: &Value) -> Plugin {
    host.set_plugin_configuration(config);
    let mut plugin = Plugin::new(host.clone(), None);
    assert!(plugin.configure(), "{:?}", host.logs());
    plugin
}

fn token(client: &str, accounts: &[&str]) -> String {
    let mut claims = kit::claims(client, "accounts");
    claims["exp"] = json!(kit::now() + 3500);
    claims["consented_accounts"] = json!(accounts);
    kit::token("ES256", Key::P256, &claims)
}

/// Sends `GET path` through a new stream; returns the status replied (200 when forwarded).
fn get(host: &MemoryHost, plugin: &Plugin, path: &str, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    host.start_request([
        (":method", "GET"),
        (":path", path),
        (":authority", "bank.test"),
        ("authorization", auth.as_str()),
    ]);
    let before = host.replies().len();
    let mut stream: Stream = plugin.stream();
    match stream.on_request_headers() {
        Flow::Continue => 200,
        Flow::Pause => host.replies().get(before).map_or(0, |r| r.status),
    }
}

fn config() -> Value {
    let mut config = kit::plugin_config();
    config["issuers"][0]["consent"] = json!({"resources_claim": "consented_accounts"});
    config["routes"][1]["consent_params"] = json!(["AccountId"]);
    config["containment"] = json!({"playbooks": [{
        "name": "probing", "when": {"outcomes": ["consent_denied"]},
        "count": 2, "within_s": 60, "action": "quarantine_client", "duration_s": 600
    }]});
    config["events"] = json!({
        "cluster": "soc", "batch_max": 2, "queue_max": 3, "max_attempts": 2,
        "backoff_initial_ms": 2000, "backoff_max_ms": 2000
    });
    config
}

#[test]
fn a_quarantine_reaches_every_worker_and_expires() {
    // Two workers of one Envoy: two plugins over one host (shared data is the host's).
    let host = Rc::new(MemoryHost::new(kit::now()));
    let mut first = configured(&host, &config());
    let mut second = configured(&host, &config());
    let prober = token("tpp-prober", &["acc-1"]);
    assert_eq!(get(&host, &first, "/accounts/acc-1", &prober), 200);
    assert_eq!(get(&host, &first, "/accounts/acc-2", &prober), 403);
    assert_eq!(
        get(&host, &second, "/accounts/acc-1", &prober),
        200,
        "one match so far"
    );
    assert_eq!(get(&host, &second, "/accounts/acc-3", &prober), 403);
    // The second worker counted the second match (the counter is shared): it quarantines.
    assert_eq!(
        host.metric("obguard.containment.added.quarantine_client"),
        1
    );
    assert_eq!(get(&host, &second, "/accounts/acc-1", &prober), 403);
    assert_eq!(
        get(&host, &first, "/accounts/acc-1", &prober),
        200,
        "the first worker has not loaded the list yet"
    );
    first.on_tick();
    assert_eq!(get(&host, &first, "/accounts/acc-1", &prober), 403);
    assert_eq!(
        get(&host, &first, "/accounts", &token("tpp-other", &[])),
        200
    );
    assert!(host.metric("obguard.containment.hits.quarantine") >= 2);

    host.advance(Duration::from_secs(601));
    first.on_tick();
    second.on_tick();
    assert_eq!(host.metric("obguard.containment.expired"), 1);
    assert_eq!(
        get(&host, &first, "/accounts/acc-1", &prober),
        200,
        "expired"
    );
}

#[test]
fn events_are_batched_retried_and_bounded() {
    let host = Rc::new(MemoryHost::new(kit::now()));
    let mut plugin = configured(&host, &config());
    let prober = token("tpp-prober", &["acc-1"]);
    for n in 2..6 {
        get(&host, &plugin, &format!("/accounts/acc-{n}"), &prober);
    }
    // 4 refusals and 1 containment event, queue of 3: two dropped; no POST before the tick.
    assert_eq!(host.metric("obguard.events.queued"), 3);
    assert_eq!(host.metric("obguard.events.dropped.queue_full"), 2);
    assert!(
        host.http_calls().is_empty(),
        "nothing is sent from a request"
    );
    plugin.on_tick();
    assert_eq!(host.metric("obguard.events.queue_depth"), 3);
    let calls = host.http_calls();
    assert_eq!(calls.len(), 1);
    let post = &calls[0];
    assert_eq!(post.cluster, "soc");
    assert_eq!(post.header(":method"), Some("POST"));
    assert_eq!(
        post.header("content-type"),
        Some("application/cloudevents-batch+json")
    );
    let batch: Value = serde_json::from_slice(post.body.as_deref().unwrap()).unwrap();
    assert_eq!(batch.as_array().unwrap().len(), 2, "batch_max");
    assert_eq!(batch[0]["specversion"], "1.0");
    assert_eq!(batch[0]["data"]["outcome"], "consent_denied");

    // The webhook fails: retried after the back-off, then dropped.
    host.answer_http_call(503, [], b"");
    plugin.on_http_call_response(post.token, 0);
    assert_eq!(host.metric("obguard.events.failed.status"), 1);
    assert_eq!(host.metric("obguard.events.retried"), 1);
    plugin.on_tick();
    assert_eq!(host.http_calls().len(), 1, "backing off");
    host.advance(Duration::from_secs(2));
    plugin.on_tick();
    let retry = host.http_calls().last().unwrap().clone();
    assert_eq!(retry.body, post.body, "the same batch again");
    host.fail_http_call();
    plugin.on_http_call_response(retry.token, 0);
    assert_eq!(host.metric("obguard.events.failed.unreachable"), 1);
    assert_eq!(host.metric("obguard.events.dropped.undeliverable"), 2);
    // The rest goes out and is taken.
    plugin.on_tick();
    let last = host.http_calls().last().unwrap().clone();
    assert_ne!(last.token, retry.token);
    host.answer_http_call(202, [], b"");
    plugin.on_http_call_response(last.token, 0);
    assert_eq!(host.metric("obguard.events.sent"), 1);
    assert_eq!(
        host.metric("obguard.events.queue_depth"),
        0,
        "set when the batch is taken, not only at the next tick"
    );
}

#[test]
fn the_external_list_revokes_and_a_bad_one_keeps_the_last_good() {
    let host = Rc::new(MemoryHost::new(kit::now()));
    let mut config = kit::plugin_config();
    config["containment"] = json!({"list": {"cluster": "soc_lists", "path": "/c.json",
        "refresh_s": 10, "retry_s": 5}});
    let mut plugin = configured(&host, &config);
    let mut claims = kit::claims("tpp-1", "accounts");
    claims["jti"] = json!("stolen");
    claims["exp"] = json!(kit::now() + 3500);
    let stolen = kit::token("ES256", Key::P256, &claims);
    assert_eq!(get(&host, &plugin, "/accounts", &stolen), 200);
    let fetch = host.http_calls()[0].clone();
    assert_eq!(fetch.cluster, "soc_lists");
    let list = json!({"revoked": [{"jti": "stolen", "expires_at": kit::now() + 3600}]});
    host.answer_http_call(200, [("etag", &b"\"v1\""[..])], list.to_string().as_bytes());
    plugin.on_http_call_response(fetch.token, list.to_string().len());
    plugin.on_tick();
    assert_eq!(get(&host, &plugin, "/accounts", &stolen), 401);
    assert_eq!(host.metric("obguard.token_invalid.token_revoked"), 1);

    host.advance(Duration::from_secs(11));
    plugin.on_tick();
    let refetch = host.http_calls().last().unwrap().clone();
    assert_eq!(refetch.header("if-none-match"), Some("\"v1\""));
    host.answer_http_call(200, [], b"{\"revoked\": [{\"jti\": 5}]}");
    plugin.on_http_call_response(refetch.token, 24);
    assert_eq!(
        host.metric("obguard.containment.list.fetch_failed.invalid"),
        1
    );
    plugin.on_tick();
    assert_eq!(
        get(&host, &plugin, "/accounts", &stolen),
        401,
        "the last good list stays"
    );
}

/// A `watch` match raises the model's score by `watch_score` with its reason first; a `deny`
/// match refuses before the token is read (a forged token is not checked).
#[test]
fn a_watch_match_raises_the_score_and_a_deny_match_refuses_first() {
    use obguard::intel::{FeedFormat, FeedKind, parse_feed};
    use obguard::pipeline::{Action, Worker, decide};
    use obguard::telemetry::Outcome;
    use obguard_testkit::pipeline::{bearer, load, view};

    let mut config = kit::plugin_config();
    config["model"] = kit::config::shipped_model("enforce");
    config["routes"][0]["thresholds"] = json!({"step_up": 0.25, "throttle": 1.0, "block": 1.0});
    let fetch = json!({"cluster": "intel", "path": "/f"});
    config["threat_intel"] = json!({
        "client_ip": {"source": "header", "header": "x-forwarded-for", "xff_num_trusted_hops": 0},
        "watch_score": 0.3,
        "feeds": [
            {"name": "deny-list", "kind": "ip", "action": "deny", "fetch": fetch},
            {"name": "watch-list", "kind": "ip", "action": "watch", "fetch": fetch}
        ]
    });
    let config = load(&config);
    let mut worker = Worker::new(&config);
    worker.intel = vec![
        Some(parse_feed(FeedKind::Ip, FeedFormat::Text, b"203.0.113.0/24\n", 10).unwrap()),
        Some(parse_feed(FeedKind::Ip, FeedFormat::Text, b"198.51.100.0/24\n", 10).unwrap()),
    ];
    let token = bearer(&token("tpp-1", &[]));
    let auth = [token.as_str()];
    let now = kit::now();
    let mut scored = |ip: &str| {
        let headers = vec![("x-forwarded-for".to_owned(), ip.to_owned())];
        let mut request = view("GET", "/accounts", &auth);
        request.headers = &headers;
        let decision = decide(&config, &mut worker, &request, now);
        let model = decision.trace.model.clone().expect("scored");
        (model.score, model.verdict, model.reasons, decision.outcome)
    };
    let (base, verdict, _, _) = scored("192.0.2.1");
    assert!(base < 0.25, "a warm-up request scores low: {base}");
    assert_eq!(verdict, obguard::assess::Verdict::Allow);
    let (watched, verdict, reasons, outcome) = scored("198.51.100.9");
    assert!((watched - (base + 0.3)).abs() < 0.05, "{base} → {watched}");
    assert_eq!(verdict, obguard::assess::Verdict::StepUp);
    assert_eq!(outcome, Outcome::Challenged);
    assert_eq!(reasons[0], "threat_intel_watch(watch-list:198.51.100.0/24)");

    let forged = format!("Bearer {}x", token.trim_start_matches("Bearer "));
    let auth = [forged.as_str()];
    let headers = vec![("x-forwarded-for".to_owned(), "203.0.113.9".to_owned())];
    let mut request = view("GET", "/accounts", &auth);
    request.headers = &headers;
    let decision = decide(&config, &mut worker, &request, now);
    assert_eq!(decision.outcome, Outcome::ThreatDenied);
    assert!(decision.trace.verified_by.is_none(), "no signature checked");
    let Action::Reply(reply) = &decision.action else {
        panic!("refused");
    };
    assert_eq!(reply.status, 403);
}
