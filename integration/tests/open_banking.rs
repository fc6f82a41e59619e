#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The Open Banking profile through real Envoy: consent-bound accounts (token claim and
//! consent-service forms, the service failing every way, the cache bound), a certificate-
//! bound token over another client certificate (TLS listener, certificates made with
//! openssl), DPoP proofs replayed or for another URL, and a payment without an idempotency
//! key.

use std::time::Duration;

use obguard_integration::{
    ConsentService, EchoUpstream, Envoy, EnvoyOptions, Fault, FaultServer, RawRequest, TestPki,
    https_get, loopback_cluster,
};
use obguard_testkit::dpop::{Proof, jkt, x5t_s256};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

fn token_with(extra: Value) -> String {
    let mut claims = kit::claims("tpp-1", "accounts payments");
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    kit::token("ES256", Key::P256, &claims)
}

/// `GET /accounts/{AccountId}` (route 1) consent-bound, by the issuer's `consent`.
fn consent_config(issuer_consent: Value) -> Value {
    let mut config = kit::plugin_config();
    config["issuers"][0]["consent"] = issuer_consent;
    config["routes"][1]["consent_params"] = json!(["AccountId"]);
    config
}

fn start(config: Value, clusters: Vec<Value>) -> (EchoUpstream, Envoy) {
    let upstream = EchoUpstream::start();
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(config);
    opts.extra_clusters = clusters;
    let envoy = Envoy::start(opts);
    (upstream, envoy)
}

fn get(envoy: &Envoy, path: &str, token: &str) -> obguard_integration::Response {
    envoy.send(&RawRequest::get(path).bearer(token))
}

#[test]
fn an_account_outside_the_claimed_consent_is_refused() {
    let (_upstream, envoy) = start(
        consent_config(json!({"resources_claim": "consented_accounts"})),
        vec![],
    );
    let token = token_with(json!({"consented_accounts": ["acc-1"]}));
    assert_eq!(get(&envoy, "/accounts/acc-1", &token).status, 200);
    let refused = get(&envoy, "/accounts/acc-2", &token);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.json()["error"], "access_denied");
    let log = envoy.wait_access_log(2);
    assert_eq!(log[0]["consent"], "claim");
    assert_eq!(log[1]["outcome"], "consent_denied");
    assert_eq!(log[1]["reason"], "consent_mismatch");
    assert_eq!(
        envoy.counter("wasmcustom.obguard.consent.denied.consent_mismatch"),
        1
    );
}

#[test]
fn the_consent_service_is_asked_cached_bounded_and_its_failure_answered() {
    let consents = ConsentService::start();
    consents.grant("intent-a", &["acc-1", "acc-2"]);
    consents.grant("intent-b", &["acc-9"]);
    let mut config = consent_config(json!({"consent_id_claim": "openbanking_intent_id"}));
    let mut section = ConsentService::plugin_section("consents");
    // One slot: a second consent cannot take the first one's place while it is in use.
    section["max_entries"] = json!(1);
    section["ttl_s"] = json!(2);
    section["stale_if_error_s"] = json!(60);
    config["consent_service"] = section;
    let (_upstream, envoy) = start(config, vec![loopback_cluster("consents", consents.port())]);
    let a = token_with(json!({"openbanking_intent_id": "intent-a"}));
    let b = token_with(json!({"openbanking_intent_id": "intent-b"}));

    assert_eq!(get(&envoy, "/accounts/acc-1", &a).status, 200);
    assert_eq!(get(&envoy, "/accounts/acc-2", &a).status, 200);
    let outside = get(&envoy, "/accounts/acc-9", &a);
    assert_eq!(outside.status, 403, "{}", outside.text());
    assert_eq!(consents.lookups(), ["intent-a"], "cached after one lookup");
    // The cache is bounded: intent-b finds the only slot taken, so it is asked every time.
    assert_eq!(get(&envoy, "/accounts/acc-9", &b).status, 200);
    assert_eq!(get(&envoy, "/accounts/acc-9", &b).status, 200);
    assert_eq!(consents.lookups(), ["intent-a", "intent-b", "intent-b"]);
    let log = envoy.wait_access_log(5);
    assert_eq!(log[0]["consent"], "fetched");
    assert_eq!(log[1]["consent"], "cache");
    assert_eq!(log[2]["reason"], "consent_mismatch");

    // The service fails: past its TTL intent-a is used stale; intent-b, never cached, gets
    // the configured 503.
    consents.set_failing(true);
    std::thread::sleep(Duration::from_millis(2100));
    let stale = get(&envoy, "/accounts/acc-1", &a);
    assert_eq!(stale.status, 200, "{}", stale.text());
    let down = get(&envoy, "/accounts/acc-9", &b);
    assert_eq!(down.status, 503, "{}", down.text());
    assert_eq!(down.header("retry-after"), Some("5"));
    let log = envoy.wait_access_log(7);
    assert_eq!(log[5]["consent"], "stale");
    assert_eq!(log[6]["outcome"], "consent_unavailable");
    assert!(envoy.counter("wasmcustom.obguard.consent.fetch_failed.status") >= 2);
    assert!(envoy.wait_log("consent service (cluster consents) failed: status"));
}

