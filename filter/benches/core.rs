//! Micro-benchmarks of the core decisions, natively (criterion). The macro benchmark through
//! Envoy lives in `integration/src/bin/obguard-bench.rs`; both run from `make bench`.

// Benchmark code: a broken setup should stop loudly.
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use obguard::config::{self, FilterConfig};
use obguard::identify::cache::TokenCache;
use obguard::identify::{self, Verifier};
use obguard::pipeline::{RequestView, Worker, decide};
use obguard_testkit::{self as kit, Key};

fn load() -> FilterConfig {
    match config::load(kit::plugin_config().to_string().as_bytes()) {
        Ok(config) => config,
        Err(err) => panic!("{err}"),
    }
}

fn verifier(config: &FilterConfig) -> Verifier<'_> {
    Verifier {
        issuers: &config.issuers,
        claim_headers: &config.headers.claims,
        max_token_bytes: config.max_token_bytes,
        host: config.host_verify,
        remote_keys: &[],
    }
}

fn token_verify(c: &mut Criterion) {
    let config = load();
    let mut group = c.benchmark_group("verify (jwt-simple, no cache)");
    for (alg, key) in [
        ("RS256", Key::Rsa1),
        ("PS256", Key::Rsa1),
        ("ES256", Key::P256),
        ("ES384", Key::P384),
        ("EdDSA", Key::Ed25519),
    ] {
        let token = kit::token(alg, key, &kit::claims("tpp-1", "accounts"));
        let v = verifier(&config);
        group.bench_function(alg, |b| {
            b.iter(|| {
                let mut path = None;
                black_box(identify::verify(
                    &v,
                    black_box(&token),
                    kit::now(),
                    &mut path,
                ))
                .is_ok()
            })
        });
    }
    group.finish();
}

fn warm_path(c: &mut Criterion) {
    let config = load();
    let mut worker = Worker::new(&config);
    let token = kit::token(
        "PS256",
        Key::Rsa1,
        &kit::claims("tpp-1", "accounts transactions:read"),
    );
    let bearer = format!("Bearer {token}");
    let authorization = [bearer.as_str()];
    let view = RequestView {
        method: "GET",
        path: "/accounts/acc-1/transactions",
        authorization: &authorization,
        interaction_id: Some("93bac548-d2de-4546-b106-880a5018460d"),
        jwt_authn_payloads: None,
        headers: &[],
        source_address: None,
        now_ms: 0,
        connection: &obguard::pipeline::Plaintext,
        consent_answer: None,
    };
    let now = kit::now();
    // Prime the cache.
    let _ = decide(&config, &mut worker, &view, now);
    c.bench_function("decide: cached token, route, scopes, headers", |b| {
        b.iter(|| black_box(decide(&config, &mut worker, black_box(&view), now)).outcome)
    });
    c.bench_function("cache key: blake3 of the token", |b| {
        b.iter(|| TokenCache::key(black_box(&token)))
    });
    c.bench_function("route match (6 routes)", |b| {
        b.iter(|| {
            config
                .routes
                .find(black_box("GET"), black_box("/accounts/acc-1/transactions"))
                .is_some()
        })
    });
}

/// The warm path with the shipped model (shadow mode, as in obguard-bench's
/// `obguard_warm_model`): features, baseline round trip through the (memory) store, score.
fn warm_path_with_model(c: &mut Criterion) {
    use base64::Engine as _;
    let mut raw = kit::plugin_config();
    raw["model"] = serde_json::json!({
        "inline_base64": base64::engine::general_purpose::STANDARD
            .encode(include_bytes!("../../models/shipped/obguard-default.model")),
        "trusted_keys": [include_str!("../../envoy/demo/keys/DEMO-ONLY-model-signing.pub").trim()],
        "mode": "shadow",
    });
    let config = match config::load(raw.to_string().as_bytes()) {
        Ok(config) => config,
        Err(err) => panic!("{err}"),
    };
    let mut worker = Worker::new(&config);
    let token = kit::token("RS256", Key::Rsa1, &kit::claims("tpp-1", "accounts"));
    let bearer = format!("Bearer {token}");
    let authorization = [bearer.as_str()];
    let headers = vec![
        ("user-agent".to_owned(), "AcmeAggregator/2.3".to_owned()),
        ("x-client-geo-country".to_owned(), "GB".to_owned()),
        ("x-forwarded-for".to_owned(), "203.0.113.10".to_owned()),
    ];
    let view = RequestView {
        method: "GET",
        path: "/accounts",
        authorization: &authorization,
        interaction_id: Some("93bac548-d2de-4546-b106-880a5018460d"),
        jwt_authn_payloads: None,
        headers: &headers,
        source_address: None,
        now_ms: 0,
        connection: &obguard::pipeline::Plaintext,
        consent_answer: None,
    };
    let now = kit::now();
    let _ = decide(&config, &mut worker, &view, now);
    c.bench_function(
        "decide with the shipped model (shadow, memory store)",
        |b| b.iter(|| black_box(decide(&config, &mut worker, black_box(&view), now)).outcome),
    );
}

criterion_group!(benches, warm_path, warm_path_with_model, token_verify);
criterion_main!(benches);
