//! Model files through real Envoy (two workers) and a real HTTP model registry: a signed model
//! is polled and swapped in while wrk keeps the proxy busy (no failed request, verdicts
//! switch, every worker swaps); corrupt, unsigned, wrongly signed, tampered and wrong-schema
//! files are refused with a metric while the last good model keeps serving; a registry
//! outage changes nothing; a shadow model's verdicts are logged next to the primary's.

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use obguard_integration::{
    EchoUpstream, Envoy, EnvoyOptions, ModelServer, RawRequest, Response, loopback_cluster,
};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

const WORKERS: u64 = 2;

fn model(new_country_weight: f32) -> Vec<u8> {
    kit::new_country_model(new_country_weight)
}

fn lenient() -> Vec<u8> {
    kit::sign_model(&model(0.0), 1)
}

fn strict() -> Vec<u8> {
    kit::sign_model(&model(10.0), 1)
}

fn short(file: &[u8]) -> String {
    kit::model_digest_hex(file)[..12].to_owned()
}

fn config(model: Value) -> Value {
    let mut config = kit::plugin_config();
    config["model"] = model;
    config["model"]["trusted_keys"] = json!([kit::model_signing_public_key_b64(1)]);
    config
}

fn http_source() -> Value {
    json!({"cluster": "models", "path": "/models/current.model", "poll_s": 1, "timeout_ms": 1000})
}

fn start(model: Value, registry: &ModelServer, upstream: &EchoUpstream) -> Envoy {
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(config(model));
    opts.concurrency = WORKERS as u32;
    opts.extra_clusters
        .push(loopback_cluster("models", registry.port()));
    Envoy::start(opts)
}

fn from(envoy: &Envoy, token: &str, country: &str) -> Response {
    envoy.send(
        &RawRequest::get("/accounts")
            .bearer(token)
            .header("x-client-geo-country", country),
    )
}

/// The access-log line of `resp`, found by its interaction id (scanning from the end: under
/// load the log is long; Envoy flushes it every 50 ms, so wait for it).
fn line_for(envoy: &Envoy, resp: &Response) -> Value {
    let id = resp
        .header("x-fapi-interaction-id")
        .expect("interaction id");
    last_line_with(envoy, id)
}

fn last_line_with(envoy: &Envoy, needle: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(envoy.dir().join("access.log")).unwrap_or_default();
        if let Some(line) = text.lines().rev().find(|l| l.contains(needle)) {
            return serde_json::from_str(line).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no access log line with {needle}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_counter(envoy: &Envoy, name: &str, at_least: u64, within: Duration) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let value = envoy.counter(name);
        if value >= at_least || Instant::now() >= deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls answered "unchanged" so far, waiting up to 5 s for the first.
fn wait_not_modified(envoy: &Envoy) -> u64 {
    wait_counter(
        envoy,
        "wasmcustom.obguard.model.primary.not_modified",
        1,
        Duration::from_secs(5),
    )
}

/// wrk's summary: (requests, failed), failed = non-2xx/3xx answers + socket errors.
fn wrk_summary(output: &str) -> (u64, u64) {
    let mut requests = 0;
    let mut failed = 0;
    for line in output.lines() {
        let line = line.trim();
        if let Some(n) = line
            .split(" requests in ")
            .next()
            .filter(|_| line.contains(" requests in "))
        {
            requests = n.trim().parse().unwrap_or(0);
        }
        if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            failed += n.trim().parse::<u64>().unwrap_or(u64::MAX);
        }
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            failed += rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last())
                .map(|n| n.parse::<u64>().unwrap_or(u64::MAX))
                .sum::<u64>();
        }
    }
    (requests, failed)
}

