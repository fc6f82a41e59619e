//! World B: an independent simulator of UK Open Banking (v3.1) traffic at one bank (ASPSP),
//! written without looking at the first simulator, to test whether a detection model trained
//! on one world generalises to traffic someone else designed.
//!
//! [`simulate`] writes JSONL records (`docs/records.md`) sorted by `ts`, deterministic per seed
//! (ChaCha8 streams: one per TPP, one for the attack schedule, one per episode, so adding an
//! attack does not change normal traffic). Every record has `ts`, `client_id`, `sub`, `method`,
//! `path`, `status`, `resp_bytes`, `ip`, `country`, `asn`, `customer_present` (the
//! `x-fapi-customer-ip-address` value or `false`), `label` and, for attacks, `episode`
//! (`b-ep-0007`); `user_agent` is absent for the one TPP that sends none; no `route`. Calls made
//! with a client-credentials token (consent creation and lookup, payment status) carry the
//! client id as `sub`. Account ids are UUIDs (new core) or 24-character alphanumerics (legacy
//! savings/cards); PSU ids are 10-digit customer numbers; the bank pages transactions by 50.
//! The default world (seed 11, 14 days from 2026-03-16, scale 1, 4 attacks a day) has about
//! 380k records from 15 legitimate TPPs and crosses the EU DST change of 2026-03-29.
//!
//! # Legitimate TPPs (label `normal`)
//!
//! **Account aggregators** (`lumenfi-aggregation` ≈ 400 customers / 650 accounts, `kestrel-open-data`
//! ≈ 230, `tallyhub-connect` ≈ 200): unattended refreshes within the PSD2 RTS Art. 36(5) limit of
//! four a day — lumenfi spreads four per consent evenly over the day (each consent has its own
//! phase), kestrel runs two queue batches at 03:00 and 15:00 London, tallyhub (US-headquartered)
//! one batch at 21:00 New York time. A refresh is `GET /aisp/accounts`, then per account
//! `balances` (kestrel also `GET /accounts/{id}`) and `transactions?fromBookingDateTime=…` over
//! the last 2–7 days with `&page=N` when more than a page. Users opening the app trigger the
//! same reads customer-present. New consents during the run: `POST account-access-consents`,
//! `GET` it after the PSU authorised (10% abandon), then a backfill of 3–24 months (up to dozens
//! of pages per account; lumenfi also reads beneficiaries, standing orders and direct debits at
//! onboarding). Library User-Agents (`Java-http-client/17.0.9` for lumenfi's workers and
//! `okhttp/4.12.0` for its app path, `python-requests/2.31.0`, `Go-http-client/2.0`); 2–4 egress
//! addresses in AWS/GCP/Azure London.
//!
//! **PFM apps** (`pennywise-pfm` ≈ 300 users, `budgetbee-app` ≈ 180, `moneyhive-expat` ≈ 90):
//! customer-present heavy; sessions follow a retail diurnal curve in the user's local time
//! (Poisson, log-normal per-user activity, more on payday), each reading accounts, balances and
//! 30 days of transactions (20% scroll up to four pages). The TPP egresses from its own cloud
//! (GCP London, AWS Dublin, Azure Amsterdam) while the customer's mobile/broadband address rides
//! in `x-fapi-customer-ip-address`. Background: a nightly digest batch (pennywise 05:15,
//! moneyhive 03:15 London) or two refreshes a day (budgetbee). 60% of moneyhive's users live in
//! Spain/France (Madrid time, Spanish/French ISPs).
//!
//! **PISPs**: `swiftpay-checkout` (≈ 450 e-commerce payments a day, evening peak, more at
//! weekends: `POST domestic-payment-consents` with the shopper's address, 20–150 s at the bank,
//! sometimes `GET` the consent or its `funds-confirmation`, `POST domestic-payments` with the
//! PSU token, 1–3 status polls `GET domestic-payments/{id}`; 14% abandon after the consent, 1.5%
//! rejected with 400); `payrollo-payments` (≈ 40 businesses paying staff in bursts of 4–14
//! payments on payday — the 25th or the business day before — weekly on Fridays or at month
//! end, office hours, plus the odd supplier payment); `rentflow-payments` (≈ 40 standing-order
//! set-ups a day: `domestic-standing-order-consents`, `domestic-standing-orders`).
//!
//! **Accountancy platforms**: `ledgerly-bankfeeds` (≈ 200 businesses, 1–4 busy accounts) runs a
//! nightly bank-feed cron at 02:00 Europe/London with three queue workers (01:00 UTC after the
//! DST change) and re-reads beneficiaries on Mondays for payee reconciliation;
//! `bookwise-sync` (≈ 100, OVH France) at 01:30 Europe/Paris. Accountants also open clients'
//! feeds customer-present during office hours on business days.
//!
//! **CBPII**: `cardcheck-cbpii` (≈ 1,300 funds checks a day, no User-Agent at all) and
//! `flexipay-funds` (≈ 250): `POST cbpii/funds-confirmations` at shopping peaks (lunch, after
//! work, Saturday), a quarter with the shopper's address; an expired consent gives 403 and a new
//! `funds-confirmation-consents` flow.
//!
//! **Lender**: `lendscope-affordability` (≈ 35 applications a day, office hours and evenings):
//! consent, 12 months of transactions per account (15–40 pages), direct debits (and standing
//! orders), `GET /aisp/party`, then `DELETE` of the consent (204).
//!
//! # Legitimate but unusual (still `normal`)
//!
//! * **DST**: local-time crons (ledgerly, bookwise, kestrel, digests) move one hour earlier in UTC
//!   on 2026-03-29; tallyhub's New York cron is one hour off Europe's until then.
//! * **Customers abroad**: 4% of retail customers travel for 3–10 days (Spain, France, Portugal,
//!   Italy, US, Greece, UAE, Ireland); their customer-present calls carry foreign addresses while
//!   the TPP still egresses from its own network.
//! * **Payday and month end**: payroll bursts, more PFM sessions on the 25th.
//! * **Outages**: about one every five days (10–30 min, mostly daytime), the bank answers 503 or
//!   504 to everything. Machines retry with their own back-off (kestrel: every 5 s up to 15 times
//!   — a retry storm; ledgerly: 30 s ×1.5), people tap again once or twice, failed unattended
//!   refreshes are re-run 1–25 min after the outage (catch-up burst); for half an hour after,
//!   5% of calls meet 429 and are retried.
//! * **New TPP going live**: `novaledger-live` (DigitalOcean London) starts mid-run with no
//!   history, every customer onboarding with a 12–24-month backfill.
//! * **Version roll-outs**: budgetbee's UA moves from 5.3.1/okhttp 4.11 to 5.4.0/okhttp 4.12 over
//!   36 h (old and new interleaved); ledgerly's Apache HttpClient 4.5 → 5.3 over 20 h.
//! * **Egress changes**: lumenfi replaces its NAT addresses (same AWS ASN, 2 h overlap);
//!   kestrel migrates from GCP to AWS (8 h overlap).
//! * **Consents expiring/revoked** (≈ 0.4% a day): reads get 403; lumenfi/tallyhub stop at the
//!   first, kestrel keeps trying for two days; half the users re-authorise when they next open
//!   the app (new consent). **Closed accounts** answer 404 and aggregators keep asking.
//! * **Noise**: 0.2% of machine calls get 401 (token expired early; refreshed and retried within
//!   two seconds), 0.15% get 500 and are retried; backfills are long paging bursts.
//!
//! # Attacks (label = type, one `episode` per campaign)
//!
//! Episodes are spread evenly over the days (`attacks_per_day`), types in a shuffled rotation
//! (every nine consecutive episodes contain each type once), victims drawn among TPPs of
//! plausible kinds that are live at the time. Unless said otherwise the attacker reuses the
//! victim's client id with stolen tokens; "victim's network" means the victim's own egress pool
//! (a compromised TPP or insider), "new network" a hosting/VPN provider (DigitalOcean NL,
//! Hetzner, Vultr, M247, Linode, AWS us-east) or a residential proxy (BR, VN, IN, NG, RO, ID,
//! US, DE, GB).
//!
//! * `psd2_over_polling`: one customer's account(s) read every 4–20 min for 6–16 h (balances,
//!   transactions of the last day, sometimes the account list), no customer present; 80% the
//!   victim's own network and UA, else a new network with `python-requests`.
//! * `low_and_slow_enumeration`: one request every 2–9 min for 3–10 h with one PSU's token,
//!   walking account ids: other customers' real ids (403), guesses in the bank's formats or
//!   mutations of the own id (404), now and then the own account (200); 65% from a new network.
//! * `bola_burst`: 40–300 requests in a few minutes (0.3–3 s apart, or 20–250 ms when
//!   parallel) over account ids (or payment/consent ids for PISP victims); 403/404 mostly, some
//!   200 (the hole); 70% from a new network, half with a tool UA.
//! * `night_exfiltration`: between 00:30 and 04:30 London, 60–350 accounts (× scale) of many of
//!   the victim's customers, each with an 18–24-month `fromBookingDateTime`, 1–3 full pages
//!   (~30 KB), half with balances first; half from the victim's network.
//! * `payment_burst`: 8–40 consents + payments in 5–30 min through a PISP's credentials, for one
//!   customer (60%) or many, authorisation only seconds after each consent, some refused (403) by
//!   the bank's fraud checks; the customer-address header absent, spoofed from a proxy, or the
//!   customer's home address.
//! * `token_replay`: one PSU's token used for 5–90 min from a new network/ASN/country with a
//!   different UA (browser, Android, old okhttp, scripts), reading accounts, balances, 1–3 pages
//!   of transactions, sometimes beneficiaries; 30% set the customer header to their own address.
//! * `credential_stuffing`: 150–900 `GET /aisp/accounts` (`POST` funds confirmations or
//!   payments for CBPII/PISP clients) in 10–60 min, each with another sub (tokens from a combo
//!   list): 401 (92%) or 403, 5% work; rotating residential proxies (20–200
//!   addresses); 40% under a fresh client id (`quidly-connect`, `finpulse-data`,
//!   `openledger-io`, `cashview-ais`).
//! * `tool_scraping`: the victim's client id with curl, Postman, Insomnia, HTTPie, Wget, httpx or
//!   headless Chrome walking every endpoint of 1–5 customers' accounts (account, balances, 3–10
//!   pages of a year of transactions, beneficiaries, standing orders, direct debits, scheduled
//!   payments, statements, product, parties, party); scripted (~1 s) or by hand (4–40 s).
//! * `consent_abuse`: from the victim's own network and UA, an endpoint set outside its usual
//!   mix (beneficiaries + standing orders; + direct debits + scheduled payments; or parties,
//!   statements, product) for every account of 30–250 customers (× scale) over 20–120 min,
//!   up to a third refused (403) where the consent lacks the permission.

