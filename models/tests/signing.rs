//! Signed model files: the digest and signature definitions (checked independently of the
//! implementation), every refusal under `SignaturePolicy::Required`, the check order (a
//! badly signed body is never decoded), key rotation and the shipped model's demo signature.
// Test helpers may unwrap and index like #[test] fns (clippy.toml): failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
#![cfg(feature = "sign")]

use obguard_models::model::{Envelope, FORMAT_VERSION, MAGIC, SignatureBlock, doc_example_model};
use obguard_models::schema::hex;
use obguard_models::{
    Model, ModelError, PublicKey, SCHEMA, SIGNATURE_ALGORITHM, SecretKey, SignaturePolicy,
    file_digest, load, secret_key_from_pem, sign_model_file,
};
use sha2::{Digest, Sha256};

const KEY_1: &str = include_str!("../../testkit/keys/model-signing-1.key");
const PUB_1: &str = include_str!("../../testkit/keys/model-signing-1.pub");
const KEY_2: &str = include_str!("../../testkit/keys/model-signing-2.key");
const PUB_2: &str = include_str!("../../testkit/keys/model-signing-2.pub");
const SHIPPED: &[u8] = include_bytes!("../shipped/obguard-default.model");
const DEMO_PUB: &str = include_str!("../../envoy/demo/keys/DEMO-ONLY-model-signing.pub");

fn secret(pem: &str) -> SecretKey {
    secret_key_from_pem(pem).unwrap()
}

fn public(b64: &str) -> PublicKey {
    PublicKey::from_base64(b64).unwrap()
}

fn envelope(bytes: &[u8]) -> Envelope {
    postcard::from_bytes(bytes).unwrap()
}

fn encode(e: &Envelope) -> Vec<u8> {
    postcard::to_allocvec(e).unwrap()
}

fn required(keys: &[PublicKey]) -> SignaturePolicy<'_> {
    SignaturePolicy::Required(keys)
}

#[test]
fn round_trip() {
    let unsigned = doc_example_model();
    let k1 = public(PUB_1);
    let signed = sign_model_file(&unsigned, &secret(KEY_1)).unwrap();
    let model = Model::load_verified(&signed, required(std::slice::from_ref(&k1))).unwrap();

    let sig = model.signature().unwrap();
    assert_eq!(sig.algorithm, SIGNATURE_ALGORITHM);
    assert_eq!(sig.algorithm, "ed25519");
    assert_eq!(sig.key_id, k1.key_id());
    assert_eq!(sig.signature.len(), 64);
    // Signing touches nothing but the signature block.
    let (u, s) = (envelope(&unsigned), envelope(&signed));
    assert_eq!(
        (u.magic, u.format_version, u.schema_hash),
        (s.magic, s.format_version, s.schema_hash)
    );
    assert_eq!(u.body, s.body);
    assert!(u.signature.is_none());
    // The loaded model is the unsigned one plus its signature, and writes back identically.
    let plain = load(&unsigned).unwrap();
    assert_eq!(model.kind(), plain.kind());
    assert_eq!(model.digest(), plain.digest());
    assert_eq!(model.encoded_len(), signed.len());
    assert_eq!(model.to_bytes().unwrap(), signed);
    // `load` and NotRequired accept the signed file too.
    assert_eq!(load(&signed).unwrap(), model);
    assert_eq!(
        Model::load_verified(&signed, SignaturePolicy::NotRequired).unwrap(),
        model
    );
}

