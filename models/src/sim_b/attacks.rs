//! Attacks of world B: one generator per type. Episodes are scheduled evenly over the days
//! (`attacks_per_day`), types in a shuffled rotation so every type appears once per nine
//! episodes; each picks a plausible victim TPP live at that time.

use std::net::Ipv4Addr;
use std::rc::Rc;

use rand::Rng;
use rand::seq::SliceRandom;

use super::calendar::{DAY, HOUR, MINUTE, Tz};
use super::network::{self as net, Egress, NetPlan, UaPlan, pick};
use super::tpps::{self, Customer, Kind, PAGE, Tpp};
use super::{Actor, Call, OB, Retry, Sink, World, error_bytes, ids};

/// The attack types of world B (their labels are the snake_case names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attack {
    Psd2OverPolling,
    LowAndSlowEnumeration,
    BolaBurst,
    NightExfiltration,
    PaymentBurst,
    TokenReplay,
    CredentialStuffing,
    ToolScraping,
    ConsentAbuse,
}

impl Attack {
    pub const ALL: [Attack; 9] = [
        Attack::Psd2OverPolling,
        Attack::LowAndSlowEnumeration,
        Attack::BolaBurst,
        Attack::NightExfiltration,
        Attack::PaymentBurst,
        Attack::TokenReplay,
        Attack::CredentialStuffing,
        Attack::ToolScraping,
        Attack::ConsentAbuse,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Attack::Psd2OverPolling => "psd2_over_polling",
            Attack::LowAndSlowEnumeration => "low_and_slow_enumeration",
            Attack::BolaBurst => "bola_burst",
            Attack::NightExfiltration => "night_exfiltration",
            Attack::PaymentBurst => "payment_burst",
            Attack::TokenReplay => "token_replay",
            Attack::CredentialStuffing => "credential_stuffing",
            Attack::ToolScraping => "tool_scraping",
            Attack::ConsentAbuse => "consent_abuse",
        }
    }

    /// TPP kinds whose credentials this attack plausibly rides on.
    fn victims(self) -> &'static [Kind] {
        use Kind::*;
        match self {
            Attack::Psd2OverPolling => &[Aggregator, Pfm, Accountancy],
            Attack::LowAndSlowEnumeration | Attack::TokenReplay | Attack::ToolScraping => {
                &[Aggregator, Pfm, Accountancy]
            }
            Attack::BolaBurst => &[Aggregator, Pfm, Pisp, Accountancy],
            Attack::NightExfiltration => &[Aggregator, Accountancy, Pfm],
            Attack::PaymentBurst => &[Pisp],
            Attack::CredentialStuffing => &[Aggregator, Pfm, Pisp, Cbpii, Lender],
            Attack::ConsentAbuse => &[Aggregator, Pfm, Accountancy],
        }
    }
}

/// Everything an attack generator gets.
struct Ep<'a> {
    world: &'a World,
    victim: &'a Tpp,
    /// Every account id at the bank that belongs to some TPP's customer (harvested lists).
    known_accounts: &'a [Rc<str>],
    start: u64,
    kind: Attack,
    number: u32,
}

impl Ep<'_> {
    fn actor(&self, client: Rc<str>, net: NetPlan, ua: UaPlan) -> Actor {
        Actor {
            client,
            net,
            ua,
            retry: Retry::Never,
            label: Some(self.kind),
            episode: self.number,
            noise: false,
        }
    }

    /// The victim's own client id, network and UA (a compromised TPP or insider).
    fn as_victim(&self) -> Actor {
        let mut a = self.actor(
            self.victim.client().clone(),
            self.victim.bg.net.clone(),
            self.victim.bg.ua.clone(),
        );
        a.ua = UaPlan::fixed(self.victim.bg.ua.current(self.start).as_deref());
        a
    }

    /// Live customers of the victim at the start, with accounts.
    fn live_customers(&self) -> Vec<&Customer> {
        self.victim
            .customers
            .iter()
            .filter(|c| {
                c.joined.is_none_or(|j| j < self.start)
                    && !c.accounts.is_empty()
                    && c.expires.is_none_or(|e| e > self.start + DAY)
            })
            .collect()
    }
}