mod attacks;
mod calendar;
mod network;
mod tpps;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::Ipv4Addr;
use std::rc::Rc;

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use attacks::Attack;
use calendar::{DAY, HOUR, MINUTE};
use network::{Egress, NetPlan, UaPlan};

/// What world B to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct WorldBConfig {
    /// Seeds every random stream (same seed, same bytes).
    pub seed: u64,
    /// Simulated days.
    pub days: u32,
    /// First day (UTC midnight): `YYYY-MM-DD`, or an RFC 3339 instant to start mid-day.
    pub start: String,
    /// Attack episodes per simulated day (spread over the run, types in rotation).
    pub attacks_per_day: u32,
    /// Size of the TPP populations (customers, payments, checks); 1.0 = default.
    pub scale: f32,
}

impl Default for WorldBConfig {
    fn default() -> Self {
        WorldBConfig {
            seed: 11,
            days: 14,
            start: "2026-03-16".into(),
            attacks_per_day: 4,
            scale: 1.0,
        }
    }
}

/// What [`simulate`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorldBStats {
    pub records: u64,
    pub attack_records: u64,
    /// Attack episodes with at least one record.
    pub episodes: u32,
    /// Distinct client ids in the output (legitimate TPPs and attackers' own).
    pub clients: u32,
}

