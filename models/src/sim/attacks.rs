//! World A's attack episodes: [`SimAttack`] names the kinds, each with its own generator.
//!
//! Why not [`crate::inject::Attack`]: that enum is for injecting episodes into a bank's own
//! unlabelled logs. Its nine kinds are built from a victim's *sampled* real traffic and
//! labelled `injected_*`; these seven are built from the simulator's own clients, carry the
//! labels of [`crate::records::ATTACK_TYPES`] and come round in a fixed order (episode `i` is
//! kind `i % 7`). Where the ideas overlap (credential stuffing, token replay, low and slow,
//! off-hours from a new country) the episodes still differ in shape, labels and random
//! draws, and the simulator's draws must not change (the shipped model and its evaluation
//! reports are built from them), so the two stay separate types.
#![allow(clippy::indexing_slicing)] // host-only generator; indices come from ranges over the same vecs

use std::net::IpAddr;

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::clients::{Client, Profile};
use super::world::{
    API, BOT_UAS, DAY, HOSTILE, MIN, customer_ip, day_start, ip, local_time_of_day,
};
use super::{EPOCH_MS, Ev, Origin, Sim};

/// The attack kinds of world A, in the order episodes cycle through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimAttack {
    /// Credential stuffing / token spraying from a botnet: many subs, mostly refused.
    CredentialStuffing,
    /// BOLA: the victim's own network and software walks account ids.
    BolaEnumeration,
    /// 3 AM local, from a hostile country, with the victim's credentials.
    OffHoursNewCountry,
    /// Stolen token replayed from a new network in the same country.
    TokenReplay,
    /// Bulk exfiltration: every account's full transaction history, fast.
    BulkExfiltration,
    /// Scraping bot: metronomic, scripted client, cloud network.
    ScrapingBot,
    /// Low and slow: a few requests an hour from a new network, walking ids.
    LowAndSlow,
}

impl SimAttack {
    /// Every kind; episode `i` is `ALL[i % ALL.len()]`.
    pub const ALL: [SimAttack; 7] = [
        SimAttack::CredentialStuffing,
        SimAttack::BolaEnumeration,
        SimAttack::OffHoursNewCountry,
        SimAttack::TokenReplay,
        SimAttack::BulkExfiltration,
        SimAttack::ScrapingBot,
        SimAttack::LowAndSlow,
    ];

    /// The record label (one of [`crate::records::ATTACK_TYPES`]).
    pub fn label(self) -> &'static str {
        match self {
            SimAttack::CredentialStuffing => "credential_stuffing",
            SimAttack::BolaEnumeration => "bola_enumeration",
            SimAttack::OffHoursNewCountry => "offhours_new_country",
            SimAttack::TokenReplay => "token_replay",
            SimAttack::BulkExfiltration => "bulk_exfiltration",
            SimAttack::ScrapingBot => "scraping_bot",
            SimAttack::LowAndSlow => "low_and_slow",
        }
    }

    /// The kind of the `i`th episode.
    fn of_episode(i: usize) -> Self {
        Self::ALL[i % Self::ALL.len()]
    }

    /// Generates one episode of this kind into `sim`.
    fn generate(self, sim: &mut Sim, ep: &Episode) {
        match self {
            SimAttack::CredentialStuffing => sim.credential_stuffing(ep),
            SimAttack::BolaEnumeration => sim.bola_enumeration(ep),
            SimAttack::OffHoursNewCountry => sim.offhours_new_country(ep),
            SimAttack::TokenReplay => sim.token_replay(ep),
            SimAttack::BulkExfiltration => sim.bulk_exfiltration(ep),
            SimAttack::ScrapingBot => sim.scraping_bot(ep),
            SimAttack::LowAndSlow => sim.low_and_slow(ep),
        }
    }
}

/// What every episode draws before its kind's generator runs: the victim, the start, a
/// hostile origin, and whether the attacker copies the customer IP header.
struct Episode {
    id: u32,
    kind: SimAttack,
    /// Whether the attacker copies `x-fapi-customer-ip-address` (replaying a TPP's calls
    /// often copies its headers).
    copies_customer_ip: bool,
    victim: usize,
    start: u64,
    hostile_country: &'static str,
    hostile_asn: u32,
    hostile_prefix: [u8; 3],
    victim_ua: String,
    /// The victim's country, ASN and first network.
    victim_home: (&'static str, u32, [u8; 3]),
    /// Every (sub, account) of the victim's users.
    victim_accounts: Vec<(String, String)>,
}

impl Episode {
    /// The victim's client id and software, from `ip` in `country` and `asn`.
    fn victim_from(&self, ip: IpAddr, country: &'static str, asn: u32) -> Origin {
        Origin {
            client: self.victim,
            ip,
            country,
            asn,
            ua: self.victim_ua.clone(),
        }
    }