const TOOL_UAS: [&str; 7] = [
    "curl/8.5.0",
    "PostmanRuntime/7.36.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/121.0.6167.85 Safari/537.36",
    "insomnia/2023.5.8",
    "python-httpx/0.26.0",
    "Wget/1.21.4",
    "HTTPie/3.2.2",
];

const OTHER_UAS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "python-requests/2.28.1",
    "okhttp/3.14.9",
    "Dalvik/2.1.0 (Linux; U; Android 13; SM-A536B Build/TP1A.220624.014)",
    "Go-http-client/1.1",
    "node-fetch/2.6.7",
];

const FRESH_CLIENTS: [&str; 4] = [
    "quidly-connect",
    "finpulse-data",
    "openledger-io",
    "cashview-ais",
];

fn fresh_pool<R: Rng>(rng: &mut R, residential_p: f64, lo: usize, hi: usize) -> NetPlan {
    let residential = rng.gen_bool(residential_p);
    let n = rng.gen_range(lo..=hi.max(lo));
    let nets: &[net::Net] = if residential {
        &net::PROXY_RESIDENTIAL
    } else {
        &net::HOSTING
    };
    let n0 = *pick(rng, nets).unwrap_or(&net::HETZNER_DE);
    NetPlan::fixed((0..n.max(1)).map(|_| Egress::random(rng, &n0)).collect())
}

fn rotating_pool<R: Rng>(rng: &mut R, lo: usize, hi: usize) -> NetPlan {
    let n = rng.gen_range(lo..hi.max(lo + 1));
    NetPlan::fixed(
        (0..n.max(1))
            .map(|_| {
                let n0 = *pick(rng, &net::PROXY_RESIDENTIAL).unwrap_or(&net::BT);
                Egress::random(rng, &n0)
            })
            .collect(),
    )
}

fn ua_of<R: Rng>(rng: &mut R, set: &[&str]) -> UaPlan {
    UaPlan::fixed(pick(rng, set).copied())
}

pub(crate) fn generate<R: Rng>(
    world: &World,
    roster: &[Tpp],
    per_day: u32,
    rng: &mut R,
    sink: &mut Sink,
) {
    let known: Vec<Rc<str>> = roster
        .iter()
        .flat_map(|t| t.customers.iter())
        .flat_map(|c| c.accounts.iter().map(|a| a.id.clone()))
        .collect();
    let total = per_day * world.days;
    let mut order: Vec<Attack> = Vec::new();
    while order.len() < total as usize {
        let mut block = Attack::ALL;
        block.shuffle(rng);
        order.extend(block);
    }
    for (k, kind) in order.into_iter().take(total as usize).enumerate() {
        let day = k as u64 / u64::from(per_day.max(1));
        let day_start = world.start - world.start % DAY + day * DAY;
        let start = match kind {
            Attack::NightExfiltration => {
                Tz::London.at((day_start / DAY) as i64, 0, 30) + rng.gen_range(0..4 * HOUR)
            }
            Attack::Psd2OverPolling | Attack::LowAndSlowEnumeration => {
                day_start + rng.gen_range(0..14 * HOUR)
            }
            _ => day_start + rng.gen_range(0..DAY - HOUR),
        }
        .max(world.start);
        let candidates: Vec<&Tpp> = roster
            .iter()
            .filter(|t| {
                kind.victims().contains(&t.kind)
                    && (t.live_from <= world.start || t.live_from + DAY / 2 < start)
            })
            .filter(|t| {
                t.kind == Kind::Lender
                    || t.customers
                        .iter()
                        .any(|c| c.joined.is_none_or(|j| j < start))
            })
            .collect();
        let Some(victim) = pick(rng, &candidates).copied() else {
            continue;
        };
        let ep = Ep {
            world,
            victim,
            known_accounts: &known,
            start,
            kind,
            number: k as u32 + 1,
        };
        let mut rng_ep = world.rng(10_000 + k as u64);
        let rng = &mut rng_ep;
        match kind {
            Attack::Psd2OverPolling => over_polling(&ep, rng, sink),
            Attack::LowAndSlowEnumeration => low_and_slow(&ep, rng, sink),
            Attack::BolaBurst => bola_burst(&ep, rng, sink),
            Attack::NightExfiltration => night_exfiltration(&ep, rng, sink),
            Attack::PaymentBurst => payment_burst(&ep, rng, sink),
            Attack::TokenReplay => token_replay(&ep, rng, sink),
            Attack::CredentialStuffing => credential_stuffing(&ep, rng, sink),
            Attack::ToolScraping => tool_scraping(&ep, rng, sink),
            Attack::ConsentAbuse => consent_abuse(&ep, rng, sink),
        }
    }
}

