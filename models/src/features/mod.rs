//! The one path from requests to feature vectors.
//!
//! [`extract`] reads a client's [`ClientBaseline`], computes the request's features relative
//! to it, then folds the request into it; [`observe_response`] folds in the response (status,
//! size). The filter calls both per request; the trainer calls exactly the same two functions
//! over recorded traffic, so there is no training/serving skew to drift into.
//!
//! Every feature compares the request with **this client's own history**, never with what
//! clients "usually" are: Open Banking TPPs are machines with library user agents, hundreds of
//! accounts and many egress addresses, so "looks like a script" or "touches many accounts"
//! says nothing. What stands out is change: a user-agent product this client never used, a
//! network outside its providers, a pace or a spread of ids above its own usual, an hour it
//! is never active at (tolerant of the one-hour DST shift). A new client has no history, so
//! its relative features fade in over a warm-up ([`window::WARM_REQUESTS`]); until then only
//! overt signals (error storms) and the hard rules act.

pub mod window;

use crate::baseline::{ClientBaseline, HOURS, ID_BITS, PopulationBaseline, ROUTE_BUCKETS, Slot};
use crate::event::RequestEvent;
use crate::hashing::{self, TAG_ASN, TAG_COUNTRY, TAG_ID, TAG_ROUTE, TAG_UA};
use crate::schema::FEATURE_COUNT;
use window::*;

/// Extraction settings shared by the filter and the trainer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtractConfig {
    /// UTC offset, minutes, in which hours of day are counted (and shown in reasons).
    pub utc_offset_minutes: i32,
}

/// Names for positions in [`FeatureVector::values`], in schema order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Feature {
    HourSurprise,
    BurstRatio,
    PaceRatio,
    NewPrefix,
    NewCountry,
    NewAsn,
    RouteSurprise,
    IdsRatio,
    ErrorRatio,
    ErrorExcess,
    BytesRatio,
    NewAgent,
    NewProduct,
    UnfamiliarRun,
}

/// Index of the churn average of each remembered attribute in [`ClientBaseline::churn`].
#[derive(Clone, Copy)]
enum Churn {
    Prefix = 0,
    Country = 1,
    Asn = 2,
    Agent = 3,
}

/// Longest user-agent product token kept for reasons (`okhttp`, `curl`, `PostmanRuntime`).
pub const PRODUCT_LEN: usize = 16;

/// Context that is not scored but makes reasons readable (`new_country(RU)`), with the
/// client's own values the features were compared with.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FeatureContext {
    /// Minute of day in the configured UTC offset.
    pub local_minute: u16,
    /// Client's smoothed probability of this hour (neighbours included).
    pub hour_p: f32,
    /// Country code from the request (two ASCII letters), if any.
    pub country: Option<[u8; 2]>,
    pub asn: Option<u32>,
    /// Requests per minute now (~1 min) and the client's usual.
    pub rate_per_min: f32,
    pub usual_rate_per_min: f32,
    /// Distinct resource ids in the current window and the client's usual per window.
    pub ids: f32,
    pub usual_ids: f32,
    /// Response KiB per minute now (~10 min) and the client's usual.
    pub kib_per_min: f32,
    pub usual_kib_per_min: f32,
    /// The client's usual error ratio.
    pub usual_error_ratio: f32,
    /// The request's user-agent product token (ASCII, truncated), `product_len` bytes used.
    pub product: [u8; PRODUCT_LEN],
    pub product_len: u8,
    /// 0..1: how far the client is through its warm-up (1 = relative features at full weight).
    pub warmth: f32,
    /// The user agent is a manual tool or a scripted browser ([`MANUAL_TOOL_PRODUCTS`]).
    pub tool_agent: bool,
}

impl FeatureContext {
    /// The user-agent product token, `-` when the request had none.
    pub fn product(&self) -> &str {
        let len = usize::from(self.product_len).min(PRODUCT_LEN);
        self.product
            .get(..len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .filter(|p| !p.is_empty())
            .unwrap_or("-")
    }
}

/// A request's features, in schema order, plus context for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FeatureVector {
    pub values: [f32; FEATURE_COUNT],
    pub context: FeatureContext,
}

