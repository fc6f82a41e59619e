//! Every pipeline decision, natively: the same cases the Envoy integration tests replay
//! through the real proxy, asserted here on the pure decision.

// Test code: failing loudly is the point.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]
use obguard::config::{self, FilterConfig};
use obguard::identify::cache::CacheLookup;
use obguard::pipeline::{Action, Decision, RequestView, Worker, decide};
use obguard::telemetry::Outcome;
use obguard_testkit::pipeline::{load, reply_header, status, view};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

struct Harness {
    config: FilterConfig,
    cache: Worker,
}

impl Harness {
    fn new() -> Self {
        Self::with(kit::plugin_config())
    }

    fn with(config: Value) -> Self {
        let config = load(&config);
        let cache = Worker::new(&config);
        Self { config, cache }
    }

    fn run(&mut self, method: &str, path: &str, authorization: &[&str]) -> Decision<'_> {
        let view = view(method, path, authorization);
        decide(&self.config, &mut self.cache, &view, kit::now())
    }

    fn get(&mut self, path: &str, token: &str) -> Decision<'_> {
        let bearer = format!("Bearer {token}");
        self.run("GET", path, &[bearer.as_str()])
    }

    /// The first issuer's remote keys, as the adapter loads them from shared data: the test
    /// JWKS, fetched at `fetched_at`.
    fn remote_keys_fetched_at(&mut self, fetched_at: u64) {
        let keys = obguard::identify::jwks_remote::parse(
            kit::jwks().to_string().as_bytes(),
            &self.config.issuers[0].algorithms,
            20,
        )
        .unwrap();
        self.cache.remote_keys[0] =
            Some(obguard::identify::jwks_remote::RemoteKeySet { keys, fetched_at });
    }
}

fn assert_refused(decision: &Decision<'_>, status_code: u16, reason: &str) {
    assert_eq!(
        status(decision),
        status_code,
        "reason was {:?}",
        decision.reason
    );
    assert_eq!(decision.reason, Some(reason));
}

fn accounts_token(alg: &str, key: Key) -> String {
    kit::token_for(alg, key, "tpp-1", "accounts")
}

#[test]
fn valid_tokens_of_every_algorithm_are_allowed() {
    let mut h = Harness::new();
    for (alg, key) in [
        ("RS256", Key::Rsa1),
        ("RS384", Key::Rsa2),
        ("RS512", Key::Rsa1),
        ("PS256", Key::Rsa1),
        ("PS384", Key::Rsa2),
        ("PS512", Key::Rsa1),
        ("ES256", Key::P256),
        ("ES384", Key::P384),
        ("EdDSA", Key::Ed25519),
    ] {
        let decision = h.get("/accounts", &accounts_token(alg, key));
        assert_eq!(
            decision.outcome,
            Outcome::Allowed,
            "{alg}: {:?}",
            decision.reason
        );
        assert_eq!(
            decision.client_id.as_deref(),
            Some("tpp-1@idp.obguard.test")
        );
    }
}

#[test]
fn identity_headers_are_set_and_spoofable_ones_removed() {
    let mut h = Harness::new();
    let decision = h.get(
        "/accounts/acc-1/transactions",
        &kit::token_for("PS256", Key::Rsa1, "tpp-1", "accounts transactions:read"),
    );
    let Action::Continue {
        remove,
        remove_authorization,
        set,
        ratelimit: None,
    } = &decision.action
    else {
        panic!("refused: {:?}", decision.reason);
    };
    assert!(remove.iter().any(|h| h == "x-obguard-client-id"));
    assert!(remove.iter().any(|h| h == "x-obguard-token-id"));
    assert!(
        *remove_authorization,
        "forward_authorization is false in the test config"
    );
    let get = |name: &str| set.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_ref());
    assert_eq!(get("x-obguard-client-id"), Some("tpp-1"));
    assert_eq!(get("x-obguard-subject"), Some("psu-tpp-1"));
    assert_eq!(get("x-obguard-scopes"), Some("accounts transactions:read"));
    assert_eq!(get("x-obguard-route"), Some("transactions"));
    assert_eq!(get("x-obguard-audience"), Some(kit::AUDIENCE));
}