    /// One of the victim's (sub, account) pairs; empty strings for a victim without users.
    fn pick_account(&self, rng: &mut ChaCha8Rng) -> (String, String) {
        self.victim_accounts
            .choose(rng)
            .cloned()
            .unwrap_or_default()
    }
}

impl Sim {
    /// Push one attack request of episode `ep`.
    #[allow(clippy::too_many_arguments)]
    fn attack(
        &mut self,
        ep: &Episode,
        ts: u64,
        sub: String,
        path: String,
        status: u16,
        resp_bytes: u64,
        origin: Origin,
    ) {
        let customer_ip = ep.copies_customer_ip.then(|| customer_ip(&mut self.rng));
        self.events.push(Ev {
            ts_ms: ts,
            sub,
            method: "GET",
            path,
            status,
            resp_bytes,
            origin,
            customer_ip,
            label: ep.kind.label(),
            episode: Some(ep.id),
        });
    }

    /// A fresh client id registered by an attacker (never a victim).
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

    /// The victim's client id or, half the time, a fresh one.
    fn victim_or_new_client(&mut self, ep: &Episode) -> usize {
        if self.rng.gen_bool(0.5) {
            ep.victim
        } else {
            self.new_attacker_client()
        }
    }

    /// `attacks_per_day` episodes a day, from the third day (or the last two thirds of a
    /// short run), cycling through the kinds; victims are the legitimate clients only.
    pub(super) fn attacks(&mut self) {
        let legit_clients = self.clients.len();
        if legit_clients == 0 {
            return;
        }
        let end = self.end_ms();
        let first = EPOCH_MS + 2 * DAY.min((end - EPOCH_MS) / 3);
        let n = (self.cfg.attacks_per_day * f64::from(self.cfg.days)).round() as usize;
        for i in 0..n {
            let ep = self.episode(SimAttack::of_episode(i), legit_clients, first, end);
            ep.kind.generate(self, &ep);
        }
    }

    /// Draws what every episode shares (in this order: the random stream depends on it).
    fn episode(&mut self, kind: SimAttack, legit_clients: usize, first: u64, end: u64) -> Episode {
        let id = self.episodes;
        self.episodes += 1;
        let copies_customer_ip = self.rng.gen_bool(0.4);
        let victim = self.rng.gen_range(0..legit_clients);
        let start = self.rng.gen_range(first..end.max(first + 1));
        let (hostile_country, hostile_asn) = HOSTILE[self.rng.gen_range(0..HOSTILE.len())];
        let hostile_prefix = self.random_prefix();
        let v = &self.clients[victim];
        Episode {
            id,
            kind,
            copies_customer_ip,
            victim,
            start,
            hostile_country,
            hostile_asn,
            hostile_prefix,
            victim_ua: v.ua.clone(),
            victim_home: (v.country, v.asn, v.prefixes[0]),
            victim_accounts: v
                .psus
                .iter()
                .flat_map(|p| p.accounts.iter().map(|a| (p.sub.clone(), a.clone())))
                .collect(),
        }
    }

    fn credential_stuffing(&mut self, ep: &Episode) {
        let c = self.victim_or_new_client(ep);
        let mut ts = ep.start;
        for _ in 0..self.rng.gen_range(40..200) {
            ts += self.rng.gen_range(200..3_000);
            let (country, asn) = HOSTILE[self.rng.gen_range(0..HOSTILE.len())];
            let p = self.random_prefix();
            let ip = ip(p, &mut self.rng);
            let status = if self.rng.gen_bool(0.85) { 401 } else { 200 };
            let ua = BOT_UAS[self.rng.gen_range(0..BOT_UAS.len())].to_string();
            let sub = format!("psu-x{}", self.rng.gen_range(0..100_000));
            let from = Origin {
                client: c,
                ip,
                country,
                asn,
                ua,
            };
            self.attack(
                ep,
                ts,
                sub,
                format!("{API}/aisp/accounts"),
                status,
                300,
                from,
            );
        }
    }

    fn bola_enumeration(&mut self, ep: &Episode) {
        let mut ts = ep.start;
        let base: u32 = self.rng.gen_range(0..90_000_000);
        let step = self.rng.gen_range(1..4);
        let (country, asn, prefix) = ep.victim_home;
        for k in 0..self.rng.gen_range(30..300u32) {
            ts += self.rng.gen_range(1_000..8_000);
            let acc = format!("acc-{:08}", base + k * step);
            let status = if self.rng.gen_bool(0.8) { 403 } else { 200 };
            let ip = ip(prefix, &mut self.rng);
            let (sub, _) = ep.pick_account(&mut self.rng);
            let from = ep.victim_from(ip, country, asn);
            self.attack(
                ep,
                ts,
                sub,
                format!("{API}/aisp/accounts/{acc}/balances"),
                status,
                700,
                from,
            );
        }
    }