#[test]
fn every_consent_service_failure_gets_the_configured_answer() {
    let good = json!({"Data": {"Status": "Authorised", "AccountIds": ["acc-1"]}});
    let faults = FaultServer::json(&good);
    let mut config = consent_config(json!({"consent_id_claim": "openbanking_intent_id"}));
    let mut section = ConsentService::plugin_section("consents");
    section["timeout_ms"] = json!(300);
    section["max_bytes"] = json!(4096);
    section["when_unavailable"] = json!("deny");
    section["ttl_s"] = json!(0);
    section["stale_if_error_s"] = json!(0);
    config["consent_service"] = section;
    let (_upstream, envoy) = start(config, vec![loopback_cluster("consents", faults.port())]);
    let token = token_with(json!({"openbanking_intent_id": "intent-x"}));
    assert_eq!(get(&envoy, "/accounts/acc-1", &token).status, 200);
    // Envoy answers a refused or reset connection and a timeout with its own 503/504, so
    // those count as `status`; a body cut short has no answer at all (`unreachable`).
    // `Refused` last: the server rebinds its port when it is switched back.
    let cases = [
        (Fault::Body(b"<html>not json".to_vec()), "garbage"),
        (Fault::Oversized(10_000), "too_large"),
        (Fault::Status(500), "status"),
        (Fault::GarbageStatusLine, "status"),
        (Fault::CutShort, "unreachable"),
        (Fault::ResetMidBody, "unreachable"),
        (Fault::ResetOnAccept, "status"),
        (Fault::Stall, "status"),
        (Fault::Refused, "status"),
    ];
    let failures = || envoy.stats_matching(r"^wasmcustom\.obguard\.consent\.fetch_failed\.");
    for (fault, reason) in cases {
        faults.set_fault(fault.clone());
        let before = failures();
        let resp = get(&envoy, "/accounts/acc-1", &token);
        assert_eq!(resp.status, 403, "{fault:?}: {}", resp.text());
        assert_eq!(resp.json()["error"], "access_denied", "{fault:?}");
        let after = failures();
        let grown: Vec<&String> = after
            .iter()
            .filter(|(name, n)| before.get(*name) != Some(n))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            grown,
            [&format!("wasmcustom.obguard.consent.fetch_failed.{reason}")],
            "{fault:?}"
        );
    }
    // Back in service: answered again (the server needs a moment to listen again).
    faults.set_fault(Fault::Good);
    let recovered = (0..20).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        get(&envoy, "/accounts/acc-1", &token).status == 200
    });
    assert!(recovered, "not answered once the service is back");
    let mut envoy = envoy;
    assert!(envoy.is_running(), "Envoy survived every fault");
}

