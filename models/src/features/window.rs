//! Time constants of the extractor. They are part of the feature schema's canonical text
//! (and so of its hash): changing one changes what every feature means.

/// ~1 minute request rate.
pub const SHORT_TAU_S: f32 = 60.0;
/// ~1 hour request rate.
pub const LONG_TAU_S: f32 = 3600.0;
/// Error ratio and response bytes.
pub const RESPONSE_TAU_S: f32 = 600.0;
/// Distinct resource id window.
pub const ID_WINDOW_MS: u64 = 600_000;
/// Weight of a new request in request-weighted averages (`typical_*`).
pub const TYPICAL_ALPHA: f32 = 1.0 / 64.0;
/// Weight of a completed window in `typical_ids`.
pub const WINDOW_ALPHA: f32 = 0.2;
/// Weight of a new gap in inter-arrival statistics.
pub const GAP_ALPHA: f32 = 0.125;
/// Pseudo-count of the population prior in hour / route probabilities.
pub const PRIOR_WEIGHT: f32 = 4.0;
/// Hits after which a prefix / country / ASN is fully familiar.
pub const FAMILIAR_HITS: f32 = 32.0;
/// Requests after which a client's own typical values fully replace the population's.
pub const MATURE_REQUESTS: f32 = 32.0;
/// hour_surprise at or above which a request counts as unfamiliar.
pub const UNFAMILIAR_BITS: f32 = 6.0;

/// Everything above, for the schema's canonical text.
pub const CONSTANTS: [(&str, f32); 11] = [
    ("short_tau_s", SHORT_TAU_S),
    ("long_tau_s", LONG_TAU_S),
    ("response_tau_s", RESPONSE_TAU_S),
    ("id_window_s", (ID_WINDOW_MS / 1000) as f32),
    ("typical_alpha", TYPICAL_ALPHA),
    ("window_alpha", WINDOW_ALPHA),
    ("gap_alpha", GAP_ALPHA),
    ("prior_weight", PRIOR_WEIGHT),
    ("familiar_hits", FAMILIAR_HITS),
    ("mature_requests", MATURE_REQUESTS),
    ("unfamiliar_bits", UNFAMILIAR_BITS),
];
