#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Threat-intelligence feeds through real Envoy: a listed network is refused on every worker
//! before any signature is checked; the client-written `x-forwarded-for` entry is not
//! trusted; a watch feed is reported; feeds failing every way keep the last good list, an
//! unchanged feed is answered `304`, and a stale one is dropped (fail open).

use std::time::{Duration, Instant};

use obguard_integration::{
    EchoUpstream, Envoy, EnvoyOptions, Fault, FaultServer, RawRequest, Response, loopback_cluster,
};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

const WORKERS: u32 = 2;

/// A token whose signature does not verify (its payload was rewritten).
fn forged() -> String {
    let good = kit::token_for("ES256", Key::P256, "tpp-1", "accounts");
    let parts: Vec<&str> = good.split('.').collect();
    let other = kit::token_for("ES256", Key::P256, "tpp-2", "accounts payments");
    let payload = other.split('.').nth(1).unwrap();
    format!("{}.{payload}.{}", parts[0], parts[2])
}

fn from(ip: &str, token: &str) -> RawRequest {
    // The trusted edge appended the caller's address: the rightmost entry (0 trusted hops).
    RawRequest::get("/accounts")
        .bearer(token)
        .header("x-forwarded-for", ip)
}

fn config(max_stale_s: u64) -> Value {
    let mut config = kit::plugin_config();
    let fetch = |cluster: &str| {
        json!({"cluster": cluster, "path": "/feed.txt", "refresh_s": 1, "retry_s": 1,
               "timeout_ms": 500, "max_bytes": 4096, "max_stale_s": max_stale_s})
    };
    config["threat_intel"] = json!({
        "client_ip": {"source": "header", "header": "x-forwarded-for", "xff_num_trusted_hops": 0},
        "feeds": [
            {"name": "blocklist", "kind": "ip", "action": "deny", "fetch": fetch("intel_deny")},
            {"name": "watchlist", "kind": "ip", "format": "json", "action": "watch", "fetch": fetch("intel_watch")}
        ]
    });
    config
}

fn start(deny: &FaultServer, watch: &FaultServer, max_stale_s: u64) -> (EchoUpstream, Envoy) {
    let upstream = EchoUpstream::start();
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(config(max_stale_s));
    opts.extra_clusters = vec![
        loopback_cluster("intel_deny", deny.port()),
        loopback_cluster("intel_watch", watch.port()),
    ];
    opts.concurrency = WORKERS;
    opts.exact_balance = true;
    let envoy = Envoy::start(opts);
    (upstream, envoy)
}

fn feeds() -> (FaultServer, FaultServer) {
    let deny = FaultServer::list(
        b"# test blocklist\n203.0.113.0/24 ; SBL-TEST\n2001:db8:bad::/48\n".to_vec(),
        "text/plain",
    );
    let watch = FaultServer::list(
        json!({"entries": [{"cidr": "198.51.100.0/24", "comment": "tor exits"}]})
            .to_string()
            .into_bytes(),
        "application/json",
    );
    (deny, watch)
}

/// Until every worker answers `status` (workers load a stored feed on their timer).
fn everywhere(envoy: &Envoy, req: &RawRequest, status: u16) -> Vec<Response> {
    envoy.send_until_every_worker_answers(req, status, Duration::from_secs(6))
}