/// The tests of this file run one at a time: the swap-under-load test asserts that not one of
/// ~80k requests fails. Twice in a full CI run, with the other tests' Envoys running in
/// parallel on the 2-core machine, one request timed out and one got a non-2xx that obguard
/// did not refuse (its refusal list was empty): most likely the single-threaded echo upstream
/// starved. Alone, the test passed every time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn a_signed_model_is_swapped_under_load_and_bad_files_keep_the_last_good_one() {
    let _serial = one_at_a_time();
    let registry = ModelServer::start(lenient());
    let upstream = EchoUpstream::start();
    let envoy = start(json!({"http": http_source()}), &registry, &upstream);
    let swapped = "wasmcustom.obguard.model.primary.swapped";

    // Every worker loads the first model (Envoy's main thread has a plugin instance too, so
    // the count is one per VM: at least one per worker).
    assert!(wait_counter(&envoy, swapped, WORKERS, Duration::from_secs(10)) >= WORKERS);
    std::thread::sleep(Duration::from_millis(1500));
    let vms = envoy.counter(swapped);
    assert_eq!(
        envoy.counter("wasmcustom.obguard.model.primary.fetched"),
        1,
        "one fetch for all"
    );

    let probe = kit::token_for("ES256", Key::P256, "tpp-probe", "accounts");
    // Home country, past the client's warm-up (32 requests; novelty fades over 32).
    for _ in 0..40 {
        assert_eq!(from(&envoy, &probe, "GB").status, 200);
    }
    // The lenient model does not mind a new country.
    let resp = from(&envoy, &probe, "FR");
    assert_eq!(resp.status, 200, "{}", resp.text());
    let line = line_for(&envoy, &resp);
    assert_eq!(line["verdict"], "allow", "{line}");
    assert_eq!(line["model"], short(&lenient()), "{line}");

    // Unchanged file: polls get 304 Not Modified, nothing is swapped again.
    assert!(wait_not_modified(&envoy) >= 1);
    assert!(
        registry.answered().1 >= 1,
        "If-None-Match answered with 304"
    );

    // 20 s of load from a known client; the strict model is published 5 s in.
    let load = kit::token_for("ES256", Key::P256, "tpp-load", "accounts");
    assert_eq!(from(&envoy, &load, "GB").status, 200);
    let url = format!("http://127.0.0.1:{}/accounts", envoy.port());
    let auth = format!("authorization: Bearer {load}");
    let wrk = std::thread::spawn(move || {
        Command::new("wrk")
            .args([
                "-t1",
                "-c4",
                "-d20s",
                // A shared 2-core CI machine can stall a request past wrk's 2 s default.
                "--timeout",
                "10s",
                "-H",
                &auth,
                "-H",
                "x-client-geo-country: GB",
                &url,
            ])
            .output()
            .expect("wrk (apt-get install wrk; `make test` installs it)")
    });
    std::thread::sleep(Duration::from_secs(5));
    registry.publish(strict());
    let swaps = wait_counter(&envoy, swapped, 2 * vms, Duration::from_secs(10));
    assert_eq!(swaps, 2 * vms, "every VM swapped once more");
    // Verdicts switched: a new country is now challenged (RFC 9470), a known one allowed.
    let resp = from(&envoy, &probe, "BR");
    assert_eq!(resp.status, 401, "{}", resp.text());
    assert!(
        resp.header("www-authenticate")
            .unwrap_or_default()
            .contains("insufficient_user_authentication")
    );
    let line = line_for(&envoy, &resp);
    assert_eq!(line["verdict"], "step_up", "{line}");
    assert_eq!(line["model"], short(&strict()), "{line}");
    assert_eq!(from(&envoy, &probe, "GB").status, 200);

    let out = wrk.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk: {text}");
    let (requests, failed) = wrk_summary(&text);
    eprintln!("wrk during the swap: {requests} requests, {failed} failed\n{text}");
    assert!(requests > 1000, "wrk ran: {text}");
    if failed != 0 {
        // Say which requests failed and how: obguard's refusals are in the access log.
        let refused: Vec<Value> = envoy
            .access_log_lines()
            .into_iter()
            .filter(|l| {
                l["client_id"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("tpp-load@"))
            })
            .filter(|l| l["outcome"] != "allowed")
            .collect();
        panic!("{failed} failed requests during the swap: {text}\nrefused by obguard: {refused:?}");
    }
    std::thread::sleep(Duration::from_millis(200));
    // Client ids in the log are qualified by their issuer's namespace.
    let line = last_line_with(&envoy, "\"tpp-load@");
    assert_eq!(
        line["model"],
        short(&strict()),
        "load ended on the new model: {line}"
    );

    // Bad files: each refused with its reason; the strict model keeps serving.
    let mut truncated = strict();
    truncated.truncate(truncated.len() / 2);
    let mut tampered = strict();
    let at = tampered.len() / 2; // inside the body (the signature block is the last ~95 bytes)
    tampered[at] ^= 0x01;
    let mut wrong_schema = model(10.0);
    wrong_schema[9] ^= 0xff; // first byte of the schema hash, after magic and version
    let wrong_schema = kit::sign_model(&wrong_schema, 1);
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("corrupt", truncated, "DE"),
        ("unsigned", model(0.0), "IT"),
        ("unknown_key", kit::sign_model(&model(0.0), 2), "ES"),
        ("bad_signature", tampered, "NL"),
        ("schema_mismatch", wrong_schema, "PT"),
    ];
    for (reason, file, country) in cases {
        registry.publish(file);
        let name = format!("wasmcustom.obguard.model.primary.rejected.{reason}");
        assert!(
            wait_counter(&envoy, &name, 1, Duration::from_secs(8)) >= 1,
            "{reason} refused"
        );
        let resp = from(&envoy, &probe, country);
        assert_eq!(resp.status, 401, "{reason}: strict model still serving");
        let line = line_for(&envoy, &resp);
        assert_eq!(line["model"], short(&strict()), "{reason}: {line}");
    }
    assert!(envoy.log().contains("refused (bad_signature)"));
    assert_eq!(
        envoy.counter(swapped),
        2 * vms,
        "no bad file was ever swapped in"
    );

    // The registry goes down: counted, still serving.
    registry.set_failing(true);
    assert!(
        wait_counter(
            &envoy,
            "wasmcustom.obguard.model.primary.fetch_failed.status",
            1,
            Duration::from_secs(5)
        ) >= 1
    );
    assert_eq!(from(&envoy, &probe, "SE").status, 401);
}

