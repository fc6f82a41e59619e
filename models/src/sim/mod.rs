//! World A: seeded, reproducible Open Banking traffic with labelled attack episodes (host
//! only).
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
//!
//! - `world.rs`: the world's fixed facts (homes, hostile networks, bot user agents) and clock.
//! - `clients.rs`: the legitimate TPPs and their traffic, one generator per profile.
//! - `attacks.rs`: the attack kinds ([`SimAttack`]), one episode generator per kind.
//!
//! The output is a pure function of [`SimConfig`]: the shipped model and its evaluation
//! reports are built from it, so the random draws must stay in the same order (a reordering
//! changes every record after it).

mod attacks;
mod clients;
mod world;

use std::io::Write;
use std::net::IpAddr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::records::{CustomerPresent, RawRecord, format_ts};

pub use attacks::SimAttack;
use clients::Client;
use world::DAY;

/// 2026-01-05T00:00:00Z, a Monday.
pub const EPOCH_MS: u64 = 1_767_571_200_000;

/// Simulation settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub clients: usize,
    pub days: u32,
    /// Attack episodes per simulated day.
    pub attacks_per_day: f64,
}

/// Summary of a simulation run.
#[derive(Debug, Clone, Copy)]
pub struct SimSummary {
    pub records: usize,
    pub attack_records: usize,
    pub episodes: u32,
}

/// Who a request claims to be and where it comes from.
struct Origin {
    /// Index into [`Sim::clients`].
    client: usize,
    ip: IpAddr,
    country: &'static str,
    asn: u32,
    ua: String,
}

/// One generated request before serialisation.
struct Ev {
    ts_ms: u64,
    sub: String,
    method: &'static str,
    path: String,
    status: u16,
    resp_bytes: u64,
    origin: Origin,
    customer_ip: Option<String>,
    label: &'static str,
    episode: Option<u32>,
}

/// The simulation state: one random stream, the clients (legitimate ones first, then any
/// fresh client ids attackers register) and the requests generated so far.
struct Sim {
    rng: ChaCha8Rng,
    cfg: SimConfig,
    clients: Vec<Client>,
    events: Vec<Ev>,
    episodes: u32,
}

impl Sim {
    fn new(cfg: SimConfig) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            clients: Vec::new(),
            events: Vec::new(),
            episodes: 0,
        }
    }

    fn end_ms(&self) -> u64 {
        EPOCH_MS + u64::from(self.cfg.days) * DAY
    }
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
        let client_id = sim
            .clients
            .get(e.origin.client)
            .map(|c| c.id.clone())
            .unwrap_or_default();
        let raw = RawRecord {
            ts: format_ts(e.ts_ms),
            client_id,
            sub: Some(e.sub.clone()),
            method: e.method.to_string(),
            path: e.path.clone(),
            status: e.status,
            resp_bytes: e.resp_bytes,
            ip: Some(e.origin.ip.to_string()),
            country: Some(e.origin.country.to_string()),
            asn: Some(crate::records::Asn::Number(e.origin.asn)),
            user_agent: Some(e.origin.ua.clone()),
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
        if e.label != crate::records::NORMAL {
            summary.attack_records += 1;
        }
    }
    Ok(summary)
}
