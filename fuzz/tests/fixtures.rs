//! The committed fixtures are what they claim: the configuration is testkit's
//! `plugin_config()`, and every committed token decides as its labels say at the fixed clock.
//!
//! `OBGUARD_FUZZ_REGEN=1 cargo test -p obguard-fuzz --test fixtures` rewrites
//! `fuzz/fixtures/config.json` from testkit and the hand-made seeds (`fuzz/corpus/*/seed-*`);
//! `OBGUARD_FUZZ_REGEN_TOKENS=1` rewrites `fuzz/fixtures/tokens.json` (then rerun the first).

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::path::Path;

use obguard::identify::jwks_remote;
use obguard::pipeline::{RequestView, decide};
use obguard::telemetry::Outcome;
use obguard_fuzz::fixtures::{self, NOW, Variant};
use obguard_fuzz::input::{ConfigInput, JwksInput, RlsInput};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

fn dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn regen() -> bool {
    std::env::var_os("OBGUARD_FUZZ_REGEN").is_some()
}

/// Tokens are rewritten only on request: PS* signatures are randomised, so every rewrite
/// changes them (and the seeds made from them: rerun with `OBGUARD_FUZZ_REGEN=1` after).
#[test]
fn regenerate_tokens() {
    if std::env::var_os("OBGUARD_FUZZ_REGEN_TOKENS").is_some() {
        std::fs::write(dir().join("fixtures/tokens.json"), tokens_json()).unwrap();
    }
}

struct Spec {
    name: &'static str,
    alg: &'static str,
    key: Key,
    iss: &'static str,
    client: &'static str,
    scope: &'static str,
    /// (iat, nbf, exp) relative to NOW.
    times: (i64, i64, i64),
    trusted: bool,
    claims_ok: bool,
    /// Replaces the standard header.
    header: Option<Value>,
    aud: Option<&'static str>,
}

fn spec(name: &'static str, alg: &'static str, key: Key, client: &'static str) -> Spec {
    Spec {
        name,
        alg,
        key,
        iss: fixtures::ISSUER,
        client,
        scope: "accounts",
        times: (-60, -60, 240),
        trusted: true,
        claims_ok: true,
        header: None,
        aud: None,
    }
}

impl Spec {
    fn scope(self, scope: &'static str) -> Self {
        Self { scope, ..self }
    }

    fn times(self, times: (i64, i64, i64)) -> Self {
        Self { times, ..self }
    }

    /// For another audience: the claims do not pass.
    fn aud(self, aud: &'static str) -> Self {
        Self {
            aud: Some(aud),
            claims_ok: false,
            ..self
        }
    }

    fn iss(self, iss: &'static str) -> Self {
        Self { iss, ..self }
    }

    fn header(self, header: Value) -> Self {
        Self {
            header: Some(header),
            ..self
        }
    }

    /// Signed by a key the issuer does not trust.
    fn untrusted(self) -> Self {
        Self {
            trusted: false,
            ..self
        }
    }
}

