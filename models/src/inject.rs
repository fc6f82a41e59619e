//! Training without labels (host only): a bank's own access logs have no attack labels, so
//! attack episodes are **injected into the real clients' streams**, starting from each
//! victim's real resource ids, paths, networks, user agents, subjects and active hours, and
//! labelled; the real records are kept as they are and count as normal. The model then
//! learns what an attack on *these* clients looks like against *their* baselines.
//!
//! Two passes over the records: the first builds a bounded profile per client (samples of
//! what it really sent), the second merges the generated episodes into the stream in time
//! order. Real records must be in time order (as `train` needs anyway).
#![allow(clippy::indexing_slicing)] // host-only code over vectors it sized itself

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use anyhow::{Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::event::split_path;
use crate::features::user_agent_product;
use crate::records::{self, Asn, CustomerPresent, RawRecord, Record, format_ts};

/// How many episodes to inject and from which seed.
#[derive(Debug, Clone, Copy)]
pub struct InjectConfig {
    pub seed: u64,
    /// Episodes in total, spread over the attack kinds and the eligible clients.
    pub episodes: u32,
    /// Clients with fewer requests are not used as victims (no baseline to speak of).
    pub min_victim_requests: u64,
}

impl Default for InjectConfig {
    fn default() -> Self {
        Self {
            seed: 17,
            episodes: 240,
            min_victim_requests: 200,
        }
    }
}

/// What [`inject_file`] wrote.
#[derive(Debug, Clone, Default)]
pub struct InjectSummary {
    pub real_records: u64,
    /// Real records that carried an attack label: written as normal (unlabelled training
    /// cannot know them).
    pub relabelled: u64,
    pub injected_records: u64,
    pub episodes: u32,
    pub per_kind: BTreeMap<&'static str, u32>,
    pub victims: usize,
}

/// The attack kinds injected, each built from the victim's own profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// Fast walk over ids the client never touched (mostly 403/404).
    Enumeration,
    /// The same walk, one request every few minutes.
    LowAndSlow,
    /// The client's token used from a new network (often another country) with another
    /// user agent.
    TokenReplay,
    /// The client's credentials driven by a tool (curl, Postman, a headless browser).
    ToolScraping,
    /// Many of the client's real accounts, full histories, at its quietest hour.
    NightExfiltration,
    /// One account read again and again without the customer.
    OverPolling,
    /// Payments in a burst through the client's payment routes.
    PaymentBurst,
    /// Many subjects, mostly refused.
    CredentialStuffing,
    /// The client's usual calls at its quietest hour from a new country and ASN.
    OffHoursNewCountry,
}

impl Attack {
    pub const ALL: [Attack; 9] = [
        Attack::Enumeration,
        Attack::LowAndSlow,
        Attack::TokenReplay,
        Attack::ToolScraping,
        Attack::NightExfiltration,
        Attack::OverPolling,
        Attack::PaymentBurst,
        Attack::CredentialStuffing,
        Attack::OffHoursNewCountry,
    ];

    /// The record label.
    pub fn label(self) -> &'static str {
        match self {
            Attack::Enumeration => "injected_enumeration",
            Attack::LowAndSlow => "injected_low_and_slow",
            Attack::TokenReplay => "injected_token_replay",
            Attack::ToolScraping => "injected_tool_scraping",
            Attack::NightExfiltration => "injected_night_exfiltration",
            Attack::OverPolling => "injected_over_polling",
            Attack::PaymentBurst => "injected_payment_burst",
            Attack::CredentialStuffing => "injected_credential_stuffing",
            Attack::OffHoursNewCountry => "injected_offhours_new_country",
        }
    }
}

/// Bounded reservoir sample.
#[derive(Debug, Clone, Default)]
struct Sample<T> {
    seen: u64,
    items: Vec<T>,
}

impl<T> Sample<T> {
    fn offer(&mut self, cap: usize, item: T, rng: &mut ChaCha8Rng) {
        self.seen += 1;
        if self.items.len() < cap {
            self.items.push(item);
        } else {
            let j = rng.gen_range(0..self.seen);
            if let Some(slot) = usize::try_from(j).ok().and_then(|j| self.items.get_mut(j)) {
                *slot = item;
            }
        }
    }
}

