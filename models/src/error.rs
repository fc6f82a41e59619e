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
}