fn specs() -> Vec<Spec> {
    vec![
        spec("es256-accounts", "ES256", Key::P256, "tpp-1").scope("accounts transactions:read"),
        spec("rs256-payments", "RS256", Key::Rsa1, "tpp-2").scope("accounts payments"),
        spec("ps384-accounts", "PS384", Key::Rsa2, "tpp-3"),
        spec("es384-transactions", "ES384", Key::P384, "tpp-4").scope("accounts transactions:all"),
        spec("eddsa-all", "EdDSA", Key::Ed25519, "tpp-5")
            .scope("accounts transactions:read payments"),
        spec("rs512-no-scope", "RS512", Key::Rsa1, "tpp-6").scope(""),
        spec("es256-risky", "ES256", Key::P256, "tpp-risky").scope("accounts payments"),
        spec("es256-expired", "ES256", Key::P256, "tpp-7").times((-7200, -7200, -3600)),
        spec("es256-future", "ES256", Key::P256, "tpp-8").times((3600, 3600, 3900)),
        spec("es256-wrong-audience", "ES256", Key::P256, "tpp-9").aud("https://elsewhere.test"),
        spec("hs256-hmac-issuer", "HS256", Key::Rsa1, "tpp-h")
            .iss(fixtures::HMAC_ISSUER)
            .header(json!({"alg": "HS256"}))
            .scope("accounts payments"),
        spec("es256-remote-issuer", "ES256", Key::P256, "tpp-r").iss(fixtures::REMOTE_ISSUER),
        spec("attacker-es256", "ES256", Key::AttackerP256, "tpp-a")
            .untrusted()
            .header(json!({"alg": "ES256", "typ": "at+jwt", "kid": "ec-p256"})),
        spec("hs256-key-confusion", "HS256-PEM", Key::Rsa1, "tpp-c")
            .untrusted()
            .header(json!({"alg": "HS256", "typ": "at+jwt", "kid": "rsa-1"})),
        spec("alg-none", "none", Key::Rsa1, "tpp-n")
            .untrusted()
            .header(json!({"alg": "none", "typ": "at+jwt"})),
    ]
}

fn mint(spec: &Spec) -> String {
    let (iat, nbf, exp) = spec.times;
    let at = |d: i64| NOW.saturating_add_signed(d);
    let mut claims = json!({
        "iss": spec.iss,
        "aud": spec.aud.unwrap_or(fixtures::AUDIENCE),
        "sub": format!("psu-{}", spec.client),
        "client_id": spec.client,
        "scope": spec.scope,
        "iat": at(iat),
        "nbf": at(nbf),
        "exp": at(exp),
        "jti": format!("{}-{}", spec.name, at(iat)),
    });
    if spec.scope.is_empty() {
        claims.as_object_mut().unwrap().remove("scope");
    }
    let header = spec
        .header
        .clone()
        .unwrap_or_else(|| kit::header(spec.alg, spec.key));
    match spec.alg {
        "HS256" => kit::sign_hmac("HS256", kit::HMAC_SECRET, &header, &claims),
        "HS256-PEM" => kit::sign_hmac(
            "HS256",
            kit::rsa_public_pem(spec.key).as_bytes(),
            &header,
            &claims,
        ),
        "none" => format!(
            "{}.{}.c2ln",
            kit::b64(header.to_string()),
            kit::b64(claims.to_string())
        ),
        alg => kit::sign(alg, spec.key, &header, &claims),
    }
}

fn tokens_json() -> String {
    let items: Vec<Value> = specs()
        .iter()
        .map(|s| {
            let (iat, nbf, exp) = s.times;
            json!({
                "name": s.name,
                "iss": s.iss,
                "client_id": s.client,
                "iat": NOW.saturating_add_signed(iat),
                "nbf": NOW.saturating_add_signed(nbf),
                "exp": NOW.saturating_add_signed(exp),
                "trusted": s.trusted,
                "claims_ok": s.claims_ok,
                "token": mint(s),
            })
        })
        .collect();
    serde_json::to_string_pretty(&Value::Array(items)).unwrap() + "\n"
}

#[test]
fn config_is_testkits_plugin_config() {
    let expected = kit::plugin_config();
    let path = dir().join("fixtures/config.json");
    if regen() {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&expected).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    assert_eq!(
        fixtures::basic_config(),
        expected,
        "fuzz/fixtures/config.json differs from testkit's plugin_config(): rerun with OBGUARD_FUZZ_REGEN=1"
    );
}