/// Generate world B and write it as JSONL (`docs/records.md`), sorted by `ts`.
pub fn simulate(cfg: &WorldBConfig, out: &mut dyn Write) -> anyhow::Result<WorldBStats> {
    if cfg.days == 0 {
        bail!("days must be at least 1");
    }
    if !(cfg.scale.is_finite() && cfg.scale > 0.0 && cfg.scale <= 20.0) {
        bail!("scale must be in (0, 20], got {}", cfg.scale);
    }
    let start = calendar::parse_start(&cfg.start)
        .with_context(|| format!("start: {:?} is neither YYYY-MM-DD nor RFC 3339", cfg.start))?;
    let world = World::new(cfg, start);
    let mut sink = Sink::default();

    let roster = tpps::roster(&world, &mut world.rng(1));
    for (i, tpp) in roster.iter().enumerate() {
        tpps::generate(tpp, &world, &mut world.rng(100 + i as u64), &mut sink);
    }
    attacks::generate(
        &world,
        &roster,
        cfg.attacks_per_day,
        &mut world.rng(2),
        &mut sink,
    );

    let mut reqs = sink.reqs;
    reqs.retain(|r| r.ts >= world.start && r.ts < world.end);
    reqs.sort_by_key(|r| r.ts);

    let mut stats = WorldBStats::default();
    let mut clients = BTreeSet::new();
    let mut episodes = BTreeSet::new();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, out);
    for r in &reqs {
        stats.records += 1;
        if let Some(a) = r.label {
            stats.attack_records += 1;
            episodes.insert((r.episode, a));
        }
        if !clients.contains(&*r.client) {
            clients.insert(r.client.to_string());
        }
        r.write(&mut w)?;
    }
    w.flush()?;
    stats.clients = clients.len() as u32;
    stats.episodes = episodes.len() as u32;
    Ok(stats)
}

