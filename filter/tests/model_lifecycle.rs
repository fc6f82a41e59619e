//! Model-file acceptance and the configuration of model sources, natively: signatures by
//! trusted keys only, digest pins, clear errors naming the field, the answer before the first
//! model, and a shadow model scored next to the primary. (Polling and swapping through Envoy:
//! integration/tests/model_lifecycle.rs.)

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use base64::Engine as _;
use obguard::assess::Verdict;
use obguard::assess::model_source::{self, Trust};
use obguard::pipeline::{Action, RequestView, Worker, decide};
use obguard::telemetry::Outcome;
use obguard_models::PublicKey;
use obguard_testkit::pipeline::{load, load_err, view};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

fn model(new_country_weight: f32) -> Vec<u8> {
    kit::new_country_model(new_country_weight)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn trust(keys: &[u8]) -> Trust {
    Trust {
        keys: keys
            .iter()
            .map(|n| PublicKey::from_base64(&kit::model_signing_public_key_b64(*n)).unwrap())
            .collect(),
        allow_unsigned: false,
    }
}

fn config_with(model: Value) -> Value {
    kit::config::with("model", model)
}

#[test]
fn only_files_signed_by_a_trusted_key_are_accepted() {
    let file = model(10.0);
    let signed = kit::sign_model(&file, 1);
    let loaded = model_source::accept(&signed, &trust(&[1]), None).unwrap();
    assert_eq!(
        loaded.digest,
        kit::model_digest_hex(&file),
        "signing keeps the digest"
    );
    // Rotation: either of two trusted keys.
    model_source::accept(&kit::sign_model(&file, 2), &trust(&[1, 2]), None).unwrap();

    let reason =
        |bytes: &[u8], trust: &Trust| model_source::accept(bytes, trust, None).unwrap_err().reason;
    assert_eq!(reason(&file, &trust(&[1])), "unsigned");
    assert_eq!(
        reason(&kit::sign_model(&file, 2), &trust(&[1])),
        "unknown_key"
    );
    let mut tampered = signed.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    assert_eq!(reason(&tampered, &trust(&[1])), "bad_signature");
    assert_eq!(reason(&signed[..signed.len() / 2], &trust(&[1])), "corrupt");
    let mut other_schema = file.clone();
    other_schema[9] ^= 0xff;
    assert_eq!(
        reason(&kit::sign_model(&other_schema, 1), &trust(&[1])),
        "schema_mismatch"
    );
    let dev = Trust {
        keys: Vec::new(),
        allow_unsigned: true,
    };
    model_source::accept(&file, &dev, None).unwrap();
}

#[test]
fn a_digest_pin_accepts_that_file_only() {
    let a = kit::sign_model(&model(0.0), 1);
    let b = kit::sign_model(&model(10.0), 1);
    let pin = kit::model_digest_hex(&a);
    model_source::accept(&a, &trust(&[1]), Some(&pin)).unwrap();
    let err = model_source::accept(&b, &trust(&[1]), Some(&pin)).unwrap_err();
    assert_eq!(err.reason, "digest_mismatch");
    assert!(err.message.contains(&pin), "{}", err.message);
}

#[test]
fn model_source_configuration_errors_name_the_field() {
    let key = kit::model_signing_public_key_b64(1);
    let signed = b64(&kit::sign_model(&model(0.0), 1));
    let unsigned = b64(&model(0.0));

    let err = load_err(&config_with(json!({"inline_base64": signed})));
    assert!(err.starts_with("model.trusted_keys: required"), "{err}");

    let err = load_err(&config_with(
        json!({"inline_base64": unsigned, "trusted_keys": [key]}),
    ));
    assert!(
        err.starts_with("model.inline_base64: model refused (unsigned)"),
        "{err}"
    );

    let err = load_err(&config_with(
        json!({"inline_base64": signed, "trusted_keys": ["not a key"]}),
    ));
    assert!(err.starts_with("model.trusted_keys[0]: "), "{err}");

    let err = load_err(&config_with(json!({"trusted_keys": [key]})));
    assert_eq!(
        err,
        "model: exactly one of `inline_base64` and `http` is required"
    );

    let http = json!({"cluster": "models", "path": "/m"});
    let err = load_err(&config_with(
        json!({"inline_base64": signed, "http": http, "trusted_keys": [key]}),
    ));
    assert_eq!(
        err,
        "model: exactly one of `inline_base64` and `http` is required"
    );

    let err = load_err(&config_with(
        json!({"http": {"cluster": "models", "path": "m"}, "trusted_keys": [key]}),
    ));
    assert_eq!(err, "model.http.path: must start with `/`");

    let err = load_err(&config_with(
        json!({"http": {"cluster": "models", "path": "/m", "poll_s": 0}, "trusted_keys": [key]}),
    ));
    assert_eq!(err, "model.http.poll_s: must be 1 to 86400");

    let err = load_err(&config_with(
        json!({"http": http, "sha256": "abc", "trusted_keys": [key]}),
    ));
    assert!(
        err.starts_with("model.sha256: must be 64 hex digits"),
        "{err}"
    );

    let err = load_err(&config_with(json!({
        "inline_base64": signed, "trusted_keys": [key],
        "shadow_model": {"inline_base64": unsigned}
    })));
    assert!(
        err.starts_with("model.shadow_model.inline_base64: model refused (unsigned)"),
        "{err}"
    );

    // Valid: HTTP primary with a pinned digest, inline shadow.
    load(&config_with(json!({
        "http": http, "sha256": kit::model_digest_hex(&model(0.0)), "trusted_keys": [key],
        "shadow_model": {"inline_base64": signed}
    })));
}

fn request<'a>(auth: &'a [&'a str], headers: &'a [(String, String)]) -> RequestView<'a> {
    RequestView {
        headers,
        ..view("GET", "/accounts", auth)
    }
}

