#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The Open Banking profile natively: consent-bound resources (claim and consent-service
//! forms, the fetch-and-decide-again cycle), RFC 8705 certificate-bound tokens, RFC 9449 DPoP
//! proofs (with replays), FAPI headers and idempotency keys. The same behaviours run
//! through Envoy in `integration/tests/open_banking.rs`.

use obguard::authorise::consent::{ConsentFetchError, ConsentRecord, ConsentSource};
use obguard::config::FilterConfig;
use obguard::pipeline::{Action, Connection, Decision, RequestView, Worker, decide};
use obguard::telemetry::Outcome;
use obguard_testkit::dpop::{Proof, jkt, x5t_s256};
use obguard_testkit::pipeline::{load, load_err, reply_header, status, view};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const HOST: &str = "api.bank.test";

fn config_with(issuer_extra: Value, routes_extra: &[(usize, Value)], top: Value) -> Value {
    let mut config = kit::plugin_config();
    for (name, value) in issuer_extra.as_object().unwrap() {
        config["issuers"][0][name] = value.clone();
    }
    for (index, extra) in routes_extra {
        for (name, value) in extra.as_object().unwrap() {
            config["routes"][*index][name] = value.clone();
        }
    }
    for (name, value) in top.as_object().unwrap() {
        config[name] = value.clone();
    }
    config
}

/// Route 1 is `GET /accounts/{AccountId}`, route 4 `POST /domestic-payments`.
fn consent_claim_config() -> FilterConfig {
    load(&config_with(
        json!({"consent": {"resources_claim": "consented_accounts"}}),
        &[
            (1, json!({"consent_params": ["AccountId"]})),
            (2, json!({"consent_params": ["AccountId"]})),
        ],
        json!({}),
    ))
}

fn token_with(extra: Value) -> String {
    let mut claims = kit::claims("tpp-1", "accounts payments");
    for (name, value) in extra.as_object().unwrap() {
        claims[name] = value.clone();
    }
    kit::token("ES256", Key::P256, &claims)
}

struct Request<'a> {
    method: &'a str,
    path: &'a str,
    authorization: String,
    headers: Vec<(String, String)>,
    connection: &'a dyn Connection,
    consent_answer: Option<&'a Result<ConsentRecord, ConsentFetchError>>,
}

impl<'a> Request<'a> {
    fn get(path: &'a str, token: &str) -> Self {
        Self {
            method: "GET",
            path,
            authorization: format!("Bearer {token}"),
            headers: vec![
                (":scheme".into(), "https".into()),
                (":authority".into(), HOST.into()),
            ],
            connection: &obguard::pipeline::Plaintext,
            consent_answer: None,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn decide<'c>(&self, config: &'c FilterConfig, worker: &mut Worker) -> Decision<'c> {
        let authorization = [self.authorization.as_str()];
        let request = RequestView {
            headers: &self.headers,
            connection: self.connection,
            consent_answer: self.consent_answer,
            ..view(self.method, self.path, &authorization)
        };
        decide(config, worker, &request, kit::now())
    }
}

#[test]
fn consent_claim_binds_the_account_parameter() {
    let config = consent_claim_config();
    let mut worker = Worker::new(&config);
    let token = token_with(json!({"consented_accounts": ["acc-1", "acc-2"]}));
    let ok = Request::get("/accounts/acc-2", &token).decide(&config, &mut worker);
    assert_eq!(status(&ok), 200, "{:?}", ok.reason);
    assert_eq!(ok.trace.consent, Some(ConsentSource::Claim));
    let other = Request::get("/accounts/acc-9/balances", &token).decide(&config, &mut worker);
    assert_eq!(status(&other), 403);
    assert_eq!(other.outcome, Outcome::ConsentDenied);
    assert_eq!(other.reason, Some("consent_mismatch"));
    let Action::Reply(reply) = &other.action else {
        panic!("not refused")
    };
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["error"], "access_denied");
    // Routes without consent parameters are not checked; tokens without the claim are
    // refused on the bound ones.
    let bare = token_with(json!({}));
    assert_eq!(
        status(&Request::get("/accounts", &bare).decide(&config, &mut worker)),
        200
    );
    let missing = Request::get("/accounts/acc-1", &bare).decide(&config, &mut worker);
    assert_eq!(missing.reason, Some("consent_missing"));
}