/// Run-wide facts every generator needs.
pub(crate) struct World {
    pub seed: u64,
    pub start: u64,
    pub end: u64,
    /// Day number (days since the epoch) of the first day.
    pub first_day: i64,
    pub days: u32,
    pub scale: f32,
    /// Bank-side outages: (start, end, status).
    pub outages: Vec<(u64, u64, u16)>,
}

impl World {
    fn new(cfg: &WorldBConfig, start: u64) -> Self {
        let end = start + u64::from(cfg.days) * DAY;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(3);
        // About one outage per five days, at least one; mostly in the day when load is high.
        let n = (cfg.days as usize).div_ceil(5).max(1);
        let mut outages = Vec::new();
        for k in 0..n {
            let span = u64::from(cfg.days) * DAY / n as u64;
            let lo = start + k as u64 * span;
            let mut t = lo + rng.gen_range(0..span.max(1));
            let hour = (t % DAY) / HOUR;
            if !(7..=21).contains(&hour) && rng.gen_bool(0.7) {
                t = t - (t % DAY) + rng.gen_range(8..20) * HOUR + rng.gen_range(0..HOUR);
            }
            let len = rng.gen_range(10..=30) * MINUTE + rng.gen_range(0..MINUTE);
            let status = if rng.gen_bool(0.7) { 503 } else { 504 };
            outages.push((t, t + len, status));
        }
        World {
            seed: cfg.seed,
            start,
            end,
            first_day: (start / DAY) as i64,
            days: cfg.days,
            scale: cfg.scale,
            outages,
        }
    }

    /// An independent random stream.
    pub fn rng(&self, stream: u64) -> ChaCha8Rng {
        let mut r = ChaCha8Rng::seed_from_u64(self.seed);
        r.set_stream(stream);
        r
    }

    pub fn outage_at(&self, t: u64) -> Option<(u64, u64, u16)> {
        self.outages
            .iter()
            .copied()
            .find(|(s, e, _)| t >= *s && t < *e)
    }

    /// True in the half hour after an outage (catch-up traffic meets rate limits).
    pub fn recovering(&self, t: u64) -> bool {
        self.outages
            .iter()
            .any(|(_, e, _)| t >= *e && t < e + 30 * MINUTE)
    }

    /// Day numbers of the run (UTC days; local-time generators shift inside them).
    pub fn day_numbers(&self) -> impl Iterator<Item = i64> + '_ {
        (0..i64::from(self.days)).map(|d| self.first_day + d)
    }

    /// Population size scaled by `scale` (at least `min`).
    pub fn scaled(&self, n: u32, min: u32) -> u32 {
        ((n as f32 * self.scale).round() as u32).max(min)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

/// One request as it will be written.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub ts: u64,
    pub client: Rc<str>,
    pub sub: Rc<str>,
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub bytes: u32,
    pub from: Egress,
    pub ua: Option<Rc<str>>,
    pub customer_ip: Option<Ipv4Addr>,
    pub label: Option<Attack>,
    pub episode: u32,
}

#[derive(Serialize)]
#[serde(untagged)]
enum PresentOut {
    Flag(bool),
    Address(String),
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    client_id: &'a str,
    sub: &'a str,
    method: &'static str,
    path: &'a str,
    status: u16,
    resp_bytes: u32,
    ip: String,
    country: &'static str,
    asn: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    customer_present: PresentOut,
    label: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    episode: Option<String>,
}