#[test]
fn alg_none_in_every_spelling_is_refused() {
    let mut h = Harness::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "at+jwt"});
        let token = format!(
            "{}.{}.",
            kit::b64(header.to_string()),
            kit::b64(kit::claims("tpp-1", "accounts").to_string())
        );
        // A stripped signature is malformed; with a dummy signature alg none is named.
        assert_refused(&h.get("/accounts", &token), 401, "malformed");
        let token = format!("{token}c2ln");
        assert_refused(&h.get("/accounts", &token), 401, "alg_none");
    }
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let mut h = Harness::new();
    let pem = kit::rsa_public_pem(Key::Rsa1);
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "rsa-1"});
    let token = kit::sign_hmac(
        "HS256",
        pem.as_bytes(),
        &header,
        &kit::claims("tpp-1", "accounts"),
    );
    assert_refused(&h.get("/accounts", &token), 401, "alg_not_allowed");
}

#[test]
fn hmac_works_only_for_an_issuer_with_a_shared_secret() {
    let mut h = Harness::with(kit::config::with_hmac_issuer());
    let token = kit::hmac_token(&kit::claims("tpp-h", "accounts"));
    assert_eq!(h.get("/accounts", &token).outcome, Outcome::Allowed);
    // HS256 under the RSA issuer's name is still refused.
    let token = kit::sign_hmac(
        "HS256",
        kit::HMAC_SECRET,
        &json!({"alg": "HS256"}),
        &kit::claims("tpp-h", "accounts"),
    );
    assert_refused(&h.get("/accounts", &token), 401, "alg_not_allowed");
}

#[test]
fn key_selection() {
    let mut h = Harness::new();
    let claims = kit::claims("tpp-1", "accounts");
    let cases = [
        (
            json!({"alg": "RS256", "typ": "at+jwt", "kid": "nope"}),
            "unknown_kid",
        ),
        (json!({"alg": "RS256", "typ": "at+jwt"}), "kid_required"),
        (
            json!({"alg": "RS256", "typ": "at+jwt", "kid": "../../etc/passwd"}),
            "unknown_kid",
        ),
        (
            json!({"alg": "RS256", "typ": "at+jwt", "kid": "' OR 1=1 --"}),
            "unknown_kid",
        ),
        // The right kid but the wrong algorithm family for it.
        (
            json!({"alg": "ES256", "typ": "at+jwt", "kid": "rsa-1"}),
            "alg_key_mismatch",
        ),
    ];
    for (header, reason) in cases {
        let alg = header["alg"].as_str().unwrap();
        let signer = if alg == "ES256" { Key::P256 } else { Key::Rsa1 };
        let token = kit::sign(alg, signer, &header, &claims);
        assert_refused(&h.get("/accounts", &token), 401, reason);
    }
}

#[test]
fn missing_kid_is_fine_with_a_single_key() {
    let mut config = kit::plugin_config();
    config["issuers"][0]["jwks"] = json!({"keys": [kit::jwk(Key::P256)]});
    config["issuers"][0]["algorithms"] = json!(["ES256"]);
    let mut h = Harness::with(config);
    let token = kit::sign(
        "ES256",
        Key::P256,
        &json!({"alg": "ES256", "typ": "at+jwt"}),
        &kit::claims("tpp-1", "accounts"),
    );
    assert_eq!(h.get("/accounts", &token).outcome, Outcome::Allowed);
}

