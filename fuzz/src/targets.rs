//! The fuzz targets: one function per target, taking the raw fuzzer input. The binaries in
//! `fuzz_targets/` and the corpus replay in `tests/corpus.rs` call these same functions.
//!
//! A target panics (through `assert!`) only when an invariant of obguard is broken; every
//! other outcome, including every refusal, is a pass.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use obguard::assess::model_source::{self, Trust};
use obguard::config::{self, FilterConfig};
use obguard::identify::algorithm::Algorithm;
use obguard::identify::cache::TokenCache;
use obguard::identify::extract::{self, Credential};
use obguard::identify::keys::Claims;
use obguard::identify::{self, claims, jose_header, jwks_remote};
use obguard::pipeline::{self, RequestView};
use obguard::ratelimit::config::{CallPolicy, FailureMode, RoutePolicy, ThrottleWithoutCall};
use obguard::ratelimit::reply::{self, Answer, Next};
use obguard_models::model::Envelope;
use obguard_models::{FEATURE_COUNT, FeatureVector, Model, SignaturePolicy};
use obguard_rls_proto::envoy::config::core::v3::HeaderValue;
use obguard_rls_proto::envoy::service::ratelimit::v3::RateLimitResponse;
use obguard_rls_proto::envoy::service::ratelimit::v3::rate_limit_response::{
    DescriptorStatus, RateLimit,
};
use prost::Message;
use serde_json::Value;

use crate::check;
use crate::fixtures::{self, NOW, Variant};
use crate::input;

/// A target: its name (of its `fuzz_targets/` binary and `corpus/` folder) and function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const ALL: &[Target] = &[
    ("token", token),
    ("jose_header", jose_header),
    ("claims", claims),
    ("config_bytes", config_bytes),
    ("config_json", config_json),
    ("jwks", jwks),
    ("jwks_json", jwks_json),
    ("model_file", model_file),
    ("model_body", model_body),
    ("baseline", baseline),
    ("decide", decide),
    ("rls_reply", rls_reply),
    ("rls_response", rls_response),
    ("dpop_proof", dpop_proof),
    ("intel_feed", intel_feed),
];

fn typed<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(data)).ok()
}

fn verifier<'c>(config: &'c FilterConfig, worker: &'c pipeline::Worker) -> identify::Verifier<'c> {
    identify::Verifier {
        issuers: &config.issuers,
        claim_headers: &config.headers.claims,
        max_token_bytes: config.max_token_bytes,
        host: None,
        remote_keys: &worker.remote_keys,
    }
}

/// Bearer-token extraction and full verification (JOSE header, key selection, signature,
/// claims, cache). Input: UTF-8 lines; a first line starting with `?` is the query string,
/// the others are `Authorization` values.
pub fn token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    let query = match lines.first() {
        Some(first) if first.starts_with('?') => {
            let q = first.get(1..);
            lines.remove(0);
            q
        }
        _ => None,
    };
    let credential = extract::credential(&lines, query);
    if let Some(q) = query
        && q.to_ascii_lowercase().contains("access_token")
        && !q.contains('%')
    {
        // A literal access_token parameter name is always refused (encoded ones too, but
        // which decode to it is the function's own business).
        let literal = q
            .split('&')
            .any(|pair| pair.split('=').next() == Some("access_token"));
        if literal {
            assert!(credential.is_err(), "token in query accepted: {q:?}");
        }
    }
    let Ok(Credential::Bearer(token)) = credential else {
        return;
    };
    assert!(!token.contains(','), "folded credentials accepted");
    let fx = fixtures::get();
    if extract::is_b64token(token)
        && let Ok(jws) = jose_header::split(token)
    {
        let _ = jose_header::parse(jws.header);
        let _ = jose_header::decode_segment(jws.payload);
    }
    for variant in [Variant::Basic, Variant::Full] {
        let config = fx.config(variant);
        let worker = fx.worker(config, Some(NOW - 60));
        let verifier = verifier(config, &worker);
        let mut by = None;
        let verified = identify::verify(&verifier, token, NOW, &mut by);
        if let Ok(identity) = &verified {
            let minted = fx.token_signing(token);
            assert!(
                minted.is_some_and(|t| t.trusted && t.claims_ok),
                "verified a token that is not a trusted committed one: {token:?}"
            );
            if let Some(minted) = minted {
                assert_eq!(identity.client_id, minted.client_id);
            }
            check::assert_headers(&identity.claim_headers);
        }
        // The cache gives the same answer as the first verification, twice.
        let mut cache = TokenCache::new(4);
        for _ in 0..2 {
            let auth = identify::authenticate(&verifier, &mut cache, token, NOW);
            assert_eq!(
                auth.result.as_deref().ok(),
                verified.as_ref().ok(),
                "cached and fresh verification disagree"
            );
        }
    }
}

