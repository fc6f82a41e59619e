//! Remote JWKS through real Envoy and a real HTTP JWKS server: first fetch, IdP-down answer,
//! key rotation, unknown-kid storms bounded, stale-if-error up to `max_stale_s`.

use std::time::{Duration, Instant};

use obguard_integration::{
    EchoUpstream, Envoy, EnvoyOptions, JwksServer, RawRequest, Response, loopback_cluster,
};
use obguard_testkit::{self as kit, Key};
use serde_json::json;

fn config() -> serde_json::Value {
    let mut config = kit::plugin_config();
    let issuer = config["issuers"][0].as_object_mut().unwrap();
    issuer.remove("jwks");
    issuer.insert(
        "jwks_remote".into(),
        json!({
            "cluster": "idp",
            "path": "/.well-known/jwks.json",
            "refresh_s": 60,
            "timeout_ms": 500,
            "min_refetch_interval_s": 2,
            "max_stale_s": 5,
            "unavailable": {"status": 503, "retry_after_s": 7}
        }),
    );
    config
}

fn jwks_with(keys: &[Key]) -> serde_json::Value {
    json!({"keys": keys.iter().map(|k| kit::jwk(*k)).collect::<Vec<_>>()})
}

fn get(envoy: &Envoy, token: &str) -> Response {
    envoy.send(&RawRequest::get("/accounts").bearer(token))
}

/// Polls until `check` holds (bounded), returning the last response.
fn eventually(
    envoy: &Envoy,
    token: &str,
    within: Duration,
    check: impl Fn(&Response) -> bool,
) -> Response {
    let deadline = Instant::now() + within;
    loop {
        let resp = get(envoy, token);
        if check(&resp) || Instant::now() >= deadline {
            return resp;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn keys_are_fetched_rotated_bounded_and_kept_while_the_idp_is_down() {
    let idp = JwksServer::start(jwks_with(&[Key::Rsa1, Key::P256]));
    idp.set_failing(true);
    let upstream = EchoUpstream::start();
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(config());
    opts.extra_clusters
        .push(loopback_cluster("idp", idp.port()));
    let envoy = Envoy::start(opts);
    let rsa1 = kit::token_for("RS256", Key::Rsa1, "tpp-1", "accounts");
    let rsa2 = kit::token_for("RS256", Key::Rsa2, "tpp-1", "accounts");

    // Before any successful fetch: the IdP-down answer, not a 401.
    let resp = get(&envoy, &rsa1);
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert_eq!(resp.header("retry-after"), Some("7"));
    assert_eq!(resp.json()["error"], "temporarily_unavailable");
    assert!(resp.header("x-fapi-interaction-id").is_some());
    assert!(envoy.wait_counter("wasmcustom.obguard.jwks.fetch_failed.status", 1) >= 1);

    // The IdP comes back: keys arrive on the next attempt and tokens verify.
    idp.set_failing(false);
    let resp = eventually(&envoy, &rsa1, Duration::from_secs(8), |r| r.status == 200);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(envoy.counter("wasmcustom.obguard.jwks.fetched") >= 1);
    assert!(envoy.counter("wasmcustom.obguard.requests.idp_unavailable") >= 1);

    // Rotation: rsa-2 replaces rsa-1. The new kid triggers a refetch and is accepted; the old
    // one (cached a moment ago) is refused once the new keys are loaded.
    idp.set_jwks(jwks_with(&[Key::Rsa2, Key::P256]));
    let resp = eventually(&envoy, &rsa2, Duration::from_secs(8), |r| r.status == 200);
    assert_eq!(resp.status, 200, "new kid: {}", resp.text());
    let resp = get(&envoy, &rsa1);
    assert_eq!(resp.status, 401, "removed kid: {}", resp.text());
    assert!(envoy.counter("wasmcustom.obguard.jwks.refetch_requested") >= 1);

    // An unknown-kid storm: 60 fake kids within well under the 2 s interval cause at most
    // one fetch.
    std::thread::sleep(Duration::from_millis(2100));
    let before = idp.fetches();
    let started = Instant::now();
    for i in 0..60 {
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": format!("fake-{i}")});
        let token = kit::sign(
            "RS256",
            Key::AttackerRsa,
            &header,
            &kit::claims("tpp-x", "accounts"),
        );
        assert_eq!(get(&envoy, &token).status, 401);
    }
    let storm = started.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    let fetched = idp.fetches() - before;
    assert!(
        fetched <= 1 + (storm.as_secs() / 2) as usize,
        "{fetched} fetches for 60 unknown kids in {storm:?}"
    );
    assert!(envoy.counter("wasmcustom.obguard.jwks.refetch_suppressed") >= 55);

    // IdP down again: the last good keys keep serving until max_stale_s (5 s), then 503.
    idp.set_failing(true);
    let resp = get(&envoy, &rsa2);
    assert_eq!(resp.status, 200, "stale keys still used: {}", resp.text());
    let resp = eventually(&envoy, &rsa2, Duration::from_secs(10), |r| r.status == 503);
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert_eq!(resp.header("retry-after"), Some("7"));
}