#[test]
fn digest_and_signature_follow_the_published_definition() {
    let unsigned = doc_example_model();
    let signed = sign_model_file(&unsigned, &secret(KEY_1)).unwrap();
    let e = envelope(&signed);

    // digest = SHA-256(MAGIC || format_version u16 LE || schema_hash || body)
    let mut h = Sha256::new();
    h.update(b"OBGMODEL");
    h.update(FORMAT_VERSION.to_le_bytes());
    h.update(SCHEMA.hash());
    h.update(&e.body);
    let expected: [u8; 32] = h.finalize().into();
    assert_eq!(MAGIC, *b"OBGMODEL");
    let model = load(&signed).unwrap();
    assert_eq!(model.digest(), expected);
    assert_eq!(model.digest_hex(), hex(&expected));
    assert_eq!(model.digest_hex().len(), 64);
    assert!(
        model
            .digest_hex()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(file_digest(&signed).unwrap(), expected);
    assert_eq!(file_digest(&unsigned).unwrap(), expected);
    // A freshly built model (never written) knows its digest too.
    let rebuilt = Model::new(plain_body(&unsigned)).unwrap();
    assert_eq!(rebuilt.digest(), expected);

    // signature = Ed25519(secret, "obguard-model-v1:" || digest), checked with the raw crate.
    let mut message = b"obguard-model-v1:".to_vec();
    assert_eq!(message.len(), 17);
    message.extend_from_slice(&expected);
    let raw_pub = ed25519_compact::PublicKey::from_slice(&public(PUB_1).to_bytes()).unwrap();
    let sig = ed25519_compact::Signature::from_slice(&e.signature.unwrap().signature).unwrap();
    raw_pub.verify(&message, &sig).unwrap();

    // key id = hex(SHA-256(raw public key)[..8])
    let id = hex(&Sha256::digest(public(PUB_1).to_bytes())[..8]);
    assert_eq!(public(PUB_1).key_id(), id);
    assert_eq!(id.len(), 16);
}

fn plain_body(bytes: &[u8]) -> obguard_models::model::ModelBody {
    postcard::from_bytes(&envelope(bytes).body).unwrap()
}

#[test]
fn digest_is_stable_across_signing_and_resigning() {
    let unsigned = doc_example_model();
    let d = file_digest(&unsigned).unwrap();
    let by_1 = sign_model_file(&unsigned, &secret(KEY_1)).unwrap();
    let by_2 = sign_model_file(&by_1, &secret(KEY_2)).unwrap();
    for f in [&by_1, &by_2] {
        assert_eq!(file_digest(f).unwrap(), d);
        assert_eq!(load(f).unwrap().digest(), d);
    }
    // Deterministic: same file, same key, same bytes.
    assert_eq!(sign_model_file(&unsigned, &secret(KEY_1)).unwrap(), by_1);
    // Re-signing replaces the signature (there is one block, by the new key) ...
    assert_eq!(
        envelope(&by_2).signature.unwrap().key_id,
        public(PUB_2).key_id()
    );
    // ... and equals signing the unsigned file with the new key.
    assert_eq!(sign_model_file(&unsigned, &secret(KEY_2)).unwrap(), by_2);
}

#[test]
fn flipped_body_byte_is_bad_signature_and_never_decoded() {
    let k1 = [public(PUB_1)];
    let signed = sign_model_file(&doc_example_model(), &secret(KEY_1)).unwrap();
    let mut e = envelope(&signed);
    let last = e.body.len() - 1;
    e.body[last] ^= 0x01;
    let tampered = encode(&e);
    let err = Model::load_verified(&tampered, required(&k1)).unwrap_err();
    assert!(
        matches!(err, ModelError::BadSignature(ref id) if id == k1[0].key_id()),
        "{err}"
    );
    assert_eq!(err.reason(), "bad_signature");
    assert!(err.to_string().contains(k1[0].key_id()), "{err}");
    assert!(err.to_string().contains("does not verify"), "{err}");

    // A body that would not even decode: still bad_signature, because the signature is
    // checked first; without a signature requirement the decoder reports it as corrupt.
    let mut e = envelope(&signed);
    e.body = vec![0xff; 40];
    let garbage = encode(&e);
    let err = Model::load_verified(&garbage, required(&k1)).unwrap_err();
    assert_eq!(err.reason(), "bad_signature", "{err}");
    assert_eq!(load(&garbage).unwrap_err().reason(), "corrupt");

    // A flipped byte anywhere in the raw file is refused, one way or another.
    for i in 0..signed.len() {
        let mut f = signed.clone();
        f[i] ^= 0x20;
        assert!(Model::load_verified(&f, required(&k1)).is_err(), "byte {i}");
    }
}

#[test]
fn damaged_signature_blocks_are_bad_signature() {
    let k1 = [public(PUB_1)];
    let signed = sign_model_file(&doc_example_model(), &secret(KEY_1)).unwrap();
    type Edit = fn(&mut SignatureBlock);
    let edits: [(&str, Edit); 5] = [
        ("flipped bit", |s| s.signature[10] ^= 0x04),
        ("truncated", |s| s.signature.truncate(63)),
        ("empty", |s| s.signature.clear()),
        ("zeros", |s| s.signature = vec![0; 64]),
        ("other algorithm", |s| s.algorithm = "rsa-pss-sha256".into()),
    ];
    for (what, edit) in edits {
        let mut e = envelope(&signed);
        edit(e.signature.as_mut().unwrap());
        let err = Model::load_verified(&encode(&e), required(&k1)).unwrap_err();
        assert_eq!(err.reason(), "bad_signature", "{what}: {err}");
    }
}

#[test]
fn signature_by_untrusted_key_is_unknown_key() {
    let signed = sign_model_file(&doc_example_model(), &secret(KEY_2)).unwrap();
    let k1 = [public(PUB_1)];
    let err = Model::load_verified(&signed, required(&k1)).unwrap_err();
    let id2 = public(PUB_2).key_id().to_string();
    assert!(
        matches!(err, ModelError::UnknownKey(ref id) if *id == id2),
        "{err}"
    );
    assert_eq!(err.reason(), "unknown_key");
    let msg = err.to_string();
    assert!(
        msg.contains(&id2) && msg.contains("not among the trusted keys"),
        "{msg}"
    );
    // No trusted keys at all: nothing is trusted.
    let err = Model::load_verified(&signed, required(&[])).unwrap_err();
    assert_eq!(err.reason(), "unknown_key");

    // A key id claiming to be a trusted key, signed by another key: bad signature.
    let mut e = envelope(&signed);
    e.signature.as_mut().unwrap().key_id = k1[0].key_id().into();
    let err = Model::load_verified(&encode(&e), required(&k1)).unwrap_err();
    assert!(
        matches!(err, ModelError::BadSignature(ref id) if id == k1[0].key_id()),
        "{err}"
    );

    // A hostile key id cannot inject lines into a log.
    let mut e = envelope(&signed);
    e.signature.as_mut().unwrap().key_id = format!("x\nFAKE LOG LINE {}", "y".repeat(10_000));
    let err = Model::load_verified(&encode(&e), required(&k1)).unwrap_err();
    assert_eq!(err.reason(), "unknown_key");
    assert!(
        !err.to_string().contains('\n') && err.to_string().len() < 400,
        "{err}"
    );
}

#[test]
fn unsigned_under_required_is_unsigned() {
    let unsigned = doc_example_model();
    let err = Model::load_verified(&unsigned, required(&[public(PUB_1)])).unwrap_err();
    assert!(matches!(err, ModelError::Unsigned), "{err}");
    assert_eq!(err.reason(), "unsigned");
    assert!(err.to_string().contains("not signed"), "{err}");
    // Not required: loads.
    assert!(Model::load_verified(&unsigned, SignaturePolicy::NotRequired).is_ok());
}

#[test]
fn not_required_does_not_verify_a_present_signature() {
    let signed = sign_model_file(&doc_example_model(), &secret(KEY_1)).unwrap();
    let mut e = envelope(&signed);
    e.signature.as_mut().unwrap().signature[0] ^= 0xff;
    let bad = encode(&e);
    assert!(Model::load_verified(&bad, SignaturePolicy::NotRequired).is_ok());
    assert!(load(&bad).is_ok());
    assert!(Model::load_verified(&bad, required(&[public(PUB_1)])).is_err());
}

#[test]
fn wrong_schema_hash_is_schema_mismatch_even_if_signed() {
    let mut e = envelope(&doc_example_model());
    e.schema_hash[0] ^= 0xff;
    // The signer does not look at the schema: the signature over the altered file is valid.
    let signed = sign_model_file(&encode(&e), &secret(KEY_1)).unwrap();
    let err = Model::load_verified(&signed, required(&[public(PUB_1)])).unwrap_err();
    assert!(matches!(err, ModelError::SchemaMismatch { .. }), "{err}");
    assert_eq!(err.reason(), "schema_mismatch");
    // Before the signature check: an unsigned one is schema_mismatch too, not unsigned.
    let err = Model::load_verified(&encode(&e), required(&[public(PUB_1)])).unwrap_err();
    assert_eq!(err.reason(), "schema_mismatch");
}

#[test]
fn header_refusals_come_before_the_signature_check() {
    let keys = [public(PUB_1)];
    let signed = sign_model_file(&doc_example_model(), &secret(KEY_1)).unwrap();
    let mut e = envelope(&signed);
    e.format_version += 1;
    assert_eq!(
        Model::load_verified(&encode(&e), required(&keys))
            .unwrap_err()
            .reason(),
        "version"
    );
    assert_eq!(
        Model::load_verified(b"not a model", required(&keys))
            .unwrap_err()
            .reason(),
        "bad_magic"
    );
    let huge = vec![0u8; obguard_models::model::MAX_MODEL_BYTES + 1];
    assert_eq!(
        Model::load_verified(&huge, required(&keys))
            .unwrap_err()
            .reason(),
        "too_large"
    );
    let mut trailing = signed.clone();
    trailing.push(0);
    assert_eq!(
        Model::load_verified(&trailing, required(&keys))
            .unwrap_err()
            .reason(),
        "corrupt"
    );
    // The signer refuses what is not a model file.
    assert_eq!(
        sign_model_file(b"nope", &secret(KEY_1))
            .unwrap_err()
            .reason(),
        "bad_magic"
    );
}

#[test]
fn rotation_two_trusted_keys_both_accepted() {
    let unsigned = doc_example_model();
    let both = [public(PUB_1), public(PUB_2)];
    for key in [KEY_1, KEY_2] {
        let signed = sign_model_file(&unsigned, &secret(key)).unwrap();
        let m = Model::load_verified(&signed, required(&both)).unwrap();
        assert_eq!(m.digest(), file_digest(&unsigned).unwrap());
    }
    // Old key removed after re-signing with the new one: old files are refused, new accepted.
    let new_only = [public(PUB_2)];
    let old = sign_model_file(&unsigned, &secret(KEY_1)).unwrap();
    let resigned = sign_model_file(&old, &secret(KEY_2)).unwrap();
    assert_eq!(
        Model::load_verified(&old, required(&new_only))
            .unwrap_err()
            .reason(),
        "unknown_key"
    );
    assert!(Model::load_verified(&resigned, required(&new_only)).is_ok());
}

#[test]
fn every_error_has_a_metric_safe_reason() {
    let postcard_err = postcard::Error::SerializeBufferFull;
    let all = [
        (ModelError::TooLarge(2, 1), "too_large"),
        (ModelError::BadMagic, "bad_magic"),
        (
            ModelError::Version {
                found: 2,
                expected: 1,
            },
            "version",
        ),
        (ModelError::Corrupt("x".into()), "corrupt"),
        (
            ModelError::SchemaMismatch {
                found: "a".into(),
                expected: "b".into(),
            },
            "schema_mismatch",
        ),
        (ModelError::Invalid("x".into()), "invalid"),
        (ModelError::Unsigned, "unsigned"),
        (ModelError::UnknownKey("k".into()), "unknown_key"),
        (ModelError::BadSignature("k".into()), "bad_signature"),
        (ModelError::BadKey("k".into()), "bad_key"),
        (ModelError::Encode(postcard_err), "encode"),
    ];
    for (err, reason) in &all {
        assert_eq!(err.reason(), *reason, "{err}");
        assert!(reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    }
}

#[test]
fn keys_parse_and_refuse_with_bad_key() {
    let k = public(PUB_1);
    assert_eq!(k.to_base64(), PUB_1.trim());
    assert_eq!(public(PUB_1.trim().trim_end_matches('=')), k);
    assert_eq!(PublicKey::from_bytes(&k.to_bytes()).unwrap(), k);
    assert_eq!(PublicKey::from_secret_key(&secret(KEY_1)), k);
    // Empty, too short, PEM, URL-safe alphabet, 33 bytes.
    for bad in [
        "",
        "abc",
        "-----BEGIN PUBLIC KEY-----",
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURoA",
    ] {
        let e = PublicKey::from_base64(bad).unwrap_err();
        assert_eq!(e.reason(), "bad_key", "{bad:?}: {e}");
    }
    let err = secret_key_from_pem(PUB_1).unwrap_err();
    assert_eq!(err.reason(), "bad_key");
    assert!(err.to_string().contains("PKCS#8"), "{err}");
    // OpenSSL-made PKCS#8 Ed25519 keys are read as well (testkit's JWT key, `openssl genpkey`).
    let openssl = secret_key_from_pem(include_str!("../../testkit/keys/ed25519.pem")).unwrap();
    let signed = sign_model_file(&doc_example_model(), &openssl).unwrap();
    let pk = PublicKey::from_secret_key(&openssl);
    assert!(Model::load_verified(&signed, required(&[pk])).is_ok());
}

#[test]
fn shipped_model_is_signed_by_the_demo_key() {
    let demo = public(DEMO_PUB);
    let m = Model::load_verified(SHIPPED, required(std::slice::from_ref(&demo)))
        .unwrap_or_else(|e| panic!("{e} (run `make model`, which signs with the demo key)"));
    assert_eq!(m.signature().unwrap().key_id, demo.key_id());
    // And only by it.
    let err = Model::load_verified(SHIPPED, required(&[public(PUB_1), public(PUB_2)])).unwrap_err();
    assert_eq!(err.reason(), "unknown_key");
}