/// What one real client sent, sampled.
#[derive(Debug, Clone, Default)]
struct Profile {
    requests: u64,
    first_ms: u64,
    last_ms: u64,
    hours: [u64; 24],
    bytes_total: u64,
    times: Sample<u64>,
    get_paths: Sample<String>,
    id_paths: Sample<String>,
    post_paths: Sample<String>,
    ids: Sample<String>,
    subs: Sample<String>,
    networks: Sample<(Option<IpAddr>, Option<String>, Option<u32>)>,
    agents: HashMap<String, u64>,
}

impl Profile {
    fn usual_agent(&self) -> Option<String> {
        self.agents
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(ua, _)| ua.clone())
    }

    fn mean_bytes(&self) -> u64 {
        self.bytes_total / self.requests.max(1)
    }

    fn quietest_hour(&self) -> u64 {
        (0..24u64)
            .min_by_key(|h| self.hours[*h as usize])
            .unwrap_or(3)
    }

    fn products(&self) -> Vec<String> {
        self.agents
            .keys()
            .filter_map(|ua| user_agent_product(Some(ua)))
            .map(str::to_ascii_lowercase)
            .collect()
    }

    fn countries(&self) -> Vec<String> {
        self.networks
            .items
            .iter()
            .filter_map(|n| n.1.clone())
            .collect()
    }
}

const TOOL_AGENTS: [&str; 7] = [
    "curl/8.5.0",
    "PostmanRuntime/7.36.0",
    "Wget/1.21.4",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "insomnia/8.4.5",
];
const BROWSER_AGENTS: [&str; 2] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
];
const HOSTILE_COUNTRIES: [&str; 8] = ["RU", "CN", "NG", "BR", "VN", "IR", "KP", "UA"];

fn profiles(path: &Path, rng: &mut ChaCha8Rng) -> Result<BTreeMap<String, Profile>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out: BTreeMap<String, Profile> = BTreeMap::new();
    for record in records::read(BufReader::with_capacity(1 << 20, file)) {
        let r = record?;
        let p = out.entry(r.client_id.clone()).or_default();
        if p.requests == 0 {
            p.first_ms = r.ts_ms;
        }
        p.requests += 1;
        p.last_ms = p.last_ms.max(r.ts_ms);
        p.hours[((r.ts_ms / 3_600_000) % 24) as usize] += 1;
        p.bytes_total = p.bytes_total.saturating_add(r.resp_bytes);
        p.times.offer(512, r.ts_ms, rng);
        let (_, ids) = split_path(&r.path);
        if r.method == "GET" {
            p.get_paths.offer(64, r.path.clone(), rng);
            if !ids.is_empty() {
                p.id_paths.offer(64, r.path.clone(), rng);
            }
        } else if r.method == "POST" && r.status < 400 {
            p.post_paths.offer(16, r.path.clone(), rng);
        }
        for id in ids {
            p.ids.offer(256, id.to_string(), rng);
        }
        if let Some(sub) = &r.sub {
            p.subs.offer(64, sub.clone(), rng);
        }
        p.networks.offer(16, (r.ip, r.country.clone(), r.asn), rng);
        if let Some(ua) = &r.user_agent
            && (p.agents.len() < 16 || p.agents.contains_key(ua))
        {
            *p.agents.entry(ua.clone()).or_insert(0) += 1;
        }
    }
    Ok(out)
}

/// An id of the same shape as `like` that the client has not used: every digit and
/// letter redrawn in its class.
fn fabricate_id(like: &str, rng: &mut ChaCha8Rng) -> String {
    like.chars()
        .map(|c| {
            if c.is_ascii_digit() {
                char::from(b'0' + rng.gen_range(0..10u8))
            } else if c.is_ascii_lowercase() && rng.gen_bool(0.5) {
                char::from(b'a' + rng.gen_range(0..26u8))
            } else if c.is_ascii_uppercase() && rng.gen_bool(0.5) {
                char::from(b'A' + rng.gen_range(0..26u8))
            } else {
                c
            }
        })
        .collect()
}

/// `path` with its first resource id replaced by `id`.
fn with_id(path: &str, id: &str) -> String {
    let (_, ids) = split_path(path);
    match ids.first() {
        Some(old) => path.replacen(old, id, 1),
        None => path.to_string(),
    }
}