#[test]
fn a_certificate_bound_token_over_another_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path(), &["a", "b"]);
    let upstream = EchoUpstream::start();
    let mut opts = EnvoyOptions::new(upstream.port()).plugin(kit::plugin_config());
    opts.downstream_tls = Some(pki.downstream_transport_socket());
    let envoy = Envoy::start(opts);
    let token = token_with(json!({"cnf": {"x5t#S256": x5t_s256(&pki.client("a").der)}}));
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let (own, body) = https_get(&pki, envoy.port(), "/accounts", pki.client("a"), &auth);
    assert_eq!(own, 200, "{body}");
    let (other, body) = https_get(&pki, envoy.port(), "/accounts", pki.client("b"), &auth);
    assert_eq!(other, 401, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "invalid_token");
    let log = envoy.wait_access_log(2);
    assert_eq!(log[0]["sender_constraint"], "mtls");
    assert_eq!(log[1]["reason"], "certificate_mismatch");
    assert_eq!(
        envoy.counter("wasmcustom.obguard.sender_constraint.refused.certificate_mismatch"),
        1
    );
}

#[test]
fn dpop_proofs_replayed_or_for_another_url_are_refused() {
    let (_upstream, envoy) = start(kit::plugin_config(), vec![]);
    let token = token_with(json!({"cnf": {"jkt": jkt(Key::P256)}}));
    let htu = |path: &str| format!("http://127.0.0.1:{}{path}", envoy.port());
    let send = |path: &str, proof: &str| {
        envoy.send(
            &RawRequest::get(path)
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof),
        )
    };
    let proof = Proof::new(Key::P256, "GET", &htu("/accounts"), &token).sign();
    let ok = send("/accounts", &proof);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let replayed = send("/accounts", &proof);
    assert_eq!(replayed.status, 401);
    assert_eq!(replayed.json()["error"], "invalid_dpop_proof");
    let challenge = replayed.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    let elsewhere = Proof::new(Key::P256, "GET", &htu("/accounts/acc-1"), &token).sign();
    let wrong_url = send("/accounts", &elsewhere);
    assert_eq!(wrong_url.status, 401);
    let as_bearer = get(&envoy, "/accounts", &token);
    assert_eq!(as_bearer.status, 401);
    let log = envoy.wait_access_log(4);
    assert_eq!(log[0]["sender_constraint"], "dpop");
    assert_eq!(log[1]["reason"], "dpop_proof_replayed");
    assert_eq!(log[2]["reason"], "dpop_proof_target");
    assert_eq!(log[3]["reason"], "dpop_scheme_mismatch");
}

#[test]
fn a_payment_without_an_idempotency_key_is_refused() {
    let mut config = kit::plugin_config();
    config["routes"][4]["idempotency_key"] = json!(true);
    config["fapi"] = json!({"on_invalid": "refuse"});
    let (_upstream, envoy) = start(config, vec![]);
    let token = token_with(json!({}));
    let payment = || RawRequest::post("/domestic-payments").bearer(&token);
    let missing = envoy.send(&payment());
    assert_eq!(missing.status, 400, "{}", missing.text());
    assert_eq!(missing.json()["error"], "invalid_request");
    let ok = envoy.send(&payment().header("x-idempotency-key", "pay-42"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    let bad_date = envoy.send(
        &payment()
            .header("x-idempotency-key", "pay-43")
            .header("x-fapi-auth-date", "soon"),
    );
    assert_eq!(bad_date.status, 400);
    let log = envoy.wait_access_log(3);
    assert_eq!(log[0]["reason"], "idempotency_key_missing");
    assert_eq!(log[2]["reason"], "fapi_auth_date");
    assert_eq!(
        envoy.counter("wasmcustom.obguard.request_invalid.idempotency_key_missing"),
        1
    );
}
