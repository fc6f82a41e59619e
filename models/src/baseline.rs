//! Per-client behavioural state ([`ClientBaseline`]) and the prior new clients start from
//! ([`PopulationBaseline`]).
//!
//! A baseline is what the filter keeps per client in proxy-wasm shared data, so it is small
//! (postcard-encoded, at most [`MAX_ENCODED_LEN`] bytes), fixed-shape (no growth however
//! many prefixes or ids a client shows), and decays: counters halve when one saturates and
//! rates are exponentially weighted, so the baseline follows a client whose behaviour drifts.
//! Its fields are private: only [`crate::extract`] and [`crate::observe_response`] change it,
//! which is what keeps the filter and the trainer in step.

use serde::{Deserialize, Serialize};

use crate::error::BaselineError;

/// Wire version of [`ClientBaseline`]; bytes of another version decode to an error and the
/// filter starts the client afresh.
pub const BASELINE_VERSION: u8 = 2;

/// Upper bound of [`ClientBaseline::encode`]'s output (checked by a test with every
/// field at its widest).
pub const MAX_ENCODED_LEN: usize = 256;

pub(crate) const HOURS: usize = 24;
pub(crate) const ROUTE_BUCKETS: usize = 16;
pub(crate) const ID_BITS: usize = 128;

/// One remembered network / country / ASN: its hash and a saturating, halving hit count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Slot {
    pub(crate) hash: u32,
    pub(crate) hits: u8,
}

/// Compact behavioural state of one client. Start a new client with
/// [`ClientBaseline::new`]; new clients borrow their "typical" values from the
/// [`PopulationBaseline`] until they have their own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientBaseline {
    pub(crate) version: u8,
    /// First request, Unix ms (0: never seen).
    pub(crate) first_ms: u64,
    /// Time every exponentially weighted value was last decayed to.
    pub(crate) clock_ms: u64,
    /// Last request (not response).
    pub(crate) last_req_ms: u64,
    /// Requests seen (saturating).
    pub(crate) requests: u32,
    /// Hour-of-day histogram in the configured UTC offset; halves when a bucket saturates.
    pub(crate) hours: [u8; HOURS],
    /// Route-mix sketch: hashed route buckets; halves when a bucket saturates.
    pub(crate) routes: [u8; ROUTE_BUCKETS],
    /// Request rates, events per second, exponentially weighted (~1 min, ~1 h).
    pub(crate) rate_short: f32,
    pub(crate) rate_long: f32,
    /// Request-weighted averages of `rate_short` / `rate_long` at request time: this
    /// client's usual pace.
    pub(crate) typical_short: f32,
    pub(crate) typical_long: f32,
    pub(crate) prefixes: [Slot; 4],
    pub(crate) countries: [Slot; 3],
    pub(crate) asns: [Slot; 3],
    /// Full user-agent strings and their product tokens (`okhttp` of `okhttp/4.12.0`).
    pub(crate) agents: [Slot; 2],
    pub(crate) products: [Slot; 2],
    /// How often this client shows something new, per attribute (prefix, country, ASN,
    /// user agent): a slow average of its novelty, 0..=255 for 0..1. A client that always
    /// egresses from fresh addresses is not surprised by one more.
    pub(crate) churn: [u8; 4],
    /// Distinct resource ids: linear-counting bitmap of the current 10 minute window.
    pub(crate) id_window: u32,
    pub(crate) id_bits: [u8; ID_BITS / 8],
    /// Window-weighted average distinct ids per completed active window.
    pub(crate) typical_ids: f32,
    /// The most distinct ids of a completed window, decaying over about a week: a nightly
    /// batch over every account is this client's usual too.
    pub(crate) peak_ids: f32,
    /// Completed active windows (saturating), to know whether `typical_ids` is the client's.
    pub(crate) id_windows: u8,
    /// Responses and 401/403/404 responses, exponentially weighted (~10 min).
    pub(crate) responses: f32,
    pub(crate) errors: f32,
    /// Request-weighted average of the error ratio at request time.
    pub(crate) typical_errors: f32,
    /// Response bytes per second, exponentially weighted (~10 min).
    pub(crate) bytes_rate: f32,
    /// Request-weighted average of `bytes_rate` at request time.
    pub(crate) typical_bytes: f32,
    /// Consecutive unfamiliar requests (see the `unfamiliar_run` feature).
    pub(crate) run: u8,
    /// The client's usual model score (slow average over its allowed requests): the
    /// per-client calibration level ([`crate::Model::score_for_client`]).
    pub(crate) score_level: f32,
}