#[test]
fn consent_configuration_is_checked_at_load() {
    let no_issuer_consent = config_with(
        json!({}),
        &[(1, json!({"consent_params": ["AccountId"]}))],
        json!({}),
    );
    assert!(load_err(&no_issuer_consent).contains("issuers[0].consent"));
    let unknown_param = config_with(
        json!({"consent": {"resources_claim": "c"}}),
        &[(1, json!({"consent_params": ["Account"]}))],
        json!({}),
    );
    assert!(load_err(&unknown_param).contains("routes[1].consent_params[0]"));
    let no_service = config_with(
        json!({"consent": {"consent_id_claim": "openbanking_intent_id"}}),
        &[(1, json!({"consent_params": ["AccountId"]}))],
        json!({}),
    );
    assert!(load_err(&no_service).contains("consent_service"));
    let both = config_with(
        json!({"consent": {"consent_id_claim": "a", "resources_claim": "b"}}),
        &[],
        json!({}),
    );
    assert!(load_err(&both).contains("issuers[0].consent"));
}

fn consent_service_config(when_unavailable: &str) -> FilterConfig {
    load(&config_with(
        json!({"consent": {"consent_id_claim": "openbanking_intent_id"}}),
        &[(1, json!({"consent_params": ["AccountId"]}))],
        json!({"consent_service": {
            "cluster": "consent",
            "path": "/consents/{consent_id}",
            "resources_pointer": "/Data/AccountIds",
            "when_unavailable": when_unavailable,
        }}),
    ))
}

#[test]
fn consent_service_is_asked_once_then_cached() {
    let config = consent_service_config("unavailable");
    let mut worker = Worker::new(&config);
    let token = token_with(json!({"openbanking_intent_id": "urn-bank-intent-1"}));
    let first = Request::get("/accounts/acc-1", &token).decide(&config, &mut worker);
    let Action::FetchConsent { consent_id } = &first.action else {
        panic!("no fetch: {:?}", first.action)
    };
    assert_eq!(consent_id, "urn-bank-intent-1");
    let answer = Ok(ConsentRecord::Found {
        active: true,
        resources: vec!["acc-1".into()],
    });
    let resumed = Request {
        consent_answer: Some(&answer),
        ..Request::get("/accounts/acc-1", &token)
    }
    .decide(&config, &mut worker);
    assert_eq!(status(&resumed), 200, "{:?}", resumed.reason);
    assert_eq!(resumed.trace.consent, Some(ConsentSource::Fetched));
    // The next request for another account of the same consent: from the cache, refused.
    let cached = Request::get("/accounts/acc-2", &token).decide(&config, &mut worker);
    assert_eq!(cached.trace.consent, Some(ConsentSource::Cache));
    assert_eq!(cached.reason, Some("consent_mismatch"));
}

#[test]
fn consent_service_failure_follows_the_policy() {
    for (policy, expected) in [("unavailable", 503), ("deny", 403)] {
        let config = consent_service_config(policy);
        let mut worker = Worker::new(&config);
        let token = token_with(json!({"openbanking_intent_id": "i-2"}));
        let failed = Err(ConsentFetchError::Unreachable);
        let decision = Request {
            consent_answer: Some(&failed),
            ..Request::get("/accounts/acc-1", &token)
        }
        .decide(&config, &mut worker);
        assert_eq!(status(&decision), expected, "{policy}");
        if expected == 503 {
            assert_eq!(reply_header(&decision, "retry-after").as_deref(), Some("5"));
            assert_eq!(decision.outcome, Outcome::ConsentUnavailable);
        }
    }
}

#[derive(Debug)]
struct Tls(Option<String>);

impl Connection for Tls {
    fn peer_certificate_sha256(&self) -> Option<String> {
        self.0.clone()
    }
}