/// Every committed token, in both configurations, on a route that needs only a token.
#[test]
fn committed_tokens_decide_as_labelled() {
    let fx = fixtures::get();
    assert_eq!(
        fx.tokens.len(),
        specs().len(),
        "rerun with OBGUARD_FUZZ_REGEN=1"
    );
    for variant in [Variant::Basic, Variant::Full] {
        let config = fx.config(variant);
        for token in &fx.tokens {
            let mut worker = fx.worker(config, Some(NOW - 60));
            let bearer = kit::pipeline::bearer(&token.token);
            let authorization = [bearer.as_str()];
            let view = kit::pipeline::view("GET", "/accounts", &authorization);
            let decision = decide(config, &mut worker, &view, NOW);
            let in_window = token.exp + 30 >= NOW && token.nbf <= NOW + 30;
            let issuer_here = match variant {
                Variant::Basic => token.iss == fixtures::ISSUER,
                Variant::Full => true,
            };
            let has_scope = !matches!(token.name.as_str(), "rs512-no-scope");
            let expected = token.trusted && token.claims_ok && in_window && issuer_here;
            let allowed = decision.outcome == Outcome::Allowed;
            if expected && has_scope {
                assert!(
                    allowed,
                    "{variant:?} {}: {:?} {:?}",
                    token.name, decision.outcome, decision.reason
                );
            } else {
                assert!(!allowed, "{variant:?} {} allowed", token.name);
                if expected {
                    assert_eq!(decision.reason, Some("missing_scope"), "{}", token.name);
                }
            }
        }
    }
}

/// The `dpop_proof` corpus: proofs minted by testkit for the fixed request and clock (ES256,
/// EdDSA, the wrong key, a stale one, another URL), written with `OBGUARD_FUZZ_REGEN=1`.
#[test]
fn dpop_proof_seeds() {
    use obguard_testkit::dpop::{Proof, jkt};
    assert_eq!(fixtures::DPOP_JKT, jkt(Key::P256), "fixtures::DPOP_JKT");
    if !regen() {
        // The seeds are what their names say, so the target reaches its accepting path.
        use obguard::assess::baselines::MemoryStore;
        use obguard::identify::dpop::{
            DpopAlgorithm, DpopError, ProofContext, ProofRules, check_proof,
        };
        for (seed, expected) in [
            ("es256", Ok(())),
            ("eddsa", Err(DpopError::KeyMismatch)),
            ("other-key", Err(DpopError::KeyMismatch)),
            ("stale", Err(DpopError::Stale)),
            ("other-url", Err(DpopError::Target)),
            ("not-a-jws", Err(DpopError::Malformed)),
        ] {
            let bytes =
                std::fs::read(dir().join(format!("corpus/dpop_proof/seed-{seed}"))).unwrap();
            let proof = String::from_utf8(bytes).unwrap();
            let proofs = [proof.as_str()];
            let rules = ProofRules {
                algorithms: &[DpopAlgorithm::ES256, DpopAlgorithm::EdDSA],
                max_age_s: 300,
                clock_skew_s: 30,
                origins: &[],
                replay_entries: 8,
            };
            let context = ProofContext {
                proofs: &proofs,
                method: "GET",
                scheme: "https",
                authority: "api.bank.test",
                path: "/accounts",
                access_token: fixtures::DPOP_ACCESS_TOKEN,
                now: NOW,
            };
            let result = check_proof(
                &rules,
                &context,
                fixtures::DPOP_JKT,
                &mut MemoryStore::default(),
            );
            assert_eq!(result, expected, "seed-{seed}");
        }
        return;
    }
    let proof = |key: Key, htu: &str, iat: u64| Proof {
        iat,
        jti: format!("fuzz-{key:?}-{iat}"),
        ..Proof::new(key, "GET", htu, fixtures::DPOP_ACCESS_TOKEN)
    };
    let htu = fixtures::DPOP_HTU;
    write_seed("dpop_proof", "es256", proof(Key::P256, htu, NOW).sign());
    write_seed("dpop_proof", "eddsa", proof(Key::Ed25519, htu, NOW).sign());
    write_seed(
        "dpop_proof",
        "other-key",
        proof(Key::AttackerP256, htu, NOW).sign(),
    );
    write_seed(
        "dpop_proof",
        "stale",
        proof(Key::P256, htu, NOW - 3600).sign(),
    );
    write_seed(
        "dpop_proof",
        "other-url",
        proof(Key::P256, "https://api.bank.test/payments", NOW).sign(),
    );
    write_seed("dpop_proof", "not-a-jws", "a.b");
}