const EMPTY_SLOT: Slot = Slot { hash: 0, hits: 0 };

impl Default for ClientBaseline {
    /// Same as [`ClientBaseline::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl ClientBaseline {
    /// A client never seen before.
    pub const fn new() -> Self {
        Self {
            version: BASELINE_VERSION,
            first_ms: 0,
            clock_ms: 0,
            last_req_ms: 0,
            requests: 0,
            hours: [0; HOURS],
            routes: [0; ROUTE_BUCKETS],
            rate_short: 0.0,
            rate_long: 0.0,
            typical_short: 0.0,
            typical_long: 0.0,
            prefixes: [EMPTY_SLOT; 4],
            countries: [EMPTY_SLOT; 3],
            asns: [EMPTY_SLOT; 3],
            agents: [EMPTY_SLOT; 2],
            products: [EMPTY_SLOT; 2],
            churn: [0; 4],
            id_window: 0,
            id_bits: [0; ID_BITS / 8],
            typical_ids: 0.0,
            peak_ids: 0.0,
            id_windows: 0,
            responses: 0.0,
            errors: 0.0,
            typical_errors: 0.0,
            bytes_rate: 0.0,
            typical_bytes: 0.0,
            run: 0,
            score_level: 0.0,
        }
    }

    /// Requests this baseline has seen.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// Unix ms of the last request or response observed (0 if none): for TTL eviction.
    pub fn last_seen_ms(&self) -> u64 {
        self.clock_ms
    }

    /// Postcard encoding, for shared data.
    pub fn encode(&self) -> Result<alloc::vec::Vec<u8>, BaselineError> {
        postcard::to_allocvec(self).map_err(BaselineError::Encode)
    }

    /// Decode bytes written by [`Self::encode`]. Corrupt, truncated, oversized or
    /// other-version bytes are an error (the caller starts the client afresh), never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, BaselineError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(BaselineError::TooLarge(bytes.len()));
        }
        let (baseline, rest): (Self, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(BaselineError::Decode)?;
        if !rest.is_empty() {
            return Err(BaselineError::TrailingBytes(rest.len()));
        }
        if baseline.version != BASELINE_VERSION {
            return Err(BaselineError::Version {
                found: baseline.version,
                expected: BASELINE_VERSION,
            });
        }
        if !baseline.floats_are_sane() {
            return Err(BaselineError::Corrupt("non-finite or negative rate"));
        }
        Ok(baseline)
    }

    fn floats_are_sane(&self) -> bool {
        [
            self.rate_short,
            self.rate_long,
            self.typical_short,
            self.typical_long,
            self.typical_ids,
            self.peak_ids,
            self.responses,
            self.errors,
            self.typical_errors,
            self.bytes_rate,
            self.typical_bytes,
            self.score_level,
        ]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0)
    }
}

/// What a typical client looks like: the prior for clients with little or no history.
/// Computed from normal training traffic and shipped inside the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PopulationBaseline {
    /// P(hour of day), configured UTC offset.
    pub hour_probs: [f32; HOURS],
    /// P(route bucket), same hashing as the client sketch.
    pub route_probs: [f32; ROUTE_BUCKETS],
    /// Typical `rate_short` at request time, requests/min.
    pub rate_per_min: f32,
    /// Typical distinct resource ids per 10 minute window.
    pub distinct_ids: f32,
    /// Typical response byte rate at request time, KiB/min.
    pub kib_per_min: f32,
    /// Typical 401/403/404 share of responses.
    pub error_ratio: f32,
}

