//! Signed model files: the model digest, Ed25519 signatures and trusted public keys.
//!
//! This is a public, stable format; `docs/models-lifecycle.md` ("Signing model files") says
//! the same for people who do not read Rust.
//!
//! # Definitions
//!
//! * **Model digest**: SHA-256 over
//!   `MAGIC (8 bytes, "OBGMODEL") || format_version (u16, little-endian) || schema_hash (32 bytes) || body`,
//!   where the fields are those of the file's [`Envelope`] and `body` is the exact body bytes
//!   stored in the file (the postcard-encoded [`super::ModelBody`]). Everything except the
//!   signature block is covered, so signing (or re-signing) a file does not change its digest.
//!   [`Model::digest`] / [`Model::digest_hex`] report it; [`file_digest`] computes it from file
//!   bytes without decoding the body.
//! * **Signature**: Ed25519 (RFC 8032, pure, no pre-hash) over the 49-byte message
//!   `"obguard-model-v1:" || digest`: the 17 ASCII bytes of [`SIGNING_CONTEXT`] followed by
//!   the 32 raw digest bytes,
//!   stored in the envelope's [`super::SignatureBlock`] with `algorithm = "ed25519"`
//!   ([`SIGNATURE_ALGORITHM`]) and the 64 signature bytes.
//! * **Key id**: lowercase hex of the first 8 bytes of SHA-256 of the 32-byte raw Ed25519
//!   public key (16 characters). It only selects which trusted key to verify with; it is
//!   not trusted itself.
//! * **Public key text**: standard base64 (RFC 4648 §4, with or without `=` padding) of the 32
//!   raw public key bytes, as written in the `.pub` file by `obguard-models keygen`.
//!
//! # Loading
//!
//! [`Model::load_verified`] checks, in order: size, magic, version, envelope, schema hash,
//! signature (per [`SignaturePolicy`]), then decodes the body and validates it. Under
//! [`SignaturePolicy::Required`] an unsigned file, a file signed by a key that is not trusted,
//! or a signature that does not verify is refused before the body is decoded, so the body
//! decoder never sees bytes from an untrusted source. Under [`SignaturePolicy::NotRequired`]
//! (and in [`Model::load`]) a signature that is present is **not verified**: it is carried
//! along ([`Model::signature`]) and nothing more.
//!
//! ```
//! use obguard_models::{Model, ModelError, PublicKey, SignaturePolicy};
//! # let file = obguard_models::model::doc_example_model();
//! let trusted = [PublicKey::from_base64("X5UJxIUAcKUTi4PkeCleodoQZwe8cQ3xldCJfsVq71E=")?];
//! match Model::load_verified(&file, SignaturePolicy::Required(&trusted)) {
//!     Ok(model) => println!("model {} loaded", model.digest_hex()),
//!     // `reason()` is a short metric-safe name, the message says why in full.
//!     Err(e) => assert_eq!(e.reason(), "unsigned"),
//! }
//! # Ok::<(), ModelError>(())
//! ```

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use sha2::{Digest as _, Sha256};

use super::{Envelope, Model, read_envelope};
use crate::error::ModelError;
use crate::schema::hex;

#[cfg(feature = "sign")]
pub use ed25519_compact::SecretKey;

/// The only signature algorithm model files use ([`super::SignatureBlock::algorithm`]).
pub const SIGNATURE_ALGORITHM: &str = "ed25519";

/// Prepended to the digest to form the signed message, so a model signature can never be
/// mistaken for a signature over anything else made with the same key.
pub const SIGNING_CONTEXT: &[u8; 17] = b"obguard-model-v1:";

/// Characters of a key id (hex of 8 bytes).
const KEY_ID_HEX_LEN: usize = 16;

/// A trusted Ed25519 public key for model files, with its key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key_id: String,
    key: ed25519_compact::PublicKey,
}

impl PublicKey {
    /// Standard base64 (with or without padding) of the 32 raw bytes; surrounding whitespace
    /// ignored. This is the content of a `.pub` file written by `obguard-models keygen`.
    pub fn from_base64(text: &str) -> Result<Self, ModelError> {
        let raw = STANDARD_PAD_INDIFFERENT.decode(text.trim()).map_err(|e| {
            ModelError::BadKey(format!(
                "public key is not standard base64 ({e}); expected the base64 of the 32 raw \
                     bytes of an Ed25519 public key, as in the .pub file `obguard-models keygen` \
                     writes"
            ))
        })?;
        Self::from_bytes(&raw)
    }