#[test]
fn a_shadow_model_is_scored_and_logged_next_to_the_primary() {
    let _serial = one_at_a_time();
    use base64::Engine as _;
    let b64 = |file: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(file);
    let registry = ModelServer::start(strict());
    let upstream = EchoUpstream::start();
    // Primary inline (lenient), candidate polled over HTTP (strict).
    let envoy = start(
        json!({"inline_base64": b64(lenient()), "shadow_model": {"http": http_source()}}),
        &registry,
        &upstream,
    );
    assert!(
        wait_counter(
            &envoy,
            "wasmcustom.obguard.model.shadow.swapped",
            WORKERS,
            Duration::from_secs(10)
        ) >= WORKERS
    );
    let token = kit::token_for("ES256", Key::P256, "tpp-shadow", "accounts");
    // Past the client's warm-up (32 requests).
    for _ in 0..40 {
        assert_eq!(from(&envoy, &token, "GB").status, 200);
    }
    let resp = from(&envoy, &token, "RU");
    assert_eq!(
        resp.status,
        200,
        "only the primary decides: {}",
        resp.text()
    );
    let line = line_for(&envoy, &resp);
    assert_eq!(line["verdict"], "allow", "{line}");
    assert_eq!(line["model"], short(&lenient()), "{line}");
    assert_eq!(line["shadow_verdict"], "step_up", "{line}");
    assert_eq!(line["shadow_model"], short(&strict()), "{line}");
    let shadow_score: f64 = line["shadow_score"].as_str().unwrap().parse().unwrap();
    let score: f64 = line["score"].as_str().unwrap().parse().unwrap();
    assert!(shadow_score > 0.5 && score < 0.5, "{line}");
    assert!(envoy.counter("wasmcustom.obguard.shadow_verdict.step_up") >= 1);
}

