//! The behavioural model inside real Envoy with the shipped model file: a normal sequence is
//! allowed, past the client's warm-up a switch to curl from a new country and network is
//! challenged with reasons in the access log, shadow mode allows but logs, a bad model file is refused at configure. (Envoy's
//! clock cannot be moved to 3 AM; the off-hours case runs natively in filter/tests/model.rs.)

use base64::Engine as _;
use obguard_integration::{
    EchoUpstream, Envoy, EnvoyOptions, RawRequest, Response, workspace_root,
};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

fn shipped_model() -> String {
    let bytes = std::fs::read(workspace_root().join("models/shipped/obguard-default.model"))
        .expect("shipped model");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn config(mode: &str) -> Value {
    let mut config = kit::plugin_config();
    let demo_key = std::fs::read_to_string(
        workspace_root().join("envoy/demo/keys/DEMO-ONLY-model-signing.pub"),
    )
    .expect("demo model-signing key");
    config["model"] = json!({
        "inline_base64": shipped_model(),
        "trusted_keys": [demo_key.trim()],
        "mode": mode,
        "max_clients": 1000
    });
    // Written with the old names (`challenge` for `step_up`, in the thresholds and the
    // model section): the aliases are accepted.
    // On the transactions route every anomaly is a step-up challenge (never a block), as a
    // bank would configure a read-only route.
    config["routes"][3]["thresholds"] = json!({"challenge": 0.5, "throttle": 1.0, "block": 1.0});
    config["model"]["challenge"] =
        json!({"acr_values": "urn:openbanking:psd2:sca", "max_age_s": 300});
    config
}

/// An ES256 token for `client` with the scopes the model's routes need.
fn token(client: &str) -> String {
    kit::token_for("ES256", Key::P256, client, "accounts transactions:read")
}

fn request(
    token: &str,
    path: &str,
    country: &str,
    asn: &str,
    ip: &str,
    ua: &str,
    customer: bool,
) -> RawRequest {
    let mut req = RawRequest::get(path)
        .bearer(token)
        .header("x-client-geo-country", country)
        .header("x-client-asn", asn)
        .header("x-forwarded-for", ip)
        .header("user-agent", ua);
    if customer {
        req = req.header("x-fapi-customer-ip-address", "198.51.100.7");
    }
    req
}

/// A request from a new country, ASN and network, driven by curl, no customer present.
fn from_abroad(token: &str) -> RawRequest {
    request(
        token,
        "/accounts/acc-9917/transactions",
        "RU",
        "AS65100",
        "192.0.2.66",
        "curl/8.0",
        false,
    )
}

fn normal(envoy: &Envoy, token: &str, n: usize) -> Vec<Response> {
    (0..n)
        .map(|i| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            envoy.send(&request(
                token,
                &format!("/accounts/acc-{}/transactions", i % 2),
                "GB",
                "AS2856",
                "203.0.113.10",
                "AcmeAggregator/2.3",
                true,
            ))
        })
        .collect()
}

#[test]
fn normal_allowed_new_country_burst_challenged_with_reasons() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()).plugin(config("enforce")));
    let token = token("tpp-model");

    // 40 requests: past the client's warm-up (32), when novelty starts to count.
    let responses = normal(&envoy, &token, 40);
    let allowed = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(allowed, 40, "normal sequence allowed");

    let resp = envoy.send(&from_abroad(&token));
    assert_eq!(resp.status, 401, "{}", resp.text());
    let challenge = resp.header("www-authenticate").unwrap_or_default();
    kit::assert::step_up_challenge(challenge);
    assert!(resp.header("x-fapi-interaction-id").is_some());

    let lines = envoy.wait_access_log(41);
    let last = lines.last().expect("access log");
    assert_eq!(last["outcome"], "challenged", "{last}");
    assert_eq!(last["verdict"], "step_up", "{last}");
    // The top three reasons by strength: a tool this client never used, then the new
    // country and network.
    let reasons = last["reasons"].as_str().unwrap_or_default();
    assert!(reasons.contains("new_user_agent_product(curl)"), "{last}");
    assert!(
        last["score"]
            .as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(|s| s >= 0.5),
        "{last}"
    );
    assert!(envoy.counter("wasmcustom.obguard.verdict.step_up") >= 1);
    assert!(envoy.counter("wasmcustom.obguard.requests.challenged") >= 1);
}

#[test]
fn shadow_mode_allows_but_logs_the_verdict() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()).plugin(config("shadow")));
    let token = token("tpp-shadow");
    normal(&envoy, &token, 40);
    let resp = envoy.send(&from_abroad(&token));
    assert_eq!(resp.status, 200, "shadow mode allows: {}", resp.text());
    let lines = envoy.wait_access_log(41);
    let last = lines.last().expect("access log");
    assert_eq!(last["outcome"], "allowed");
    assert_eq!(last["verdict"], "step_up", "{last}");
    assert!(
        !last["reasons"].as_str().unwrap_or_default().is_empty(),
        "{last}"
    );
}

#[test]
fn a_bad_model_file_is_refused_at_configure_with_the_reason() {
    let mut bad = config("enforce");
    bad["model"]["inline_base64"] =
        json!(base64::engine::general_purpose::STANDARD.encode(b"OBGUARD? truncated"));
    let upstream = EchoUpstream::start();
    let log = match Envoy::try_start(EnvoyOptions::new(upstream.port()).plugin(bad)) {
        Ok(_) => panic!("Envoy started with a bad model"),
        Err(log) => log,
    };
    assert!(
        log.contains("obguard: invalid plugin configuration: model.inline_base64: model refused ("),
        "{log}"
    );
}