fn new_network(rng: &mut ChaCha8Rng, foreign: bool, known: &[String]) -> (IpAddr, String, u32) {
    let ip = IpAddr::V4(Ipv4Addr::new(
        [45, 89, 185, 193, 5][rng.gen_range(0..5)],
        rng.gen_range(1..255),
        rng.gen_range(0..255),
        rng.gen_range(1..255),
    ));
    let country = if foreign {
        let options: Vec<&str> = HOSTILE_COUNTRIES
            .iter()
            .copied()
            .filter(|c| !known.iter().any(|k| k.eq_ignore_ascii_case(c)))
            .collect();
        options.choose(rng).copied().unwrap_or("RU").to_string()
    } else {
        known.first().cloned().unwrap_or_else(|| "GB".to_string())
    };
    (ip, country, rng.gen_range(200_000..210_000))
}

fn pick<'a>(items: &'a [String], rng: &mut ChaCha8Rng) -> Option<&'a String> {
    items.choose(rng)
}

/// A request of an injected episode.
struct Injected {
    ts_ms: u64,
    raw: RawRecord,
}

struct Episode<'a> {
    kind: Attack,
    id: String,
    client: &'a str,
    profile: &'a Profile,
    out: Vec<Injected>,
}

impl Episode<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        ts_ms: u64,
        method: &str,
        path: String,
        status: u16,
        resp_bytes: u64,
        network: (Option<IpAddr>, Option<String>, Option<u32>),
        user_agent: Option<String>,
        sub: Option<String>,
    ) {
        self.out.push(Injected {
            ts_ms,
            raw: RawRecord {
                ts: format_ts(ts_ms),
                client_id: self.client.to_string(),
                sub,
                method: method.to_string(),
                path,
                status,
                resp_bytes,
                ip: network.0.map(|ip| ip.to_string()),
                country: network.1,
                asn: network.2.map(Asn::Number),
                user_agent,
                route: None,
                customer_present: CustomerPresent::Flag(false),
                label: Some(self.kind.label().to_string()),
                episode: Some(self.id.clone()),
            },
        });
    }
}