#[test]
fn before_the_first_model_requests_get_the_configured_answer() {
    let _serial = one_at_a_time();
    let registry = ModelServer::start(lenient());
    registry.set_failing(true);
    let upstream = EchoUpstream::start();
    let envoy = start(
        json!({"http": http_source(), "when_unavailable": "refuse", "unavailable_retry_after_s": 9}),
        &registry,
        &upstream,
    );
    let token = kit::token_for("ES256", Key::P256, "tpp-early", "accounts");
    let resp = from(&envoy, &token, "GB");
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert_eq!(resp.header("retry-after"), Some("9"));
    assert_eq!(resp.json()["error"], "temporarily_unavailable");
    assert!(envoy.counter("wasmcustom.obguard.model.unavailable") >= 1);
    assert!(envoy.counter("wasmcustom.obguard.requests.model_unavailable") >= 1);

    registry.set_failing(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut status = 0;
    while Instant::now() < deadline {
        status = from(&envoy, &token, "GB").status;
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(status, 200, "served once the registry answers");
}

/// Envoy's own `file_server` filter serving `dir` under `/models/` on `port` (loopback), as in
/// envoy/model-lifecycle/envoy.yaml.
fn file_server_listener(port: u16, dir: &std::path::Path) -> Value {
    json!({
        "name": "model_files",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "model_files",
                "route_config": {"virtual_hosts": [{"name": "files", "domains": ["*"], "routes": [
                    {"match": {"prefix": "/models/"}, "direct_response": {"status": 404}}
                ]}]},
                "http_filters": [
                    {"name": "envoy.filters.http.file_server", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.file_server.v3.FileServerConfig",
                        "path_mappings": [{"request_path_prefix": "/models/", "file_path_prefix": format!("{}/", dir.display())}],
                        "default_content_type": "application/octet-stream",
                        "manager_config": {"thread_pool": {"thread_count": 1}}
                    }},
                    {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                ]
            }
        }]}]
    })
}

/// Replaces `dir/name` atomically (write, then rename), as an operator should.
fn publish_file(dir: &std::path::Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn model_files_on_local_disk_served_by_envoys_file_server_are_swapped() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    publish_file(dir.path(), "current.model", &lenient());
    // A free loopback port for the file listener (the cluster must name it).
    let files_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream = EchoUpstream::start();
    let source =
        json!({"http": {"cluster": "model_files", "path": "/models/current.model", "poll_s": 1}});
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(config(source));
    opts.extra_clusters
        .push(loopback_cluster("model_files", files_port));
    opts.extra_listeners
        .push(file_server_listener(files_port, dir.path()));
    let envoy = Envoy::start(opts);
    let swapped = "wasmcustom.obguard.model.primary.swapped";
    assert!(wait_counter(&envoy, swapped, 1, Duration::from_secs(10)) >= 1);
    std::thread::sleep(Duration::from_millis(1500));
    let vms = envoy.counter(swapped);
    // No ETag from file_server: the unchanged file is recognised by its digest.
    assert!(wait_not_modified(&envoy) >= 1);
    let token = kit::token_for("ES256", Key::P256, "tpp-disk", "accounts");
    // Past the client's warm-up (32 requests).
    for _ in 0..40 {
        assert_eq!(from(&envoy, &token, "GB").status, 200);
    }
    assert_eq!(from(&envoy, &token, "FR").status, 200, "lenient model");

    publish_file(dir.path(), "current.model", &model(10.0));
    assert!(
        wait_counter(
            &envoy,
            "wasmcustom.obguard.model.primary.rejected.unsigned",
            1,
            Duration::from_secs(5)
        ) >= 1,
        "an unsigned file on disk is refused"
    );
    assert_eq!(
        from(&envoy, &token, "DE").status,
        200,
        "lenient model still serving"
    );

    publish_file(dir.path(), "current.model", &strict());
    assert_eq!(
        wait_counter(&envoy, swapped, 2 * vms, Duration::from_secs(10)),
        2 * vms
    );
    let resp = from(&envoy, &token, "BR");
    assert_eq!(resp.status, 401, "strict model from disk: {}", resp.text());
    assert_eq!(line_for(&envoy, &resp)["model"], short(&strict()));
}
