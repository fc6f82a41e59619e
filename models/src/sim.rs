//! Seeded, reproducible Open Banking traffic with labelled attack episodes (host only).
//!
//! Clients are TPPs calling the bank's API from their servers: an account aggregator polling
//! on a schedule, payment initiation in business hours, a mobile-app backend whose calls
//! follow its users' day, a nightly batch reconciler, a cron-driven status poller (one request
//! every fixed period, to the second). Each lives in a time zone, a country, an
//! ASN and one to three /24 networks, with its own user agent; legitimate oddities are mixed in
//! (failover to a spare network, a user-agent upgrade, late payments, polling bursts, clients
//! onboarded mid-run, 401/403/404 noise). Attack episodes reuse a victim's client id (stolen
//! credentials or tokens) or a fresh one, and every request of an episode carries its label
//! and episode id.
#![allow(clippy::indexing_slicing)] // host-only generator; indices come from ranges over the same vecs

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::records::{CustomerPresent, RawRecord, format_ts};

/// 2026-01-05T00:00:00Z, a Monday.
pub const EPOCH_MS: u64 = 1_767_571_200_000;
const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;

/// Simulation settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub clients: usize,
    pub days: u32,
    /// Attack episodes per simulated day.
    pub attacks_per_day: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Aggregator,
    Payments,
    MobileApp,
    Batch,
    /// Cron-driven status checks: one request every fixed period, to the second.
    Poller,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Aggregator => "agg",
            Profile::Payments => "pis",
            Profile::MobileApp => "app",
            Profile::Batch => "rec",
            Profile::Poller => "cron",
        }
    }
}

/// Where a TPP runs: (country, UTC offset minutes, ASNs).
const HOMES: [(&str, i32, [u32; 2]); 8] = [
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
const HOSTILE: [(&str, u32); 8] = [
    ("RU", 65100),
    ("CN", 65110),
    ("KP", 65120),
    ("NG", 65130),
    ("BR", 65140),
    ("VN", 65150),
    ("IR", 65160),
    ("RO", 65170),
];

const BOT_UAS: [&str; 5] = [
    "python-requests/2.32.3",
    "curl/8.7.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/126.0 Safari/537.36",
    "Scrapy/2.11 (+https://scrapy.org)",
    "",
];

const API: &str = "/open-banking/v3.1";

struct Client {
    id: String,
    profile: Profile,
    country: &'static str,
    offset_min: i32,
    asn: u32,
    prefixes: Vec<[u8; 3]>,
    spare_prefix: [u8; 3],
    ua: String,
    ua_upgrade: String,
    ua_upgrade_at: u64,
    failover_at: Option<u64>,
    start_ms: u64,
    psus: Vec<Psu>,
    /// Requests per hour at peak, or poll period / users per poll.
    intensity: f64,
    poll_period: u64,
}

struct Psu {
    sub: String,
    accounts: Vec<String>,
}

/// One generated request before serialisation.
struct Ev {
    ts_ms: u64,
    client: usize,
    sub: String,
    method: &'static str,
    path: String,
    status: u16,
    resp_bytes: u64,
    ip: IpAddr,
    country: &'static str,
    asn: u32,
    ua: String,
    customer_ip: Option<String>,
    label: &'static str,
    episode: Option<u32>,
}

struct Sim {
    rng: ChaCha8Rng,
    cfg: SimConfig,
    clients: Vec<Client>,
    events: Vec<Ev>,
    episodes: u32,
    /// Whether the current episode's attacker copies `x-fapi-customer-ip-address` (replaying a
    /// TPP's calls often copies its headers).
    attack_copies_customer_ip: bool,
}

fn exp_gap(rng: &mut ChaCha8Rng, mean_ms: f64) -> u64 {
    let u: f64 = rng.gen_range(1e-12..1.0);
    (-u.ln() * mean_ms) as u64
}

fn local_hour(ts: u64, offset_min: i32) -> f64 {
    let local = ts as i64 + i64::from(offset_min) * MIN as i64;
    (local.rem_euclid(DAY as i64) as f64) / HOUR as f64
}

fn weekday(ts: u64, offset_min: i32) -> u64 {
    let local = ts as i64 + i64::from(offset_min) * MIN as i64;
    (local.div_euclid(DAY as i64) as u64) % 7 // 0 = Monday
}

/// Mobile usage over a local day: low at night, peaks morning, lunch and evening.
fn diurnal(h: f64) -> f64 {
    let bump = |c: f64, w: f64| (-((h - c) / w).powi(2)).exp();
    0.03 + 0.6 * bump(8.0, 1.2) + 0.5 * bump(12.5, 1.0) + 1.0 * bump(20.0, 2.0)
}

fn ip(prefix: [u8; 3], rng: &mut ChaCha8Rng) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        prefix[0],
        prefix[1],
        prefix[2],
        rng.gen_range(2..250),
    ))
}