impl Default for PopulationBaseline {
    fn default() -> Self {
        Self {
            hour_probs: [1.0 / HOURS as f32; HOURS],
            route_probs: [1.0 / ROUTE_BUCKETS as f32; ROUTE_BUCKETS],
            rate_per_min: 1.0,
            distinct_ids: 3.0,
            kib_per_min: 16.0,
            error_ratio: 0.02,
        }
    }
}

impl PopulationBaseline {
    /// Checks a decoded population baseline (from a model file) is usable.
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        let scalars = [
            self.rate_per_min,
            self.distinct_ids,
            self.kib_per_min,
            self.error_ratio,
        ];
        let ok = self
            .hour_probs
            .iter()
            .chain(self.route_probs.iter())
            .chain(scalars.iter())
            .all(|v| v.is_finite() && *v >= 0.0);
        if ok {
            Ok(())
        } else {
            Err("population baseline has a negative or non-finite value")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widest_baseline_fits_the_budget() {
        let slot = Slot {
            hash: u32::MAX,
            hits: u8::MAX,
        };
        let widest = ClientBaseline {
            version: BASELINE_VERSION,
            first_ms: u64::MAX,
            clock_ms: u64::MAX,
            last_req_ms: u64::MAX,
            requests: u32::MAX,
            hours: [u8::MAX; HOURS],
            routes: [u8::MAX; ROUTE_BUCKETS],
            rate_short: f32::MAX,
            rate_long: f32::MAX,
            typical_short: f32::MAX,
            typical_long: f32::MAX,
            prefixes: [slot; 4],
            countries: [slot; 3],
            asns: [slot; 3],
            agents: [slot; 2],
            products: [slot; 2],
            churn: [u8::MAX; 4],
            id_window: u32::MAX,
            id_bits: [u8::MAX; ID_BITS / 8],
            typical_ids: f32::MAX,
            peak_ids: f32::MAX,
            id_windows: u8::MAX,
            responses: f32::MAX,
            errors: f32::MAX,
            typical_errors: f32::MAX,
            bytes_rate: f32::MAX,
            typical_bytes: f32::MAX,
            run: u8::MAX,
            score_level: f32::MAX,
        };
        let bytes = widest.encode().unwrap();
        assert!(bytes.len() <= MAX_ENCODED_LEN, "{} bytes", bytes.len());
        assert_eq!(
            bytes.len(),
            235,
            "update docs/adr/0002 if the widest size changes"
        );
        assert_eq!(ClientBaseline::decode(&bytes).unwrap(), widest);
    }

    #[test]
    fn default_is_a_fresh_decodable_baseline() {
        let bytes = ClientBaseline::default().encode().unwrap();
        assert_eq!(
            ClientBaseline::decode(&bytes).unwrap(),
            ClientBaseline::new()
        );
    }

    #[test]
    fn corrupt_bytes_are_errors() {
        let good = ClientBaseline::new().encode().unwrap();
        assert!(ClientBaseline::decode(&[]).is_err());
        assert!(ClientBaseline::decode(&good[..good.len() - 1]).is_err());
        let mut other_version = good.clone();
        other_version[0] = 9;
        assert!(matches!(
            ClientBaseline::decode(&other_version),
            Err(BaselineError::Version { found: 9, .. })
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(ClientBaseline::decode(&trailing).is_err());
        assert!(ClientBaseline::decode(&[0xff; 300]).is_err());
        // Every truncation and every single-byte flip decodes or errors, never panics.
        for i in 0..good.len() {
            let _ = ClientBaseline::decode(&good[..i]);
            let mut flipped = good.clone();
            flipped[i] ^= 0xa5;
            let _ = ClientBaseline::decode(&flipped);
        }
    }
}