impl Req {
    fn write(&self, w: &mut impl Write) -> anyhow::Result<()> {
        let line = Line {
            ts: calendar::fmt_ts(self.ts),
            client_id: &self.client,
            sub: &self.sub,
            method: self.method.as_str(),
            path: &self.path,
            status: self.status,
            resp_bytes: self.bytes,
            ip: self.from.ip.to_string(),
            country: self.from.country,
            asn: self.from.asn,
            user_agent: self.ua.as_deref(),
            customer_present: match self.customer_ip {
                Some(ip) => PresentOut::Address(ip.to_string()),
                None => PresentOut::Flag(false),
            },
            label: self.label.map_or("normal", Attack::label),
            episode: self.label.map(|_| format!("b-ep-{:04}", self.episode)),
        };
        serde_json::to_writer(&mut *w, &line)?;
        w.write_all(b"\n")?;
        Ok(())
    }
}

#[derive(Default)]
pub(crate) struct Sink {
    pub reqs: Vec<Req>,
}

/// How a sender reacts to 5xx/429: machines back off and retry, people tap again or give up,
/// attackers move on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Retry {
    /// Exponential back-off: first wait `base_ms`, times `factor` each time, up to `max` retries.
    Backoff { max: u8, base_ms: u64, factor: f32 },
    /// A person: up to two more taps a few seconds apart.
    Human,
    /// No retries (attack tooling logs the failure and continues).
    Never,
}

/// Who sends: client id, network, UA, retry behaviour, label.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    pub client: Rc<str>,
    pub net: NetPlan,
    pub ua: UaPlan,
    pub retry: Retry,
    pub label: Option<Attack>,
    pub episode: u32,
    /// Legitimate machine clients see the odd 401 (token refreshed, retried) and 500.
    pub noise: bool,
}

/// One API call to make.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub sub: &'a Rc<str>,
    pub status: u16,
    pub bytes: u32,
    pub customer_ip: Option<Ipv4Addr>,
}

impl<'a> Call<'a> {
    pub fn get(sub: &'a Rc<str>, path: String, bytes: u32) -> Self {
        Call {
            method: Method::Get,
            path,
            sub,
            status: 200,
            bytes,
            customer_ip: None,
        }
    }

    pub fn post(sub: &'a Rc<str>, path: String, bytes: u32) -> Self {
        Call {
            method: Method::Post,
            path,
            sub,
            status: 201,
            bytes,
            customer_ip: None,
        }
    }

    pub fn status(mut self, status: u16, bytes: u32) -> Self {
        self.status = status;
        self.bytes = bytes;
        self
    }

    pub fn present(mut self, ip: Option<Ipv4Addr>) -> Self {
        self.customer_ip = ip;
        self
    }
}

/// Body size of an error response (OBErrorResponse1, or nothing for gateway errors).
pub(crate) fn error_bytes<R: Rng>(rng: &mut R, status: u16) -> u32 {
    match status {
        401 => rng.gen_range(0..=96),
        403 => rng.gen_range(180..=320),
        404 => rng.gen_range(120..=260),
        400 => rng.gen_range(220..=480),
        429 => rng.gen_range(60..=140),
        502..=504 => rng.gen_range(0..=160),
        _ => rng.gen_range(90..=240),
    }
}

impl Actor {
    fn emit<R: Rng>(
        &self,
        sink: &mut Sink,
        rng: &mut R,
        t: u64,
        call: &Call,
        status: u16,
        bytes: u32,
    ) {
        sink.reqs.push(Req {
            ts: t,
            client: self.client.clone(),
            sub: call.sub.clone(),
            method: call.method,
            path: call.path.clone(),
            status,
            bytes,
            from: self.net.pick(rng, t),
            ua: self.ua.pick(rng, t),
            customer_ip: call.customer_ip,
            label: self.label,
            episode: self.episode,
        });
    }