fn get<R: Rng>(a: &Actor, ep: &Ep, rng: &mut R, sink: &mut Sink, t: &mut u64, call: Call) {
    a.send(sink, rng, ep.world, t, call);
}

/// A stolen PSU token being used: the customer and a shortened per-request reader.
fn read_one_account<R: Rng>(
    a: &Actor,
    ep: &Ep,
    rng: &mut R,
    sink: &mut Sink,
    t: &mut u64,
    (c, acc, present): (&Customer, &Rc<str>, Option<Ipv4Addr>),
    (from, pages): (u64, u32),
) {
    let b = tpps::balances_bytes(rng);
    get(
        a,
        ep,
        rng,
        sink,
        t,
        Call::get(&c.sub, tpps::account_path(acc, "balances"), b).present(present),
    );
    for p in 1..=pages.max(1) {
        *t += rng.gen_range(150..1_200);
        let n = if p < pages {
            PAGE
        } else {
            rng.gen_range(5..=PAGE)
        };
        let b = tpps::tx_bytes(rng, n);
        get(
            a,
            ep,
            rng,
            sink,
            t,
            Call::get(&c.sub, tpps::tx_path(acc, from, p), b).present(present),
        );
    }
}

/// A TPP (or someone with its token) reading one customer far beyond 4 unattended reads a day.
fn over_polling<R: Rng>(ep: &Ep, rng: &mut R, sink: &mut Sink) {
    let cs = ep.live_customers();
    let Some(c) = pick(rng, &cs).copied() else {
        return;
    };
    let mut a = ep.as_victim();
    if rng.gen_bool(0.2) {
        a.net = fresh_pool(rng, 0.0, 1, 1);
        a.ua = UaPlan::fixed(Some("python-requests/2.31.0"));
    }
    let end = ep.start + rng.gen_range(6 * HOUR..16 * HOUR);
    let interval = rng.gen_range(4 * MINUTE..20 * MINUTE);
    let only_main = rng.gen_bool(0.5);
    let mut t = ep.start;
    while t < end {
        let mut u = t;
        if rng.gen_bool(0.3) {
            let b = tpps::accounts_bytes(rng, c.accounts.len());
            get(
                &a,
                ep,
                rng,
                sink,
                &mut u,
                Call::get(&c.sub, tpps::accounts_path(), b),
            );
            u += rng.gen_range(100..600);
        }
        for acc in c.accounts.iter().take(if only_main { 1 } else { 4 }) {
            read_one_account(
                &a,
                ep,
                rng,
                sink,
                &mut u,
                (c, &acc.id, None),
                (t.saturating_sub(DAY), 1),
            );
            u += rng.gen_range(100..600);
        }
        t += (interval as f64 * rng.gen_range(0.7..1.3)) as u64;
    }
}

/// An enumeration id: another customer's real account (403), a guess in the bank's format
/// (404), a mutation of one's own id (404), or one's own (200).
fn enum_target<R: Rng>(rng: &mut R, ep: &Ep, c: &Customer) -> (String, u16) {
    let x: f64 = rng.gen_range(0.0..1.0);
    if x < 0.45 {
        if let Some(id) = pick(rng, ep.known_accounts)
            && !c.accounts.iter().any(|a| a.id == *id)
        {
            return (id.to_string(), 403);
        }
        (ids::account(rng), 404)
    } else if x < 0.85 {
        (ids::account(rng), 404)
    } else if x < 0.95 {
        let own = c
            .accounts
            .first()
            .map(|a| a.id.to_string())
            .unwrap_or_default();
        let mut s: Vec<char> = own.chars().collect();
        if let Some(last) = s.last_mut() {
            *last = if *last == '9' {
                '0'
            } else {
                char::from(b'0' + rng.gen_range(0..10u8))
            };
        }
        (s.into_iter().collect(), 404)
    } else {
        (
            c.accounts
                .first()
                .map(|a| a.id.to_string())
                .unwrap_or_default(),
            200,
        )
    }
}