/// One episode of `kind` against `client`, starting near `start_ms`.
fn generate(ep: &mut Episode<'_>, start_ms: u64, rng: &mut ChaCha8Rng) {
    let p = ep.profile;
    let home = p
        .networks
        .items
        .choose(rng)
        .cloned()
        .unwrap_or((None, None, None));
    let agent = p.usual_agent();
    let countries = p.countries();
    let products = p.products();
    let sub = pick(&p.subs.items, rng).cloned();
    let foreign_tool = || -> Vec<&'static str> {
        TOOL_AGENTS
            .iter()
            .copied()
            .filter(|t| {
                user_agent_product(Some(t))
                    .is_some_and(|pr| !products.contains(&pr.to_ascii_lowercase()))
            })
            .collect()
    };
    let tool = foreign_tool().choose(rng).copied().unwrap_or("curl/8.5.0");
    // A network the victim never used; another country with probability `p_foreign`.
    let away = |rng: &mut ChaCha8Rng, p_foreign: f64| {
        let foreign = rng.gen_bool(p_foreign);
        let (ip, c, a) = new_network(rng, foreign, &countries);
        (Some(ip), Some(c), Some(a))
    };
    let id_path = pick(&p.id_paths.items, rng)
        .cloned()
        .unwrap_or_else(|| "/open-banking/v3.1/aisp/accounts/acc-0001/balances".to_string());
    let like_id = split_path(&id_path).1.first().map(|s| s.to_string());
    let like_id = like_id.unwrap_or_else(|| "acc-0001".to_string());
    let mean_bytes = p.mean_bytes().max(500);
    let night = {
        let day_start = start_ms - start_ms % 86_400_000;
        day_start + p.quietest_hour() * 3_600_000 + rng.gen_range(0..3_000_000)
    };
    let mut t = start_ms;
    match ep.kind {
        Attack::Enumeration | Attack::LowAndSlow => {
            let slow = ep.kind == Attack::LowAndSlow;
            let n = if slow {
                rng.gen_range(20..50)
            } else {
                rng.gen_range(30..150)
            };
            let network = if rng.gen_bool(0.5) {
                home.clone()
            } else {
                away(rng, 0.3)
            };
            for _ in 0..n {
                let ts = if slow {
                    gap(rng, 120.0, 900.0, &mut t)
                } else {
                    gap(rng, 0.3, 5.0, &mut t)
                };
                let status = match rng.gen_range(0..10) {
                    0..=6 => 403,
                    7 | 8 => 404,
                    _ => 200,
                };
                let path = with_id(&id_path, &fabricate_id(&like_id, rng));
                ep.push(
                    ts,
                    "GET",
                    path,
                    status,
                    300,
                    network.clone(),
                    agent.clone(),
                    sub.clone(),
                );
            }
        }
        Attack::TokenReplay => {
            let network = away(rng, 0.5);
            let ua = BROWSER_AGENTS
                .choose(rng)
                .map(|s| s.to_string())
                .or(Some(tool.to_string()));
            let n = rng.gen_range(20..80);
            let reads = VictimReads {
                n,
                gaps: (2.0, 60.0),
                bytes: mean_bytes,
                network,
                user_agent: ua,
                sub,
            };
            reads.send(ep, rng, &mut t, &id_path);
        }
        Attack::ToolScraping => {
            let n = rng.gen_range(50..200);
            let user_agent = Some(tool.to_string());
            let reads = VictimReads {
                n,
                gaps: (0.2, 3.0),
                bytes: mean_bytes,
                network: home,
                user_agent,
                sub,
            };
            reads.send(ep, rng, &mut t, &id_path);
        }
        Attack::NightExfiltration => {
            t = night.max(start_ms);
            let network = if rng.gen_bool(0.5) {
                home.clone()
            } else {
                away(rng, 0.5)
            };
            for _ in 0..rng.gen_range(40..200) {
                let ts = gap(rng, 1.0, 10.0, &mut t);
                let id = pick(&p.ids.items, rng)
                    .cloned()
                    .unwrap_or_else(|| like_id.clone());
                let path = format!(
                    "{}?fromBookingDateTime=2000-01-01T00:00:00Z",
                    with_id(&id_path, &id)
                );
                let bytes = mean_bytes * rng.gen_range(10..40);
                ep.push(
                    ts,
                    "GET",
                    path,
                    200,
                    bytes,
                    network.clone(),
                    agent.clone(),
                    pick(&p.subs.items, rng).cloned(),
                );
            }
        }
        Attack::OverPolling => {
            let id = pick(&p.ids.items, rng)
                .cloned()
                .unwrap_or_else(|| like_id.clone());
            let path = with_id(&id_path, &id);
            for _ in 0..rng.gen_range(20..60) {
                let ts = gap(rng, 180.0, 1200.0, &mut t);
                ep.push(
                    ts,
                    "GET",
                    path.clone(),
                    200,
                    mean_bytes,
                    home.clone(),
                    agent.clone(),
                    sub.clone(),
                );
            }
        }
        Attack::PaymentBurst => {
            let path = pick(&p.post_paths.items, rng)
                .cloned()
                .unwrap_or_else(|| "/open-banking/v3.1/pisp/domestic-payments".to_string());
            let network = if rng.gen_bool(0.6) {
                home.clone()
            } else {
                away(rng, 0.0)
            };
            for _ in 0..rng.gen_range(20..60) {
                let ts = gap(rng, 3.0, 60.0, &mut t);
                ep.push(
                    ts,
                    "POST",
                    path.clone(),
                    201,
                    900,
                    network.clone(),
                    agent.clone(),
                    sub.clone(),
                );
            }
        }
        Attack::CredentialStuffing => {
            let network = away(rng, 0.5);
            let like_sub = sub.clone().unwrap_or_else(|| "psu-0001".to_string());
            for _ in 0..rng.gen_range(50..300) {
                let ts = gap(rng, 0.1, 2.0, &mut t);
                let status = if rng.gen_bool(0.9) { 401 } else { 200 };
                let path = pick(&p.get_paths.items, rng)
                    .cloned()
                    .unwrap_or_else(|| id_path.clone());
                let ua = if rng.gen_bool(0.5) {
                    agent.clone()
                } else {
                    Some(tool.to_string())
                };
                ep.push(
                    ts,
                    "GET",
                    path,
                    status,
                    120,
                    network.clone(),
                    ua,
                    Some(fabricate_id(&like_sub, rng)),
                );
            }
        }
        Attack::OffHoursNewCountry => {
            t = night.max(start_ms);
            let network = away(rng, 1.0);
            let n = rng.gen_range(10..40);
            let reads = VictimReads {
                n,
                gaps: (5.0, 90.0),
                bytes: mean_bytes,
                network,
                user_agent: agent,
                sub,
            };
            reads.send(ep, rng, &mut t, &id_path);
        }
    }
}