impl FeatureVector {
    /// A client past its warm-up switched to a manual tool or a scripted browser it never
    /// used (curl, Postman, HeadlessChrome…): suspicious on its own, whatever a model trained
    /// on other traffic makes of it, so the verdict is at least a step-up.
    pub fn overt_tool_switch(&self) -> bool {
        self.context.warmth >= 1.0
            && self.context.tool_agent
            && (self.get(Feature::NewProduct) > 0.5 || self.get(Feature::NewAgent) > 0.5)
    }

    pub fn get(&self, feature: Feature) -> f32 {
        self.values.get(feature as usize).copied().unwrap_or(0.0)
    }

    fn set(&mut self, feature: Feature, value: f32) {
        if let Some(slot) = self.values.get_mut(feature as usize) {
            *slot = if value.is_finite() { value } else { 0.0 };
        }
    }
}

/// Seconds between two Unix ms instants, 0 if time went backwards (workers' clocks and
/// interleaved requests are not strictly ordered).
fn seconds_between(earlier_ms: u64, later_ms: u64) -> f32 {
    later_ms.saturating_sub(earlier_ms) as f32 / 1000.0
}

/// Decay every exponentially weighted value to `now_ms`.
fn advance(b: &mut ClientBaseline, now_ms: u64) {
    if b.clock_ms == 0 {
        b.clock_ms = now_ms;
        return;
    }
    let dt = seconds_between(b.clock_ms, now_ms);
    if dt > 0.0 {
        b.rate_short *= (-dt / SHORT_TAU_S).exp();
        b.rate_long *= (-dt / LONG_TAU_S).exp();
        let response_decay = (-dt / RESPONSE_TAU_S).exp();
        b.responses *= response_decay;
        b.errors *= response_decay;
        b.bytes_rate *= response_decay;
        b.peak_ids *= (-dt / PEAK_TAU_S).exp();
        b.clock_ms = now_ms;
    }
}

/// EWMA rate corrected for a client younger than the window (the EWMA starts from zero).
fn corrected_rate(rate: f32, tau_s: f32, age_s: f32) -> f32 {
    let age = age_s.max(SHORT_TAU_S);
    let warm = 1.0 - (-age / tau_s).exp();
    if warm > 0.0 { rate / warm } else { rate }
}

/// Weight of the client's own typical values against the population's.
fn maturity(b: &ClientBaseline) -> f32 {
    (b.requests as f32 / MATURE_REQUESTS).min(1.0)
}

/// How far a client is through its warm-up, 0..1.
fn warmth(b: &ClientBaseline) -> f32 {
    (b.requests as f32 / WARM_REQUESTS).clamp(0.0, 1.0)
}

fn blend(own: f32, population: f32, w: f32) -> f32 {
    w * own + (1.0 - w) * population
}

fn count(counts: &[u8], bucket: usize) -> f32 {
    counts.get(bucket).map_or(0.0, |c| f32::from(*c))
}

/// -log2 of the smoothed probability of `bucket` given the client's counts and the prior.
fn surprise(counts: &[u8], bucket: usize, prior: &[f32]) -> (f32, f32) {
    let total: f32 = counts.iter().map(|c| f32::from(*c)).sum();
    let prior_p = prior.get(bucket).copied().unwrap_or(0.0).max(1e-4);
    let p = (count(counts, bucket) + PRIOR_WEIGHT * prior_p) / (total + PRIOR_WEIGHT);
    (-p.max(1e-9).log2(), p)
}

/// Like [`surprise`] for the hour of day, counting the neighbouring hours at
/// [`NEIGHBOUR_HOUR_WEIGHT`]: a job that runs at 02:00 local time runs an hour earlier or
/// later in UTC after a DST change, and must not look new.
fn hour_surprise(hours: &[u8; HOURS], hour: usize, prior: &[f32]) -> (f32, f32) {
    let before = (hour + HOURS - 1) % HOURS;
    let after = (hour + 1) % HOURS;
    let total: f32 =
        hours.iter().map(|c| f32::from(*c)).sum::<f32>() * (1.0 + 2.0 * NEIGHBOUR_HOUR_WEIGHT);
    let own =
        count(hours, hour) + NEIGHBOUR_HOUR_WEIGHT * (count(hours, before) + count(hours, after));
    let prior_p = prior.get(hour).copied().unwrap_or(0.0).max(1e-4);
    let p = (own + PRIOR_WEIGHT * prior_p) / (total + PRIOR_WEIGHT);
    (-p.max(1e-9).log2(), p)
}