    /// The 32 raw bytes of an Ed25519 public key. Refuses keys that are not a canonical
    /// encoding of a curve point, or that have a small order (they could never verify).
    pub fn from_bytes(raw: &[u8]) -> Result<Self, ModelError> {
        if raw.len() != ed25519_compact::PublicKey::BYTES {
            return Err(ModelError::BadKey(format!(
                "an Ed25519 public key is {} bytes, got {}",
                ed25519_compact::PublicKey::BYTES,
                raw.len()
            )));
        }
        let key = ed25519_compact::PublicKey::from_slice(raw)
            .map_err(|e| ModelError::BadKey(format!("not an Ed25519 public key ({e})")))?;
        key.validate().map_err(|e| {
            ModelError::BadKey(format!(
                "not a usable Ed25519 public key ({e}): the bytes are not a valid curve point \
                 or a weak (small-order) one"
            ))
        })?;
        Ok(Self {
            key_id: key_id(&key),
            key,
        })
    }

    /// The public key of a secret key.
    #[cfg(feature = "sign")]
    pub fn from_secret_key(secret: &SecretKey) -> Self {
        let key = secret.public_key();
        Self {
            key_id: key_id(&key),
            key,
        }
    }

    /// Lowercase hex of the first 8 bytes of SHA-256 of the raw key (16 characters).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Standard base64, with padding, of the 32 raw bytes (the `.pub` file's line).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(*self.key)
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        *self.key
    }
}

fn key_id(key: &ed25519_compact::PublicKey) -> String {
    let hash = Sha256::digest(key.as_slice());
    hex(hash.get(..KEY_ID_HEX_LEN / 2).unwrap_or_default())
}

/// Whether [`Model::load_verified`] insists on a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignaturePolicy<'a> {
    /// The file must carry a valid signature by one of these keys (several during a key
    /// rotation). With no keys at all every file is refused.
    Required(&'a [PublicKey]),
    /// Signatures are not checked: a present signature is carried along but **not verified**.
    NotRequired,
}

/// The model digest of an envelope (see the module documentation).
pub(super) fn envelope_digest(envelope: &Envelope) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(envelope.magic);
    h.update(envelope.format_version.to_le_bytes());
    h.update(envelope.schema_hash);
    h.update(&envelope.body);
    h.finalize().into()
}

/// The model digest of a model file, from its envelope alone: checks size, magic, version
/// and envelope structure, but neither the schema hash nor the body nor any signature.
pub fn file_digest(bytes: &[u8]) -> Result<[u8; 32], ModelError> {
    read_envelope(bytes).map(|e| envelope_digest(&e))
}

/// The message an Ed25519 model signature is made over.
fn signed_message(digest: &[u8; 32]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + digest.len());
    message.extend_from_slice(SIGNING_CONTEXT);
    message.extend_from_slice(digest);
    message
}

/// A key id read from a file, fit for a log line: ids that are not 16 hex characters
/// (a damaged or hostile file) are shown quoted, escaped and shortened.
fn printable_key_id(id: &str) -> String {
    if id.len() == KEY_ID_HEX_LEN && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        String::from(id)
    } else {
        let shown: String = id.chars().take(KEY_ID_HEX_LEN * 2).collect();
        let more = if shown.len() < id.len() { "…" } else { "" };
        format!("{shown:?}{more}")
    }
}

/// Checks the envelope's signature against `policy` (the body has not been decoded yet).
pub(super) fn check_signature(
    envelope: &Envelope,
    digest: &[u8; 32],
    policy: SignaturePolicy<'_>,
) -> Result<(), ModelError> {
    let SignaturePolicy::Required(trusted) = policy else {
        return Ok(());
    };
    let Some(block) = &envelope.signature else {
        return Err(ModelError::Unsigned);
    };
    let Some(key) = trusted.iter().find(|k| k.key_id == block.key_id) else {
        return Err(ModelError::UnknownKey(printable_key_id(&block.key_id)));
    };
    let bad = || ModelError::BadSignature(key.key_id.clone());
    if block.algorithm != SIGNATURE_ALGORITHM {
        return Err(bad());
    }
    let signature = ed25519_compact::Signature::from_slice(&block.signature).map_err(|_| bad())?;
    key.key
        .verify(signed_message(digest), &signature)
        .map_err(|_| bad())
}

impl Model {
    /// Like [`Model::load`], but checks the signature (per `policy`) **before** decoding the
    /// body, so an unsigned or wrongly signed file is never decoded. Order: size, magic,
    /// version, envelope, schema hash, signature, body, validate.
    ///
    /// Under [`SignaturePolicy::NotRequired`] a signature that is present is **not verified**
    /// (this is what [`Model::load`] does).
    pub fn load_verified(bytes: &[u8], policy: SignaturePolicy<'_>) -> Result<Model, ModelError> {
        Model::load_with(bytes, policy)
    }

