//! The one path from requests to feature vectors.
//!
//! [`extract`] reads a client's [`ClientBaseline`], computes the request's features relative
//! to it, then folds the request into it; [`observe_response`] folds in the response (status,
//! size). The filter calls both per request; the trainer calls exactly the same two functions
//! over recorded traffic, so there is no training/serving skew to drift into.

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
    RateShort,
    RateLong,
    BurstRatio,
    NewPrefix,
    NewCountry,
    NewAsn,
    RouteSurprise,
    DistinctIds,
    DistinctIdsRatio,
    ErrorRatio,
    BytesRate,
    BytesRatio,
    UaChanged,
    UaBot,
    TimingRegularity,
    CustomerPresent,
    History,
    UnfamiliarRun,
}

/// Context that is not scored but makes reasons readable (`new_country(RU)`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FeatureContext {
    /// Minute of day in the configured UTC offset.
    pub local_minute: u16,
    /// Client's smoothed probability of this hour.
    pub hour_p: f32,
    /// Country code from the request (two ASCII letters), if any.
    pub country: Option<[u8; 2]>,
    pub asn: Option<u32>,
}

/// A request's features, in schema order, plus context for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FeatureVector {
    pub values: [f32; FEATURE_COUNT],
    pub context: FeatureContext,
}