/// The access log once a line matching `pred` is in it (Envoy flushes it every 100 ms).
fn logged(envoy: &Envoy, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let log = envoy.access_log_lines();
        if log.iter().any(&pred) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_listed_network_is_refused_before_its_token_is_checked() {
    let (deny, watch) = feeds();
    let (_upstream, envoy) = start(&deny, &watch, 3600);
    envoy.wait_counter("wasmcustom.obguard.intel.blocklist.loaded", 1);
    let forged = forged();
    for resp in everywhere(&envoy, &from("203.0.113.77", &forged), 403) {
        assert_eq!(resp.status, 403, "{}", resp.text());
        assert_eq!(resp.json()["error"], "access_denied");
        assert!(
            resp.header("www-authenticate").is_none(),
            "not a token problem"
        );
    }
    // Refused before verification: once every worker has the list, no signature is checked
    // for them (earlier attempts may have met a worker still loading it).
    let checks = || {
        envoy.counter("wasmcustom.obguard.signature_checks.wasm")
            + envoy.counter("wasmcustom.obguard.signature_checks.host")
    };
    let before = checks();
    let spread = envoy.send_spread(&from("203.0.113.78", &forged), 2 * WORKERS as usize);
    assert!(
        spread
            .responses
            .iter()
            .all(|r| r.as_ref().unwrap().status == 403)
    );
    assert_eq!(envoy.send(&from("2001:db8:bad::1", &forged)).status, 403);
    assert_eq!(
        checks(),
        before,
        "a denied request had its signature checked"
    );
    assert!(envoy.counter("wasmcustom.obguard.intel.blocklist.denied") >= 5);
    // Elsewhere the forged token meets its signature check.
    assert_eq!(envoy.send(&from("192.0.2.10", &forged)).status, 401);
    // The leftmost entry is the client's own writing: not trusted.
    let spoofed = RawRequest::get("/accounts")
        .bearer(&forged)
        .header("x-forwarded-for", "203.0.113.77, 192.0.2.10");
    assert_eq!(envoy.send(&spoofed).status, 401);
    let log = logged(&envoy, |l| l["outcome"] == "threat_denied");
    let denied = log
        .iter()
        .find(|l| l["outcome"] == "threat_denied")
        .unwrap();
    assert_eq!(denied["reason"], "threat_intel");
    assert_eq!(denied["intel"], "deny:blocklist(203.0.113.0/24)");

    // A watch match is forwarded and reported.
    envoy.wait_counter("wasmcustom.obguard.intel.watchlist.loaded", 1);
    let good = kit::token_for("ES256", Key::P256, "tpp-1", "accounts");
    let watched = everywhere(&envoy, &from("198.51.100.20", &good), 200);
    assert!(watched.iter().all(|r| r.status == 200));
    let log = logged(&envoy, |l| {
        l["intel"] == "watch:watchlist(198.51.100.0/24)" && l["outcome"] == "allowed"
    });
    assert!(
        log.iter()
            .any(|l| l["intel"] == "watch:watchlist(198.51.100.0/24)" && l["outcome"] == "allowed"),
        "{log:?}"
    );
    assert!(envoy.counter("wasmcustom.obguard.intel.watchlist.watched") >= 1);
    assert_eq!(
        envoy.counter("wasmcustom.obguard.intel.blocklist.entries"),
        2
    );
}

#[test]
fn failing_feeds_keep_the_last_good_list_until_it_is_stale() {
    let (deny, watch) = feeds();
    let (_upstream, envoy) = start(&deny, &watch, 20);
    envoy.wait_counter("wasmcustom.obguard.intel.blocklist.loaded", 1);
    let good = kit::token_for("ES256", Key::P256, "tpp-1", "accounts");
    everywhere(&envoy, &from("203.0.113.5", &good), 403);
    // Unchanged: the ETag saves the transfer.
    envoy.wait_counter("wasmcustom.obguard.intel.blocklist.not_modified", 1);
    for (fault, reason) in Fault::list_failures(b"203.0.113.0/24\n999.1.1.1/8\n", 8192) {
        let name = format!("wasmcustom.obguard.intel.blocklist.fetch_failed.{reason}");
        let before = envoy.counter(&name);
        deny.set_fault(fault.clone());
        envoy.wait_counter(&name, before + 1);
        let resp = envoy.send(&from("203.0.113.5", &good));
        assert_eq!(resp.status, 403, "after {fault:?} the last good list holds");
    }
    assert!(
        envoy
            .log()
            .contains("feed blocklist fetch from cluster intel_deny failed")
    );
    assert!(envoy.log().contains("keeping the last good list"));
    // Still failing past max_stale_s (20 s since the last good answer): dropped, fail open.
    let deadline = Instant::now() + Duration::from_secs(25);
    while envoy.counter("wasmcustom.obguard.intel.blocklist.stale") == 0
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(envoy.counter("wasmcustom.obguard.intel.blocklist.stale") >= 1);
    everywhere(&envoy, &from("203.0.113.5", &good), 200);
    assert!(envoy.log().contains("older than max_stale_s"));
    // Back: applied again.
    deny.set_fault(Fault::Good);
    everywhere(&envoy, &from("203.0.113.5", &good), 403);
    assert_eq!(envoy.send(&RawRequest::get("/health")).status, 200);
}