    fn offhours_new_country(&mut self, ep: &Episode) {
        let offset = self.clients[ep.victim].offset_min;
        let three = local_time_of_day(3, offset);
        let mut ts = day_start(ep.start) + three + self.rng.gen_range(0..40 * MIN);
        for _ in 0..self.rng.gen_range(20..80) {
            ts += self.rng.gen_range(2_000..20_000);
            let (sub, acc) = ep.pick_account(&mut self.rng);
            let ip = ip(ep.hostile_prefix, &mut self.rng);
            let path = if self.rng.gen_bool(0.5) {
                format!("{API}/aisp/accounts/{acc}/balances")
            } else {
                format!("{API}/aisp/accounts/{acc}/transactions")
            };
            let from = ep.victim_from(ip, ep.hostile_country, ep.hostile_asn);
            self.attack(ep, ts, sub, path, 200, 9_000, from);
        }
    }

    fn token_replay(&mut self, ep: &Episode) {
        let (sub, acc) = ep.pick_account(&mut self.rng);
        let mut ts = ep.start;
        let asn = 65200 + self.rng.gen_range(0..50);
        let ua = format!(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/12{}.0",
            self.rng.gen_range(0..9)
        );
        for _ in 0..self.rng.gen_range(10..50) {
            ts += self.rng.gen_range(3_000..30_000);
            let ip = ip(ep.hostile_prefix, &mut self.rng);
            let path = match self.rng.gen_range(0..3) {
                0 => format!("{API}/aisp/accounts"),
                1 => format!("{API}/aisp/accounts/{acc}/balances"),
                _ => format!("{API}/aisp/accounts/{acc}/transactions"),
            };
            let from = Origin {
                client: ep.victim,
                ip,
                country: ep.victim_home.0,
                asn,
                ua: ua.clone(),
            };
            self.attack(ep, ts, sub.clone(), path, 200, 5_000, from);
        }
    }

    fn bulk_exfiltration(&mut self, ep: &Episode) {
        let mut ts = ep.start;
        let from_home = self.rng.gen_bool(0.5);
        for _ in 0..self.rng.gen_range(50..300) {
            ts += self.rng.gen_range(300..2_500);
            let (sub, acc) = ep.pick_account(&mut self.rng);
            let (country, asn, ip) = if from_home {
                let (country, asn, prefix) = ep.victim_home;
                (country, asn, ip(prefix, &mut self.rng))
            } else {
                (
                    ep.hostile_country,
                    ep.hostile_asn,
                    ip(ep.hostile_prefix, &mut self.rng),
                )
            };
            let page = self.rng.gen_range(1..50);
            let bytes = self.rng.gen_range(200_000..900_000);
            let from = ep.victim_from(ip, country, asn);
            self.attack(ep, ts, sub, format!(
                    "{API}/aisp/accounts/{acc}/transactions?page={page}&fromBookingDateTime=2015-01-01"
                ), 200, bytes, from);
        }
    }

    fn scraping_bot(&mut self, ep: &Episode) {
        let c = self.victim_or_new_client(ep);
        let period = self.rng.gen_range(800..3_000);
        let mut ts = ep.start;
        let ua = BOT_UAS[self.rng.gen_range(0..BOT_UAS.len() - 1)].to_string();
        let asn = [16509, 14061, 24940, 63949][self.rng.gen_range(0..4)];
        for _ in 0..self.rng.gen_range(100..500) {
            ts += period + self.rng.gen_range(0..40);
            let (sub, acc) = ep.pick_account(&mut self.rng);
            let path = match self.rng.gen_range(0..4) {
                0 => format!("{API}/aisp/accounts/{acc}/beneficiaries"),
                1 => format!("{API}/aisp/accounts/{acc}/standing-orders"),
                2 => format!("{API}/aisp/accounts/{acc}/direct-debits"),
                _ => format!("{API}/aisp/accounts/{acc}/statements"),
            };
            let ip = ip(ep.hostile_prefix, &mut self.rng);
            let from = Origin {
                client: c,
                ip,
                country: "US",
                asn,
                ua: ua.clone(),
            };
            self.attack(ep, ts, sub, path, 200, 3_000, from);
        }
    }

    fn low_and_slow(&mut self, ep: &Episode) {
        let mut ts = ep.start;
        let base: u32 = self.rng.gen_range(0..90_000_000);
        for k in 0..self.rng.gen_range(20..60u32) {
            ts += self.rng.gen_range(2 * MIN..15 * MIN);
            let acc = format!("acc-{:08}", base + k * 7);
            let status = if self.rng.gen_bool(0.7) { 404 } else { 200 };
            let ip = ip(ep.hostile_prefix, &mut self.rng);
            let (sub, _) = ep.pick_account(&mut self.rng);
            let from = ep.victim_from(ip, ep.hostile_country, ep.hostile_asn);
            self.attack(
                ep,
                ts,
                sub,
                format!("{API}/aisp/accounts/{acc}"),
                status,
                600,
                from,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SimAttack;

    #[test]
    fn labels_are_the_records_attack_types_in_order() {
        let labels: Vec<&str> = SimAttack::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(labels, crate::records::ATTACK_TYPES);
    }
}