/// The JOSE header: input is the header JSON (encoded here), and also tried as the
/// base64url segment itself.
pub fn jose_header(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = jose_header::parse(text);
        let _ = jose_header::split(text);
        let _ = text.parse::<Algorithm>();
        let _ = claims::normalise_typ(text);
    }
    let segment = fixtures::b64url(data);
    let Ok(header) = jose_header::parse(&segment) else {
        return;
    };
    // RFC 7515 §5.2: a UTF-8 JSON object (regressions: filter/tests/fuzz_regressions.rs).
    let text = match std::str::from_utf8(data) {
        Ok(text) => text,
        Err(err) => panic!("header accepted from non-UTF-8 ({err})"),
    };
    assert!(
        text.trim_start_matches([' ', '\t', '\n', '\r'])
            .starts_with('{'),
        "header accepted from a JSON value that is not an object"
    );
    let json: Value = match serde_json::from_str(text) {
        Ok(json) => json,
        // Still JSON, but beyond what `Value` holds (a number past f64, a lone surrogate
        // escape): check only that it parses, as serde_json skips it inside ignored members.
        Err(err) => {
            let skipped = serde_json::from_str::<serde::de::IgnoredAny>(text);
            assert!(skipped.is_ok(), "header accepted from non-JSON ({err})");
            return;
        }
    };
    assert_eq!(json.get("alg").and_then(Value::as_str), Some(&*header.alg));
    assert!(json.get("crit").is_none_or(Value::is_null), "crit accepted");
    assert!(json.get("jwk").is_none_or(Value::is_null), "jwk accepted");
    let fx = fixtures::get();
    for issuer in &fx.full.issuers {
        let _ = claims::check_typ(issuer, header.typ.as_deref());
    }
}