/// `n` GETs of the victim's own paths, `gaps` seconds apart, all answered 200: what a stolen
/// token or credentials read when the attacker behaves like the client.
struct VictimReads {
    n: u32,
    gaps: (f64, f64),
    bytes: u64,
    network: (Option<IpAddr>, Option<String>, Option<u32>),
    user_agent: Option<String>,
    sub: Option<String>,
}

impl VictimReads {
    fn send(self, ep: &mut Episode<'_>, rng: &mut ChaCha8Rng, t: &mut u64, fallback: &str) {
        let paths = &ep.profile.get_paths.items;
        for _ in 0..self.n {
            let ts = gap(rng, self.gaps.0, self.gaps.1, t);
            let path = pick(paths, rng).map_or_else(|| fallback.to_string(), Clone::clone);
            ep.push(
                ts,
                "GET",
                path,
                200,
                self.bytes,
                self.network.clone(),
                self.user_agent.clone(),
                self.sub.clone(),
            );
        }
    }
}

/// Advance `t` by a random gap of `lo..hi` seconds and return it.
fn gap(rng: &mut ChaCha8Rng, lo: f64, hi: f64, t: &mut u64) -> u64 {
    *t += (rng.gen_range(lo..hi) * 1000.0) as u64;
    *t
}

fn write_raw(out: &mut impl Write, raw: &RawRecord) -> Result<()> {
    serde_json::to_writer(&mut *out, raw)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Read `input` (real, unlabelled records), write it to `output` with injected, labelled
/// attack episodes merged in time order. Labels already in `input` are dropped (written as
/// normal): this is the path for logs whose labels nobody knows.
pub fn inject_file(input: &Path, output: &Path, cfg: &InjectConfig) -> Result<InjectSummary> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let profiles = profiles(input, &mut rng)?;
    let victims: Vec<(&String, &Profile)> = profiles
        .iter()
        .filter(|(_, p)| p.requests >= cfg.min_victim_requests && p.last_ms > p.first_ms)
        .collect();
    let mut summary = InjectSummary {
        victims: victims.len(),
        ..InjectSummary::default()
    };
    let mut injected: Vec<Injected> = Vec::new();
    if !victims.is_empty() {
        for n in 0..cfg.episodes {
            let kind = Attack::ALL[n as usize % Attack::ALL.len()];
            let Some((client, profile)) = victims.choose(&mut rng).copied() else {
                break;
            };
            // After the victim's first day, so its baseline exists, at a time it is active.
            let settled =
                profile.first_ms + 86_400_000.min((profile.last_ms - profile.first_ms) / 3);
            let times: Vec<u64> = profile
                .times
                .items
                .iter()
                .copied()
                .filter(|t| *t >= settled)
                .collect();
            let Some(start) = times.choose(&mut rng).copied() else {
                continue;
            };
            let mut ep = Episode {
                kind,
                id: format!("inj-{n:05}"),
                client,
                profile,
                out: Vec::new(),
            };
            generate(&mut ep, start, &mut rng);
            summary.episodes += 1;
            *summary.per_kind.entry(kind.label()).or_insert(0) += 1;
            injected.extend(ep.out);
        }
    }
    injected.sort_by_key(|i| i.ts_ms);
    summary.injected_records = injected.len() as u64;

    let file = File::open(input).with_context(|| format!("opening {}", input.display()))?;
    let out_file =
        File::create(output).with_context(|| format!("creating {}", output.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, out_file);
    let mut pending = injected.into_iter().peekable();
    let reader = BufReader::with_capacity(1 << 20, file);
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let record = Record::parse(&line, i + 1)?;
        while let Some(next) = pending.next_if(|p| p.ts_ms <= record.ts_ms) {
            write_raw(&mut out, &next.raw)?;
        }
        let mut raw: RawRecord =
            serde_json::from_str(&line).with_context(|| format!("line {}", i + 1))?;
        if record.is_attack() {
            summary.relabelled += 1;
        }
        raw.label = Some(records::NORMAL.to_string());
        raw.episode = None;
        write_raw(&mut out, &raw)?;
        summary.real_records += 1;
    }
    for rest in pending {
        write_raw(&mut out, &rest.raw)?;
    }
    out.flush()?;
    Ok(summary)
}