    /// Send `call` at `*t`; outages, rate limits and token expiry add failed attempts and
    /// retries, moving `*t` to the last attempt. False when the call finally failed.
    pub fn send<R: Rng>(
        &self,
        sink: &mut Sink,
        rng: &mut R,
        world: &World,
        t: &mut u64,
        call: Call,
    ) -> bool {
        let mut attempt: u32 = 0;
        loop {
            let failure = if let Some((_, _, status)) = world.outage_at(*t) {
                Some(status)
            } else if self.noise && world.recovering(*t) && rng.gen_bool(0.05) {
                Some(429)
            } else if self.noise && attempt == 0 && rng.gen_bool(0.0015) {
                Some(500)
            } else if self.noise && attempt == 0 && !call.sub.is_empty() && rng.gen_bool(0.002) {
                // Access token expired a moment early: refreshed at the token endpoint, retried.
                let b = error_bytes(rng, 401);
                self.emit(sink, rng, *t, &call, 401, b);
                *t += rng.gen_range(250..1_800);
                attempt += 1;
                continue;
            } else {
                None
            };
            let Some(status) = failure else {
                self.emit(sink, rng, *t, &call, call.status, call.bytes);
                return call.status < 500;
            };
            let b = error_bytes(rng, status);
            self.emit(sink, rng, *t, &call, status, b);
            let wait = match self.retry {
                Retry::Never => return false,
                Retry::Human => {
                    if attempt >= 2 || rng.gen_bool(0.35) {
                        return false;
                    }
                    rng.gen_range(3_000..15_000)
                }
                Retry::Backoff {
                    max,
                    base_ms,
                    factor,
                } => {
                    if attempt >= u32::from(max) {
                        return false;
                    }
                    let w = base_ms as f64 * f64::from(factor).powi(attempt as i32);
                    (w.min(180_000.0) * rng.gen_range(0.8..1.25)) as u64
                }
            };
            *t += wait.max(50);
            attempt += 1;
        }
    }
}

/// Random ids in the formats the bank and TPPs use.
pub(crate) mod ids {
    use rand::Rng;

    const HEX: &[u8] = b"0123456789abcdef";
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    fn from_set<R: Rng>(rng: &mut R, set: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| {
                char::from(
                    set.get(rng.gen_range(0..set.len()))
                        .copied()
                        .unwrap_or(b'0'),
                )
            })
            .collect()
    }

    pub fn uuid<R: Rng>(rng: &mut R) -> String {
        let h = |rng: &mut R, n| from_set(rng, HEX, n);
        let variant = char::from(b"89ab".get(rng.gen_range(0..4)).copied().unwrap_or(b'8'));
        format!(
            "{}-{}-4{}-{}{}-{}",
            h(rng, 8),
            h(rng, 4),
            h(rng, 3),
            variant,
            h(rng, 3),
            h(rng, 12)
        )
    }

    /// Alphanumeric with at least one digit.
    pub fn alnum<R: Rng>(rng: &mut R, n: usize) -> String {
        let mut s = from_set(rng, ALNUM, n);
        if !s.bytes().any(|b| b.is_ascii_digit()) {
            s.pop();
            s.push(char::from(b'0' + rng.gen_range(0..10u8)));
        }
        s
    }

    pub fn digits<R: Rng>(rng: &mut R, n: usize) -> String {
        (0..n)
            .map(|i| {
                let lo = if i == 0 { 1 } else { 0 };
                char::from(b'0' + rng.gen_range(lo..10u8))
            })
            .collect()
    }

    /// The bank's account ids: current accounts on the new core (UUIDs), savings and cards on
    /// the legacy platform (24-character alphanumeric).
    pub fn account<R: Rng>(rng: &mut R) -> String {
        if rng.gen_bool(0.65) {
            uuid(rng)
        } else {
            alnum(rng, 24)
        }
    }

    /// PSU ids (the token's `sub`): the bank's 10-digit customer numbers.
    pub fn psu<R: Rng>(rng: &mut R) -> String {
        digits(rng, 10)
    }
}

/// Base path.
pub(crate) const OB: &str = "/open-banking/v3.1";

/// Poisson draw (Knuth; fine for the small means used here).
pub(crate) fn poisson<R: Rng>(rng: &mut R, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    if mean > 30.0 {
        let n = mean + mean.sqrt() * normal(rng);
        return n.max(0.0).round() as u32;
    }
    let l = (-mean).exp();
    let mut k = 0u32;
    let mut p = 1.0;
    loop {
        p *= rng.gen_range(0.0..1.0f64);
        if p <= l {
            return k;
        }
        k += 1;
    }
}

/// Standard normal (Box–Muller).
pub(crate) fn normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen_range(0.0..1.0);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Log-normal with the given median and shape.
pub(crate) fn lognormal<R: Rng>(rng: &mut R, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}