#[test]
fn certificate_bound_tokens_need_their_certificate() {
    let config = load(&kit::plugin_config());
    let mut worker = Worker::new(&config);
    let cert_a = b"client certificate A (DER)";
    let token = token_with(json!({"cnf": {"x5t#S256": x5t_s256(cert_a)}}));
    let digest = |der: &[u8]| Some(hex::encode(Sha256::digest(der)));
    let own = Tls(digest(cert_a));
    let ok = Request {
        connection: &own,
        ..Request::get("/accounts", &token)
    }
    .decide(&config, &mut worker);
    assert_eq!(status(&ok), 200, "{:?}", ok.reason);
    assert_eq!(ok.trace.sender_constraint, Some("mtls"));
    let other = Tls(digest(b"another client's certificate"));
    let stolen = Request {
        connection: &other,
        ..Request::get("/accounts", &token)
    }
    .decide(&config, &mut worker);
    assert_eq!(status(&stolen), 401);
    assert_eq!(stolen.reason, Some("certificate_mismatch"));
    let none = Request::get("/accounts", &token).decide(&config, &mut worker);
    assert_eq!(none.reason, Some("certificate_missing"));
    // `required` on a route refuses unbound tokens.
    let required = load(&config_with(
        json!({}),
        &[(0, json!({"sender_constraint": {"mtls": "required"}}))],
        json!({}),
    ));
    let unbound = token_with(json!({}));
    let refused = Request {
        connection: &own,
        ..Request::get("/accounts", &unbound)
    }
    .decide(&required, &mut Worker::new(&required));
    assert_eq!(refused.reason, Some("certificate_binding_required"));
}

fn dpop_request<'a>(path: &'a str, token: &str, proof: &str) -> Request<'a> {
    Request {
        authorization: format!("DPoP {token}"),
        ..Request::get(path, token).header("dpop", proof)
    }
}

#[test]
fn dpop_proofs_are_checked_and_not_replayable() {
    let config = load(&kit::plugin_config());
    let mut worker = Worker::new(&config);
    let token = token_with(json!({"cnf": {"jkt": jkt(Key::P256)}}));
    let htu = format!("https://{HOST}/accounts");
    let proof = Proof::new(Key::P256, "GET", &htu, &token).sign();
    let ok = dpop_request("/accounts", &token, &proof).decide(&config, &mut worker);
    assert_eq!(status(&ok), 200, "{:?}", ok.reason);
    assert_eq!(ok.trace.sender_constraint, Some("dpop"));

    let replayed = dpop_request("/accounts", &token, &proof).decide(&config, &mut worker);
    assert_eq!(status(&replayed), 401);
    assert_eq!(replayed.reason, Some("dpop_proof_replayed"));
    let challenge = reply_header(&replayed, "www-authenticate").unwrap();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("algs=\"ES256 ES384 EdDSA\""),
        "{challenge}"
    );

    let cases: Vec<(&str, Proof)> = vec![
        (
            "dpop_proof_target",
            Proof::new(Key::P256, "GET", &format!("https://{HOST}/other"), &token),
        ),
        (
            "dpop_proof_target",
            Proof::new(Key::P256, "POST", &htu, &token),
        ),
        (
            "dpop_proof_token_hash",
            Proof::new(Key::P256, "GET", &htu, "another-token"),
        ),
        (
            "dpop_proof_key_mismatch",
            Proof::new(Key::AttackerP256, "GET", &htu, &token),
        ),
        (
            "dpop_proof_stale",
            Proof {
                iat: kit::now() - 3600,
                ..Proof::new(Key::P256, "GET", &htu, &token)
            },
        ),
        (
            "dpop_proof_malformed",
            Proof {
                typ: "jwt",
                ..Proof::new(Key::P256, "GET", &htu, &token)
            },
        ),
    ];
    for (reason, proof) in cases {
        let decision =
            dpop_request("/accounts", &token, &proof.sign()).decide(&config, &mut worker);
        assert_eq!(decision.reason, Some(reason), "{proof:?}");
        assert_eq!(status(&decision), 401);
    }
    // The default port and letter case do not matter in `htu`.
    let loose = Proof::new(
        Key::P256,
        "GET",
        "HTTPS://API.Bank.Test:443/accounts",
        &token,
    );
    let decision = dpop_request("/accounts", &token, &loose.sign()).decide(&config, &mut worker);
    assert_eq!(status(&decision), 200, "{:?}", decision.reason);
}

