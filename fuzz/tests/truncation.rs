//! Contracts the fuzz targets cannot check on their own: a valid document cut short is never
//! accepted. Every strict prefix of every committed token, JWKS, configuration, model file
//! and baseline is refused. (Rate-limit replies are protobuf, where a prefix ending on a
//! field boundary is a valid message by design: not a contract there.)

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use obguard::identify::{self, jwks_remote};
use obguard::pipeline::Worker;
use obguard_fuzz::fixtures::{self, NOW, Variant};
use obguard_models::{ClientBaseline, Model, SignaturePolicy};

fn prefixes(bytes: &[u8], stride: usize) -> impl Iterator<Item = &[u8]> {
    (0..bytes.len())
        .step_by(stride.max(1))
        .filter_map(|n| bytes.get(..n))
}

#[test]
fn truncated_tokens_do_not_verify() {
    let fx = fixtures::get();
    for variant in [Variant::Basic, Variant::Full] {
        let config = fx.config(variant);
        let worker: Worker = fx.worker(config, Some(NOW - 60));
        let verifier = identify::Verifier {
            issuers: &config.issuers,
            claim_headers: &config.headers.claims,
            max_token_bytes: config.max_token_bytes,
            host: None,
            remote_keys: &worker.remote_keys,
        };
        for token in fx.tokens.iter().filter(|t| t.trusted) {
            for prefix in prefixes(token.token.as_bytes(), 1) {
                let prefix = std::str::from_utf8(prefix).unwrap();
                let mut by = None;
                let result = identify::verify(&verifier, prefix, NOW, &mut by);
                assert!(
                    result.is_err(),
                    "{} cut to {} bytes verifies",
                    token.name,
                    prefix.len()
                );
            }
        }
    }
}

#[test]
fn truncated_jwks_is_not_a_jwks() {
    let fx = fixtures::get();
    let allowed = &fx.basic.issuers[0].algorithms;
    assert!(jwks_remote::parse(&fx.jwks, allowed, 20).is_ok());
    for prefix in prefixes(&fx.jwks, 1) {
        assert_eq!(
            jwks_remote::parse(prefix, allowed, 20).err(),
            Some(jwks_remote::FetchError::NotJwks),
            "JWKS cut to {} bytes",
            prefix.len()
        );
    }
}

#[test]
fn truncated_configuration_does_not_load() {
    for doc in [
        fixtures::CONFIG_JSON.trim_end().to_owned(),
        fixtures::full_config().to_string(),
    ] {
        assert!(obguard::config::load(doc.as_bytes()).is_ok());
        // The full configuration carries a 54 KB model: every 7th prefix, and the last 200.
        let stride = if doc.len() > 20_000 { 7 } else { 1 };
        let tail = doc.len().saturating_sub(200);
        for n in (0..doc.len()).filter(|n| n % stride == 0 || *n >= tail) {
            let prefix = doc.as_bytes().get(..n).unwrap();
            assert!(
                obguard::config::load(prefix).is_err(),
                "configuration cut to {n} of {} bytes loads",
                doc.len()
            );
        }
    }
}

#[test]
fn truncated_model_files_do_not_load() {
    let keys = fixtures::model_keys();
    for (name, file) in [
        ("doc example", obguard_models::model::doc_example_model()),
        ("shipped", fixtures::SHIPPED_MODEL.to_vec()),
    ] {
        assert!(Model::load_verified(&file, SignaturePolicy::NotRequired).is_ok());
        // The envelope's body is decoded byte by byte (slow unoptimised): for the 40 KB
        // shipped model every 61st prefix, and the first and last 300.
        let (len, stride) = (file.len(), if file.len() > 4096 { 61 } else { 1 });
        let cuts = (0..len).filter(|n| n % stride == 0 || *n < 300 || *n + 300 >= len);
        for prefix in cuts.filter_map(|n| file.get(..n)) {
            assert!(
                Model::load_verified(prefix, SignaturePolicy::NotRequired).is_err(),
                "{name} model cut to {} bytes loads",
                prefix.len()
            );
            assert!(Model::load_verified(prefix, SignaturePolicy::Required(keys)).is_err());
        }
    }
}

#[test]
fn truncated_baselines_do_not_decode() {
    for (path, bytes) in obguard_fuzz::mutate::corpus("baseline") {
        assert!(ClientBaseline::decode(&bytes).is_ok(), "{}", path.display());
        for prefix in prefixes(&bytes, 1) {
            assert!(
                ClientBaseline::decode(prefix).is_err(),
                "{} cut to {} bytes decodes",
                path.display(),
                prefix.len()
            );
        }
    }
}