/// The `intel_feed` seeds parse, as their selector byte says, into non-empty lists, so the
/// target reaches its matching checks from the first run.
#[test]
fn intel_feed_seeds() {
    use obguard::intel::{FeedFormat, FeedKind, parse_feed};
    let seeds = obguard_fuzz::mutate::corpus("intel_feed");
    assert!(seeds.len() >= 4);
    for (path, bytes) in seeds {
        let (&[selector, max], body) = bytes.split_first_chunk::<2>().unwrap();
        let kind = FeedKind::ALL[usize::from(selector % 3)];
        let format = FeedFormat::ALL[usize::from(selector / 3 % 2)];
        let list = parse_feed(kind, format, body, usize::from(max))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!list.is_empty(), "{}", path.display());
    }
}

fn write_seed(target: &str, name: &str, bytes: impl AsRef<[u8]>) {
    let dir = dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
}

/// Random inputs of a structure-aware target, keeping the first input of each class `classify`
/// gives (a decision's outcome, an error...).
fn search(
    target: &str,
    tries: usize,
    limit: usize,
    mut classify: impl FnMut(&[u8]) -> Vec<String>,
) {
    let mut rng = obguard_fuzz::mutate::Rng::new(7);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..tries {
        let len = 16 + rng.below(700);
        let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        for class in classify(&data) {
            if seen.len() < limit && seen.insert(class.clone()) {
                let name: String = class
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .take(60)
                    .collect();
                write_seed(target, &name.to_ascii_lowercase(), &data);
            }
        }
    }
}

fn segment(token: &str, i: usize) -> Vec<u8> {
    obguard::identify::jose_header::decode_segment(token.split('.').nth(i).unwrap()).unwrap()
}

