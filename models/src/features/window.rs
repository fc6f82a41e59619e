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
/// Pseudo-count of the population prior in hour / route probabilities.
pub const PRIOR_WEIGHT: f32 = 4.0;
/// Hits after which a prefix / country / ASN is fully familiar.
pub const FAMILIAR_HITS: f32 = 32.0;
/// Requests after which a client's own typical values fully replace the population's.
pub const MATURE_REQUESTS: f32 = 32.0;
/// Warm-up: over a client's first requests its relative features fade in (only hard rules
/// and overt signals such as error storms act on a new client).
pub const WARM_REQUESTS: f32 = 32.0;
/// Pseudo-responses at the client's usual error ratio in the error-ratio estimate.
pub const ERROR_PRIOR_RESPONSES: f32 = 8.0;
/// During warm-up the model only judges a client whose error ratio is at least this.
pub const WARMUP_ERROR_RATIO: f32 = 0.5;
/// Smallest usual response volume a bytes ratio is taken against (KiB/min): below it the
/// ratio is noise.
pub const MIN_USUAL_KIB_PER_MIN: f32 = 32.0;
/// Rates and spreads mean little before a client has been seen for a few hours (a nightly
/// batch reaches its warm-up request count in seconds).
pub const RATE_AGE_S: f32 = 6.0 * 3600.0;
/// Decay of the client's peak distinct ids per window.
pub const PEAK_TAU_S: f32 = 7.0 * 86_400.0;
/// Hour of day means nothing before a client has been seen for two days.
pub const HOUR_AGE_S: f32 = 2.0 * 86_400.0;
/// Weight of a neighbouring hour in the hour histogram (a local-time job moves by an hour
/// in UTC when daylight saving time starts or ends).
pub const NEIGHBOUR_HOUR_WEIGHT: f32 = 0.5;
/// Weight of a request in the per-attribute churn averages (the share of requests that
/// bring a value the client's slots do not hold).
pub const CHURN_ALPHA: f32 = 1.0 / 32.0;
/// Per-client calibration: weight of an allowed request's score in the client's score
/// level, the level below which nothing shifts, and the most a level can shift a score.
pub const SCORE_LEVEL_ALPHA: f32 = 1.0 / 64.0;
pub const SCORE_LEVEL_FLOOR: f32 = 0.05;
pub const MAX_SCORE_SHIFT: f32 = 0.25;
/// hour_surprise at or above which a request counts as unfamiliar.
pub const UNFAMILIAR_BITS: f32 = 6.0;

/// Everything above, for the schema's canonical text.
pub const CONSTANTS: [(&str, f32); 22] = [
    ("short_tau_s", SHORT_TAU_S),
    ("long_tau_s", LONG_TAU_S),
    ("response_tau_s", RESPONSE_TAU_S),
    ("id_window_s", (ID_WINDOW_MS / 1000) as f32),
    ("typical_alpha", TYPICAL_ALPHA),
    ("window_alpha", WINDOW_ALPHA),
    ("prior_weight", PRIOR_WEIGHT),
    ("familiar_hits", FAMILIAR_HITS),
    ("mature_requests", MATURE_REQUESTS),
    ("warm_requests", WARM_REQUESTS),
    ("hour_age_s", HOUR_AGE_S),
    ("rate_age_s", RATE_AGE_S),
    ("warmup_error_ratio", WARMUP_ERROR_RATIO),
    ("error_prior_responses", ERROR_PRIOR_RESPONSES),
    ("min_usual_kib_per_min", MIN_USUAL_KIB_PER_MIN),
    ("peak_tau_s", PEAK_TAU_S),
    ("neighbour_hour_weight", NEIGHBOUR_HOUR_WEIGHT),
    ("churn_alpha", CHURN_ALPHA),
    ("unfamiliar_bits", UNFAMILIAR_BITS),
    ("score_level_alpha", SCORE_LEVEL_ALPHA),
    ("score_level_floor", SCORE_LEVEL_FLOOR),
    ("max_score_shift", MAX_SCORE_SHIFT),
];