#[test]
fn embedded_keys_and_key_urls_are_never_trusted() {
    let mut h = Harness::new();
    let claims = kit::claims("tpp-1", "accounts");
    // An embedded JWK object is refused before any key is chosen (jwt-simple's header model
    // has no room for it), so it never gets near a signature check.
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "ec-p256", "jwk": kit::jwk(Key::AttackerP256)});
    let token = kit::sign("ES256", Key::AttackerP256, &header, &claims);
    assert_refused(&h.get("/accounts", &token), 401, "malformed");
    let header = json!({"alg": "ES256", "typ": "at+jwt", "jwk": kit::jwk(Key::AttackerP256)});
    let token = kit::sign("ES256", Key::AttackerP256, &header, &claims);
    assert_eq!(status(&h.get("/accounts", &token)), 401);
    for header in [
        json!({"alg": "ES256", "typ": "at+jwt", "kid": "ec-p256", "jku": "https://attacker.test/jwks.json"}),
        json!({"alg": "ES256", "typ": "at+jwt", "kid": "ec-p256", "x5u": "https://attacker.test/cert.pem"}),
    ] {
        let token = kit::sign("ES256", Key::AttackerP256, &header, &claims);
        assert_refused(&h.get("/accounts", &token), 401, "bad_signature");
    }
    // Signed by the real key, the hints are simply ignored.
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "ec-p256", "jku": "https://attacker.test/jwks.json"});
    let token = kit::sign("ES256", Key::P256, &header, &claims);
    assert_eq!(h.get("/accounts", &token).outcome, Outcome::Allowed);
}

#[test]
fn signature_tampering() {
    let mut h = Harness::new();
    let good = accounts_token("RS256", Key::Rsa1);
    let parts: Vec<&str> = good.split('.').collect();
    // Stripped signature.
    assert_refused(
        &h.get("/accounts", &format!("{}.{}.", parts[0], parts[1])),
        401,
        "malformed",
    );
    // Signature of another token.
    let other = kit::token_for("RS256", Key::Rsa1, "tpp-2", "accounts payments");
    let other_sig = other.rsplit('.').next().unwrap();
    assert_refused(
        &h.get(
            "/accounts",
            &format!("{}.{}.{}", parts[0], parts[1], other_sig),
        ),
        401,
        "bad_signature",
    );
    // Payload swapped under a valid signature.
    let forged = kit::b64(kit::claims("tpp-1", "accounts payments").to_string());
    assert_refused(
        &h.get(
            "/accounts",
            &format!("{}.{}.{}", parts[0], forged, parts[2]),
        ),
        401,
        "bad_signature",
    );
    // Signed by a key that is not in the JWKS, under a configured kid.
    let token = kit::sign(
        "RS256",
        Key::AttackerRsa,
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"}),
        &kit::claims("tpp-1", "accounts"),
    );
    assert_refused(&h.get("/accounts", &token), 401, "bad_signature");
}

#[test]
fn es256_all_zero_signature_is_refused() {
    // CVE-2022-21449 ("psychic signatures"): r = s = 0 must never verify.
    let mut h = Harness::new();
    let good = accounts_token("ES256", Key::P256);
    let (input, _) = good.rsplit_once('.').unwrap();
    let token = format!("{input}.{}", kit::b64([0u8; 64]));
    assert_refused(&h.get("/accounts", &token), 401, "bad_signature");
}

#[test]
fn claim_checks() {
    let mut h = Harness::new();
    let now = kit::now();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut claims = kit::claims("tpp-1", "accounts");
        edit(&mut claims);
        kit::token("PS256", Key::Rsa1, &claims)
    };
    let cases: Vec<(String, &str)> = vec![
        (with(&|c| c["exp"] = json!(now - 120)), "expired"),
        (with(&|c| c["nbf"] = json!(now + 600)), "not_yet_valid"),
        (
            with(&|c| {
                c["iat"] = json!(now + 600);
                c["exp"] = json!(now + 900)
            }),
            "issued_in_future",
        ),
        (with(&|c| c["exp"] = json!(now + 7200)), "lifetime_exceeded"),
        (
            with(&|c| c["aud"] = json!("https://elsewhere.test")),
            "wrong_audience",
        ),
        (
            with(&|c| c["aud"] = json!(["https://a.test", "https://b.test"])),
            "wrong_audience",
        ),
        (
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            "missing_claim",
        ),
        (
            with(&|c| {
                c.as_object_mut().unwrap().remove("client_id");
            }),
            "missing_claim",
        ),
        (with(&|c| c["client_id"] = json!(42)), "bad_claim"),
        (with(&|c| c["scope"] = json!(["accounts"])), "bad_claim"),
        (with(&|c| c["sub"] = json!("psu\r\nx-evil: 1")), "bad_claim"),
    ];
    for (token, reason) in cases {
        assert_refused(&h.get("/accounts", &token), 401, reason);
    }
    // Within the clock skew (30 s in the test config) is still fine.
    assert_eq!(
        h.get("/accounts", &with(&|c| c["exp"] = json!(now - 10)))
            .outcome,
        Outcome::Allowed
    );
    // An audience list containing ours is fine.
    assert_eq!(
        h.get(
            "/accounts",
            &with(&|c| c["aud"] = json!(["https://x.test", kit::AUDIENCE]))
        )
        .outcome,
        Outcome::Allowed
    );
}