/// Claim checks on a token payload (JSON), for every fixture issuer.
pub fn claims(data: &[u8]) {
    let Ok(claims) = serde_json::from_slice::<Claims>(data) else {
        return;
    };
    let fx = fixtures::get();
    for issuer in &fx.full.issuers {
        let _ = claims::check(issuer, &claims, NOW);
        if let Ok(id) = claims::client_id(issuer, &claims) {
            assert!(
                !id.is_empty() && claims::is_header_safe(&id),
                "client id {id:?}"
            );
        }
        if let Ok(Some(sub)) = claims::subject(&claims) {
            assert!(claims::is_header_safe(&sub), "subject {sub:?}");
        }
        if let Ok(scopes) = claims::scopes(issuer, &claims) {
            for scope in scopes {
                assert!(
                    !scope.is_empty()
                        && scope.bytes().all(|b| b == 0x21
                            || (0x23..=0x5b).contains(&b)
                            || (0x5d..=0x7e).contains(&b)),
                    "scope {scope:?}"
                );
            }
        }
    }
    let mut names: Vec<String> = ["sub", "iss", "jti", "nonce", "exp", "iat", "nbf", "aud"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    names.extend(claims.custom.keys().cloned());
    for name in &names {
        let _ = claims::claim_value(&claims, name);
        if let Some(value) = claims::header_value(&claims, name) {
            check::assert_header_value(name, &value);
        }
    }
    // Delegation reads the same payloads from jwt_authn's metadata.
    if let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(data) {
        let worker = fx.worker(&fx.full, None);
        let verifier = verifier(&fx.full, &worker);
        let mut payloads = serde_json::Map::new();
        payloads.insert(
            fixtures::GATEWAY_PAYLOAD_KEY.into(),
            Value::Object(payload.clone()),
        );
        if let Some(Ok(identity)) = identify::from_jwt_authn(&verifier, &payloads, NOW) {
            assert_eq!(
                payload.get("iss").and_then(Value::as_str),
                Some(fixtures::GATEWAY_ISSUER)
            );
            check::assert_headers(&identity.claim_headers);
        }
    }
}

/// A few requests through a configuration that loaded: a committed token, none, a bad path.
fn exercise(config: &FilterConfig) {
    let fx = fixtures::get();
    let tokens: Vec<String> = fx
        .tokens
        .iter()
        .take(3)
        .map(|t| format!("Bearer {}", t.token))
        .collect();
    let mut worker = fx.worker(config, Some(NOW - 60));
    for (method, path) in [
        ("GET", "/accounts"),
        ("POST", "/domestic-payments"),
        ("GET", "/health"),
        ("GET", "/unrouted/x?a=1"),
        ("GET", "/accounts/../x"),
    ] {
        for auth in tokens.iter().map(|t| vec![t.as_str()]).chain([vec![]]) {
            let request = RequestView {
                method,
                path,
                authorization: &auth,
                interaction_id: None,
                jwt_authn_payloads: None,
                headers: &[],
                source_address: None,
                now_ms: 0,
                connection: &pipeline::Plaintext,
                consent_answer: None,
            };
            let decision = pipeline::decide(config, &mut worker, &request, NOW);
            check::assert_decision(config, false, &request, NOW, &decision);
        }
    }
}

/// `config::load` on arbitrary bytes; a configuration that loads is then used.
pub fn config_bytes(data: &[u8]) {
    if let Ok(config) = config::load(data) {
        exercise(&config);
    }
}

/// `config::load` on the fixture configurations with structural edits.
pub fn config_json(data: &[u8]) {
    let Some(input) = typed::<input::ConfigInput>(data) else {
        return;
    };
    let mut doc = if input.full {
        fixtures::full_config_light()
    } else {
        fixtures::basic_config()
    };
    input::apply(&mut doc, &input.edits);
    if let Ok(config) = config::load(doc.to_string().as_bytes()) {
        exercise(&config);
    }
}

fn assert_jwks_result(
    result: &Result<Vec<obguard::identify::keys::IssuerKey>, jwks_remote::FetchError>,
    allowed: &[Algorithm],
    max_keys: usize,
) {
    if let Ok(keys) = result {
        assert!(
            !keys.is_empty() && keys.len() <= max_keys,
            "{} keys",
            keys.len()
        );
        for key in keys {
            assert!(
                allowed.iter().any(|a| key.verifier_for(*a).is_some()),
                "a key no allowed algorithm can use"
            );
        }
    }
}

/// A fetched remote JWKS document (arbitrary bytes) and its shared-data form.
pub fn jwks(data: &[u8]) {
    let all = input::algorithms(u16::MAX);
    for (allowed, max_keys) in [
        (&all[..], 20),
        (&[Algorithm::ES256][..], 1),
        (&[Algorithm::RS256, Algorithm::PS512][..], 100),
    ] {
        let result = jwks_remote::parse(data, allowed, max_keys);
        assert_jwks_result(&result, allowed, max_keys);
    }
    let stored = jwks_remote::encode_stored(NOW, data);
    assert_eq!(jwks_remote::decode_stored(&stored), Some((NOW, data)));
    let _ = jwks_remote::decode_stored(data);
    let _ = jwks_remote::decode_time(data);
}

/// A JWKS built from the real keys with damaged or odd members.
pub fn jwks_json(data: &[u8]) {
    let Some(input) = typed::<input::JwksInput>(data) else {
        return;
    };
    let mut keys: Vec<Value> = input.keys.iter().map(input::JwkGen::build).collect();
    if input.keep_real_keys {
        let fx = fixtures::get();
        if let Ok(Value::Object(real)) = serde_json::from_slice::<Value>(&fx.jwks)
            && let Some(Value::Array(real)) = real.get("keys")
        {
            keys.extend(real.iter().cloned());
        }
    }
    let doc = serde_json::json!({ "keys": keys }).to_string();
    let allowed = input::algorithms(input.allowed);
    let max_keys = usize::from(input.max_keys).max(1);
    let result = jwks_remote::parse(doc.as_bytes(), &allowed, max_keys);
    assert_jwks_result(&result, &allowed, max_keys);
}

fn exercise_model(model: &Model) {
    for fill in [0.0f32, 0.5, 1.0, -1.0, 1e30, f32::MAX, f32::MIN_POSITIVE] {
        let fv = FeatureVector {
            values: [fill; FEATURE_COUNT],
            ..FeatureVector::default()
        };
        let score = model.score(&fv);
        assert!((0.0..=1.0).contains(&score), "score {score}");
        let _ = Model::verdict(score, model.thresholds());
    }
}

/// A model file (arbitrary bytes): loading it under each signature policy, and through the
/// filter's acceptance with and without a digest pin.
pub fn model_file(data: &[u8]) {
    let keys = fixtures::model_keys();
    let signed = Model::load_verified(data, SignaturePolicy::Required(keys));
    let unsigned = Model::load_verified(data, SignaturePolicy::NotRequired);
    match (&signed, &unsigned) {
        (Ok(s), Ok(u)) => assert_eq!(s.digest(), u.digest()),
        (Ok(_), Err(err)) => panic!("signed file loads, unsigned policy refuses it: {err}"),
        _ => {}
    }
    if let Ok(model) = &unsigned {
        exercise_model(model);
        let digest = obguard_models::file_digest(data);
        assert_eq!(digest.ok(), Some(model.digest()));
    }
    let trust = Trust {
        keys: keys.to_vec(),
        allow_unsigned: false,
    };
    match model_source::accept(data, &trust, None) {
        Ok(loaded) => {
            assert!(signed.is_ok(), "accepted a file load_verified refuses");
            assert_eq!(loaded.digest.len(), 64);
            let pinned = model_source::accept(data, &trust, Some(&loaded.digest.to_uppercase()));
            assert!(pinned.is_ok(), "pin of its own digest refused");
            let other = model_source::accept(data, &trust, Some(&"0".repeat(64)));
            assert_eq!(other.err().map(|r| r.reason), Some("digest_mismatch"));
        }
        Err(rejection) => {
            assert!(
                model_source::REJECTION_REASONS.contains(&rejection.reason),
                "undeclared rejection reason {}",
                rejection.reason
            );
            assert!(signed.is_err(), "load_verified accepts what accept refuses");
        }
    }
}

/// A model body (arbitrary bytes) in a well-formed, current-schema envelope: decoding and
/// validating the body, then scoring with it.
pub fn model_body(data: &[u8]) {
    let envelope = Envelope {
        magic: obguard_models::model::MAGIC,
        format_version: obguard_models::model::FORMAT_VERSION,
        schema_hash: obguard_models::SCHEMA.hash(),
        body: data.to_vec(),
        signature: None,
    };
    let Ok(file) = postcard::to_allocvec(&envelope) else {
        return;
    };
    let result = Model::load_verified(&file, SignaturePolicy::NotRequired);
    if let Ok(model) = &result {
        exercise_model(model);
        let round = model.to_bytes().ok().and_then(|b| Model::load(&b).ok());
        assert!(round.is_some(), "a loaded model does not write back");
    }
}

/// A client baseline as read from shared data.
pub fn baseline(data: &[u8]) {
    let Ok(baseline) = obguard_models::ClientBaseline::decode(data) else {
        return;
    };
    let bytes = match baseline.encode() {
        Ok(bytes) => bytes,
        Err(err) => panic!("decoded baseline does not encode: {err}"),
    };
    let again = obguard_models::ClientBaseline::decode(&bytes);
    assert!(again.is_ok_and(|b| b == baseline), "baseline round trip");
}

/// Requests (paths, methods, `Authorization` values built from the committed tokens, header
/// sets, `jwt_authn` payloads, clocks) through `pipeline::decide` with the fixture
/// configurations; a sequence shares one worker (token cache, baselines).
pub fn decide(data: &[u8]) {
    decide_observed(data, &mut |_, _| {});
}

/// [`decide`], telling `observe` each decision (for seed selection).
pub fn decide_observed(data: &[u8], observe: &mut dyn FnMut(Variant, &pipeline::Decision<'_>)) {
    let Some(input) = typed::<input::DecideInput>(data) else {
        return;
    };
    let fx = fixtures::get();
    let variant = if input.full_config {
        Variant::Full
    } else {
        Variant::Basic
    };
    let config = fx.config(variant);
    let fetched_at = input.remote_keys_age.map(|age| NOW - u64::from(age));
    let mut worker = fx.worker(config, fetched_at);
    if let (Some(bytes), Some(stage)) = (&input.baseline_slot, &config.model) {
        for token in &fx.tokens {
            // Baselines are keyed by the client id qualified by its issuer's namespace.
            for issuer in &config.issuers {
                let client = format!("{}@{}", token.client_id, issuer.client_namespace);
                let (keys, owner) =
                    obguard::assess::baselines::slots_of(&client, stage.max_clients);
                let mut slot = owner.to_be_bytes().to_vec();
                slot.extend_from_slice(bytes);
                for key in keys {
                    let _ = worker.baselines.store(&key, &slot, None);
                }
            }
        }
    }
    for request in input.requests.iter().take(4) {
        let path = request.path.build();
        let authorization: Vec<String> = request
            .authorization
            .iter()
            .take(3)
            .map(input::AuthGen::build)
            .collect();
        let authorization: Vec<&str> = authorization.iter().map(String::as_str).collect();
        let headers: Vec<(String, String)> = request
            .headers
            .iter()
            .take(12)
            .map(|(k, v)| (k.0.to_ascii_lowercase(), v.0.clone()))
            .collect();
        let payloads: Option<serde_json::Map<String, Value>> = request.payloads.as_ref().map(|p| {
            p.iter()
                .take(3)
                .map(|(k, v)| {
                    let key = if k.0.is_empty() {
                        fixtures::GATEWAY_PAYLOAD_KEY.to_owned()
                    } else {
                        k.0.clone()
                    };
                    (key, v.build())
                })
                .collect()
        });
        let now = NOW.saturating_add_signed(i64::from(request.clock));
        let view = RequestView {
            method: request.method.as_str(),
            path: &path,
            authorization: &authorization,
            interaction_id: request.interaction_id.as_ref().map(|t| t.0.as_str()),
            jwt_authn_payloads: payloads.as_ref(),
            headers: &headers,
            source_address: Some("203.0.113.7:40000"),
            now_ms: now * 1000 + u64::from(request.now_ms_jitter % 1000),
            connection: &pipeline::Plaintext,
            consent_answer: None,
        };
        let decision = pipeline::decide(config, &mut worker, &view, now);
        check::assert_decision(config, true, &view, now, &decision);
        observe(variant, &decision);
        if let (Some(rl), pipeline::Action::Continue { .. }) = (&config.ratelimit, &decision.action)
        {
            let country = headers
                .iter()
                .find(|(k, _)| Some(k.as_str()) == rl.country_header.as_deref())
                .map(|(_, v)| v.as_str());
            let facts = obguard::ratelimit::RequestFacts {
                client_id: decision.client_id.as_deref(),
                subject: decision.subject.as_deref(),
                route: decision.route,
                assessment: decision.assessment,
                country,
                // The fuzzed configuration has no idempotency-key or consent descriptors.
                ..Default::default()
            };
            if let Some(call) = obguard::ratelimit::plan(rl, &facts) {
                let decoded =
                    obguard_rls_proto::envoy::service::ratelimit::v3::RateLimitRequest::decode(
                        call.message.as_slice(),
                    );
                assert!(decoded.is_ok(), "plan wrote an undecodable request");
            }
        }
    }
}

fn policy(call: &input::CallGen) -> RoutePolicy {
    RoutePolicy {
        call: CallPolicy::Always,
        timeout: Duration::from_millis(u64::from(call.timeout_ms.max(1))),
        failure: if call.fail_closed {
            FailureMode::FailClosed
        } else {
            FailureMode::FailOpen
        },
        failure_status: call.failure_status.unwrap_or(503),
        throttle_without_call: ThrottleWithoutCall::default(),
    }
}

const REQUEST_RESERVED: &[&str] = &[
    "host",
    "authorization",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "x-fapi-interaction-id",
];

fn assert_obeyed(
    policy: &RoutePolicy,
    grpc_status: u32,
    body: Option<&[u8]>,
    obeyed: &reply::Obeyed,
) {
    let decoded = body.and_then(|b| RateLimitResponse::decode(b).ok());
    if grpc_status != 0 || decoded.is_none() {
        assert!(
            matches!(
                obeyed.answer,
                Answer::FailedOpen(_) | Answer::FailedClosed(_)
            ),
            "{:?} from a failed call",
            obeyed.answer
        );
    }
    match &obeyed.next {
        Next::Resume {
            request_headers,
            response_headers,
        } => {
            assert!(!matches!(
                obeyed.answer,
                Answer::OverLimit | Answer::FailedClosed(_)
            ));
            check::assert_headers(request_headers);
            check::assert_headers(response_headers);
            for (name, _) in request_headers {
                assert!(
                    !REQUEST_RESERVED.contains(&name.as_str()) && !name.starts_with(':'),
                    "service set reserved request header {name}"
                );
            }
        }
        Next::Reply(reply) => {
            check::assert_headers(&reply.headers);
            match obeyed.answer {
                Answer::OverLimit => {
                    assert_eq!(reply.status, 429);
                    let retry = reply
                        .headers
                        .iter()
                        .find(|(n, _)| n == "retry-after")
                        .and_then(|(_, v)| v.parse::<u64>().ok());
                    assert!(retry.is_some_and(|r| r >= 1), "retry-after {retry:?}");
                    let count =
                        |name: &str| reply.headers.iter().filter(|(n, _)| n == name).count();
                    for name in [
                        "retry-after",
                        "ratelimit",
                        "ratelimit-policy",
                        "content-type",
                    ] {
                        assert!(count(name) <= 1, "{name} set twice");
                    }
                }
                Answer::FailedClosed(_) => assert_eq!(reply.status, policy.failure_status),
                other => panic!("{other:?} answered with a reply"),
            }
        }
    }
}

fn obey(call: &input::CallGen, body: Option<&[u8]>) {
    let policy = policy(call);
    let status = call.grpc_status.unwrap_or(0);
    let realm = call.realm.as_ref().map_or("bank.test", |t| t.0.as_str());
    let id = call
        .interaction_id
        .as_ref()
        .map_or("4d8f6e0a-1c2b-4e8a-9f3d-2b7c6a5e4f10", |t| t.0.as_str());
    if !obguard::enforce::reply::build(&obguard::enforce::reply::Denial::RateLimited, realm, id)
        .headers
        .iter()
        .all(|(n, v)| !n.is_empty() && v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)))
    {
        // The realm and interaction id are validated before they get here (configuration
        // and `interaction_id::resolve`); unchecked ones are not this target's business.
        return;
    }
    let elapsed = Duration::from_millis(u64::from(call.elapsed_ms));
    let obeyed = reply::obey(
        &policy,
        status,
        elapsed,
        body,
        &reply::Reserved::default(),
        realm,
        id,
    );
    assert_obeyed(&policy, status, body, &obeyed);
}

