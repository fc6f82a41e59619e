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
pub const SCHEMA_VERSION: u16 = 1;

/// Number of features in a [`crate::FeatureVector`].
pub const FEATURE_COUNT: usize = 19;

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

/// The features, in vector order.
pub const FEATURES: [FeatureDef; FEATURE_COUNT] = [
    def(
        "hour_surprise",
        "-log2 P(hour of day | client), client's decayed hour histogram smoothed with the population's",
        "bits",
    ),
    def(
        "rate_short",
        "client's request rate, exponentially weighted over ~1 minute, this request included",
        "requests/min",
    ),
    def(
        "rate_long",
        "client's request rate, exponentially weighted over ~1 hour, this request included",
        "requests/min",
    ),
    def(
        "burst_ratio",
        "rate_short over the client's usual rate_short (request-weighted average; blended with the population's while the client is new)",
        "ratio",
    ),
    def(
        "new_prefix",
        "novelty of the caller's IPv4 /24 or IPv6 /48 for this client: 1 never seen, 0 familiar",
        "0..1",
    ),
    def(
        "new_country",
        "novelty of the caller's country (edge header) for this client: 1 never seen, 0 familiar",
        "0..1",
    ),
    def(
        "new_asn",
        "novelty of the caller's ASN (edge header) for this client: 1 never seen, 0 familiar",
        "0..1",
    ),
    def(
        "route_surprise",
        "-log2 P(route | client), client's decayed route sketch smoothed with the population's",
        "bits",
    ),
    def(
        "distinct_ids",
        "distinct resource ids (path parameters) touched in the current 10 minute window",
        "count",
    ),
    def(
        "distinct_ids_ratio",
        "distinct_ids over the client's typical per-window count (+1)",
        "ratio",
    ),
    def(
        "error_ratio",
        "share of the client's responses that were 401/403/404, exponentially weighted over ~10 min",
        "0..1",
    ),
    def(
        "bytes_rate",
        "response bytes the client received, exponentially weighted over ~10 minutes",
        "KiB/min",
    ),
    def(
        "bytes_ratio",
        "bytes_rate over the client's usual bytes_rate (request-weighted average; blended with the population's while the client is new)",
        "ratio",
    ),
    def(
        "ua_changed",
        "1 if the user agent differs from the client's previous request, else 0",
        "0/1",
    ),
    def(
        "ua_bot",
        "1 if the user agent is missing, very short, or a scripting/headless/scraper client",
        "0/1",
    ),
    def(
        "timing_regularity",
        "mean absolute deviation over mean of inter-arrival times (low = machine-regular)",
        "ratio, 0..4",
    ),
    def(
        "customer_present",
        "1 if the request carried x-fapi-customer-ip-address (a customer is present)",
        "0/1",
    ),
    def(
        "history",
        "log2(1 + requests seen from this client): how mature the baseline is",
        "bits",
    ),
    def(
        "unfamiliar_run",
        "consecutive requests with hour_surprise >= 6 bits or new_prefix/new_country/new_asn > 0.5",
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
        assert_eq!(SCHEMA.index_of("history"), Some(17));
    }
}