/// The hand-made seeds: real documents from the fixtures and the tests, a few edge cases.
/// Seeds the fuzzer found (file names without `seed-`) are left alone.
#[test]
fn seeds() {
    use obguard_models::model::{Envelope, doc_example_model};
    use obguard_rls_proto::envoy::config::core::v3::HeaderValue;
    use obguard_rls_proto::envoy::service::ratelimit::v3::RateLimitResponse;
    use obguard_rls_proto::envoy::service::ratelimit::v3::rate_limit_response::{
        Code, DescriptorStatus, RateLimit, rate_limit::Unit,
    };
    use prost::Message;
    if !regen() {
        for (name, _) in obguard_fuzz::targets::ALL {
            assert!(
                !obguard_fuzz::mutate::corpus(name).is_empty(),
                "fuzz/corpus/{name} is empty: rerun with OBGUARD_FUZZ_REGEN=1"
            );
        }
        return;
    }
    let fx = fixtures::get();
    // token: Authorization lines (a first line `?...` is the query).
    for t in &fx.tokens {
        write_seed("token", &t.name, format!("Bearer {}", t.token));
    }
    let t0 = &fx.tokens[0].token;
    write_seed(
        "token",
        "query",
        format!("?a=1&access_token=x\nBearer {t0}"),
    );
    write_seed(
        "token",
        "encoded-query",
        format!("?acc%65ss_token=x\nBearer {t0}"),
    );
    write_seed("token", "two-headers", format!("Bearer {t0}\nBearer {t0}"));
    write_seed("token", "folded", format!("Bearer {t0}, Bearer {t0}"));
    write_seed("token", "basic", "Basic dXNlcjpwYXNz");
    write_seed("token", "jwe", "Bearer a.b.c.d.e");
    // jose_header: header JSON.
    for t in &fx.tokens {
        write_seed("jose_header", &t.name, segment(&t.token, 0));
    }
    write_seed(
        "jose_header",
        "crit",
        r#"{"alg":"RS256","crit":["exp"],"exp":1}"#,
    );
    write_seed(
        "jose_header",
        "jwk",
        r#"{"alg":"ES256","kid":"k","jwk":{"kty":"EC"}}"#,
    );
    write_seed(
        "jose_header",
        "duplicate",
        r#"{"alg":"RS256","alg":"none"}"#,
    );
    write_seed(
        "jose_header",
        "hints",
        r#"{"alg":"ES256","kid":"k","jku":"https://evil","x5u":"x","x5c":["y"]}"#,
    );
    // claims: payload JSON.
    for t in &fx.tokens {
        write_seed("claims", &t.name, segment(&t.token, 1));
    }
    write_seed(
        "claims",
        "gateway",
        json!({"iss": fixtures::GATEWAY_ISSUER, "aud": [fixtures::AUDIENCE, "x"], "client_id": "tpp-g",
               "scp": ["accounts", "payments"], "exp": NOW + 60, "iat": NOW, "sub": "psu",
               "cnf": {"x5t#S256": "abc"}, "acr": "urn:openbanking:psd2:sca"})
        .to_string(),
    );
    // config_bytes: whole configurations.
    let basic = fixtures::basic_config();
    write_seed(
        "config_bytes",
        "basic",
        serde_json::to_string_pretty(&basic).unwrap(),
    );
    write_seed(
        "config_bytes",
        "full",
        fixtures::full_config_light().to_string(),
    );
    let mut remote = basic.clone();
    remote["issuers"][0].as_object_mut().unwrap().remove("jwks");
    remote["issuers"][0]["jwks_remote"] = json!({"cluster": "idp", "path": "/jwks"});
    write_seed("config_bytes", "remote", remote.to_string());
    write_seed(
        "config_bytes",
        "minimal",
        r#"{"issuers":[{"issuer":"i","audiences":["a"],"shared_secret":"b2JndWFyZC10ZXN0LWhtYWMtc2VjcmV0LTMyYnl0ZXM","algorithms":["HS256"]}]}"#,
    );
    write_seed("config_bytes", "not-json", "issuers: []");
    write_seed("config_bytes", "trailing", r#"{"issuers":[]} {}"#);
    // config_json: structured (an empty input edits nothing).
    write_seed("config_json", "basic", b"");
    write_seed("config_json", "full", [1u8]);
    search("config_json", 6_000, 40, |data| {
        use arbitrary::Arbitrary;
        let Ok(input) = ConfigInput::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else {
            return Vec::new();
        };
        let mut doc = if input.full {
            fixtures::full_config_light()
        } else {
            fixtures::basic_config()
        };
        obguard_fuzz::input::apply(&mut doc, &input.edits);
        let class = match obguard::config::load(doc.to_string().as_bytes()) {
            Ok(_) => "loads".to_owned(),
            Err(err) => {
                let text = err.to_string();
                let path = text.split(':').next().unwrap_or("");
                // The field, not the index or the value: a few dozen classes.
                let field: String = path
                    .chars()
                    .filter(|c| c.is_ascii_lowercase() || *c == '.' || *c == '_')
                    .take(40)
                    .collect();
                format!("err-{field}")
            }
        };
        vec![class]
    });
    // jwks: documents.
    write_seed("jwks", "test-issuer", &fx.jwks);
    write_seed("jwks", "unusable", br#"{"keys":[{"kty":"EC","crv":"P-521","x":"AA","y":"AA"},{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}"#);
    write_seed("jwks", "empty", br#"{"keys":[]}"#);
    write_seed("jwks", "html", b"<html>");
    write_seed("jwks", "entra", json!({"keys": [{"kty": "RSA", "use": "sig", "kid": "x", "x5t": "x", "n": kit::jwk(Key::Rsa2)["n"], "e": "AQAB", "x5c": ["MIIC"], "issuer": "https://login.example/v2.0"}]}).to_string());
    // jwks_json: structured.
    write_seed("jwks_json", "empty", b"");
    write_seed("jwks_json", "real-keys", [0u8, 0, 0, 1, 0xff, 0xff]);
    search("jwks_json", 20_000, 16, |data| {
        use arbitrary::Arbitrary;
        let Ok(input) = JwksInput::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else {
            return Vec::new();
        };
        let keys: Vec<Value> = input.keys.iter().map(|k| k.build()).collect();
        let doc = json!({ "keys": keys }).to_string();
        let allowed = obguard_fuzz::input::algorithms(input.allowed);
        let class = match jwks_remote::parse(doc.as_bytes(), &allowed, 20) {
            Ok(keys) => format!("keys-{}", keys.len()),
            Err(err) => format!("{err:?}"),
        };
        vec![class]
    });
    // model_file.
    let example = doc_example_model();
    write_seed("model_file", "doc-example", &example);
    write_seed(
        "model_file",
        "doc-example-signed-1",
        kit::sign_model(&example, 1),
    );
    write_seed("model_file", "new-country", kit::new_country_model(10.0));
    write_seed("model_file", "shipped", fixtures::SHIPPED_MODEL);
    // model_body: the body inside each envelope.
    for (name, file) in [
        ("doc-example", example.clone()),
        ("new-country", kit::new_country_model(10.0)),
        ("shipped", fixtures::SHIPPED_MODEL.to_vec()),
    ] {
        let envelope: Envelope = postcard::from_bytes(&file).unwrap();
        write_seed("model_body", name, envelope.body);
    }
    // baseline: slots written by the model stage for a few requests.
    let config = &fx.full;
    let mut worker = fx.worker(config, None);
    let bearer = kit::pipeline::bearer(&fx.tokens[0].token);
    let authorization = [bearer.as_str()];
    for (i, country) in ["GB", "GB", "RU"].iter().enumerate() {
        let headers = vec![
            ("x-client-geo-country".to_owned(), (*country).to_owned()),
            ("x-client-asn".to_owned(), "64500".to_owned()),
            ("x-forwarded-for".to_owned(), "203.0.113.9".to_owned()),
            ("user-agent".to_owned(), "tpp/1.0".to_owned()),
        ];
        let view = RequestView {
            headers: &headers,
            source_address: Some("203.0.113.9:40000"),
            ..kit::pipeline::view("GET", "/accounts", &authorization)
        };
        decide(config, &mut worker, &view, NOW + 60 * i as u64);
    }
    let stage = config.model.as_ref().unwrap();
    // Baselines are keyed by the client id qualified by its issuer's namespace.
    let client = config
        .issuers
        .iter()
        .map(|i| format!("{}@{}", fx.tokens[0].client_id, i.client_namespace))
        .find(|c| {
            let (keys, _) = obguard::assess::baselines::slots_of(c, stage.max_clients);
            keys.iter()
                .any(|k| worker.baselines.load(k).bytes.is_some())
        })
        .expect("a baseline for the first token's client");
    let (keys, _) = obguard::assess::baselines::slots_of(&client, stage.max_clients);
    let slot = keys
        .iter()
        .find_map(|k| worker.baselines.load(k).bytes)
        .expect("a baseline slot");
    write_seed("baseline", "after-3-requests", &slot[8..]);
    write_seed(
        "baseline",
        "fresh",
        obguard_models::ClientBaseline::default().encode().unwrap(),
    );
    // decide: structured. Random inputs, keeping the first for each kind of decision.
    write_seed("decide", "empty", b"");
    search("decide", 60_000, 64, |data| {
        let mut classes = Vec::new();
        obguard_fuzz::targets::decide_observed(data, &mut |variant, d| {
            classes.push(format!(
                "{variant:?}-{:?}-{}",
                d.outcome,
                d.reason.unwrap_or("ok")
            ));
        });
        classes
    });
    // rls_reply: 8-byte call header (status, elapsed, timeout, flags, failure status), body.
    let header = |status: u8, flags: u8| [status, 0, 5, 0, 20, flags, 0x01, 0xf5];
    let hv = |k: &str, v: &str| HeaderValue {
        key: k.into(),
        value: v.into(),
        ..Default::default()
    };
    let ok = RateLimitResponse {
        overall_code: Code::Ok as i32,
        request_headers_to_add: vec![hv("x-ratelimit-tier", "gold"), hv("authorization", "x")],
        response_headers_to_add: vec![hv("x-ratelimit-remaining", "4"), hv("retry-after", "1")],
        ..Default::default()
    };
    let over = RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        statuses: vec![DescriptorStatus {
            code: Code::OverLimit as i32,
            current_limit: Some(RateLimit {
                name: "per-client".into(),
                requests_per_unit: 10,
                unit: Unit::Minute as i32,
            }),
            limit_remaining: 0,
            duration_until_reset: Some(prost_types::Duration {
                seconds: 12,
                nanos: 5,
            }),
            ..Default::default()
        }],
        response_headers_to_add: vec![hv("x-ratelimit-limit", "10")],
        ..Default::default()
    };
    for (name, head, body) in [
        ("ok", header(0, 0), ok.encode_to_vec()),
        ("over-limit", header(0, 1), over.encode_to_vec()),
        ("unavailable", header(14, 1), Vec::new()),
        ("deadline", header(4, 0), Vec::new()),
        ("no-body", header(0, 3), Vec::new()),
        ("garbage", header(0, 0), b"\xff\xff\xff".to_vec()),
    ] {
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(&body);
        write_seed("rls_reply", name, bytes);
    }
    // rls_response: structured.
    write_seed("rls_response", "empty", b"");
    write_seed(
        "rls_response",
        "some",
        [0u8, 1, 0, 0, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    search("rls_response", 20_000, 24, |data| {
        use arbitrary::Arbitrary;
        let Ok(input) = RlsInput::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else {
            return Vec::new();
        };
        let code = input.overall_code % 4;
        let failed = input.call.grpc_status.is_some_and(|s| s != 0);
        vec![format!(
            "code-{code}-failed-{failed}-statuses-{}",
            input.statuses.len().min(2)
        )]
    });
    // intel_feed: a selector byte (`0`..`5`: kind and format), `max_entries` (`~`, 126), the body.
    for (name, selector, body) in [
        (
            "ip-text-drop",
            b'0',
            "; Spamhaus DROP List\r\n1.10.16.0/20 ; SBL256894\r\n1.19.0.0/16 ; SBL434604\r\n10.1.2.3/8\r\n",
        ),
        (
            "ip-text-firehol",
            b'0',
            "\u{feff}# firehol_level1\n0.0.0.0/8\n203.0.113.0/24\n203.0.114.0/24 # adjacent\n\
             198.51.100.7\n2001:db8::/32\n::ffff:192.0.2.0/120\n",
        ),
        (
            "ip-json",
            b'3',
            r#"{"entries":[{"cidr":"203.0.113.0/24","comment":"x"},"198.51.100.7",{"ip":"2001:db8::1"},{"network":"10.0.0.0/8"}]}"#,
        ),
        ("asn-text", b'1', "AS64500 ; example\nas64501\n64502\n"),
        (
            "asn-json",
            b'4',
            r#"[64500, "AS64501", {"asn": 4294967295, "name": "x"}]"#,
        ),
        ("country-json", b'5', r#"["GB", "us", {"country": "Kp"}]"#),
    ] {
        let mut bytes = vec![selector, b'~'];
        bytes.extend_from_slice(body.as_bytes());
        write_seed("intel_feed", name, bytes);
    }
}