/// Increment a bucket; halve every bucket when it saturates, so old behaviour fades.
fn bump(counts: &mut [u8], bucket: usize) {
    let saturated = counts.get(bucket).is_some_and(|c| *c == u8::MAX);
    if saturated {
        for c in counts.iter_mut() {
            *c /= 2;
        }
    }
    if let Some(c) = counts.get_mut(bucket) {
        *c = c.saturating_add(1);
    }
}

/// Novelty of `hash` among `slots` (1 never seen .. 0 familiar) and whether the slots
/// missed it, then remember it: bump its hits, or replace the least-hit slot.
fn novelty_and_remember(slots: &mut [Slot], hash: u32) -> (f32, bool) {
    let found = slots.iter().position(|s| s.hash == hash);
    let novelty = match found.and_then(|i| slots.get(i)) {
        Some(s) => 1.0 - (f32::from(s.hits) / FAMILIAR_HITS).min(1.0),
        None => 1.0,
    };
    let index = found.or_else(|| {
        slots
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.hits)
            .map(|(i, _)| i)
    });
    let saturated = index
        .and_then(|i| slots.get(i))
        .is_some_and(|s| s.hash == hash && s.hits == u8::MAX);
    if saturated {
        for s in slots.iter_mut() {
            s.hits /= 2;
        }
    }
    if let Some(s) = index.and_then(|i| slots.get_mut(i)) {
        if s.hash != hash {
            *s = Slot { hash, hits: 0 };
        }
        s.hits = s.hits.saturating_add(1);
    }
    (novelty, found.is_none())
}

/// The client's churn of one attribute (0..1: the share of its recent requests that brought
/// a value its slots did not hold), then fold this request in.
fn churn_and_update(churn: &mut [u8; 4], which: Churn, missed: bool) -> f32 {
    let Some(c) = churn.get_mut(which as usize) else {
        return 0.0;
    };
    let before = f32::from(*c) / 255.0;
    let after = before + CHURN_ALPHA * (f32::from(u8::from(missed)) - before);
    *c = (after * 255.0).round().clamp(0.0, 255.0) as u8;
    before
}

/// Linear-counting estimate of distinct ids from a bitmap.
fn distinct_estimate(bits: &[u8]) -> f32 {
    let m = ID_BITS as f32;
    let zeros: u32 = bits.iter().map(|b| b.count_zeros()).sum();
    if zeros == 0 {
        // Saturated: report the estimate for a single zero bit.
        return m * m.ln();
    }
    -m * (zeros as f32 / m).ln()
}

fn local_minute(cfg: &ExtractConfig, ts_ms: u64) -> u16 {
    let minutes = (ts_ms / 60_000) as i64 + i64::from(cfg.utc_offset_minutes);
    minutes.rem_euclid(24 * 60) as u16
}

/// The product token of a user agent: its first token up to `/`, space or `(`, lowercased
/// (`okhttp/4.12.0` → `okhttp`, `Mozilla/5.0 (…)` → `mozilla`). A version bump keeps the
/// product; a switch to another tool changes it. `None` for a missing or blank user agent.
pub fn user_agent_product(ua: Option<&str>) -> Option<&str> {
    let ua = ua.map(str::trim).filter(|u| !u.is_empty())?;
    let end = ua.find(['/', ' ', '(', ';']).unwrap_or(ua.len());
    ua.get(..end).filter(|p| !p.is_empty()).or(Some(ua))
}

/// Products of tools people drive by hand or of scripted browsers — never a TPP's production
/// HTTP client. One of these, new for a client past its warm-up, is an overt signal
/// ([`FeatureVector::overt_tool_switch`]).
pub const MANUAL_TOOL_PRODUCTS: [&str; 12] = [
    "curl",
    "wget",
    "postmanruntime",
    "insomnia",
    "httpie",
    "headlesschrome",
    "phantomjs",
    "scrapy",
    "sqlmap",
    "nikto",
    "burp",
    "zgrab",
];

