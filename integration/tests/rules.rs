//! The hard rules through the real Envoy (docs/rules.md): the PSD2 unattended-access limit
//! (four accesses of an account per client, paging within an access counted once, the fifth
//! throttled and named in the log; customer-present reads and other accounts unaffected) and
//! payment velocity (fifteen payments per customer allowed, the sixteenth refused). Rule state
//! lives in shared data, so the two Envoy workers share it.

use std::time::Duration;

use obguard_integration::{EchoUpstream, Envoy, EnvoyOptions, RawRequest};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

/// Seconds between two reads that start a new access. Rule state counts in whole seconds,
/// so 2 keeps a refresh whose pages straddle a second boundary one access.
const GAP_S: u64 = 2;

fn token(client: &str, sub: &str, scope: &str) -> String {
    let mut claims = kit::claims(client, scope);
    claims["sub"] = json!(sub);
    kit::token("ES256", Key::P256, &claims)
}

fn start(rules: Value) -> (EchoUpstream, Envoy) {
    let upstream = EchoUpstream::start();
    let mut config = kit::plugin_config();
    config["rules"] = rules;
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()).plugin(config));
    (upstream, envoy)
}

fn last_line_for(envoy: &Envoy, n: usize) -> Value {
    let lines = envoy.wait_access_log(n);
    assert!(
        lines.len() >= n,
        "{} access log lines: {lines:?}",
        lines.len()
    );
    lines[n - 1].clone()
}

#[test]
fn the_fifth_unattended_access_of_an_account_is_throttled() {
    let (upstream, envoy) = start(json!({
        "psd2_unattended_access": {
            "access_gap_s": GAP_S,
            "routes": ["account", "balances", "transactions"]
        }
    }));
    let tpp = token("tpp-agg", "psu-1", "accounts transactions:read");
    let refresh = [
        "/accounts/acc-1",
        "/accounts/acc-1/balances",
        "/accounts/acc-1/transactions",
        "/accounts/acc-1/transactions?page=2",
        "/accounts/acc-1/transactions?page=3",
    ];
    let mut sent = 0;
    for access in 0..4 {
        for path in refresh {
            let resp = envoy.send(&RawRequest::get(path).bearer(&tpp));
            sent += 1;
            assert_eq!(resp.status, 200, "access {access} {path}: {}", resp.text());
        }
        std::thread::sleep(Duration::from_millis(GAP_S * 1000 + 50));
    }
    assert_eq!(
        upstream.count(),
        20,
        "paging within an access is one access"
    );

    let resp = envoy.send(&RawRequest::get("/accounts/acc-1/balances").bearer(&tpp));
    sent += 1;
    assert_eq!(resp.status, 429, "{}", resp.text());
    assert!(resp.header("retry-after").is_some());
    assert!(resp.header("x-fapi-interaction-id").is_some());
    let line = last_line_for(&envoy, sent);
    assert_eq!(line["outcome"], "throttled", "{line}");
    assert_eq!(line["reason"], "psd2_unattended_limit", "{line}");
    assert_eq!(
        line["reasons"], "psd2_unattended_limit(5th unattended access in 24h)",
        "{line}"
    );

    // The customer asking for it is not counted, nor limited.
    let present = RawRequest::get("/accounts/acc-1/balances")
        .bearer(&tpp)
        .header("x-fapi-customer-ip-address", "198.51.100.7");
    assert_eq!(envoy.send(&present).status, 200);
    // Another account of the same client has its own four.
    let other = envoy.send(&RawRequest::get("/accounts/acc-2/transactions").bearer(&tpp));
    assert_eq!(other.status, 200);
    // Another client reading the same account too.
    let other_tpp = token("tpp-other", "psu-1", "accounts");
    let resp = envoy.send(&RawRequest::get("/accounts/acc-1").bearer(&other_tpp));
    assert_eq!(resp.status, 200);
    assert_eq!(upstream.count(), 23);

    assert_eq!(
        envoy.counter("wasmcustom.obguard.rules.hit.psd2_unattended_limit"),
        1
    );
    assert_eq!(
        envoy.counter("wasmcustom.obguard.rules.hit.payment_velocity"),
        0
    );
    assert_eq!(envoy.counter("wasmcustom.obguard.rules.state.lost"), 0);
    assert!(envoy.counter("wasmcustom.obguard.rules.state.stored") >= 6);
    assert_eq!(envoy.counter("wasmcustom.obguard.requests.throttled"), 1);
}

#[test]
fn the_sixteenth_payment_of_a_customer_in_an_hour_is_refused() {
    // The path classifier (no `routes`) recognises POST /domestic-payments.
    let (upstream, envoy) = start(json!({"payment_velocity": {"verdict": "block"}}));
    let payroll = token("tpp-pay", "psu-payroll", "payments");
    let payment = |tok: &str| {
        RawRequest::post("/domestic-payments")
            .bearer(tok)
            .json(&json!({"Data": {"Initiation": {"InstructedAmount": {"Amount": "10.00"}}}}))
    };
    for i in 0..15 {
        let resp = envoy.send(&payment(&payroll));
        assert_eq!(resp.status, 200, "payment {i}: {}", resp.text());
    }
    let resp = envoy.send(&payment(&payroll));
    assert_eq!(resp.status, 403, "{}", resp.text());
    assert_eq!(resp.json()["error"], "access_denied");
    let line = last_line_for(&envoy, 16);
    assert_eq!(line["outcome"], "blocked", "{line}");
    assert_eq!(line["reason"], "payment_velocity", "{line}");
    assert_eq!(
        line["reasons"], "payment_velocity(16th payment in 1h)",
        "{line}"
    );

    // Another customer of the same client is not limited by the first one's payments.
    let other = token("tpp-pay", "psu-other", "payments");
    assert_eq!(envoy.send(&payment(&other)).status, 200);
    assert_eq!(upstream.count(), 16);
    assert_eq!(
        envoy.counter("wasmcustom.obguard.rules.hit.payment_velocity"),
        1
    );
    assert_eq!(envoy.counter("wasmcustom.obguard.rules.state.stored"), 16);
}