#[test]
fn wrong_issuer_is_refused() {
    let mut h = Harness::new();
    let mut claims = kit::claims("tpp-1", "accounts");
    claims["iss"] = json!("https://evil.test");
    assert_refused(
        &h.get("/accounts", &kit::token("RS256", Key::Rsa1, &claims)),
        401,
        "wrong_issuer",
    );
}

#[test]
fn typ_must_be_at_jwt_when_required() {
    let mut h = Harness::new();
    let claims = kit::claims("tpp-1", "accounts");
    for typ in [json!("JWT"), json!(null)] {
        let mut header = json!({"alg": "RS256", "kid": "rsa-1"});
        if !typ.is_null() {
            header["typ"] = typ;
        }
        assert_refused(
            &h.get(
                "/accounts",
                &kit::sign("RS256", Key::Rsa1, &header, &claims),
            ),
            401,
            "wrong_typ",
        );
    }
    let header = json!({"alg": "RS256", "kid": "rsa-1", "typ": "application/at+jwt"});
    assert_eq!(
        h.get(
            "/accounts",
            &kit::sign("RS256", Key::Rsa1, &header, &claims)
        )
        .outcome,
        Outcome::Allowed
    );
}

#[test]
fn unknown_crit_is_refused() {
    let mut h = Harness::new();
    let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1", "crit": ["urn:example:x"], "urn:example:x": 1});
    let token = kit::sign(
        "RS256",
        Key::Rsa1,
        &header,
        &kit::claims("tpp-1", "accounts"),
    );
    assert_refused(&h.get("/accounts", &token), 401, "crit_unsupported");
}

#[test]
fn malformed_tokens() {
    let mut h = Harness::new();
    let oversize = format!(
        "{}.{}.{}",
        "a".repeat(2000),
        "b".repeat(2000),
        "c".repeat(200)
    );
    assert_refused(&h.get("/accounts", &oversize), 401, "oversize");
    assert_refused(
        &h.get("/accounts", "eyJh!bGciOi.eyJ.c2ln"),
        401,
        "malformed",
    );
    assert_refused(&h.get("/accounts", "a.b.c.d.e"), 401, "jwe_unsupported");
    assert_refused(&h.get("/accounts", "not-a-jwt"), 401, "malformed");
    let good = accounts_token("RS256", Key::Rsa1);
    assert_refused(
        &h.get("/accounts", &format!("{good}.extra")),
        401,
        "malformed",
    );
    // Standard (not URL-safe) base64 alphabet in the header.
    let std_b64 = good.replacen('-', "+", 1).replacen('_', "/", 1);
    if std_b64 != good {
        assert_eq!(status(&h.get("/accounts", &std_b64)), 401);
    }
}

#[test]
fn credentials_in_the_wrong_place() {
    let mut h = Harness::new();
    let token = accounts_token("RS256", Key::Rsa1);
    let d = h.run("GET", "/accounts", &[]);
    assert_refused(&d, 401, "no_credentials");
    assert_eq!(
        reply_header(&d, "www-authenticate").as_deref(),
        Some("Bearer realm=\"bank.test\"")
    );
    assert_refused(
        &h.run("GET", "/accounts", &["Basic dXNlcjpwYXNz"]),
        401,
        "other_scheme",
    );
    let bearer = format!("bearer {token}");
    assert_eq!(
        h.run("GET", "/accounts", &[bearer.as_str()]).outcome,
        Outcome::Allowed
    );
    let d = h.run("GET", "/accounts", &[bearer.as_str(), bearer.as_str()]);
    assert_refused(&d, 400, "multiple_authorization");
    assert!(
        reply_header(&d, "www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\"")
    );
    let path = format!("/accounts?access_token={token}");
    assert_refused(&h.run("GET", &path, &[]), 400, "token_in_query");
}

