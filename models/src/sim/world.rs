//! The world's fixed facts (where TPPs and attackers live, what bots call themselves, the API
//! prefix) and its clock: local hours, weekdays, the mobile day, random gaps and addresses.

use std::net::{IpAddr, Ipv4Addr};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::Sim;

pub(super) const MIN: u64 = 60_000;
pub(super) const HOUR: u64 = 60 * MIN;
pub(super) const DAY: u64 = 24 * HOUR;

/// Where a TPP runs: (country, UTC offset minutes, ASNs).
pub(super) const HOMES: [(&str, i32, [u32; 2]); 8] = [
    ("GB", 0, [64500, 64501]),
    ("GB", 0, [64502, 16509]),
    ("IE", 0, [64510, 16509]),
    ("DE", 60, [64520, 24940]),
    ("FR", 60, [64530, 16276]),
    ("NL", 60, [64540, 60781]),
    ("US", -300, [64550, 14618]),
    ("IN", 330, [64560, 16509]),
];

/// Where attackers come from.
pub(super) const HOSTILE: [(&str, u32); 8] = [
    ("RU", 65100),
    ("CN", 65110),
    ("KP", 65120),
    ("NG", 65130),
    ("BR", 65140),
    ("VN", 65150),
    ("IR", 65160),
    ("RO", 65170),
];

pub(super) const BOT_UAS: [&str; 5] = [
    "python-requests/2.32.3",
    "curl/8.7.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/126.0 Safari/537.36",
    "Scrapy/2.11 (+https://scrapy.org)",
    "",
];

pub(super) const API: &str = "/open-banking/v3.1";

/// An exponentially distributed gap with mean `mean_ms` (Poisson arrivals).
pub(super) fn exp_gap(rng: &mut ChaCha8Rng, mean_ms: f64) -> u64 {
    let u: f64 = rng.gen_range(1e-12..1.0);
    (-u.ln() * mean_ms) as u64
}

pub(super) fn local_hour(ts: u64, offset_min: i32) -> f64 {
    let local = ts as i64 + i64::from(offset_min) * MIN as i64;
    (local.rem_euclid(DAY as i64) as f64) / HOUR as f64
}

pub(super) fn weekday(ts: u64, offset_min: i32) -> u64 {
    let local = ts as i64 + i64::from(offset_min) * MIN as i64;
    (local.div_euclid(DAY as i64) as u64) % 7 // 0 = Monday
}

/// The UTC start of `local_hour` o'clock in a zone `offset_min` east of UTC, as an offset
/// into the UTC day.
pub(super) fn local_time_of_day(local_hour: u64, offset_min: i32) -> u64 {
    (DAY as i64 + local_hour as i64 * HOUR as i64 - i64::from(offset_min) * MIN as i64) as u64 % DAY
}

/// Midnight UTC of the simulated day `ts` falls in.
pub(super) fn day_start(ts: u64) -> u64 {
    ts - (ts - super::EPOCH_MS) % DAY
}

/// Mobile usage over a local day: low at night, peaks morning, lunch and evening.
pub(super) fn diurnal(h: f64) -> f64 {
    let bump = |c: f64, w: f64| (-((h - c) / w).powi(2)).exp();
    0.03 + 0.6 * bump(8.0, 1.2) + 0.5 * bump(12.5, 1.0) + 1.0 * bump(20.0, 2.0)
}

/// A host in the /24 `prefix`.
pub(super) fn ip(prefix: [u8; 3], rng: &mut ChaCha8Rng) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        prefix[0],
        prefix[1],
        prefix[2],
        rng.gen_range(2..250),
    ))
}

/// A `x-fapi-customer-ip-address` value (TEST-NET-2).
pub(super) fn customer_ip(rng: &mut ChaCha8Rng) -> String {
    format!("198.51.{}.{}", rng.gen_range(0..255), rng.gen_range(1..255))
}

impl Sim {
    /// A random public-looking /24.
    pub(super) fn random_prefix(&mut self) -> [u8; 3] {
        [
            self.rng.gen_range(11..223),
            self.rng.gen_range(0..=255),
            self.rng.gen_range(0..=255),
        ]
    }
}
