//! Token validation through the real Envoy with the built obguard.wasm: every attack in the
//! Foundation list is refused with the right RFC 6750 answer and never reaches the upstream.

use obguard_integration::{EchoUpstream, Envoy, EnvoyOptions, RawRequest, Response};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

struct Setup {
    upstream: EchoUpstream,
    envoy: Envoy,
}

/// The test config with Envoy's `verify_signature` (BoringSSL) allowed or not for RS*/ES*.
fn config_with_host_crypto(on: bool) -> Value {
    let mut config = kit::plugin_config();
    config["issuers"][0]["host_crypto"] = json!(on);
    config
}

fn start(config: Value) -> Setup {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()).plugin(config));
    Setup { upstream, envoy }
}

fn get(envoy: &Envoy, path: &str, token: &str) -> Response {
    envoy.send(&RawRequest::get(path).bearer(token))
}

fn accounts(alg: &str, key: Key) -> String {
    kit::token_for(alg, key, "tpp-1", "accounts")
}

/// Asserts a 401 `invalid_token` reply in full: challenge, JSON body, interaction id.
fn assert_invalid_token(resp: &Response, case: &str) {
    assert_eq!(resp.status, 401, "{case}: {}", resp.text());
    let challenge = resp.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with(
            "Bearer realm=\"bank.test\", error=\"invalid_token\", error_description=\""
        ),
        "{case}: {challenge}"
    );
    let body = resp.json();
    assert_eq!(body["error"], "invalid_token", "{case}");
    let id = resp.header("x-fapi-interaction-id").unwrap_or_default();
    assert_eq!(id.len(), 36, "{case}: interaction id on the 401");
    assert_eq!(body["interaction_id"], id, "{case}");
    assert_eq!(
        resp.header("content-type"),
        Some("application/json"),
        "{case}"
    );
}

#[test]
fn valid_tokens_reach_the_upstream_with_identity_headers() {
    let s = start(kit::plugin_config());
    for (alg, key) in [
        ("RS256", Key::Rsa1),
        ("PS256", Key::Rsa2),
        ("ES256", Key::P256),
        ("ES384", Key::P384),
        ("EdDSA", Key::Ed25519),
    ] {
        let token = kit::token_for(alg, key, "tpp-1", "accounts transactions:read");
        let resp = get(&s.envoy, "/accounts/acc-7/transactions", &token);
        assert_eq!(resp.status, 200, "{alg}: {}", resp.text());
        let seen = &resp.json()["headers"];
        assert_eq!(seen["x-obguard-client-id"], json!(["tpp-1"]), "{alg}");
        assert_eq!(seen["x-obguard-subject"], json!(["psu-tpp-1"]), "{alg}");
        assert_eq!(
            seen["x-obguard-scopes"],
            json!(["accounts transactions:read"]),
            "{alg}"
        );
        assert_eq!(seen["x-obguard-route"], json!(["transactions"]), "{alg}");
        assert_eq!(seen["x-obguard-audience"], json!([kit::AUDIENCE]), "{alg}");
        assert!(
            seen.get("authorization").is_none(),
            "{alg}: forward_authorization=false"
        );
        let id = resp
            .header("x-fapi-interaction-id")
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            seen["x-fapi-interaction-id"],
            json!([id]),
            "{alg}: same id upstream and back"
        );
    }
    assert_eq!(s.upstream.count(), 5);
    assert_eq!(
        s.envoy
            .wait_counter("wasmcustom.obguard.requests.allowed", 5),
        5
    );
    let lines = s.envoy.wait_access_log(5);
    assert!(
        lines.iter().all(|l| l["outcome"] == "allowed"
            && l["client_id"] == "tpp-1@idp.obguard.test"
            && l["route"] == "transactions"),
        "{lines:?}"
    );
}

#[test]
fn forged_and_invalid_tokens_are_refused() {
    for host_crypto in [true, false] {
        forged_tokens_with(host_crypto);
    }
}