/// The route sketch bucket of a method and route.
pub fn route_bucket(method: &str, route: &str) -> usize {
    let key = [method.as_bytes(), b" ", route.as_bytes()].concat();
    hashing::fnv1a(TAG_ROUTE, &key) as usize % ROUTE_BUCKETS
}

fn ratio(value: f32, usual: f32) -> f32 {
    value / usual
}

/// Features of `event` relative to `baseline`, then `event` folded into `baseline`.
///
/// `population` supplies typical values while the client is new. Never panics; any
/// non-finite intermediate becomes 0.
pub fn extract(
    cfg: &ExtractConfig,
    baseline: &mut ClientBaseline,
    population: &PopulationBaseline,
    event: &RequestEvent<'_>,
) -> FeatureVector {
    let b = baseline;
    let now = event.ts_ms;
    if b.first_ms == 0 {
        b.first_ms = now;
    }
    advance(b, now);
    let mut fv = FeatureVector::default();
    let w = maturity(b);
    let age_s = seconds_between(b.first_ms, now);
    let warm = warmth(b);
    // Rates and spreads also need some hours of history.
    let rate_warm = warm.min(age_s / RATE_AGE_S).clamp(0.0, 1.0);

    // Time of day: only once the client has shown a couple of days of its rhythm.
    let minute = local_minute(cfg, now);
    let hour = usize::from(minute / 60) % HOURS;
    let (hour_bits, hour_p) = hour_surprise(&b.hours, hour, &population.hour_probs);
    let hour_weight = warm.min(age_s / HOUR_AGE_S).clamp(0.0, 1.0);
    let hour_bits = hour_bits * hour_weight;
    fv.set(Feature::HourSurprise, hour_bits);

    // Pace against the client's own usual pace (1 = as usual).
    b.rate_short += 1.0 / SHORT_TAU_S;
    b.rate_long += 1.0 / LONG_TAU_S;
    let short = corrected_rate(b.rate_short, SHORT_TAU_S, age_s) * 60.0;
    let long = corrected_rate(b.rate_long, LONG_TAU_S, age_s) * 60.0;
    let usual_short = blend(b.typical_short, population.rate_per_min, w).max(0.05);
    let usual_long = blend(b.typical_long, population.rate_per_min, w).max(0.05);
    fv.set(Feature::BurstRatio, ratio(short, usual_short) * rate_warm);
    fv.set(Feature::PaceRatio, ratio(long, usual_long) * rate_warm);

    // Network and geography: novelty for this client, discounted by how often this client
    // shows new values anyway (cloud egress pools, customers abroad).
    let prefix = event.ip.as_ref().map_or(0, hashing::prefix_hash);
    let country = event.country.map(str::trim).filter(|c| !c.is_empty());
    let country_hash = country.map_or(0, |c| {
        hashing::fnv1a(TAG_COUNTRY, c.to_ascii_uppercase().as_bytes())
    });
    let asn_hash = event
        .asn
        .map_or(0, |a| hashing::fnv1a(TAG_ASN, &a.to_le_bytes()));
    let (prefix_novelty, prefix_miss) = novelty_and_remember(&mut b.prefixes, prefix);
    let (country_novelty, country_miss) = novelty_and_remember(&mut b.countries, country_hash);
    let (asn_novelty, asn_miss) = novelty_and_remember(&mut b.asns, asn_hash);
    // The first request of a client misses everything; that is not churn.
    let first = b.requests == 0;
    let prefix_churn = churn_and_update(&mut b.churn, Churn::Prefix, prefix_miss && !first);
    let country_churn = churn_and_update(&mut b.churn, Churn::Country, country_miss && !first);
    let asn_churn = churn_and_update(&mut b.churn, Churn::Asn, asn_miss && !first);
    // A new address inside a provider (ASN) the client already uses counts half.
    let known_provider = event.asn.is_some() && asn_novelty < 0.5;
    let provider_factor = if known_provider { 0.5 } else { 1.0 };
    let new_prefix = prefix_novelty * (1.0 - prefix_churn) * provider_factor;
    let new_country = country_novelty * (1.0 - country_churn);
    let new_asn = asn_novelty * (1.0 - asn_churn);
    fv.set(Feature::NewPrefix, new_prefix * warm);
    fv.set(Feature::NewCountry, new_country * warm);
    fv.set(Feature::NewAsn, new_asn * warm);

    // Endpoint mix.
    let route_bucket = route_bucket(event.method, &event.route);
    let (route_surprise, _) = surprise(&b.routes, route_bucket, &population.route_probs);
    fv.set(Feature::RouteSurprise, route_surprise * warm);

    // Resources touched in this window against the client's own usual spread.
    let window = u32::try_from(now / ID_WINDOW_MS).unwrap_or(u32::MAX);
    if window != b.id_window {
        let completed = distinct_estimate(&b.id_bits);
        if b.id_window != 0 && completed > 0.0 {
            b.typical_ids = if b.id_windows == 0 {
                completed
            } else {
                b.typical_ids + WINDOW_ALPHA * (completed - b.typical_ids)
            };
            b.id_windows = b.id_windows.saturating_add(1);
            b.peak_ids = b.peak_ids.max(completed);
        }
        b.id_window = window;
        b.id_bits = [0; ID_BITS / 8];
    }
    for id in &event.resource_ids {
        let bit = hashing::fnv1a(TAG_ID, id.as_bytes()) as usize % ID_BITS;
        if let Some(byte) = b.id_bits.get_mut(bit / 8) {
            *byte |= 1 << (bit % 8);
        }
    }
    let distinct = distinct_estimate(&b.id_bits);
    let usual_ids = if b.id_windows == 0 {
        population.distinct_ids
    } else {
        let wi = (f32::from(b.id_windows) / 4.0).min(1.0);
        blend(b.typical_ids.max(b.peak_ids), population.distinct_ids, wi)
    };
    fv.set(
        Feature::IdsRatio,
        ratio(distinct, usual_ids + 1.0) * rate_warm,
    );

    // Responses so far (the response phase feeds these). The error ratio itself is an
    // overt signal and acts from the first request; its excess over the client's usual
    // needs history.
    // Smoothed towards the client's usual: after a quiet spell the first refused response
    // of a batch is not a 50% error ratio.
    let usual_errors = blend(b.typical_errors, population.error_ratio, w);
    let error_ratio =
        (b.errors + ERROR_PRIOR_RESPONSES * usual_errors) / (b.responses + ERROR_PRIOR_RESPONSES);
    fv.set(Feature::ErrorRatio, error_ratio);
    fv.set(
        Feature::ErrorExcess,
        (error_ratio - usual_errors).max(0.0) * warm,
    );
    let kib_rate = b.bytes_rate * 60.0 / 1024.0;
    let usual_kib = blend(b.typical_bytes * 60.0 / 1024.0, population.kib_per_min, w)
        .max(MIN_USUAL_KIB_PER_MIN);
    fv.set(Feature::BytesRatio, ratio(kib_rate, usual_kib) * rate_warm);

    // Client software: a version bump of the client's own product is routine; a product
    // this client never used (a tool, a browser) is not.
    let agent_hash = event
        .user_agent
        .map_or(0, |ua| hashing::fnv1a(TAG_UA, ua.as_bytes()));
    let product = user_agent_product(event.user_agent);
    let product_hash = product.map_or(0, |p| {
        hashing::fnv1a(TAG_UA, p.to_ascii_lowercase().as_bytes()) | 1
    });
    let (agent_novelty, agent_miss) = novelty_and_remember(&mut b.agents, agent_hash);
    let (product_novelty, _) = novelty_and_remember(&mut b.products, product_hash);
    let agent_churn = churn_and_update(&mut b.churn, Churn::Agent, agent_miss && !first);
    fv.set(
        Feature::NewAgent,
        agent_novelty * (1.0 - agent_churn) * warm,
    );
    fv.set(Feature::NewProduct, product_novelty * warm);

    let unfamiliar = hour_bits >= UNFAMILIAR_BITS
        || new_country > 0.5
        || new_asn > 0.5
        || new_prefix > 0.5
        || product_novelty > 0.5;
    b.run = if unfamiliar && warm >= 1.0 {
        b.run.saturating_add(1).min(64)
    } else {
        0
    };
    fv.set(Feature::UnfamiliarRun, f32::from(b.run));

    // Fold the request in.
    bump(&mut b.hours, hour);
    bump(&mut b.routes, route_bucket);
    b.typical_short += TYPICAL_ALPHA * (short - b.typical_short);
    b.typical_long += TYPICAL_ALPHA * (long - b.typical_long);
    b.typical_bytes += TYPICAL_ALPHA * (b.bytes_rate - b.typical_bytes);
    b.typical_errors += TYPICAL_ALPHA * (error_ratio - b.typical_errors);
    b.last_req_ms = now;
    b.requests = b.requests.saturating_add(1);
    sanitise(b);

    let mut product_bytes = [0u8; PRODUCT_LEN];
    let mut product_len = 0u8;
    for (slot, byte) in product_bytes
        .iter_mut()
        .zip(product.unwrap_or("").bytes().filter(u8::is_ascii_graphic))
    {
        *slot = byte;
        product_len = product_len.saturating_add(1);
    }
    fv.context = FeatureContext {
        local_minute: minute,
        hour_p,
        country: country.and_then(|c| {
            let bytes = c.as_bytes();
            match (bytes.first(), bytes.get(1)) {
                (Some(a), Some(b)) if bytes.len() == 2 => {
                    Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
                }
                _ => None,
            }
        }),
        asn: event.asn,
        rate_per_min: short,
        usual_rate_per_min: usual_short,
        ids: distinct,
        usual_ids,
        kib_per_min: kib_rate,
        usual_kib_per_min: usual_kib,
        usual_error_ratio: usual_errors,
        product: product_bytes,
        product_len,
        warmth: warm,
        tool_agent: is_manual_tool(event.user_agent),
    };
    fv
}

