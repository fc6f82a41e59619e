//! The feature schema: which numbers the model sees, what they mean and in which units.
//!
//! The schema is part of the contract between a model file and the code that extracts
//! features: a model trained on one schema is meaningless on another. Its canonical text (every
//! feature's name, meaning and unit, plus the window constants the extractor uses) is hashed
//! with SHA-256; the hash is stored in every model file and checked when the file is loaded.
//! Any change to a feature's definition must change this description (and bump
//! [`SCHEMA_VERSION`]), so an old model is refused instead of silently mis-scoring.

use alloc::string::String;
use core::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::features::window;

/// Bumped whenever a feature is added, removed, reordered or redefined.
pub const SCHEMA_VERSION: u16 = 2;

/// Number of features in a [`crate::FeatureVector`].
pub const FEATURE_COUNT: usize = 14;

/// One feature's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureDef {
    pub name: &'static str,
    pub meaning: &'static str,
    pub unit: &'static str,
}

const fn def(name: &'static str, meaning: &'static str, unit: &'static str) -> FeatureDef {
    FeatureDef {
        name,
        meaning,
        unit,
    }
}

/// The features, in vector order. Every one compares the request with the client's own
/// history (see [`crate::features`]); relative features are multiplied by the client's
/// warm-up (0..1), so a new client has none.
pub const FEATURES: [FeatureDef; FEATURE_COUNT] = [
    def(
        "hour_surprise",
        "-log2 P(hour of day | client), client's decayed hour histogram with neighbouring hours at half weight (DST-tolerant), smoothed with the population's; 0 before the client has two days of history",
        "bits",
    ),
    def(
        "burst_ratio",
        "request rate over ~1 minute (this request included) over the client's usual rate at its requests",
        "ratio",
    ),
    def(
        "pace_ratio",
        "request rate over ~1 hour over the client's usual hourly rate at its requests",
        "ratio",
    ),
    def(
        "new_prefix",
        "novelty of the caller's IPv4 /24 or IPv6 /48 for this client (1 never seen, 0 familiar), times (1 - the client's network churn), halved inside an ASN the client already uses",
        "0..1",
    ),
    def(
        "new_country",
        "novelty of the caller's country (edge header) for this client, times (1 - the client's country churn)",
        "0..1",
    ),
    def(
        "new_asn",
        "novelty of the caller's ASN (edge header) for this client, times (1 - the client's ASN churn)",
        "0..1",
    ),
    def(
        "route_surprise",
        "-log2 P(route | client), client's decayed route sketch smoothed with the population's",
        "bits",
    ),
    def(
        "ids_ratio",
        "distinct resource ids (path parameters) in the current 10 minute window over the client's usual per window (+1)",
        "ratio",
    ),
    def(
        "error_ratio",
        "share of the client's responses that were 401/403/404, exponentially weighted over ~10 min, smoothed with 8 responses at the client's usual ratio (the population's while new; acts during warm-up)",
        "0..1",
    ),
    def(
        "error_excess",
        "error_ratio above the client's usual error ratio",
        "0..1",
    ),
    def(
        "bytes_ratio",
        "response bytes per minute (~10 min) over the client's usual",
        "ratio",
    ),
    def(
        "new_agent",
        "novelty of the full user-agent string for this client, times (1 - the client's user-agent churn)",
        "0..1",
    ),
    def(
        "new_product",
        "novelty of the user-agent product token (okhttp of okhttp/4.12.0) for this client: a tool or browser the client never used",
        "0..1",
    ),
    def(
        "unfamiliar_run",
        "consecutive requests with hour_surprise >= 6 bits or new_prefix/new_country/new_asn/new product > 0.5",
        "count, 0..64",
    ),
];

/// The schema as a value: version, features and hash.
#[derive(Debug, Clone, Copy)]
pub struct FeatureSchema {
    pub version: u16,
    pub features: &'static [FeatureDef; FEATURE_COUNT],
}

/// The schema this build extracts.
pub const SCHEMA: FeatureSchema = FeatureSchema {
    version: SCHEMA_VERSION,
    features: &FEATURES,
};

impl FeatureSchema {
    /// The canonical description the hash is computed over: one line per feature and one per
    /// window constant, so changing a window length also invalidates old models.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "obguard-feature-schema v{}", self.version);
        for (i, f) in self.features.iter().enumerate() {
            let _ = writeln!(out, "{i}\t{}\t{}\t{}", f.name, f.unit, f.meaning);
        }
        for (name, value) in window::CONSTANTS {
            let _ = writeln!(out, "const\t{name}\t{value}");
        }
        out
    }

    /// SHA-256 of [`Self::canonical`].
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical().as_bytes()).into()
    }

    /// The hash as lowercase hex, for logs and `inspect`.
    pub fn hash_hex(&self) -> String {
        hex(&self.hash())
    }

    /// Position of a feature by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.features.iter().position(|f| f.name == name)
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_hash_is_stable_within_a_build() {
        for (i, a) in FEATURES.iter().enumerate() {
            for b in FEATURES.iter().skip(i + 1) {
                assert_ne!(a.name, b.name);
            }
        }
        assert_eq!(SCHEMA.hash(), SCHEMA.hash());
        assert_eq!(SCHEMA.hash_hex().len(), 64);
        assert_eq!(SCHEMA.index_of("new_product"), Some(12));
    }
}