/// A rate-limit service reply: arbitrary protobuf bytes after an 8-byte call header:
/// gRPC status (1 byte), elapsed and timeout ms (2 bytes each, big-endian), flags (bit 0:
/// fail closed, bit 1: no body), failure status (2 bytes).
pub fn rls_reply(data: &[u8]) {
    let Some((head, body)) = data.split_first_chunk::<8>() else {
        return;
    };
    let [status, e0, e1, t0, t1, flags, f0, f1] = *head;
    let call = input::CallGen {
        grpc_status: Some(u32::from(status)),
        elapsed_ms: u16::from_be_bytes([e0, e1]),
        timeout_ms: u16::from_be_bytes([t0, t1]),
        fail_closed: flags & 1 != 0,
        failure_status: Some(u16::from_be_bytes([f0, f1])),
        realm: None,
        interaction_id: None,
    };
    let body = (flags & 2 == 0).then_some(body);
    if let Some(response) = body.and_then(|b| RateLimitResponse::decode(b).ok()) {
        let _ = reply::ratelimit_headers(&response);
    }
    obey(&call, body);
}

/// A rate-limit service reply built field by field (codes, limits, resets, headers).
pub fn rls_response(data: &[u8]) {
    let Some(input) = typed::<input::RlsInput>(data) else {
        return;
    };
    let header = |h: &input::HeaderGenRls| HeaderValue {
        key: h.key.0.clone(),
        value: h.value.0.clone(),
        raw_value: h.raw_value.clone().unwrap_or_default(),
    };
    let response = RateLimitResponse {
        overall_code: input.overall_code % 4,
        statuses: input
            .statuses
            .iter()
            .map(|s| DescriptorStatus {
                code: s.code % 4,
                current_limit: s.limit.as_ref().map(|(name, rpu, unit)| RateLimit {
                    name: name.0.clone(),
                    requests_per_unit: *rpu,
                    unit: unit % 9,
                }),
                limit_remaining: s.remaining,
                duration_until_reset: s
                    .reset
                    .map(|(seconds, nanos)| prost_types::Duration { seconds, nanos }),
                ..Default::default()
            })
            .collect(),
        request_headers_to_add: input.request_headers.iter().map(header).collect(),
        response_headers_to_add: input.response_headers.iter().map(header).collect(),
        raw_body: input.raw_body.clone(),
        ..Default::default()
    };
    let bytes = response.encode_to_vec();
    let _ = reply::ratelimit_headers(&response);
    obey(&input.call, Some(&bytes));
}