/// A manual tool or scripted browser user agent (see [`MANUAL_TOOL_PRODUCTS`]).
pub fn is_manual_tool(ua: Option<&str>) -> bool {
    let Some(ua) = ua else {
        return false;
    };
    // Case-insensitive without allocating: this runs on every request.
    let product = user_agent_product(Some(ua)).unwrap_or("");
    let contains = |marker: &str| {
        ua.as_bytes()
            .windows(marker.len())
            .any(|w| w.eq_ignore_ascii_case(marker.as_bytes()))
    };
    MANUAL_TOOL_PRODUCTS
        .iter()
        .any(|t| product.eq_ignore_ascii_case(t))
        || SCRIPTED_BROWSER_MARKERS.iter().any(|m| contains(m))
}

/// Markers of scripted browsers anywhere in a user agent (their product is `Mozilla`).
const SCRIPTED_BROWSER_MARKERS: [&str; 5] = [
    "headless",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
];

/// Fold a response into the client's baseline: status (401/403/404 count as errors) and
/// body size. Call it in the response phase with the response time.
pub fn observe_response(baseline: &mut ClientBaseline, status: u16, resp_bytes: u64, ts_ms: u64) {
    let b = baseline;
    if b.first_ms == 0 {
        b.first_ms = ts_ms;
    }
    advance(b, ts_ms);
    b.responses += 1.0;
    if matches!(status, 401 | 403 | 404) {
        b.errors += 1.0;
    }
    b.bytes_rate += resp_bytes as f32 / RESPONSE_TAU_S;
    sanitise(b);
}