#[test]
fn dpop_bound_tokens_are_not_bearer_tokens() {
    let config = load(&kit::plugin_config());
    let mut worker = Worker::new(&config);
    let token = token_with(json!({"cnf": {"jkt": jkt(Key::Ed25519)}}));
    let as_bearer = Request::get("/accounts", &token).decide(&config, &mut worker);
    assert_eq!(as_bearer.reason, Some("dpop_scheme_mismatch"));
    let no_proof = Request {
        authorization: format!("DPoP {token}"),
        ..Request::get("/accounts", &token)
    }
    .decide(&config, &mut worker);
    assert_eq!(no_proof.reason, Some("dpop_proof_missing"));
    let htu = format!("https://{HOST}/accounts");
    let eddsa = Proof::new(Key::Ed25519, "GET", &htu, &token).sign();
    let ok = dpop_request("/accounts", &token, &eddsa).decide(&config, &mut worker);
    assert_eq!(status(&ok), 200, "{:?}", ok.reason);
    // `off` accepts a bound token as a bearer token.
    let off = load(&config_with(
        json!({"sender_constraint": {"dpop": "off"}}),
        &[],
        json!({}),
    ));
    let decision = Request::get("/accounts", &token).decide(&off, &mut Worker::new(&off));
    assert_eq!(status(&decision), 200);
}

#[test]
fn fapi_headers_and_idempotency_keys() {
    let config = load(&config_with(
        json!({}),
        &[(4, json!({"idempotency_key": true}))],
        json!({"fapi": {"on_invalid": "refuse"}}),
    ));
    let mut worker = Worker::new(&config);
    let token = token_with(json!({}));
    let payment = |headers: &[(&str, &str)]| {
        let mut request = Request {
            method: "POST",
            ..Request::get("/domestic-payments", &token)
        };
        for (n, v) in headers {
            request = request.header(n, v);
        }
        request
    };
    let missing = payment(&[]).decide(&config, &mut worker);
    assert_eq!(status(&missing), 400);
    assert_eq!(missing.reason, Some("idempotency_key_missing"));
    let ok = payment(&[("x-idempotency-key", "pay-0001")]).decide(&config, &mut worker);
    assert_eq!(status(&ok), 200, "{:?}", ok.reason);
    let bad_ip = Request::get("/accounts", &token)
        .header("x-fapi-customer-ip-address", "not-an-ip")
        .decide(&config, &mut worker);
    assert_eq!(bad_ip.reason, Some("fapi_customer_ip_address"));
    assert_eq!(status(&bad_ip), 400);
    let logged = load(&config_with(
        json!({}),
        &[],
        json!({"fapi": {"on_invalid": "log"}}),
    ));
    let forwarded = Request::get("/accounts", &token)
        .header("x-fapi-auth-date", "last tuesday")
        .decide(&logged, &mut Worker::new(&logged));
    assert_eq!(status(&forwarded), 200);
    assert_eq!(forwarded.trace.fapi_logged, Some("fapi_auth_date"));
}

#[test]
fn idempotency_key_and_consent_id_feed_ratelimit_descriptors() {
    use obguard_rls_proto::envoy::service::ratelimit::v3::RateLimitRequest;
    use prost::Message as _;
    let config = load(&config_with(
        json!({"consent": {"consent_id_claim": "openbanking_intent_id"}}),
        &[(1, json!({"consent_params": ["AccountId"]}))],
        json!({
            "consent_service": {"cluster": "consent", "path": "/consents/{consent_id}"},
            "ratelimit": {"cluster": "rls", "domain": "bank", "descriptors": [
                {"entries": [{"key": "consent", "from": "consent_id"}]},
                {"entries": [{"key": "idem", "from": "idempotency_key"}]},
            ]},
        }),
    ));
    let mut worker = Worker::new(&config);
    let token = token_with(json!({"openbanking_intent_id": "intent-9"}));
    let decision = Request {
        method: "POST",
        ..Request::get("/domestic-payments", &token).header("x-idempotency-key", "key-1")
    }
    .decide(&config, &mut worker);
    let Action::Continue {
        ratelimit: Some(call),
        ..
    } = &decision.action
    else {
        panic!("no rate-limit call: {:?}", decision.action)
    };
    let request = RateLimitRequest::decode(call.message.as_slice()).unwrap();
    assert_eq!(
        obguard_testkit::ratelimit::descriptor_entries(&request),
        obguard_testkit::ratelimit::pairs(&[&[("consent", "intent-9")], &[("idem", "key-1")]])
    );
}