/// A `DPoP` header value (UTF-8, lossy) checked against a fixed request and token: never a
/// panic, and a proof accepted once is refused as a replay the second time.
pub fn dpop_proof(data: &[u8]) {
    use obguard::assess::baselines::MemoryStore;
    use obguard::identify::dpop::{self, DpopAlgorithm, DpopError, ProofContext, ProofRules};
    let text = String::from_utf8_lossy(data);
    let proofs = [text.as_ref()];
    let rules = ProofRules {
        algorithms: &[
            DpopAlgorithm::ES256,
            DpopAlgorithm::ES384,
            DpopAlgorithm::EdDSA,
        ],
        max_age_s: 300,
        clock_skew_s: 30,
        origins: &[],
        replay_entries: 64,
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
    let mut store = MemoryStore::default();
    if dpop::check_proof(&rules, &context, fixtures::DPOP_JKT, &mut store).is_ok() {
        assert_eq!(
            dpop::check_proof(&rules, &context, fixtures::DPOP_JKT, &mut store),
            Err(DpopError::Replayed),
            "an accepted proof was accepted again"
        );
    }
}

/// A threat-intelligence feed. The first byte chooses kind and format (`0` IP text, `1` ASN
/// text, `2` country text, `3` IP JSON, `4` ASN JSON, `5` country JSON: the byte modulo 3 is
/// the kind, its third modulo 2 the format, so the ASCII digits read so), the second is
/// `max_entries` (0 to 255), the rest is the body. Besides never panicking: a list that
/// parses holds at most `max_entries` entries, exactly the distinct entries a plain re-reading
/// of the body finds, and matches as a linear scan of them does; a refusal is one of the
/// declared reasons and a one-line message.
pub fn intel_feed(data: &[u8]) {
    use obguard::intel::{self, FeedError, FeedFormat, FeedKind, FeedList};
    let Some((&[selector, max], body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let (Some(&kind), Some(&format)) = (
        FeedKind::ALL.get(usize::from(selector % 3)),
        FeedFormat::ALL.get(usize::from(selector / 3 % 2)),
    ) else {
        return;
    };
    let max = usize::from(max);
    let text = String::from_utf8_lossy(body);
    if let Some(asn) = intel::parse_asn(&text) {
        assert_ne!(asn, 0, "ASN 0 from {text:?}");
        assert_eq!(intel::parse_asn(&format!("AS{asn}")), Some(asn));
        assert_eq!(intel::parse_asn(&asn.to_string()), Some(asn));
    }
    let result = intel::parse_feed(kind, format, body, max);
    let entries = std::str::from_utf8(body)
        .ok()
        .and_then(|text| intel_entries(kind, format, text));
    let list = match result {
        Ok(list) => list,
        Err(err) => {
            assert!(FeedError::REASONS.contains(&err.reason()), "{err:?}");
            let message = err.to_string();
            assert!(
                !message.is_empty() && !message.contains(['\n', '\r']),
                "{message:?}"
            );
            match err {
                FeedError::NotUtf8 => assert!(std::str::from_utf8(body).is_err()),
                FeedError::NotJson => assert!(format == FeedFormat::Json && entries.is_none()),
                FeedError::TooManyEntries { max: m } => {
                    assert_eq!(m, max);
                    let written = entries.map_or(0, |e| e.len());
                    assert!(
                        written > max,
                        "{written} entries refused as more than {max}"
                    );
                }
                FeedError::BadEntry { line, entry, .. } => {
                    assert!(line >= 1 && entry.chars().count() <= 64, "{line} {entry:?}");
                }
            }
            return;
        }
    };
    assert_eq!(list.kind(), kind);
    assert!(list.len() <= max, "{} entries over max {max}", list.len());
    let entries = match entries {
        Some(entries) => entries,
        None => panic!("accepted a feed the re-reading finds no entries array in"),
    };
    assert!(entries.len() <= max);
    assert_eq!(list.is_empty(), entries.is_empty());
    // Probes from the body: every 4 bytes an IPv4 address, every 16 an IPv6 one.
    let v4_probes = body
        .chunks_exact(4)
        .filter_map(|c| <[u8; 4]>::try_from(c).ok());
    let v6_probes = body
        .chunks_exact(16)
        .filter_map(|c| <[u8; 16]>::try_from(c).ok());
    match &list {
        FeedList::Ip(set) => {
            use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
            let mut networks: Vec<intel::Network> = Vec::new();
            for entry in &entries {
                match entry.as_str().and_then(|e| e.parse().ok()) {
                    Some(network) => networks.push(network),
                    None => panic!("accepted an IP feed with the entry {entry:?}"),
                }
            }
            let mut distinct = networks.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(set.len(), distinct.len());
            assert!(set.range_count() <= set.len());
            let mut probes: Vec<IpAddr> = Vec::new();
            for n in distinct.iter().take(64) {
                let text = n.to_string();
                assert_eq!(text.parse::<intel::Network>().ok(), Some(*n), "{text}");
                for ip in [n.addr(), n.last()] {
                    probes.push(ip);
                    match ip {
                        IpAddr::V4(v4) => {
                            let a = u32::from(v4);
                            probes.push(IpAddr::V6(v4.to_ipv6_mapped()));
                            for b in [a.wrapping_sub(1), a.wrapping_add(1)] {
                                probes.push(IpAddr::V4(Ipv4Addr::from(b)));
                            }
                        }
                        IpAddr::V6(v6) => {
                            let a = u128::from(v6);
                            for b in [a.wrapping_sub(1), a.wrapping_add(1)] {
                                probes.push(IpAddr::V6(Ipv6Addr::from(b)));
                            }
                        }
                    }
                }
            }
            probes.extend(v4_probes.take(64).map(|b| IpAddr::V4(Ipv4Addr::from(b))));
            probes.extend(v6_probes.take(64).map(|b| IpAddr::V6(Ipv6Addr::from(b))));
            for ip in probes {
                let naive = networks.iter().any(|n| n.contains(ip));
                assert_eq!(set.contains(ip), naive, "{ip}");
                match set.matching(ip) {
                    Some(m) => assert!(
                        naive && m.contains(ip) && networks.contains(&m),
                        "{ip} matched {m}"
                    ),
                    None => assert!(!naive, "{ip} contained but not matched"),
                }
            }
        }
        FeedList::Asn(set) => {
            let mut asns: Vec<u32> = Vec::new();
            for entry in &entries {
                let asn = match entry {
                    Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                    Value::String(s) => intel::parse_asn(s),
                    _ => None,
                };
                match asn.filter(|&a| a != 0) {
                    Some(asn) => asns.push(asn),
                    None => panic!("accepted an ASN feed with the entry {entry:?}"),
                }
            }
            let mut distinct = asns.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(set.len(), distinct.len());
            let probes = v4_probes.take(64).map(u32::from_be_bytes);
            for asn in asns.iter().copied().chain(probes).chain([0, u32::MAX]) {
                assert_eq!(set.contains(asn), asns.contains(&asn), "AS{asn}");
            }
        }
        FeedList::Country(set) => {
            let mut codes: Vec<String> = Vec::new();
            for entry in &entries {
                match entry.as_str() {
                    Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) => {
                        codes.push(c.to_ascii_uppercase());
                    }
                    _ => panic!("accepted a country feed with the entry {entry:?}"),
                }
            }
            let mut distinct = codes.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(set.len(), distinct.len());
            assert_eq!(set.codes().collect::<Vec<_>>(), distinct);
            let probes = body
                .chunks_exact(2)
                .take(64)
                .map(|c| String::from_utf8_lossy(c).into_owned());
            for code in codes.iter().cloned().chain(probes) {
                let naive = codes.iter().any(|c| c.eq_ignore_ascii_case(&code))
                    && code.bytes().all(|b| b.is_ascii_alphabetic());
                assert_eq!(set.contains(&code), naive, "{code:?}");
            }
        }
    }
    // The same body with no limit is the same list.
    match intel::parse_feed(kind, format, body, usize::MAX) {
        Ok(again) => assert_eq!(again.len(), list.len()),
        Err(err) => panic!("accepted under {max} entries, refused without a limit: {err}"),
    }
}

/// The entries of a feed body as a plain reading finds them (the oracle for `intel_feed`):
/// text lines' first tokens before `#`/`;`, or the JSON array's values, an object entry
/// replaced by its kind's member. `None` when JSON is not the expected shape. Strings are
/// trimmed, as the parser trims JSON strings (text tokens have no whitespace).
fn intel_entries(
    kind: obguard::intel::FeedKind,
    format: obguard::intel::FeedFormat,
    text: &str,
) -> Option<Vec<Value>> {
    use obguard::intel::{FeedFormat, FeedKind};
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if format == FeedFormat::Text {
        let tokens = text.lines().filter_map(|line| {
            let line = line
                .find(['#', ';'])
                .map_or(line, |i| line.get(..i).unwrap_or(""));
            line.split_whitespace().next()
        });
        return Some(tokens.map(|t| Value::String(t.to_owned())).collect());
    }
    let doc: Value = serde_json::from_str(text).ok()?;
    let array = match doc {
        Value::Array(array) => array,
        Value::Object(mut object) => match object.remove("entries") {
            Some(Value::Array(array)) => array,
            _ => return None,
        },
        _ => return None,
    };
    let keys: &[&str] = match kind {
        FeedKind::Ip => &["cidr", "ip", "network"],
        FeedKind::Asn => &["asn"],
        FeedKind::Country => &["country"],
    };
    let entries = array.into_iter().map(|entry| {
        let entry = match entry {
            Value::Object(object) => {
                let mut found: Vec<Value> = keys
                    .iter()
                    .filter_map(|k| object.get(*k).cloned())
                    .collect();
                if found.len() == 1 {
                    found.pop().unwrap_or(Value::Null)
                } else {
                    Value::Null
                }
            }
            other => other,
        };
        match entry {
            Value::String(s) => Value::String(s.trim().to_owned()),
            other => other,
        }
    });
    Some(entries.collect())
}