impl FeatureVector {
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

fn blend(own: f32, population: f32, w: f32) -> f32 {
    w * own + (1.0 - w) * population
}

/// -log2 of the smoothed probability of `bucket` given the client's counts and the prior.
fn surprise(counts: &[u8], bucket: usize, prior: &[f32]) -> (f32, f32) {
    let total: f32 = counts.iter().map(|c| f32::from(*c)).sum();
    let own = counts.get(bucket).map_or(0.0, |c| f32::from(*c));
    let prior_p = prior.get(bucket).copied().unwrap_or(0.0).max(1e-4);
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

/// Novelty of `hash` among `slots` (1 never seen .. 0 familiar), then remember it:
/// bump its hits, or replace the least-hit slot.
fn novelty_and_remember(slots: &mut [Slot], hash: u32) -> f32 {
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
    novelty
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

/// User agents that suggest a script, a headless browser or a scraper rather than a TPP's
/// own client. A hint, not a verdict: the model weighs it against everything else.
pub fn is_bot_user_agent(ua: Option<&str>) -> bool {
    let Some(ua) = ua.map(str::trim) else {
        return true;
    };
    if ua.len() < 8 {
        return true;
    }
    const HINTS: [&str; 12] = [
        "curl/",
        "wget/",
        "python-requests",
        "python-urllib",
        "aiohttp",
        "scrapy",
        "headlesschrome",
        "phantomjs",
        "httpclient",
        "libwww-perl",
        "nikto",
        "sqlmap",
    ];
    let lower = ua.to_ascii_lowercase();
    HINTS.iter().any(|h| lower.contains(h))
}

/// The route sketch bucket of a method and route.
pub fn route_bucket(method: &str, route: &str) -> usize {
    let key = [method.as_bytes(), b" ", route.as_bytes()].concat();
    hashing::fnv1a(TAG_ROUTE, &key) as usize % ROUTE_BUCKETS
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

    // Time of day.
    let minute = local_minute(cfg, now);
    let hour = usize::from(minute / 60) % HOURS;
    let (hour_surprise, hour_p) = surprise(&b.hours, hour, &population.hour_probs);
    fv.set(Feature::HourSurprise, hour_surprise);

    // Velocity, this request included.
    b.rate_short += 1.0 / SHORT_TAU_S;
    b.rate_long += 1.0 / LONG_TAU_S;
    let short = corrected_rate(b.rate_short, SHORT_TAU_S, age_s) * 60.0;
    let long = corrected_rate(b.rate_long, LONG_TAU_S, age_s) * 60.0;
    fv.set(Feature::RateShort, short);
    fv.set(Feature::RateLong, long);
    let typical_short = blend(b.typical_short, population.rate_per_min, w).max(0.05);
    fv.set(Feature::BurstRatio, short / typical_short);

    // Network and geography.
    let prefix = event.ip.as_ref().map_or(0, hashing::prefix_hash);
    let country = event.country.map(str::trim).filter(|c| !c.is_empty());
    let country_hash = country.map_or(0, |c| {
        hashing::fnv1a(TAG_COUNTRY, c.to_ascii_uppercase().as_bytes())
    });
    let asn_hash = event
        .asn
        .map_or(0, |a| hashing::fnv1a(TAG_ASN, &a.to_le_bytes()));
    let new_prefix = novelty_and_remember(&mut b.prefixes, prefix);
    let new_country = novelty_and_remember(&mut b.countries, country_hash);
    let new_asn = novelty_and_remember(&mut b.asns, asn_hash);
    fv.set(Feature::NewPrefix, new_prefix);
    fv.set(Feature::NewCountry, new_country);
    fv.set(Feature::NewAsn, new_asn);

    // Endpoint mix.
    let route_bucket = route_bucket(event.method, &event.route);
    let (route_surprise, _) = surprise(&b.routes, route_bucket, &population.route_probs);
    fv.set(Feature::RouteSurprise, route_surprise);

    // Resources touched (enumeration / BOLA).
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
    let typical_ids = if b.id_windows == 0 {
        population.distinct_ids
    } else {
        let wi = (f32::from(b.id_windows) / 4.0).min(1.0);
        blend(b.typical_ids, population.distinct_ids, wi)
    };
    fv.set(Feature::DistinctIds, distinct);
    fv.set(Feature::DistinctIdsRatio, distinct / (typical_ids + 1.0));

    // Responses so far (the response phase feeds these).
    let error_ratio = (b.errors + 2.0 * population.error_ratio) / (b.responses + 2.0);
    fv.set(Feature::ErrorRatio, error_ratio);
    let kib_rate = b.bytes_rate * 60.0 / 1024.0;
    fv.set(Feature::BytesRate, kib_rate);
    let typical_kib = blend(b.typical_bytes * 60.0 / 1024.0, population.kib_per_min, w).max(1.0);
    fv.set(Feature::BytesRatio, kib_rate / typical_kib);

    // Client software.
    let ua_hash = event
        .user_agent
        .map_or(0, |ua| hashing::fnv1a(TAG_UA, ua.as_bytes()));
    let ua_changed = b.requests > 0 && ua_hash != b.last_ua;
    fv.set(Feature::UaChanged, if ua_changed { 1.0 } else { 0.0 });
    fv.set(
        Feature::UaBot,
        if is_bot_user_agent(event.user_agent) {
            1.0
        } else {
            0.0
        },
    );

    // Timing regularity.
    if b.requests > 0 {
        let gap = seconds_between(b.last_req_ms, now);
        if b.requests == 1 {
            b.gap_mean = gap;
            b.gap_dev = gap / 2.0;
        } else {
            b.gap_dev += GAP_ALPHA * ((gap - b.gap_mean).abs() - b.gap_dev);
            b.gap_mean += GAP_ALPHA * (gap - b.gap_mean);
        }
    }
    let regularity = if b.requests < 4 {
        1.0
    } else {
        (b.gap_dev / (b.gap_mean + 0.01)).min(4.0)
    };
    fv.set(Feature::TimingRegularity, regularity);

    fv.set(
        Feature::CustomerPresent,
        if event.customer_present { 1.0 } else { 0.0 },
    );
    fv.set(Feature::History, (1.0 + b.requests as f32).log2());

    let unfamiliar =
        hour_surprise >= UNFAMILIAR_BITS || new_country > 0.5 || new_asn > 0.5 || new_prefix > 0.5;
    b.run = if unfamiliar {
        b.run.saturating_add(1).min(64)
    } else {
        0
    };
    fv.set(Feature::UnfamiliarRun, f32::from(b.run));

    // Fold the request in.
    bump(&mut b.hours, hour);
    bump(&mut b.routes, route_bucket);
    b.typical_short += TYPICAL_ALPHA * (short - b.typical_short);
    b.typical_bytes += TYPICAL_ALPHA * (b.bytes_rate - b.typical_bytes);
    b.last_ua = ua_hash;
    b.last_req_ms = now;
    b.requests = b.requests.saturating_add(1);
    sanitise(b);

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
    };
    fv
}

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

/// Keep every float finite and non-negative so a baseline always re-encodes and decodes.
fn sanitise(b: &mut ClientBaseline) {
    for v in [
        &mut b.rate_short,
        &mut b.rate_long,
        &mut b.typical_short,
        &mut b.gap_mean,
        &mut b.gap_dev,
        &mut b.typical_ids,
        &mut b.responses,
        &mut b.errors,
        &mut b.bytes_rate,
        &mut b.typical_bytes,
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
        for k in 0..200u64 {
            let mut ev =
                RequestEvent::for_path(t0 + k * 30_000, "c", "GET", "/aisp/accounts/acc-1");
            ev.country = Some("GB");
            extract(&cfg, &mut b, &pop, &ev);
        }
        let mut tenth = FeatureVector::default();
        let mut last = FeatureVector::default();
        let start = t0 + 200 * 30_000;
        for k in 0..40u64 {
            let path = format!("/aisp/accounts/acc-{}", 1000 + k);
            let mut ev = RequestEvent::for_path(start + k * 1_000, "c", "GET", &path);
            ev.country = Some("RU");
            last = extract(&cfg, &mut b, &pop, &ev);
            if k == 9 {
                tenth = last;
            }
        }
        assert!(last.get(Feature::DistinctIds) > 25.0, "{last:?}");
        assert!(last.get(Feature::DistinctIdsRatio) > 10.0, "{last:?}");
        assert!(last.get(Feature::BurstRatio) > 2.5, "{last:?}");
        // A new country stays novel for FAMILIAR_HITS requests, then becomes familiar.
        assert!(tenth.get(Feature::NewCountry) > 0.6, "{tenth:?}");
        assert!(tenth.get(Feature::UnfamiliarRun) >= 10.0, "{tenth:?}");
        assert_eq!(last.get(Feature::NewCountry), 0.0);
        assert_eq!(last.context.country, Some(*b"RU"));
    }
}