fn enum_call<'c, R: Rng>(rng: &mut R, c: &'c Customer, id: &str, status: u16) -> Call<'c> {
    let sub = match rng.gen_range(0..3) {
        0 => "",
        1 => "balances",
        _ => "transactions",
    };
    let ok = match sub {
        "" => rng.gen_range(700..1_100),
        "balances" => tpps::balances_bytes(rng),
        _ => {
            let n = rng.gen_range(5..PAGE);
            tpps::tx_bytes(rng, n)
        }
    };
    let bytes = if status == 200 {
        ok
    } else {
        error_bytes(rng, status)
    };
    Call::get(&c.sub, tpps::account_path(id, sub), 0).status(status, bytes)
}

/// One request every few minutes walking account ids the token does not cover.
fn low_and_slow<R: Rng>(ep: &Ep, rng: &mut R, sink: &mut Sink) {
    let cs = ep.live_customers();
    let Some(c) = pick(rng, &cs).copied() else {
        return;
    };
    let mut a = ep.as_victim();
    if rng.gen_bool(0.65) {
        a.net = fresh_pool(rng, 0.4, 1, 2);
        if rng.gen_bool(0.4) {
            a.ua = ua_of(rng, &OTHER_UAS);
        }
    }
    let end = ep.start + rng.gen_range(3 * HOUR..10 * HOUR);
    let mut t = ep.start;
    while t < end {
        let (id, status) = enum_target(rng, ep, c);
        let call = enum_call(rng, c, &id, status);
        get(&a, ep, rng, sink, &mut t, call);
        t += rng.gen_range(2 * MINUTE..9 * MINUTE);
    }
}

/// Fast enumeration of account or payment ids; a few succeed (the BOLA hole).
fn bola_burst<R: Rng>(ep: &Ep, rng: &mut R, sink: &mut Sink) {
    let cs = ep.live_customers();
    let Some(c) = pick(rng, &cs).copied() else {
        return;
    };
    let mut a = ep.as_victim();
    if rng.gen_bool(0.7) {
        a.net = fresh_pool(rng, 0.0, 1, 3);
        if rng.gen_bool(0.5) {
            a.ua = ua_of(rng, &TOOL_UAS);
        }
    }
    let n = rng.gen_range(40..=300);
    let payments = ep.victim.kind == Kind::Pisp;
    let parallel = rng.gen_bool(0.4);
    let client = ep.victim.client().clone();
    let mut t = ep.start;
    for _ in 0..n {
        if payments {
            let (status, bytes) = match rng.gen_range(0..100) {
                0..=14 => (200, rng.gen_range(1_500..2_200)),
                15..=49 => (403, error_bytes(rng, 403)),
                _ => (404, error_bytes(rng, 404)),
            };
            let what = if rng.gen_bool(0.7) {
                "domestic-payments"
            } else {
                "domestic-payment-consents"
            };
            let path = format!("{OB}/pisp/{what}/{}", ids::uuid(rng));
            get(
                &a,
                ep,
                rng,
                sink,
                &mut t,
                Call::get(&client, path, 0).status(status, bytes),
            );
        } else {
            let (id, mut status) = enum_target(rng, ep, c);
            if status == 403 && rng.gen_bool(0.15) {
                status = 200;
            }
            let call = enum_call(rng, c, &id, status);
            get(&a, ep, rng, sink, &mut t, call);
        }
        t += if parallel {
            rng.gen_range(20..250)
        } else {
            rng.gen_range(300..3_000)
        };
    }
}

