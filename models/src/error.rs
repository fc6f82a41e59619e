//! Error types. Every failure the filter can meet (corrupt baseline bytes, a bad model file)
//! is a value with a message saying why, never a panic.

use alloc::string::String;

/// A [`crate::ClientBaseline`] could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("baseline encode failed: {0}")]
    Encode(postcard::Error),
    #[error("baseline bytes are corrupt: {0}")]
    Decode(postcard::Error),
    #[error("baseline bytes are corrupt: {0}")]
    Corrupt(&'static str),
    #[error("baseline is {0} bytes, more than the 256 byte limit")]
    TooLarge(usize),
    #[error("baseline has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("baseline version {found}, this build reads version {expected}")]
    Version { found: u8, expected: u8 },
}

/// A model file could not be loaded (or written).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("not an obguard model file (bad magic bytes)")]
    BadMagic,
    #[error("model file is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "model file format version {found} is not supported (this build reads version {expected})"
    )]
    Version { found: u16, expected: u16 },
    #[error(
        "model was trained on feature schema {found} but this build extracts schema {expected}: \
         retrain the model with this version of obguard-models"
    )]
    SchemaMismatch { found: String, expected: String },
    #[error("model file is {0} bytes, more than the {1} byte limit")]
    TooLarge(usize, usize),
    #[error("model is invalid: {0}")]
    Invalid(String),
    #[error("model encode failed: {0}")]
    Encode(postcard::Error),
    #[error(
        "model file is not signed, but a signature by a trusted key is required: sign it with \
         `obguard-models sign` (refusing to load it)"
    )]
    Unsigned,
    #[error(
        "model file is signed by key {0}, which is not among the trusted keys: trust that key's \
         public key or sign the file with a trusted key (refusing to load it)"
    )]
    UnknownKey(String),
    #[error(
        "model file signature by trusted key {0} does not verify: the file was changed after it \
         was signed, or the signature was not made by that key (refusing to load it)"
    )]
    BadSignature(String),
    #[error("model signing key is unusable: {0}")]
    BadKey(String),
}

impl ModelError {
    /// A short, stable, metric-safe (snake_case) name for the kind of refusal, one per
    /// variant, for metric names and structured logs.
    /// The [`core::fmt::Display`] message carries the details.
    pub fn reason(&self) -> &'static str {
        match self {
            ModelError::TooLarge(..) => "too_large",
            ModelError::BadMagic => "bad_magic",
            ModelError::Version { .. } => "version",
            ModelError::Corrupt(_) => "corrupt",
            ModelError::SchemaMismatch { .. } => "schema_mismatch",
            ModelError::Invalid(_) => "invalid",
            ModelError::Unsigned => "unsigned",
            ModelError::UnknownKey(_) => "unknown_key",
            ModelError::BadSignature(_) => "bad_signature",
            ModelError::BadKey(_) => "bad_key",
            ModelError::Encode(_) => "encode",
        }
    }
}