/// The client's per-client calibration level (its usual score), for
/// [`crate::Model::score_for_client`].
pub(crate) fn score_level(b: &ClientBaseline) -> f32 {
    b.score_level
}

/// Store the client's calibration level (see [`crate::model::calibrate`]).
pub(crate) fn set_score_level(b: &mut ClientBaseline, level: f32) {
    b.score_level = level;
    sanitise(b);
}

/// Keep every float finite and non-negative so a baseline always re-encodes and decodes.
fn sanitise(b: &mut ClientBaseline) {
    for v in [
        &mut b.rate_short,
        &mut b.rate_long,
        &mut b.typical_short,
        &mut b.typical_long,
        &mut b.typical_ids,
        &mut b.peak_ids,
        &mut b.responses,
        &mut b.errors,
        &mut b.typical_errors,
        &mut b.bytes_rate,
        &mut b.typical_bytes,
        &mut b.score_level,
    ] {
        if !v.is_finite() || *v < 0.0 {
            *v = 0.0;
        }
        *v = v.min(1e12);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;

    /// Deterministic pseudo-random numbers without a dependency.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 11
        }
    }

    #[test]
    fn arbitrary_events_keep_features_finite_and_baselines_decodable() {
        let mut rng = Lcg(42);
        let pop = PopulationBaseline::default();
        let mut b = ClientBaseline::new();
        let special_ts = [0, 1, u64::MAX, u64::MAX / 2, 1_767_571_200_000];
        let mut ts = 1_767_571_200_000u64;
        for i in 0..20_000u64 {
            ts = match rng.next() % 10 {
                0 => special_ts[(rng.next() % 5) as usize],
                1 => ts.saturating_sub(rng.next() % 100_000), // backwards
                _ => ts.saturating_add(rng.next() % 3_600_000),
            };
            let path = format!("/x/acc-{}/y/{}", rng.next() % 1000, rng.next() % 7);
            let country = String::from(["GB", "", "r", "RUS", "gb"][(rng.next() % 5) as usize]);
            let ua = format!("agent-{}", rng.next() % 3);
            let mut ev = RequestEvent::for_path(ts, "c", "GET", &path);
            ev.ip = match rng.next() % 3 {
                0 => None,
                1 => Some(core::net::IpAddr::from([10, 0, (rng.next() % 4) as u8, 1])),
                _ => Some(core::net::IpAddr::from([
                    0x2001, 0xdb8, 0, 0, 0, 0, 0, 1u16,
                ])),
            };
            ev.country = Some(&country);
            ev.asn = rng.next().is_multiple_of(2).then_some(64500);
            ev.user_agent = (!rng.next().is_multiple_of(4)).then_some(ua.as_str());
            let cfg = ExtractConfig {
                utc_offset_minutes: (rng.next() % 2000) as i32 - 1000,
            };
            let fv = extract(&cfg, &mut b, &pop, &ev);
            assert!(fv.values.iter().all(|v| v.is_finite()), "{i}: {fv:?}");
            observe_response(
                &mut b,
                (rng.next() % 500) as u16 + 100,
                rng.next() % 10_000_000,
                ts,
            );
            let bytes = b.encode().unwrap();
            assert!(bytes.len() <= crate::baseline::MAX_ENCODED_LEN);
            assert_eq!(ClientBaseline::decode(&bytes).unwrap(), b);
        }
    }

    #[test]
    fn enumeration_and_novelty_show_in_features() {
        let pop = PopulationBaseline::default();
        let cfg = ExtractConfig::default();
        let mut b = ClientBaseline::new();
        let t0 = 1_767_571_200_000u64;
        // Past the warm-up, and old enough (RATE_AGE_S) for rates and spreads to count.
        for k in 0..800u64 {
            let mut ev =
                RequestEvent::for_path(t0 + k * 30_000, "c", "GET", "/aisp/accounts/acc-1");
            ev.country = Some("GB");
            extract(&cfg, &mut b, &pop, &ev);
        }
        let mut tenth = FeatureVector::default();
        let mut last = FeatureVector::default();
        let start = t0 + 800 * 30_000;
        for k in 0..40u64 {
            let path = format!("/aisp/accounts/acc-{}", 1000 + k);
            let mut ev = RequestEvent::for_path(start + k * 1_000, "c", "GET", &path);
            ev.country = Some("RU");
            last = extract(&cfg, &mut b, &pop, &ev);
            if k == 9 {
                tenth = last;
            }
        }
        assert!(last.context.ids > 25.0, "{last:?}");
        assert!(last.get(Feature::IdsRatio) > 10.0, "{last:?}");
        assert!(last.get(Feature::BurstRatio) > 2.5, "{last:?}");
        // A new country stays novel for FAMILIAR_HITS requests, then becomes familiar.
        assert!(tenth.get(Feature::NewCountry) > 0.6, "{tenth:?}");
        assert!(tenth.get(Feature::UnfamiliarRun) >= 10.0, "{tenth:?}");
        assert_eq!(last.get(Feature::NewCountry), 0.0);
        assert_eq!(last.context.country, Some(*b"RU"));
    }
}