/// At night, wide and shallow: many accounts' long histories, a few full pages each.
fn night_exfiltration<R: Rng>(ep: &Ep, rng: &mut R, sink: &mut Sink) {
    let mut cs = ep.live_customers();
    cs.shuffle(rng);
    let mut a = ep.as_victim();
    if rng.gen_bool(0.5) {
        a.net = fresh_pool(rng, 0.0, 1, 2);
        if rng.gen_bool(0.4) {
            a.ua = ua_of(rng, &["python-requests/2.28.2", "Go-http-client/1.1"]);
        }
    }
    let target = ((rng.gen_range(60..=350) as f32) * ep.world.scale.max(0.2)) as usize;
    let mut t = ep.start;
    let mut done = 0usize;
    'outer: for c in cs {
        for acc in &c.accounts {
            if done >= target.max(15) {
                break 'outer;
            }
            done += 1;
            let from = t.saturating_sub(rng.gen_range(18..=24) * 30 * DAY);
            let pages = rng.gen_range(1..=3);
            if rng.gen_bool(0.5) {
                let b = tpps::balances_bytes(rng);
                get(
                    &a,
                    ep,
                    rng,
                    sink,
                    &mut t,
                    Call::get(&c.sub, tpps::account_path(&acc.id, "balances"), b),
                );
                t += rng.gen_range(150..900);
            }
            for p in 1..=pages {
                let b = tpps::tx_bytes(rng, PAGE);
                get(
                    &a,
                    ep,
                    rng,
                    sink,
                    &mut t,
                    Call::get(&c.sub, tpps::tx_path(&acc.id, from, p), b),
                );
                t += rng.gen_range(250..2_500);
            }
        }
    }
}

/// Many payments for one customer (or many) in a short time through a PISP's credentials.
fn payment_burst<R: Rng>(ep: &Ep, rng: &mut R, sink: &mut Sink) {
    let cs: Vec<&Customer> = ep.victim.customers.iter().collect();
    let Some(first) = pick(rng, &cs).copied() else {
        return;
    };
    let mut a = ep.as_victim();
    if rng.gen_bool(0.5) {
        a.net = fresh_pool(rng, 0.5, 1, 2);
    }
    let one_customer = rng.gen_bool(0.6);
    let spoof: Option<Ipv4Addr> = match rng.gen_range(0..3) {
        0 => None,
        1 => {
            let n = *pick(rng, &net::PROXY_RESIDENTIAL).unwrap_or(&net::BT);
            Some(net::addr(rng, &n))
        }
        _ => Some(first.home),
    };
    let n = rng.gen_range(8..=40);
    let span = rng.gen_range(5 * MINUTE..30 * MINUTE);
    let client = ep.victim.client().clone();
    let mut t = ep.start;
    for _ in 0..n {
        let payer = if one_customer {
            first
        } else {
            pick(rng, &cs).copied().unwrap_or(first)
        };
        let b = rng.gen_range(1_350..1_950);
        get(
            &a,
            ep,
            rng,
            sink,
            &mut t,
            Call::post(&client, format!("{OB}/pisp/domestic-payment-consents"), b).present(spoof),
        );
        t += rng.gen_range(4_000..15_000);
        let refused = rng.gen_bool(0.1);
        let call = Call::post(
            &payer.sub,
            format!("{OB}/pisp/domestic-payments"),
            rng.gen_range(1_450..2_150),
        )
        .present(spoof);
        let call = if refused {
            call.status(403, error_bytes(rng, 403))
        } else {
            call
        };
        get(&a, ep, rng, sink, &mut t, call);
        if !refused && rng.gen_bool(0.5) {
            let mut u = t + rng.gen_range(1_500..5_000);
            let b = rng.gen_range(1_500..2_200);
            let pid = ids::uuid(rng);
            get(
                &a,
                ep,
                rng,
                sink,
                &mut u,
                Call::get(&client, format!("{OB}/pisp/domestic-payments/{pid}"), b),
            );
        }
        t += span / n as u64;
    }
}