#[test]
fn scopes_are_enforced_per_route() {
    let mut h = Harness::new();
    let token = accounts_token("ES256", Key::P256);
    let d = h.get("/accounts/acc-1/transactions", &token);
    assert_refused(&d, 403, "missing_scope");
    let challenge = reply_header(&d, "www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"accounts transactions:read transactions:all\""),
        "{challenge}"
    );
    let bearer = format!("Bearer {token}");
    assert_refused(
        &h.run("POST", "/domestic-payments", &[bearer.as_str()]),
        403,
        "missing_scope",
    );
    let token = kit::token_for("ES256", Key::P256, "tpp-1", "accounts transactions:all");
    assert_eq!(
        h.get("/accounts/acc-1/transactions", &token).outcome,
        Outcome::Allowed
    );
}

#[test]
fn unmatched_routes_and_anonymous_routes() {
    let mut h = Harness::new();
    let token = accounts_token("ES256", Key::P256);
    assert_refused(&h.get("/admin", &token), 403, "no_route");
    // Method is part of the route.
    let bearer = format!("Bearer {token}");
    assert_refused(
        &h.run("DELETE", "/accounts", &[bearer.as_str()]),
        403,
        "no_route",
    );
    let d = h.run("GET", "/health", &[]);
    assert_eq!(d.outcome, Outcome::Anonymous);

    let mut config = kit::plugin_config();
    config["unmatched"] = json!("authenticate");
    let mut h = Harness::with(config);
    assert_eq!(h.get("/admin", &token).outcome, Outcome::Allowed);
    assert_refused(&h.run("GET", "/admin", &[]), 401, "no_credentials");

    let mut config = kit::plugin_config();
    config["unmatched"] = json!("allow");
    let mut h = Harness::with(config);
    assert_eq!(h.run("GET", "/admin", &[]).outcome, Outcome::Passthrough);
}

#[test]
fn path_tricks_are_refused() {
    let mut h = Harness::new();
    let token = accounts_token("ES256", Key::P256);
    for (path, reason) in [
        ("/accounts/../admin", "path_dot_segment"),
        ("/accounts/%2e%2e/admin", "path_encoded_separator"),
        ("//accounts", "path_empty_segment"),
        ("/accounts%2Facc-1", "path_encoded_separator"),
        ("/accounts;x=1", "path_semicolon"),
    ] {
        assert_refused(&h.get(path, &token), 400, reason);
    }
}

#[test]
fn repeated_tokens_hit_the_cache() {
    let mut h = Harness::new();
    let token = accounts_token("PS256", Key::Rsa1);
    assert_eq!(h.get("/accounts", &token).trace.cache, CacheLookup::Miss);
    assert_eq!(h.get("/accounts", &token).trace.cache, CacheLookup::Hit);
    // Scopes are still checked per route on a cache hit.
    assert_refused(
        &h.get("/accounts/a/transactions", &token),
        403,
        "missing_scope",
    );
    // Refused tokens are not cached.
    let bad = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(h.get("/accounts", &bad).trace.cache, CacheLookup::Miss);
    assert_eq!(h.get("/accounts", &bad).trace.cache, CacheLookup::Miss);
}

#[test]
fn interaction_id_is_echoed_or_generated() {
    let mut h = Harness::new();
    let id = "6f1b7a4e-2c3d-4e5f-8a9b-0c1d2e3f4a5b";
    let view = RequestView {
        interaction_id: Some(id),
        ..view("GET", "/accounts", &[])
    };
    let d = decide(&h.config, &mut h.cache, &view, kit::now());
    assert_eq!(d.interaction_id, id);
    assert_eq!(
        reply_header(&d, "x-fapi-interaction-id").as_deref(),
        Some(id)
    );
    let view = RequestView {
        interaction_id: Some("<script>"),
        ..view
    };
    let d = decide(&h.config, &mut h.cache, &view, kit::now());
    assert_ne!(d.interaction_id, "<script>");
    assert_eq!(d.interaction_id.len(), 36);
}