impl Sim {
    fn new(cfg: SimConfig) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            clients: Vec::new(),
            events: Vec::new(),
            episodes: 0,
            attack_copies_customer_ip: false,
        }
    }

    fn end_ms(&self) -> u64 {
        EPOCH_MS + u64::from(self.cfg.days) * DAY
    }

    fn random_prefix(&mut self) -> [u8; 3] {
        [
            self.rng.gen_range(11..223),
            self.rng.gen_range(0..=255),
            self.rng.gen_range(0..=255),
        ]
    }

    fn make_clients(&mut self) {
        for n in 0..self.cfg.clients {
            let profile = match n % 10 {
                0..=2 => Profile::MobileApp,
                3..=4 => Profile::Payments,
                5 => Profile::Poller,
                6..=8 => Profile::Aggregator,
                _ => Profile::Batch,
            };
            let home = HOMES[self.rng.gen_range(0..HOMES.len())];
            let asn = home.2[self.rng.gen_range(0..2)];
            let n_prefix = self.rng.gen_range(1..=3);
            let prefixes = (0..n_prefix).map(|_| self.random_prefix()).collect();
            let spare_prefix = self.random_prefix();
            let name = format!("{}{:03}", profile.name(), n);
            let ua_kind = self.rng.gen_range(0..4);
            let major = self.rng.gen_range(1..6);
            let minor = self.rng.gen_range(0..10);
            let ua_for = |minor: u32| match ua_kind {
                0 => format!("{name}-connector/{major}.{minor} (+https://{name}.example)"),
                1 => format!("okhttp/4.{minor}.0 {name}/{major}"),
                2 => format!("Java/17.0.{minor} {name}-ob-client/{major}"),
                _ => format!("Go-http-client/2.0 {name}/{major}.{minor}"),
            };
            let ua = ua_for(minor);
            let ua_upgrade = ua_for(minor + 1);
            let end = self.end_ms();
            let ua_upgrade_at =
                EPOCH_MS + self.rng.gen_range(DAY..(end - EPOCH_MS).max(DAY + 1)) * 3 / 2;
            let failover_at = (self.rng.gen_bool(0.3))
                .then(|| EPOCH_MS + self.rng.gen_range(DAY..(end - EPOCH_MS).max(DAY + 1)));
            // A few clients are onboarded during the run.
            let start_ms = if self.rng.gen_bool(0.1) {
                EPOCH_MS + self.rng.gen_range(0..(end - EPOCH_MS).max(1)) / 2
            } else {
                EPOCH_MS
            };
            let n_psus = match profile {
                Profile::Aggregator => self.rng.gen_range(40..200),
                Profile::Payments => self.rng.gen_range(50..300),
                Profile::MobileApp => self.rng.gen_range(100..600),
                Profile::Batch => self.rng.gen_range(20..80),
                Profile::Poller => self.rng.gen_range(5..40),
            };
            let psus = (0..n_psus)
                .map(|p| Psu {
                    sub: format!("psu-{n:03}-{p:04}"),
                    accounts: (0..self.rng.gen_range(1..=3))
                        .map(|_| format!("acc-{:08}", self.rng.gen_range(0..100_000_000u32)))
                        .collect(),
                })
                .collect();
            let (intensity, poll_period) = match profile {
                Profile::Aggregator => (
                    self.rng.gen_range(3.0..12.0),
                    [15, 30, 60][self.rng.gen_range(0..3)] * MIN,
                ),
                Profile::Payments => (self.rng.gen_range(6.0..40.0), 0),
                Profile::MobileApp => (self.rng.gen_range(10.0..60.0), 0),
                Profile::Batch => (1.0, DAY),
                // intensity 1.0: around the clock, 0.0: local business hours only.
                Profile::Poller => (
                    if self.rng.gen_bool(0.5) { 1.0 } else { 0.0 },
                    self.rng.gen_range(1..=15) * MIN,
                ),
            };
            self.clients.push(Client {
                id: format!("tpp-{name}"),
                profile,
                country: home.0,
                offset_min: home.1,
                asn,
                prefixes,
                spare_prefix,
                ua,
                ua_upgrade,
                ua_upgrade_at,
                failover_at,
                start_ms,
                psus,
                intensity,
                poll_period,
            });
        }
    }

    fn status_and_bytes(&mut self, typical: u64, writes: bool) -> (u16, u64) {
        let r: f64 = self.rng.r#gen();
        let status = if r < 0.003 {
            401
        } else if r < 0.005 {
            403
        } else if r < 0.010 {
            404
        } else if r < 0.011 {
            503
        } else if writes {
            201
        } else {
            200
        };
        let bytes = if status >= 400 {
            self.rng.gen_range(150..400)
        } else {
            let f: f64 = self.rng.gen_range(0.5..1.6);
            (typical as f64 * f) as u64
        };
        (status, bytes)
    }

    /// A legitimate request of client `c`.
    #[allow(clippy::too_many_arguments)]
    fn legit(
        &mut self,
        c: usize,
        ts: u64,
        sub: String,
        method: &'static str,
        path: String,
        typical: u64,
        customer: bool,
    ) {
        let (status, resp_bytes) = self.status_and_bytes(typical, method == "POST");
        let cl = &self.clients[c];
        let prefix = match cl.failover_at {
            Some(f) if ts >= f && ts < f + 6 * HOUR => cl.spare_prefix,
            _ => cl.prefixes[self.rng.gen_range(0..cl.prefixes.len())],
        };
        let ua = if ts >= cl.ua_upgrade_at {
            cl.ua_upgrade.clone()
        } else {
            cl.ua.clone()
        };
        let (country, asn) = (cl.country, cl.asn);
        let customer_ip = customer.then(|| {
            format!(
                "198.51.{}.{}",
                self.rng.gen_range(0..255),
                self.rng.gen_range(1..255)
            )
        });
        let ip = ip(prefix, &mut self.rng);
        self.events.push(Ev {
            ts_ms: ts,
            client: c,
            sub,
            method,
            path,
            status,
            resp_bytes,
            ip,
            country,
            asn,
            ua,
            customer_ip,
            label: "normal",
            episode: None,
        });
    }

    /// An account-information visit for one PSU: accounts, then balances and transactions.
    fn ais_visit(
        &mut self,
        c: usize,
        mut ts: u64,
        psu: usize,
        customer: bool,
        spacing_ms: u64,
    ) -> u64 {
        let sub = self.clients[c].psus[psu].sub.clone();
        let accounts = self.clients[c].psus[psu].accounts.clone();
        self.legit(
            c,
            ts,
            sub.clone(),
            "GET",
            format!("{API}/aisp/accounts"),
            1400,
            customer,
        );
        for acc in accounts {
            ts += self.rng.gen_range(spacing_ms / 2..spacing_ms * 2 + 1);
            self.legit(
                c,
                ts,
                sub.clone(),
                "GET",
                format!("{API}/aisp/accounts/{acc}/balances"),
                800,
                customer,
            );
            if self.rng.gen_bool(0.7) {
                ts += self.rng.gen_range(spacing_ms / 2..spacing_ms * 2 + 1);
                self.legit(
                    c,
                    ts,
                    sub.clone(),
                    "GET",
                    format!("{API}/aisp/accounts/{acc}/transactions"),
                    24_000,
                    customer,
                );
            }
        }
        ts
    }

    fn payment(&mut self, c: usize, mut ts: u64, psu: usize) {
        let sub = self.clients[c].psus[psu].sub.clone();
        let consent = format!("pcon-{:010}", self.rng.gen_range(0..u32::MAX));
        let pay = format!("pay-{:010}", self.rng.gen_range(0..u32::MAX));
        self.legit(
            c,
            ts,
            sub.clone(),
            "POST",
            format!("{API}/pisp/domestic-payment-consents"),
            1500,
            true,
        );
        ts += self.rng.gen_range(20_000..120_000);
        self.legit(
            c,
            ts,
            sub.clone(),
            "GET",
            format!("{API}/pisp/domestic-payment-consents/{consent}"),
            1500,
            true,
        );
        ts += self.rng.gen_range(500..5_000);
        self.legit(
            c,
            ts,
            sub.clone(),
            "POST",
            format!("{API}/pisp/domestic-payments"),
            1600,
            true,
        );
        if self.rng.gen_bool(0.5) {
            ts += self.rng.gen_range(2_000..60_000);
            self.legit(
                c,
                ts,
                sub,
                "GET",
                format!("{API}/pisp/domestic-payments/{pay}"),
                1400,
                false,
            );
        }
    }

    fn legit_traffic(&mut self) {
        let end = self.end_ms();
        for c in 0..self.clients.len() {
            let (profile, start, offset, intensity, period, n_psus) = {
                let cl = &self.clients[c];
                (
                    cl.profile,
                    cl.start_ms,
                    cl.offset_min,
                    cl.intensity,
                    cl.poll_period,
                    cl.psus.len(),
                )
            };
            match profile {
                Profile::Aggregator => {
                    let mut t = start + self.rng.gen_range(0..period);
                    while t < end {
                        // Poll a batch of users; occasionally a much bigger catch-up batch.
                        let mut batch = intensity as usize + self.rng.gen_range(0..3);
                        if self.rng.gen_bool(0.01) {
                            batch *= 4;
                        }
                        let mut ts = t + self.rng.gen_range(0..20_000);
                        for _ in 0..batch {
                            let psu = self.rng.gen_range(0..n_psus);
                            ts = self.ais_visit(c, ts, psu, false, 300)
                                + self.rng.gen_range(100..800);
                        }
                        t += period;
                    }
                }
                Profile::Payments => {
                    let mut t = start;
                    loop {
                        t += exp_gap(&mut self.rng, HOUR as f64 / intensity);
                        if t >= end {
                            break;
                        }
                        let h = local_hour(t, offset);
                        let wd = weekday(t, offset);
                        let open = wd < 5 && (8.0..18.0).contains(&h);
                        let late = (18.0..22.0).contains(&h) && self.rng.gen_bool(0.08);
                        let weekend = wd >= 5 && (9.0..17.0).contains(&h) && self.rng.gen_bool(0.1);
                        if open || late || weekend {
                            let psu = self.rng.gen_range(0..n_psus);
                            self.payment(c, t, psu);
                        }
                    }
                }
                Profile::MobileApp => {
                    let mut t = start;
                    // Thinning: candidate sessions at peak rate, kept with diurnal probability.
                    loop {
                        t += exp_gap(&mut self.rng, HOUR as f64 / intensity);
                        if t >= end {
                            break;
                        }
                        if self.rng.gen_bool(diurnal(local_hour(t, offset)).min(1.0)) {
                            let psu = self.rng.gen_range(0..n_psus);
                            self.ais_visit(c, t, psu, true, 1_500);
                        }
                    }
                }
                Profile::Poller => {
                    let around_the_clock = intensity > 0.5;
                    let customer = self.rng.gen_bool(0.2);
                    let mut t = start + self.rng.gen_range(0..period);
                    let mut tick = 0usize;
                    while t < end {
                        let h = local_hour(t, offset);
                        if around_the_clock || (weekday(t, offset) < 5 && (8.0..18.0).contains(&h))
                        {
                            let psu = tick % n_psus;
                            let sub = self.clients[c].psus[psu].sub.clone();
                            let acc = self.clients[c].psus[psu].accounts[0].clone();
                            let path = if tick.is_multiple_of(3) {
                                format!("{API}/pisp/domestic-payments/pay-{:010}", psu)
                            } else {
                                format!("{API}/aisp/accounts/{acc}/balances")
                            };
                            let jitter = self.rng.gen_range(0..1_500);
                            self.legit(c, t + jitter, sub, "GET", path, 900, customer);
                            tick += 1;
                        }
                        t += period;
                    }
                }
                Profile::Batch => {
                    let mut day = start - (start - EPOCH_MS) % DAY;
                    while day < end {
                        // 01:00-01:30 local.
                        let local_one = (DAY as i64 + HOUR as i64 - i64::from(offset) * MIN as i64)
                            as u64
                            % DAY;
                        let mut ts = day + local_one + self.rng.gen_range(0..30 * MIN);
                        if ts >= start {
                            for psu in 0..n_psus {
                                ts = self.ais_visit(c, ts, psu, false, 200)
                                    + self.rng.gen_range(50..400);
                            }
                        }
                        day += DAY;
                    }
                }
            }
        }
    }

    /// Push one attack request.
    #[allow(clippy::too_many_arguments)]
    fn attack(
        &mut self,
        ep: u32,
        label: &'static str,
        c: usize,
        ts: u64,
        sub: String,
        path: String,
        status: u16,
        resp_bytes: u64,
        ip: IpAddr,
        country: &'static str,
        asn: u32,
        ua: String,
    ) {
        let customer_ip = self.attack_copies_customer_ip.then(|| {
            format!(
                "198.51.{}.{}",
                self.rng.gen_range(0..255),
                self.rng.gen_range(1..255)
            )
        });
        self.events.push(Ev {
            ts_ms: ts,
            client: c,
            sub,
            method: "GET",
            path,
            status,
            resp_bytes,
            ip,
            country,
            asn,
            ua,
            customer_ip,
            label,
            episode: Some(ep),
        });
    }

    fn new_attacker_client(&mut self) -> usize {
        let n = self.clients.len();
        let prefix = self.random_prefix();
        self.clients.push(Client {
            id: format!("tpp-new{n:04}"),
            profile: Profile::MobileApp,
            country: "GB",
            offset_min: 0,
            asn: 64599,
            prefixes: vec![prefix],
            spare_prefix: prefix,
            ua: String::new(),
            ua_upgrade: String::new(),
            ua_upgrade_at: u64::MAX,
            failover_at: None,
            start_ms: 0,
            psus: Vec::new(),
            intensity: 0.0,
            poll_period: 0,
        });
        n
    }

    fn attacks(&mut self) {
        let legit_clients = self.clients.len();
        if legit_clients == 0 {
            return;
        }
        let end = self.end_ms();
        let first = EPOCH_MS + 2 * DAY.min((end - EPOCH_MS) / 3);
        let n = (self.cfg.attacks_per_day * f64::from(self.cfg.days)).round() as usize;
        for i in 0..n {
            let kind = i % 7;
            let ep = self.episodes;
            self.episodes += 1;
            self.attack_copies_customer_ip = self.rng.gen_bool(0.4);
            let victim = self.rng.gen_range(0..legit_clients);
            let start = self.rng.gen_range(first..end.max(first + 1));
            let (hostile_country, hostile_asn) = HOSTILE[self.rng.gen_range(0..HOSTILE.len())];
            let hostile_prefix = self.random_prefix();
            let victim_ua = self.clients[victim].ua.clone();
            let victim_home = (
                self.clients[victim].country,
                self.clients[victim].asn,
                self.clients[victim].prefixes[0],
            );
            let victim_accounts: Vec<(String, String)> = self.clients[victim]
                .psus
                .iter()
                .flat_map(|p| p.accounts.iter().map(|a| (p.sub.clone(), a.clone())))
                .collect();
            let pick_account =
                |rng: &mut ChaCha8Rng| victim_accounts.choose(rng).cloned().unwrap_or_default();
            match kind {
                0 => {
                    // Credential stuffing / token spraying from a botnet: many subs, mostly refused.
                    let c = if self.rng.gen_bool(0.5) {
                        victim
                    } else {
                        self.new_attacker_client()
                    };
                    let mut ts = start;
                    for _ in 0..self.rng.gen_range(40..200) {
                        ts += self.rng.gen_range(200..3_000);
                        let (country, asn) = HOSTILE[self.rng.gen_range(0..HOSTILE.len())];
                        let p = self.random_prefix();
                        let ip = ip(p, &mut self.rng);
                        let status = if self.rng.gen_bool(0.85) { 401 } else { 200 };
                        let ua = BOT_UAS[self.rng.gen_range(0..BOT_UAS.len())].to_string();
                        let sub = format!("psu-x{}", self.rng.gen_range(0..100_000));
                        self.attack(
                            ep,
                            "credential_stuffing",
                            c,
                            ts,
                            sub,
                            format!("{API}/aisp/accounts"),
                            status,
                            300,
                            ip,
                            country,
                            asn,
                            ua,
                        );
                    }
                }
                1 => {
                    // BOLA: the victim's own network and software walks account ids.
                    let mut ts = start;
                    let base: u32 = self.rng.gen_range(0..90_000_000);
                    let step = self.rng.gen_range(1..4);
                    let (country, asn, prefix) = victim_home;
                    for k in 0..self.rng.gen_range(30..300u32) {
                        ts += self.rng.gen_range(1_000..8_000);
                        let acc = format!("acc-{:08}", base + k * step);
                        let status = if self.rng.gen_bool(0.8) { 403 } else { 200 };
                        let ip = ip(prefix, &mut self.rng);
                        let (sub, _) = pick_account(&mut self.rng);
                        self.attack(
                            ep,
                            "bola_enumeration",
                            victim,
                            ts,
                            sub,
                            format!("{API}/aisp/accounts/{acc}/balances"),
                            status,
                            700,
                            ip,
                            country,
                            asn,
                            victim_ua.clone(),
                        );
                    }
                }
                2 => {
                    // 3 AM local, from a hostile country, with the victim's credentials.
                    let offset = self.clients[victim].offset_min;
                    let day = start - (start - EPOCH_MS) % DAY;
                    let three = (DAY as i64 + 3 * HOUR as i64 - i64::from(offset) * MIN as i64)
                        as u64
                        % DAY;
                    let mut ts = day + three + self.rng.gen_range(0..40 * MIN);
                    for _ in 0..self.rng.gen_range(20..80) {
                        ts += self.rng.gen_range(2_000..20_000);
                        let (sub, acc) = pick_account(&mut self.rng);
                        let ip = ip(hostile_prefix, &mut self.rng);
                        let path = if self.rng.gen_bool(0.5) {
                            format!("{API}/aisp/accounts/{acc}/balances")
                        } else {
                            format!("{API}/aisp/accounts/{acc}/transactions")
                        };
                        self.attack(
                            ep,
                            "offhours_new_country",
                            victim,
                            ts,
                            sub,
                            path,
                            200,
                            9_000,
                            ip,
                            hostile_country,
                            hostile_asn,
                            victim_ua.clone(),
                        );
                    }
                }
                3 => {
                    // Stolen token replayed from a new network in the same country.
                    let (sub, acc) = pick_account(&mut self.rng);
                    let mut ts = start;
                    let asn = 65200 + self.rng.gen_range(0..50);
                    let ua = format!(
                        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/12{}.0",
                        self.rng.gen_range(0..9)
                    );
                    for _ in 0..self.rng.gen_range(10..50) {
                        ts += self.rng.gen_range(3_000..30_000);
                        let ip = ip(hostile_prefix, &mut self.rng);
                        let path = match self.rng.gen_range(0..3) {
                            0 => format!("{API}/aisp/accounts"),
                            1 => format!("{API}/aisp/accounts/{acc}/balances"),
                            _ => format!("{API}/aisp/accounts/{acc}/transactions"),
                        };
                        self.attack(
                            ep,
                            "token_replay",
                            victim,
                            ts,
                            sub.clone(),
                            path,
                            200,
                            5_000,
                            ip,
                            victim_home.0,
                            asn,
                            ua.clone(),
                        );
                    }
                }
                4 => {
                    // Bulk exfiltration: every account's full transaction history, fast.
                    let mut ts = start;
                    let from_home = self.rng.gen_bool(0.5);
                    for _ in 0..self.rng.gen_range(50..300) {
                        ts += self.rng.gen_range(300..2_500);
                        let (sub, acc) = pick_account(&mut self.rng);
                        let (country, asn, ip) = if from_home {
                            (
                                victim_home.0,
                                victim_home.1,
                                ip(victim_home.2, &mut self.rng),
                            )
                        } else {
                            (
                                hostile_country,
                                hostile_asn,
                                ip(hostile_prefix, &mut self.rng),
                            )
                        };
                        let page = self.rng.gen_range(1..50);
                        let bytes = self.rng.gen_range(200_000..900_000);
                        self.attack(ep, "bulk_exfiltration", victim, ts, sub, format!("{API}/aisp/accounts/{acc}/transactions?page={page}&fromBookingDateTime=2015-01-01"), 200, bytes, ip, country, asn, victim_ua.clone());
                    }
                }
                5 => {
                    // Scraping bot: metronomic, scripted client, cloud network.
                    let c = if self.rng.gen_bool(0.5) {
                        victim
                    } else {
                        self.new_attacker_client()
                    };
                    let period = self.rng.gen_range(800..3_000);
                    let mut ts = start;
                    let ua = BOT_UAS[self.rng.gen_range(0..BOT_UAS.len() - 1)].to_string();
                    let asn = [16509, 14061, 24940, 63949][self.rng.gen_range(0..4)];
                    for _ in 0..self.rng.gen_range(100..500) {
                        ts += period + self.rng.gen_range(0..40);
                        let (sub, acc) = pick_account(&mut self.rng);
                        let path = match self.rng.gen_range(0..4) {
                            0 => format!("{API}/aisp/accounts/{acc}/beneficiaries"),
                            1 => format!("{API}/aisp/accounts/{acc}/standing-orders"),
                            2 => format!("{API}/aisp/accounts/{acc}/direct-debits"),
                            _ => format!("{API}/aisp/accounts/{acc}/statements"),
                        };
                        let ip = ip(hostile_prefix, &mut self.rng);
                        self.attack(
                            ep,
                            "scraping_bot",
                            c,
                            ts,
                            sub,
                            path,
                            200,
                            3_000,
                            ip,
                            "US",
                            asn,
                            ua.clone(),
                        );
                    }
                }
                _ => {
                    // Low and slow: a few requests an hour from a new network, walking ids.
                    let mut ts = start;
                    let base: u32 = self.rng.gen_range(0..90_000_000);
                    for k in 0..self.rng.gen_range(20..60u32) {
                        ts += self.rng.gen_range(2 * MIN..15 * MIN);
                        let acc = format!("acc-{:08}", base + k * 7);
                        let status = if self.rng.gen_bool(0.7) { 404 } else { 200 };
                        let ip = ip(hostile_prefix, &mut self.rng);
                        let (sub, _) = pick_account(&mut self.rng);
                        self.attack(
                            ep,
                            "low_and_slow",
                            victim,
                            ts,
                            sub,
                            format!("{API}/aisp/accounts/{acc}"),
                            status,
                            600,
                            ip,
                            hostile_country,
                            hostile_asn,
                            victim_ua.clone(),
                        );
                    }
                }
            }
        }
    }
}