/// A stolen PSU token used from a new network, ASN, country and UA.
fn token_replay<R: Rng>(ep: &Ep, rng: &mut R, sink: &mut Sink) {
    let cs = ep.live_customers();
    let Some(c) = pick(rng, &cs).copied() else {
        return;
    };
    let mut a = ep.as_victim();
    a.net = fresh_pool(rng, 0.6, 1, 1);
    a.ua = ua_of(rng, &OTHER_UAS);
    let present = if rng.gen_bool(0.3) {
        Some(a.net.pick(rng, ep.start).ip)
    } else {
        None
    };
    let n = rng.gen_range(8..=60);
    let end = ep.start + rng.gen_range(5 * MINUTE..90 * MINUTE);
    let step = (end - ep.start) / n as u64;
    let mut t = ep.start;
    let mut k = 0;
    while k < n {
        let b = tpps::accounts_bytes(rng, c.accounts.len());
        get(
            &a,
            ep,
            rng,
            sink,
            &mut t,
            Call::get(&c.sub, tpps::accounts_path(), b).present(present),
        );
        k += 1;
        for acc in &c.accounts {
            t += rng.gen_range(500..step.max(600));
            let pages = rng.gen_range(1..=3);
            let from = t.saturating_sub(90 * DAY);
            read_one_account(
                &a,
                ep,
                rng,
                sink,
                &mut t,
                (c, &acc.id, present),
                (from, pages),
            );
            k += 1 + pages;
            if rng.gen_bool(0.25) {
                let b = tpps::list_bytes(rng);
                get(
                    &a,
                    ep,
                    rng,
                    sink,
                    &mut t,
                    Call::get(&c.sub, tpps::account_path(&acc.id, "beneficiaries"), b)
                        .present(present),
                );
                k += 1;
            }
        }
        t += step;
    }
}

/// Many 401s across many subs: tokens from a combo list tried in turn, from rotating proxies.
fn credential_stuffing<R: Rng>(ep: &Ep, rng: &mut R, sink: &mut Sink) {
    let client: Rc<str> = if rng.gen_bool(0.4) {
        Rc::from(*pick(rng, &FRESH_CLIENTS).unwrap_or(&"quidly-connect"))
    } else {
        ep.victim.client().clone()
    };
    let ua = if rng.gen_bool(0.5) {
        ua_of(rng, &OTHER_UAS)
    } else {
        ep.victim.bg.ua.clone()
    };
    let mut a = ep.actor(client, rotating_pool(rng, 20, 200), ua);
    a.retry = Retry::Never;
    let n = rng.gen_range(150..=900);
    let span = rng.gen_range(10 * MINUTE..60 * MINUTE);
    let real: Vec<&Customer> = ep.victim.customers.iter().collect();
    let mut t = ep.start;
    for _ in 0..n {
        let hit = rng.gen_bool(0.05);
        let (sub, status) = match (hit, pick(rng, &real)) {
            (true, Some(c)) => (c.sub.clone(), 200),
            _ => (
                Rc::from(ids::psu(rng)),
                if rng.gen_bool(0.92) { 401 } else { 403 },
            ),
        };
        let bytes = if status == 200 {
            tpps::accounts_bytes(rng, 1)
        } else {
            error_bytes(rng, status)
        };
        let mut u = t;
        // The endpoint the stolen client's scope allows.
        let call = match ep.victim.kind {
            Kind::Cbpii => Call::post(&sub, format!("{OB}/cbpii/funds-confirmations"), 0),
            Kind::Pisp => Call::post(&sub, format!("{OB}/pisp/domestic-payments"), 0),
            _ => Call::get(&sub, tpps::accounts_path(), 0),
        };
        get(&a, ep, rng, sink, &mut u, call.status(status, bytes));
        t += (span as f64 / n as f64 * rng.gen_range(0.2..1.8)) as u64;
    }
}