#[test]
fn default_identity_headers_are_stripped_even_when_disabled_or_renamed() {
    let mut config = kit::plugin_config();
    config["headers"]["client_id"] = json!(null);
    config["headers"]["subject"] = json!("x-bank-subject");
    let mut h = Harness::with(config);
    let decision = h.get("/accounts", &accounts_token("ES256", Key::P256));
    let Action::Continue { remove, set, .. } = &decision.action else {
        panic!("refused: {:?}", decision.reason);
    };
    for name in ["x-obguard-client-id", "x-obguard-subject", "x-bank-subject"] {
        assert!(remove.iter().any(|h| h == name), "{name} not stripped");
    }
    assert!(set.iter().all(|(n, _)| n != "x-obguard-client-id"));
    assert!(
        set.iter()
            .any(|(n, v)| n == "x-bank-subject" && v == "psu-tpp-1")
    );
}

#[test]
fn host_crypto_path_verifies_rs_and_es_and_falls_back_for_ps_and_eddsa() {
    use obguard::identify::host_crypto::VerifyPath;
    let mut h = Harness::new();
    h.config.host_verify = Some(kit::host_verify_stand_in);
    for (alg, key, path) in [
        ("RS256", Key::Rsa1, VerifyPath::Host),
        ("RS512", Key::Rsa2, VerifyPath::Host),
        ("ES256", Key::P256, VerifyPath::Host),
        ("ES384", Key::P384, VerifyPath::Host),
        ("PS256", Key::Rsa1, VerifyPath::Wasm),
        ("EdDSA", Key::Ed25519, VerifyPath::Wasm),
    ] {
        let d = h.get("/accounts", &accounts_token(alg, key));
        assert_eq!(d.outcome, Outcome::Allowed, "{alg}: {:?}", d.reason);
        assert_eq!(d.trace.verified_by, Some(path), "{alg}");
    }
    // Forgeries are refused on the host path too, including the zero ECDSA signature.
    let good = accounts_token("ES256", Key::P256);
    let (input, _) = good.rsplit_once('.').unwrap();
    let zero = format!("{input}.{}", kit::b64([0u8; 64]));
    assert_refused(&h.get("/accounts", &zero), 401, "bad_signature");
    let foreign = kit::sign(
        "RS256",
        Key::AttackerRsa,
        &json!({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"}),
        &kit::claims("tpp-1", "accounts"),
    );
    let d = h.get("/accounts", &foreign);
    assert_refused(&d, 401, "bad_signature");
    assert_eq!(d.trace.verified_by, Some(VerifyPath::Host));
    let other = kit::token_for("RS256", Key::Rsa1, "tpp-2", "accounts payments");
    let spliced = format!(
        "{}.{}",
        good.rsplit_once('.').unwrap().0,
        other.rsplit('.').next().unwrap()
    );
    assert_refused(&h.get("/accounts", &spliced), 401, "bad_signature");
}

#[test]
fn host_crypto_can_be_turned_off_per_issuer() {
    use obguard::identify::host_crypto::VerifyPath;
    let mut config = kit::plugin_config();
    config["issuers"][0]["host_crypto"] = json!(false);
    let mut h = Harness::with(config);
    h.config.host_verify = Some(kit::host_verify_stand_in);
    let d = h.get("/accounts", &accounts_token("RS256", Key::Rsa1));
    assert_eq!(d.trace.verified_by, Some(VerifyPath::Wasm));
}

#[test]
fn non_jwt_typ_is_refused_even_when_not_required() {
    let mut config = kit::plugin_config();
    config["issuers"][0]
        .as_object_mut()
        .unwrap()
        .remove("require_typ");
    let mut h = Harness::with(config);
    let claims = kit::claims("tpp-1", "accounts");
    let token = kit::sign(
        "ES256",
        Key::P256,
        &json!({"alg": "ES256", "kid": "ec-p256", "typ": "JOSE"}),
        &claims,
    );
    assert_refused(&h.get("/accounts", &token), 401, "wrong_typ");
    let token = kit::sign(
        "ES256",
        Key::P256,
        &json!({"alg": "ES256", "kid": "ec-p256", "typ": "JWT"}),
        &claims,
    );
    assert_eq!(h.get("/accounts", &token).outcome, Outcome::Allowed);
}

#[test]
fn delegation_reads_the_payload_jwt_authn_verified() {
    use obguard::identify::host_crypto::VerifyPath;
    let mut h = Harness::with(kit::config::delegated());
    let run = |h: &mut Harness, payloads: Value, method: &str, path: &str| {
        let payloads = payloads.as_object().cloned().unwrap();
        let view = RequestView {
            jwt_authn_payloads: Some(&payloads),
            ..view(method, path, &[])
        };
        let d = decide(&h.config, &mut h.cache, &view, kit::now());
        (
            status(&d),
            d.reason,
            d.trace.verified_by,
            d.client_id.clone(),
        )
    };
    let claims = kit::claims("tpp-d", "accounts");
    let (code, _, by, client) = run(&mut h, json!({"jwt_payload": claims}), "GET", "/accounts");
    assert_eq!(code, 200);
    assert_eq!(by, Some(VerifyPath::JwtAuthn));
    assert_eq!(client.as_deref(), Some("tpp-d@idp.obguard.test"));
    // Scopes are still obguard's business.
    let (code, reason, ..) = run(
        &mut h,
        json!({"jwt_payload": claims}),
        "POST",
        "/domestic-payments",
    );
    assert_eq!((code, reason), (403, Some("missing_scope")));
    // Claims are re-checked: a drifted jwt_authn config fails closed.
    let mut wrong_aud = kit::claims("tpp-d", "accounts");
    wrong_aud["aud"] = json!("https://elsewhere.test");
    let (code, reason, ..) = run(
        &mut h,
        json!({"jwt_payload": wrong_aud}),
        "GET",
        "/accounts",
    );
    assert_eq!((code, reason), (401, Some("wrong_audience")));
    // Nothing under our key, no bearer token: missing token.
    let (code, reason, ..) = run(
        &mut h,
        json!({"other_provider": claims}),
        "GET",
        "/accounts",
    );
    assert_eq!((code, reason), (401, Some("no_credentials")));
}

#[test]
fn delegation_config_needs_a_key_or_jwt_authn() {
    assert!(config::load(kit::config::delegated().to_string().as_bytes()).is_ok());
    let mut config = kit::config::delegated();
    config["issuers"][0]["jwt_authn"] = json!({"payload_in_metadata": ""});
    let err = config::load(config.to_string().as_bytes())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "issuers[0].jwt_authn.payload_in_metadata: must not be empty"
    );
}

#[test]
fn remote_jwks_keys_unavailable_is_a_503_not_a_401() {
    let mut config = kit::plugin_config();
    let issuer = config["issuers"][0].as_object_mut().unwrap();
    issuer.remove("jwks");
    issuer.insert("jwks_remote".into(), json!({"cluster": "idp", "path": "/jwks", "unavailable": {"status": 503, "retry_after_s": 9}}));
    let mut h = Harness::with(config);
    let token = accounts_token("ES256", Key::P256);
    let d = h.get("/accounts", &token);
    assert_eq!(d.outcome, Outcome::IdpUnavailable);
    assert_eq!(status(&d), 503);
    assert_eq!(reply_header(&d, "retry-after").as_deref(), Some("9"));

    // Keys arrive (as the adapter loads them from shared data): the token verifies; an
    // unknown kid asks for a refetch.
    h.remote_keys_fetched_at(kit::now());
    assert_eq!(h.get("/accounts", &token).outcome, Outcome::Allowed);
    let unknown = kit::sign(
        "ES256",
        Key::P256,
        &json!({"alg": "ES256", "typ": "at+jwt", "kid": "next-key"}),
        &kit::claims("tpp-1", "accounts"),
    );
    let d = h.get("/accounts", &unknown);
    assert_eq!(d.reason, Some("unknown_kid"));
    assert_eq!(d.trace.refetch_keys_for, Some(0));

    // Keys older than max_stale_s (default 86400) no longer count.
    h.remote_keys_fetched_at(kit::now() - 90_000);
    h.cache.cache = obguard::identify::cache::TokenCache::new(10);
    assert_eq!(h.get("/accounts", &token).outcome, Outcome::IdpUnavailable);
}