#[test]
fn before_the_first_model_requests_are_allowed_unscored_or_refused() {
    let key = kit::model_signing_public_key_b64(1);
    let http = json!({"cluster": "models", "path": "/m"});
    let token = kit::token_for("ES256", Key::P256, "tpp-1", "accounts");
    let bearer = format!("Bearer {token}");
    let auth = [bearer.as_str()];
    let headers = vec![("x-client-geo-country".to_owned(), "GB".to_owned())];

    let config = load(&config_with(json!({"http": http, "trusted_keys": [key]})));
    let mut worker = Worker::new(&config);
    let d = decide(&config, &mut worker, &request(&auth, &headers), kit::now());
    assert_eq!(d.outcome, Outcome::Allowed);
    assert!(d.trace.model_unavailable && d.trace.model.is_none());

    let config = load(&config_with(json!({
        "http": http, "trusted_keys": [key], "when_unavailable": "refuse",
        "unavailable_retry_after_s": 9
    })));
    let mut worker = Worker::new(&config);
    let d = decide(&config, &mut worker, &request(&auth, &headers), kit::now());
    assert_eq!(d.outcome, Outcome::ModelUnavailable);
    let Action::Reply(reply) = &d.action else {
        panic!("{:?}", d.action)
    };
    assert_eq!(reply.status, 503);
    assert!(reply.headers.contains(&("retry-after".into(), "9".into())));

    // Once a model is swapped in (what the adapter's timer does), requests are scored.
    let loaded = model_source::accept(&kit::sign_model(&model(0.0), 1), &trust(&[1]), None);
    worker.models.primary = Some(Arc::new(loaded.unwrap()));
    let d = decide(&config, &mut worker, &request(&auth, &headers), kit::now());
    assert_eq!(d.outcome, Outcome::Allowed);
    assert!(d.trace.model.is_some());
}

#[test]
fn the_shadow_model_scores_the_same_request_but_only_the_primary_decides() {
    let key = kit::model_signing_public_key_b64(1);
    let lenient = kit::sign_model(&model(0.0), 1);
    let strict = kit::sign_model(&model(10.0), 1);
    let config = load(&config_with(json!({
        "inline_base64": b64(&lenient), "trusted_keys": [key],
        "shadow_model": {"inline_base64": b64(&strict)}
    })));
    let mut worker = Worker::new(&config);
    let token = kit::token_for("ES256", Key::P256, "tpp-1", "accounts");
    let bearer = format!("Bearer {token}");
    let auth = [bearer.as_str()];
    let gb = vec![("x-client-geo-country".to_owned(), "GB".to_owned())];
    let ru = vec![("x-client-geo-country".to_owned(), "RU".to_owned())];
    // Past the client's warm-up, so novelty counts.
    for _ in 0..40 {
        decide(&config, &mut worker, &request(&auth, &gb), kit::now());
    }
    let d = decide(&config, &mut worker, &request(&auth, &ru), kit::now());
    assert_eq!(d.outcome, Outcome::Allowed, "the lenient primary decides");
    let scored = d.trace.model.unwrap();
    assert_eq!(scored.verdict, Verdict::Allow);
    assert_eq!(scored.model.digest, kit::model_digest_hex(&lenient));
    let shadow = scored.shadow.unwrap();
    assert_eq!(
        shadow.verdict,
        Verdict::StepUp,
        "the strict shadow would challenge"
    );
    assert_eq!(shadow.model.digest, kit::model_digest_hex(&strict));
    assert!(shadow.score > 0.5 && scored.score < 0.5);
}