fn forged_tokens_with(host_crypto: bool) {
    let s = start(config_with_host_crypto(host_crypto));
    let now = kit::now();
    let claims = kit::claims("tpp-1", "accounts");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = kit::claims("tpp-1", "accounts");
        edit(&mut c);
        kit::token("PS256", Key::Rsa1, &c)
    };
    let good = accounts("RS256", Key::Rsa1);
    let (good_input, _) = good.rsplit_once('.').unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let other = kit::token_for("RS256", Key::Rsa1, "tpp-2", "accounts payments");
    let es = accounts("ES256", Key::P256);
    let (es_input, _) = es.rsplit_once('.').unwrap();
    let unsigned = |alg: &str| {
        format!(
            "{}.{}.c2ln",
            kit::b64(json!({"alg": alg, "typ": "at+jwt"}).to_string()),
            kit::b64(claims.to_string())
        )
    };

    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", unsigned("none"), "alg_none"),
        ("alg None", unsigned("None"), "alg_none"),
        ("alg NONE", unsigned("NONE"), "alg_none"),
        (
            "HS256 with the RSA public key",
            kit::sign_hmac(
                "HS256",
                kit::rsa_public_pem(Key::Rsa1).as_bytes(),
                &json!({"alg": "HS256", "typ": "at+jwt", "kid": "rsa-1"}),
                &claims,
            ),
            "alg_not_allowed",
        ),
        (
            "unknown kid",
            kit::sign(
                "RS256",
                Key::Rsa1,
                &json!({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-9"}),
                &claims,
            ),
            "unknown_kid",
        ),
        (
            "missing kid, several keys",
            kit::sign(
                "RS256",
                Key::Rsa1,
                &json!({"alg": "RS256", "typ": "at+jwt"}),
                &claims,
            ),
            "kid_required",
        ),
        (
            "kid with a path",
            kit::sign(
                "RS256",
                Key::Rsa1,
                &json!({"alg": "RS256", "typ": "at+jwt", "kid": "../../../../dev/null"}),
                &claims,
            ),
            "unknown_kid",
        ),
        (
            "kid with SQL",
            kit::sign(
                "RS256",
                Key::Rsa1,
                &json!({"alg": "RS256", "typ": "at+jwt", "kid": "x' UNION SELECT 'key"}),
                &claims,
            ),
            "unknown_kid",
        ),
        (
            "embedded jwk",
            kit::sign(
                "ES256",
                Key::AttackerP256,
                &json!({"alg": "ES256", "typ": "at+jwt", "kid": "ec-p256", "jwk": kit::jwk(Key::AttackerP256)}),
                &claims,
            ),
            "malformed",
        ),
        (
            "jku",
            kit::sign(
                "ES256",
                Key::AttackerP256,
                &json!({"alg": "ES256", "typ": "at+jwt", "kid": "ec-p256", "jku": "http://127.0.0.1:1/jwks"}),
                &claims,
            ),
            "bad_signature",
        ),
        (
            "x5u",
            kit::sign(
                "ES256",
                Key::AttackerP256,
                &json!({"alg": "ES256", "typ": "at+jwt", "kid": "ec-p256", "x5u": "http://127.0.0.1:1/cert"}),
                &claims,
            ),
            "bad_signature",
        ),
        ("stripped signature", format!("{good_input}."), "malformed"),
        (
            "signature from another token",
            format!("{good_input}.{}", other.rsplit('.').next().unwrap()),
            "bad_signature",
        ),
        (
            "payload swapped",
            format!(
                "{}.{}.{}",
                parts[0],
                kit::b64(kit::claims("tpp-1", "accounts payments").to_string()),
                parts[2]
            ),
            "bad_signature",
        ),
        (
            "ES256 all-zero signature (CVE-2022-21449)",
            format!("{es_input}.{}", kit::b64([0u8; 64])),
            "bad_signature",
        ),
        ("expired", with(&|c| c["exp"] = json!(now - 120)), "expired"),
        (
            "nbf in the future",
            with(&|c| c["nbf"] = json!(now + 600)),
            "not_yet_valid",
        ),
        (
            "iat in the future",
            with(&|c| {
                c["iat"] = json!(now + 600);
                c["exp"] = json!(now + 900)
            }),
            "issued_in_future",
        ),
        (
            "lifetime beyond max",
            with(&|c| c["exp"] = json!(now + 7200)),
            "lifetime_exceeded",
        ),
        (
            "wrong iss",
            with(&|c| c["iss"] = json!("https://evil.test")),
            "wrong_issuer",
        ),
        (
            "wrong aud",
            with(&|c| c["aud"] = json!("https://elsewhere.test")),
            "wrong_audience",
        ),
        (
            "typ JWT where at+jwt is required",
            kit::sign(
                "RS256",
                Key::Rsa1,
                &json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"}),
                &claims,
            ),
            "wrong_typ",
        ),
        (
            "unknown crit",
            kit::sign(
                "RS256",
                Key::Rsa1,
                &json!({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1", "crit": ["x-bank"], "x-bank": 1}),
                &claims,
            ),
            "crit_unsupported",
        ),
        (
            "oversize",
            format!(
                "{}.{}.{}",
                "a".repeat(3000),
                "b".repeat(1000),
                "c".repeat(100)
            ),
            "oversize",
        ),
        (
            "non-base64url bytes",
            format!("{}.{}!.{}", parts[0], parts[1], parts[2]),
            "malformed",
        ),
        (
            "five segments (JWE)",
            "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d".to_owned(),
            "jwe_unsupported",
        ),
    ];
    for (case, token, reason) in &cases {
        let resp = get(&s.envoy, "/accounts", token);
        let case = &format!("{case} (host_crypto={host_crypto})");
        assert_invalid_token(&resp, case);
        let metric = format!("wasmcustom.obguard.token_invalid.{reason}");
        assert!(
            s.envoy.counter(&metric) >= 1,
            "{case}: {metric} not counted"
        );
    }
    assert_eq!(s.upstream.count(), 0, "nothing forged reached the upstream");
    assert_eq!(
        s.envoy.counter("wasmcustom.obguard.requests.invalid_token"),
        cases.len() as u64
    );
    let lines = s.envoy.wait_access_log(cases.len());
    for ((case, _, reason), line) in cases.iter().zip(&lines) {
        assert_eq!(line["outcome"], "invalid_token", "{case}");
        assert_eq!(line["reason"], *reason, "{case}");
        assert_eq!(line["status"], 401, "{case}");
    }
}

#[test]
fn credentials_must_be_one_bearer_header() {
    let s = start(kit::plugin_config());
    let token = accounts("ES256", Key::P256);

    let resp = s.envoy.send(&RawRequest::get("/accounts"));
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("www-authenticate"),
        Some("Bearer realm=\"bank.test\""),
        "no error code without credentials"
    );

    let resp = s
        .envoy
        .send(&RawRequest::get("/accounts").header("authorization", "Basic dXNlcjpwYXNz"));
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("www-authenticate"),
        Some("Bearer realm=\"bank.test\"")
    );

    let resp = s
        .envoy
        .send(&RawRequest::get("/accounts").header("authorization", format!("bEaReR {token}")));
    assert_eq!(resp.status, 200, "scheme is case-insensitive");

    let resp = s.envoy.send(
        &RawRequest::get("/accounts")
            .header("authorization", format!("Bearer {token}"))
            .header("authorization", format!("Bearer {token}")),
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(
        resp.header("www-authenticate")
            .unwrap_or_default()
            .contains("error=\"invalid_request\"")
    );
    assert_eq!(resp.json()["error"], "invalid_request");

    let resp = s
        .envoy
        .send(&RawRequest::get(format!("/accounts?access_token={token}")));
    assert_eq!(resp.status, 400, "{}", resp.text());
    let resp = s
        .envoy
        .send(&RawRequest::get(format!("/accounts?access_token={token}")).bearer(&token));
    assert_eq!(
        resp.status, 400,
        "a query token is refused even beside a header"
    );

    assert_eq!(s.upstream.count(), 1);
    assert_eq!(
        s.envoy
            .counter("wasmcustom.obguard.request_invalid.multiple_authorization"),
        1
    );
    assert_eq!(
        s.envoy
            .counter("wasmcustom.obguard.request_invalid.token_in_query"),
        2
    );
    assert_eq!(
        s.envoy.counter("wasmcustom.obguard.requests.missing_token"),
        2
    );
}

#[test]
fn repeated_tokens_are_served_from_the_cache() {
    let s = start(kit::plugin_config());
    let token = accounts("PS256", Key::Rsa1);
    for _ in 0..5 {
        assert_eq!(get(&s.envoy, "/accounts", &token).status, 200);
    }
    assert_eq!(s.envoy.counter("wasmcustom.obguard.token_cache.miss"), 1);
    assert_eq!(s.envoy.counter("wasmcustom.obguard.token_cache.hit"), 4);
}

#[test]
fn hmac_issuer_with_shared_secret() {
    let s = start(kit::config::with_hmac_issuer());
    let mut claims = kit::claims("tpp-h", "accounts");
    claims["iss"] = json!(kit::HMAC_ISSUER);
    let token = kit::hmac_token(&claims);
    assert_eq!(get(&s.envoy, "/accounts", &token).status, 200);
    let wrong = kit::sign_hmac(
        "HS256",
        b"another-secret-of-at-least-32-bytes!",
        &json!({"alg": "HS256"}),
        &claims,
    );
    assert_invalid_token(&get(&s.envoy, "/accounts", &wrong), "wrong secret");
}

#[test]
fn access_log_json_puts_every_field_in_one_filter_state_object() {
    let mut config = kit::plugin_config();
    config["access_log"] = json!({"format": "json"});
    let s = start(config);
    let ok = get(&s.envoy, "/accounts", &accounts("RS256", Key::Rsa1));
    assert_eq!(ok.status, 200, "{}", s.envoy.log());
    let refused = get(&s.envoy, "/accounts", "not.a.token");
    assert_eq!(refused.status, 401);
    let lines = s.envoy.wait_access_log(2);
    let objects: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line["log"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(objects[0]["outcome"], "allowed", "{lines:?}");
    assert_eq!(objects[0]["route"], "accounts", "{lines:?}");
    assert_eq!(
        objects[0]["interaction_id"], lines[0]["resp_interaction_id"],
        "{lines:?}"
    );
    assert_eq!(objects[1]["outcome"], "invalid_token", "{lines:?}");
    assert_eq!(objects[1]["reason"], "malformed", "{lines:?}");
    // Nothing is written field by field.
    assert!(lines.iter().all(|l| l["outcome"].is_null()), "{lines:?}");
}