/// Summary of a simulation run.
#[derive(Debug, Clone, Copy)]
pub struct SimSummary {
    pub records: usize,
    pub attack_records: usize,
    pub episodes: u32,
}

/// Simulate and write JSONL records in time order.
pub fn simulate(cfg: SimConfig, out: &mut impl Write) -> std::io::Result<SimSummary> {
    let mut sim = Sim::new(cfg);
    sim.make_clients();
    sim.legit_traffic();
    sim.attacks();
    let end = sim.end_ms();
    sim.events.retain(|e| e.ts_ms < end);
    // Stable: equal timestamps keep generation order, so output is reproducible.
    sim.events.sort_by_key(|e| e.ts_ms);
    let mut summary = SimSummary {
        records: 0,
        attack_records: 0,
        episodes: sim.episodes,
    };
    for e in &sim.events {
        let raw = RawRecord {
            ts: format_ts(e.ts_ms),
            client_id: sim.clients[e.client].id.clone(),
            sub: Some(e.sub.clone()),
            method: e.method.to_string(),
            path: e.path.clone(),
            status: e.status,
            resp_bytes: e.resp_bytes,
            ip: Some(e.ip.to_string()),
            country: Some(e.country.to_string()),
            asn: Some(crate::records::Asn::Number(e.asn)),
            user_agent: Some(e.ua.clone()),
            route: None,
            customer_present: match &e.customer_ip {
                Some(a) => CustomerPresent::Address(a.clone()),
                None => CustomerPresent::Flag(false),
            },
            label: Some(e.label.to_string()),
            episode: e.episode.map(|n| format!("ep-{n:05}")),
        };
        serde_json::to_writer(&mut *out, &raw)?;
        out.write_all(b"\n")?;
        summary.records += 1;
        if e.label != "normal" {
            summary.attack_records += 1;
        }
    }
    Ok(summary)
}