/// The victim's client id, but curl/Postman/a headless browser walking every endpoint.
fn tool_scraping<R: Rng>(ep: &Ep, rng: &mut R, sink: &mut Sink) {
    let mut cs = ep.live_customers();
    cs.shuffle(rng);
    let mut a = ep.as_victim();
    let tool = *pick(rng, &TOOL_UAS).unwrap_or(&"curl/8.5.0");
    a.ua = UaPlan::fixed(Some(tool));
    if rng.gen_bool(0.5) {
        a.net = fresh_pool(rng, 0.3, 1, 1);
    }
    let manual = tool.starts_with("Postman") || tool.starts_with("insomnia");
    let pace = || {
        if manual {
            (4_000u64, 40_000u64)
        } else {
            (800, 1_600)
        }
    };
    let budget = rng.gen_range(40..=400);
    let mut t = ep.start;
    let mut k = 0;
    for c in cs.into_iter().take(rng.gen_range(1..=5)) {
        let b = tpps::accounts_bytes(rng, c.accounts.len());
        get(
            &a,
            ep,
            rng,
            sink,
            &mut t,
            Call::get(&c.sub, tpps::accounts_path(), b),
        );
        for acc in &c.accounts {
            for ep_name in [
                "",
                "balances",
                "transactions",
                "beneficiaries",
                "standing-orders",
                "direct-debits",
                "scheduled-payments",
                "statements",
                "product",
                "parties",
            ] {
                if k >= budget {
                    return;
                }
                let (lo, hi) = pace();
                t += rng.gen_range(lo..hi);
                if ep_name == "transactions" {
                    let from = t.saturating_sub(365 * DAY);
                    for p in 1..=rng.gen_range(3..=10) {
                        let b = tpps::tx_bytes(rng, PAGE);
                        get(
                            &a,
                            ep,
                            rng,
                            sink,
                            &mut t,
                            Call::get(&c.sub, tpps::tx_path(&acc.id, from, p), b),
                        );
                        t += rng.gen_range(lo..hi);
                        k += 1;
                    }
                } else {
                    let b = tpps::list_bytes(rng);
                    get(
                        &a,
                        ep,
                        rng,
                        sink,
                        &mut t,
                        Call::get(&c.sub, tpps::account_path(&acc.id, ep_name), b),
                    );
                    k += 1;
                }
            }
        }
        t += rng.gen_range(5_000..60_000);
        let b = rng.gen_range(600..1_100);
        get(
            &a,
            ep,
            rng,
            sink,
            &mut t,
            Call::get(&c.sub, format!("{OB}/aisp/party"), b),
        );
    }
}

/// Reading endpoints outside the usual mix (payees, standing orders, parties...) for every
/// account of many customers, from the victim's own network and UA.
fn consent_abuse<R: Rng>(ep: &Ep, rng: &mut R, sink: &mut Sink) {
    let mut cs = ep.live_customers();
    cs.shuffle(rng);
    let a = ep.as_victim();
    let endpoints: &[&str] = match rng.gen_range(0..3) {
        0 => &["beneficiaries", "standing-orders"],
        1 => &[
            "beneficiaries",
            "standing-orders",
            "direct-debits",
            "scheduled-payments",
        ],
        _ => &["parties", "beneficiaries", "statements", "product"],
    };
    let n_cust = ((rng.gen_range(30..=250) as f32) * ep.world.scale.max(0.2)) as usize;
    let denied = rng.gen_range(0.0..0.35);
    let span = rng.gen_range(20 * MINUTE..120 * MINUTE);
    let total: usize = cs
        .iter()
        .take(n_cust.max(5))
        .map(|c| c.accounts.len() * endpoints.len())
        .sum();
    let step = span / total.max(1) as u64;
    let mut t = ep.start;
    for c in cs.into_iter().take(n_cust.max(5)) {
        for acc in &c.accounts {
            for e in endpoints {
                let call = if rng.gen_bool(denied) {
                    Call::get(&c.sub, tpps::account_path(&acc.id, e), 0)
                        .status(403, error_bytes(rng, 403))
                } else {
                    Call::get(
                        &c.sub,
                        tpps::account_path(&acc.id, e),
                        tpps::list_bytes(rng),
                    )
                };
                get(&a, ep, rng, sink, &mut t, call);
                t += (step as f64 * rng.gen_range(0.3..1.7)) as u64;
            }
        }
    }
}