    /// The model digest: SHA-256 over magic, format version (u16 LE), schema hash and body
    /// bytes (see the module documentation). Signing does not change it.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// [`Model::digest`] as lowercase hex (64 characters).
    pub fn digest_hex(&self) -> String {
        hex(&self.digest)
    }
}

/// Signs a model file with `secret`: returns the same file with its signature block set
/// (an existing signature is replaced). The body is neither decoded nor changed, so the
/// digest stays the same; the file is checked for size, magic, version and envelope
/// structure only (load it afterwards to check the rest).
///
/// Ed25519 signatures are deterministic: signing the same file with the same key always
/// gives the same bytes.
#[cfg(feature = "sign")]
pub fn sign_model_file(bytes: &[u8], secret: &SecretKey) -> Result<Vec<u8>, ModelError> {
    let mut envelope = read_envelope(bytes)?;
    let digest = envelope_digest(&envelope);
    let public = PublicKey::from_secret_key(secret);
    let signature = secret.sign(signed_message(&digest), None);
    envelope.signature = Some(super::SignatureBlock {
        key_id: public.key_id,
        algorithm: String::from(SIGNATURE_ALGORITHM),
        signature: signature.to_vec(),
    });
    let signed = postcard::to_allocvec(&envelope).map_err(ModelError::Encode)?;
    if signed.len() > super::MAX_MODEL_BYTES {
        return Err(ModelError::TooLarge(signed.len(), super::MAX_MODEL_BYTES));
    }
    Ok(signed)
}

/// Reads a secret key file: PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as written by
/// `obguard-models keygen` or `openssl genpkey -algorithm ed25519`.
#[cfg(feature = "sign")]
pub fn secret_key_from_pem(pem: &str) -> Result<SecretKey, ModelError> {
    SecretKey::from_pem(pem).map_err(|e| {
        ModelError::BadKey(format!(
            "not a PKCS#8 PEM Ed25519 private key ({e}); expected a `-----BEGIN PRIVATE KEY-----` \
             file as written by `obguard-models keygen` or `openssl genpkey -algorithm ed25519`"
        ))
    })
}

/// A new random signing key (from the operating system's random number generator).
#[cfg(feature = "train")]
pub fn generate_secret_key() -> SecretKey {
    ed25519_compact::KeyPair::generate().sk
}

/// A secret key as PKCS#8 PEM (what [`secret_key_from_pem`] reads, OpenSSL-compatible).
#[cfg(feature = "train")]
pub fn secret_key_to_pem(secret: &SecretKey) -> String {
    secret.to_pem()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_is_16_hex_of_sha256_prefix() {
        // RFC 8032 test 1 public key.
        let raw: [u8; 32] = [
            0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64,
            0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68,
            0xf7, 0x07, 0x51, 0x1a,
        ];
        let key = PublicKey::from_bytes(&raw).unwrap();
        let full = hex(&Sha256::digest(raw));
        assert_eq!(key.key_id(), &full[..16]);
        assert_eq!(key.key_id().len(), 16);
        assert_eq!(key.to_bytes(), raw);
        let b64 = key.to_base64();
        assert_eq!(b64, "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
        assert_eq!(PublicKey::from_base64(&b64).unwrap(), key);
        assert_eq!(
            PublicKey::from_base64(&format!("  {}\n", b64.trim_end_matches('='))).unwrap(),
            key
        );
    }

    #[test]
    fn bad_public_keys_are_refused_with_reason() {
        for text in [
            "",
            "not base64!",
            "AAAA",
            "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
        ] {
            let err = PublicKey::from_base64(text).unwrap_err();
            assert_eq!(err.reason(), "bad_key", "{text}: {err}");
        }
        // The identity point has small order: it would verify forgeries, so it is refused.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let err = PublicKey::from_bytes(&identity).unwrap_err();
        assert!(err.to_string().contains("weak"), "{err}");
        assert!(PublicKey::from_bytes(&[0u8; 31]).is_err());
    }

    #[test]
    fn hostile_key_ids_are_printed_escaped_and_short() {
        assert_eq!(printable_key_id("0123456789abcdef"), "0123456789abcdef");
        let shown = printable_key_id(&format!("evil\nline{}", "x".repeat(1000)));
        assert!(!shown.contains('\n'));
        assert!(shown.len() < 60, "{shown}");
    }
}
