//! Legitimate TPPs of world B: who they are (roster) and what they send (generators).
//! Everything here is labelled `normal`, oddities included.

use std::net::Ipv4Addr;
use std::rc::Rc;

use rand::Rng;

use super::calendar::{self, Curve, DAY, HOUR, MINUTE, Tz};
use super::network::{self as net, Net, NetPlan, UaPlan, pick};
use super::{Actor, Call, Method, OB, Retry, Sink, World, error_bytes, ids, lognormal, poisson};

/// Transactions per page (the bank's page size).
pub const PAGE: u32 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Aggregator,
    Pfm,
    Pisp,
    Accountancy,
    Cbpii,
    Lender,
}

#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub id: Rc<str>,
    pub tx_per_day: f32,
    /// Closed at the bank from then on (reads answer 404).
    pub closed_from: Option<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Customer {
    pub sub: Rc<str>,
    pub accounts: Vec<Account>,
    pub consent: String,
    /// When the consent was granted inside the run (None: before the run).
    pub joined: Option<u64>,
    /// Consent expired or revoked at the bank (reads answer 403 from then on).
    pub expires: Option<u64>,
    pub tz: Tz,
    pub home: Ipv4Addr,
    pub mobile: Net,
    /// Travelling: (from, to, network) customer-present traffic comes from.
    pub abroad: Option<(u64, u64, Net)>,
    /// Customer-present sessions per day (mean).
    pub activity: f64,
    /// Unattended refresh phase within the refresh period (ms).
    pub phase: u64,
}

impl Customer {
    /// The customer's own address for one session (`x-fapi-customer-ip-address`).
    pub fn session_ip<R: Rng>(&self, rng: &mut R, t: u64) -> Ipv4Addr {
        if let Some((from, to, n)) = &self.abroad
            && t >= *from
            && t < *to
        {
            return net::addr(rng, n);
        }
        if rng.gen_bool(0.6) {
            net::addr(rng, &self.mobile)
        } else {
            self.home
        }
    }

    fn live(&self, t: u64) -> bool {
        self.joined.is_none_or(|j| t >= j)
    }
}

/// Knobs of one TPP.
#[derive(Debug, Clone)]
pub(crate) enum Spec {
    Aggregator {
        /// Unattended refreshes per consent per day (≤ 4).
        per_day: u32,
        /// Batch window (tz, local hours) instead of spreading refreshes over the day.
        window: Option<(Tz, u32)>,
        /// Days of transactions re-read on each refresh.
        window_days: u32,
        /// Re-read each account resource on refresh.
        read_account: bool,
        /// Read beneficiaries / standing orders / direct debits when a consent is new.
        onboarding_extras: bool,
        /// Backfill months on a new consent (min, max).
        backfill: (u32, u32),
        /// Stop refreshing at the first 403 (else keep trying for a couple of days).
        stop_on_403: bool,
    },
    Pfm {
        background_per_day: u32,
        /// Local hour of the nightly digest batch (when `background_per_day == 1`).
        digest_hour: u32,
    },
    Checkout {
        per_day: f64,
    },
    Payroll,
    StandingOrders {
        per_day: f64,
    },
    Accountancy {
        cron: (Tz, u32, u32),
        workers: usize,
        weekly_payees: bool,
    },
    Cbpii {
        per_day: f64,
    },
    Lender {
        per_day: f64,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Tpp {
    pub kind: Kind,
    pub spec: Spec,
    /// Unattended/background traffic.
    pub bg: Actor,
    /// Customer-present traffic (same client and network; UA may differ per service).
    pub fg: Actor,
    pub customers: Vec<Customer>,
    /// First request of a TPP going live mid-run.
    pub live_from: u64,
}

impl Tpp {
    pub fn client(&self) -> &Rc<str> {
        &self.bg.client
    }
}

fn actor(client: &str, net: NetPlan, ua: UaPlan, retry: Retry) -> Actor {
    Actor {
        client: Rc::from(client),
        net,
        ua,
        retry,
        label: None,
        episode: 0,
        noise: true,
    }
}

#[derive(Clone)]
struct CustomerGen {
    n: u32,
    accounts: (u32, u32),
    tx_per_day: (f64, f64),
    activity_median: f64,
    /// Share of customers joining during the run (new consents), and from when.
    joining: f64,
    join_from: u64,
    tz: Tz,
    /// Expats: share living abroad (tz, network).
    expats: Option<(f64, Tz, [Net; 2])>,
    period: u64,
}

fn customers<R: Rng>(rng: &mut R, world: &World, g: &CustomerGen) -> Vec<Customer> {
    (0..g.n)
        .map(|_| {
            let n_acc = rng.gen_range(g.accounts.0..=g.accounts.1);
            // Most have one or two accounts: skew towards the low end.
            let n_acc = if rng.gen_bool(0.55) {
                g.accounts.0.max(1)
            } else {
                n_acc.max(1)
            };
            let accounts = (0..n_acc)
                .map(|_| Account {
                    id: Rc::from(ids::account(rng)),
                    tx_per_day: rng.gen_range(g.tx_per_day.0..=g.tx_per_day.1) as f32,
                    closed_from: None,
                })
                .collect();
            let joined = if rng.gen_bool(g.joining) {
                Some(rng.gen_range(
                    g.join_from.max(world.start)..world.end.max(g.join_from.max(world.start) + 1),
                ))
            } else {
                None
            };
            let expires =
                if joined.is_none() && rng.gen_bool((0.004 * f64::from(world.days)).min(0.5)) {
                    Some(rng.gen_range(world.start..world.end))
                } else {
                    None
                };
            let mut tz = g.tz;
            let mut home_net = *pick(rng, &net::UK_BROADBAND).unwrap_or(&net::BT);
            let mut mobile = *pick(rng, &net::UK_MOBILE).unwrap_or(&net::EE);
            let mut abroad = None;
            if let Some((share, etz, nets)) = &g.expats
                && rng.gen_bool(*share)
            {
                tz = *etz;
                home_net = *pick(rng, nets).unwrap_or(&net::TELEFONICA_ES);
                mobile = home_net;
            } else if rng.gen_bool(0.04) {
                // On holiday for a few days somewhere in the run.
                let from = rng.gen_range(world.start..world.end);
                let len = rng.gen_range(3..=10) * DAY;
                abroad = Some((
                    from,
                    from + len,
                    *pick(rng, &net::HOLIDAY).unwrap_or(&net::TELEFONICA_ES),
                ));
            }
            Customer {
                sub: Rc::from(ids::psu(rng)),
                accounts,
                consent: format!("aac-{}", ids::uuid(rng)),
                joined,
                expires,
                tz,
                home: net::addr(rng, &home_net),
                mobile,
                abroad,
                activity: lognormal(rng, g.activity_median, 0.8).min(12.0),
                phase: rng.gen_range(0..g.period.max(1)),
            }
        })
        .collect()
}

/// Close a few accounts mid-run (the TPP keeps asking, gets 404s).
fn close_some<R: Rng>(rng: &mut R, world: &World, cs: &mut [Customer], share: f64) {
    for c in cs.iter_mut() {
        for a in c.accounts.iter_mut() {
            if rng.gen_bool(share) {
                a.closed_from = Some(rng.gen_range(world.start..world.end));
            }
        }
    }
}

/// Days from the start, as an instant.
fn at_day(world: &World, frac_days: f64) -> u64 {
    world.start + (frac_days * DAY as f64) as u64
}

/// The legitimate TPPs.
pub(crate) fn roster<R: Rng>(world: &World, rng: &mut R) -> Vec<Tpp> {
    let days = f64::from(world.days);
    let mut out = Vec::new();
    let backoff = |max, base_ms, factor| Retry::Backoff {
        max,
        base_ms,
        factor,
    };

    // --- Account aggregators -------------------------------------------------------------
    {
        let mut plan = NetPlan::fixed(net::nat_pool(rng, &net::AWS_LONDON, 4));
        plan.migrate(
            at_day(world, days * 0.6 + 0.45),
            2 * HOUR,
            net::nat_pool(rng, &net::AWS_LONDON, 4),
        );
        let bg = actor(
            "lumenfi-aggregation",
            plan.clone(),
            UaPlan::fixed(Some("Java-http-client/17.0.9")),
            backoff(6, 2_000, 2.0),
        );
        let fg = Actor {
            ua: UaPlan::fixed(Some("okhttp/4.12.0")),
            retry: Retry::Human,
            ..bg.clone()
        };
        let mut cs = customers(
            rng,
            world,
            &CustomerGen {
                n: world.scaled(400, 12),
                accounts: (1, 4),
                tx_per_day: (0.6, 5.0),
                activity_median: 0.25,
                joining: 0.08,
                join_from: world.start,
                tz: Tz::London,
                expats: None,
                period: 6 * HOUR,
            },
        );
        close_some(rng, world, &mut cs, 0.004);
        out.push(Tpp {
            kind: Kind::Aggregator,
            spec: Spec::Aggregator {
                per_day: 4,
                window: None,
                window_days: 7,
                read_account: false,
                onboarding_extras: true,
                backfill: (12, 24),
                stop_on_403: true,
            },
            bg,
            fg,
            customers: cs,
            live_from: world.start,
        });
    }
    {
        let mut plan = NetPlan::fixed(net::nat_pool(rng, &net::GCP_LONDON, 3));
        // Cloud migration GCP -> AWS with an eight-hour overlap.
        plan.migrate(
            at_day(world, days * 0.45 + 0.4),
            8 * HOUR,
            net::nat_pool(rng, &net::AWS_LONDON, 3),
        );
        let bg = actor(
            "kestrel-open-data",
            plan,
            UaPlan::fixed(Some("python-requests/2.31.0")),
            backoff(15, 5_000, 1.0),
        );
        let fg = Actor {
            retry: Retry::Human,
            ..bg.clone()
        };
        let mut cs = customers(
            rng,
            world,
            &CustomerGen {
                n: world.scaled(230, 8),
                accounts: (1, 3),
                tx_per_day: (0.5, 4.0),
                activity_median: 0.35,
                joining: 0.05,
                join_from: world.start,
                tz: Tz::London,
                expats: None,
                period: DAY,
            },
        );
        close_some(rng, world, &mut cs, 0.006);
        out.push(Tpp {
            kind: Kind::Aggregator,
            spec: Spec::Aggregator {
                per_day: 2,
                window: Some((Tz::London, 3)),
                window_days: 3,
                read_account: true,
                onboarding_extras: false,
                backfill: (3, 6),
                stop_on_403: false,
            },
            bg,
            fg,
            customers: cs,
            live_from: world.start,
        });
    }
    {
        let bg = actor(
            "tallyhub-connect",
            NetPlan::fixed(net::nat_pool(rng, &net::AZURE_UKSOUTH, 2)),
            UaPlan::fixed(Some("Go-http-client/2.0")),
            backoff(4, 1_000, 3.0),
        );
        let fg = Actor {
            retry: Retry::Human,
            ..bg.clone()
        };
        let cs = customers(
            rng,
            world,
            &CustomerGen {
                n: world.scaled(200, 6),
                accounts: (1, 3),
                tx_per_day: (0.5, 4.0),
                activity_median: 0.5,
                joining: 0.06,
                join_from: world.start,
                tz: Tz::London,
                expats: None,
                period: DAY,
            },
        );
        out.push(Tpp {
            kind: Kind::Aggregator,
            spec: Spec::Aggregator {
                per_day: 1,
                // A US-headquartered platform: its batch runs at 21:00 New York time.
                window: Some((Tz::NewYork, 21)),
                window_days: 2,
                read_account: false,
                onboarding_extras: false,
                backfill: (3, 12),
                stop_on_403: true,
            },
            bg,
            fg,
            customers: cs,
            live_from: world.start,
        });
    }
    // A new aggregator going live in the second half of the run: no history at all.
    {
        let live = at_day(world, (days * 0.5).floor() + 0.4);
        let bg = actor(
            "novaledger-live",
            NetPlan::fixed(net::nat_pool(rng, &net::DO_LONDON, 2)),
            UaPlan::fixed(Some("okhttp/4.12.0")),
            backoff(5, 1_500, 2.0),
        );
        let fg = Actor {
            retry: Retry::Human,
            ..bg.clone()
        };
        let cs = customers(
            rng,
            world,
            &CustomerGen {
                n: world.scaled(110, 6),
                accounts: (1, 3),
                tx_per_day: (0.6, 4.0),
                activity_median: 0.8,
                joining: 1.0,
                join_from: live,
                tz: Tz::London,
                expats: None,
                period: 6 * HOUR,
            },
        );
        out.push(Tpp {
            kind: Kind::Aggregator,
            spec: Spec::Aggregator {
                per_day: 4,
                window: None,
                window_days: 5,
                read_account: true,
                onboarding_extras: false,
                backfill: (12, 24),
                stop_on_403: true,
            },
            bg,
            fg,
            customers: cs,
            live_from: live,
        });
    }

    // --- PFM / budgeting apps ------------------------------------------------------------
    {
        let bg = actor(
            "pennywise-pfm",
            NetPlan::fixed(net::nat_pool(rng, &net::GCP_LONDON, 2)),
            UaPlan::fixed(Some("axios/1.6.2")),
            backoff(3, 1_000, 2.0),
        );
        let fg = Actor {
            retry: Retry::Human,
            ..bg.clone()
        };
        let cs = customers(
            rng,
            world,
            &CustomerGen {
                n: world.scaled(300, 8),
                accounts: (1, 3),
                tx_per_day: (1.0, 5.0),
                activity_median: 1.3,
                joining: 0.05,
                join_from: world.start,
                tz: Tz::London,
                expats: None,
                period: DAY,
            },
        );
        out.push(Tpp {
            kind: Kind::Pfm,
            spec: Spec::Pfm {
                background_per_day: 1,
                digest_hour: 5,
            },
            bg,
            fg,
            customers: cs,
            live_from: world.start,
        });
    }
    {
        let rollout = at_day(world, (days * 0.35).floor() + 0.42);
        let ua = UaPlan::fixed(Some("BudgetBee-Sync/5.3.1 okhttp/4.11.0")).rollout(
            rollout,
            36 * HOUR,
            "BudgetBee-Sync/5.4.0 okhttp/4.12.0",
        );
        let bg = actor(
            "budgetbee-app",
            NetPlan::fixed(net::nat_pool(rng, &net::AWS_DUBLIN, 3)),
            ua,
            backoff(4, 2_000, 2.0),
        );
        let fg = Actor {
            retry: Retry::Human,
            ..bg.clone()
        };
        let cs = customers(
            rng,
            world,
            &CustomerGen {
                n: world.scaled(180, 6),
                accounts: (1, 2),
                tx_per_day: (1.0, 4.0),
                activity_median: 0.9,
                joining: 0.05,
                join_from: world.start,
                tz: Tz::London,
                expats: None,
                period: 12 * HOUR,
            },
        );
        out.push(Tpp {
            kind: Kind::Pfm,
            spec: Spec::Pfm {
                background_per_day: 2,
                digest_hour: 0,
            },
            bg,
            fg,
            customers: cs,
            live_from: world.start,
        });
    }
    {
        let bg = actor(
            "moneyhive-expat",
            NetPlan::fixed(net::nat_pool(rng, &net::AZURE_WESTEU, 2)),
            UaPlan::fixed(Some("MoneyHive/3.2 (+https://moneyhive.example) Java/17")),
            backoff(3, 2_000, 2.0),
        );
        let fg = Actor {
            retry: Retry::Human,
            ..bg.clone()
        };
        let cs = customers(
            rng,
            world,
            &CustomerGen {
                n: world.scaled(90, 5),
                accounts: (1, 2),
                tx_per_day: (0.5, 3.0),
                activity_median: 0.8,
                joining: 0.04,
                join_from: world.start,
                tz: Tz::London,
                expats: Some((0.6, Tz::Madrid, [net::TELEFONICA_ES, net::ORANGE_FR])),
                period: DAY,
            },
        );
        out.push(Tpp {
            kind: Kind::Pfm,
            spec: Spec::Pfm {
                background_per_day: 1,
                digest_hour: 3,
            },
            bg,
            fg,
            customers: cs,
            live_from: world.start,
        });
    }

    // --- PISPs --------------------------------------------------------------------------
    {
        let bg = actor(
            "swiftpay-checkout",
            NetPlan::fixed(net::nat_pool(rng, &net::AWS_LONDON, 3)),
            UaPlan::fixed(Some("okhttp/4.12.0")),
            backoff(5, 1_000, 2.0),
        );
        let fg = bg.clone();
        let payers = customers(rng, world, &payer_gen(world.scaled(4_000, 40)));
        out.push(Tpp {
            kind: Kind::Pisp,
            spec: Spec::Checkout {
                per_day: 450.0 * f64::from(world.scale),
            },
            bg,
            fg,
            customers: payers,
            live_from: world.start,
        });
    }
    {
        let bg = actor(
            "payrollo-payments",
            NetPlan::fixed(net::nat_pool(rng, &net::AZURE_UKSOUTH, 2)),
            UaPlan::fixed(Some("Payrollo-PaymentRunner/1.9 (Java-http-client/21.0.2)")),
            backoff(5, 3_000, 2.0),
        );
        let fg = bg.clone();
        let payers = customers(
            rng,
            world,
            &CustomerGen {
                activity_median: 0.3,
                ..payer_gen(world.scaled(40, 6))
            },
        );
        out.push(Tpp {
            kind: Kind::Pisp,
            spec: Spec::Payroll,
            bg,
            fg,
            customers: payers,
            live_from: world.start,
        });
    }
    {
        let bg = actor(
            "rentflow-payments",
            NetPlan::fixed(net::nat_pool(rng, &net::GCP_BELGIUM, 2)),
            UaPlan::fixed(Some("Go-http-client/2.0")),
            backoff(4, 1_000, 2.0),
        );
        let fg = bg.clone();
        let payers = customers(rng, world, &payer_gen(world.scaled(800, 10)));
        out.push(Tpp {
            kind: Kind::Pisp,
            spec: Spec::StandingOrders {
                per_day: 40.0 * f64::from(world.scale),
            },
            bg,
            fg,
            customers: payers,
            live_from: world.start,
        });
    }

    // --- Accountancy platforms -----------------------------------------------------------
    {
        let ua = UaPlan::fixed(Some("Apache-HttpClient/4.5.14 (Java/17.0.9)")).rollout(
            at_day(world, (days * 0.7).floor() + 0.45),
            20 * HOUR,
            "Apache-HttpClient/5.3.1 (Java/17.0.10)",
        );
        let bg = actor(
            "ledgerly-bankfeeds",
            NetPlan::fixed(net::nat_pool(rng, &net::AWS_LONDON, 2)),
            ua,
            backoff(8, 30_000, 1.5),
        );
        let fg = Actor {
            retry: Retry::Human,
            ..bg.clone()
        };
        let cs = customers(
            rng,
            world,
            &business_gen(world, world.scaled(200, 6), Tz::London),
        );
        out.push(Tpp {
            kind: Kind::Accountancy,
            spec: Spec::Accountancy {
                cron: (Tz::London, 2, 0),
                workers: 3,
                weekly_payees: true,
            },
            bg,
            fg,
            customers: cs,
            live_from: world.start,
        });
    }
    {
        let bg = actor(
            "bookwise-sync",
            NetPlan::fixed(net::nat_pool(rng, &net::OVH_FR, 2)),
            UaPlan::fixed(Some(
                "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
            )),
            backoff(5, 10_000, 2.0),
        );
        let fg = Actor {
            retry: Retry::Human,
            ..bg.clone()
        };
        let cs = customers(
            rng,
            world,
            &business_gen(world, world.scaled(100, 5), Tz::Paris),
        );
        out.push(Tpp {
            kind: Kind::Accountancy,
            spec: Spec::Accountancy {
                cron: (Tz::Paris, 1, 30),
                workers: 2,
                weekly_payees: false,
            },
            bg,
            fg,
            customers: cs,
            live_from: world.start,
        });
    }

    // --- CBPII -------------------------------------------------------------------------
    {
        let bg = actor(
            "cardcheck-cbpii",
            NetPlan::fixed(net::nat_pool(rng, &net::AZURE_UKSOUTH, 3)),
            UaPlan::fixed(None),
            backoff(2, 400, 2.0),
        );
        let fg = bg.clone();
        let cs = customers(rng, world, &payer_gen(world.scaled(800, 10)));
        out.push(Tpp {
            kind: Kind::Cbpii,
            spec: Spec::Cbpii {
                per_day: 1_300.0 * f64::from(world.scale),
            },
            bg,
            fg,
            customers: cs,
            live_from: world.start,
        });
    }
    {
        let bg = actor(
            "flexipay-funds",
            NetPlan::fixed(net::nat_pool(rng, &net::AWS_LONDON, 2)),
            UaPlan::fixed(Some("Go-http-client/2.0")),
            backoff(2, 500, 2.0),
        );
        let fg = bg.clone();
        let cs = customers(rng, world, &payer_gen(world.scaled(200, 6)));
        out.push(Tpp {
            kind: Kind::Cbpii,
            spec: Spec::Cbpii {
                per_day: 250.0 * f64::from(world.scale),
            },
            bg,
            fg,
            customers: cs,
            live_from: world.start,
        });
    }

    // --- Lender (affordability checks) ---------------------------------------------------
    {
        let bg = actor(
            "lendscope-affordability",
            NetPlan::fixed(net::nat_pool(rng, &net::GCP_LONDON, 2)),
            UaPlan::fixed(Some("aiohttp/3.9.1")),
            backoff(5, 2_000, 2.0),
        );
        let fg = bg.clone();
        // Applicants appear during the run; generated per application.
        out.push(Tpp {
            kind: Kind::Lender,
            spec: Spec::Lender {
                per_day: 35.0 * f64::from(world.scale),
            },
            bg,
            fg,
            customers: Vec::new(),
            live_from: world.start,
        });
    }
    out
}

fn payer_gen(n: u32) -> CustomerGen {
    CustomerGen {
        n,
        accounts: (1, 1),
        tx_per_day: (1.0, 3.0),
        activity_median: 1.0,
        joining: 0.0,
        join_from: 0,
        tz: Tz::London,
        expats: None,
        period: DAY,
    }
}

fn business_gen(world: &World, n: u32, tz: Tz) -> CustomerGen {
    CustomerGen {
        n,
        accounts: (1, 4),
        tx_per_day: (4.0, 40.0),
        activity_median: 0.5,
        joining: 0.04,
        join_from: world.start,
        tz,
        expats: None,
        period: DAY,
    }
}

pub(crate) fn generate<R: Rng>(tpp: &Tpp, world: &World, rng: &mut R, sink: &mut Sink) {
    match &tpp.spec {
        Spec::Aggregator { .. } | Spec::Pfm { .. } | Spec::Accountancy { .. } => {
            ais_clients(tpp, world, rng, sink);
        }
        Spec::Checkout { per_day } => checkout(tpp, world, rng, sink, *per_day),
        Spec::Payroll => payroll(tpp, world, rng, sink),
        Spec::StandingOrders { per_day } => standing_orders(tpp, world, rng, sink, *per_day),
        Spec::Cbpii { per_day } => cbpii(tpp, world, rng, sink, *per_day),
        Spec::Lender { per_day } => lender(tpp, world, rng, sink, *per_day),
    }
}

// --- paths and sizes ---------------------------------------------------------------------

pub(crate) fn accounts_path() -> String {
    format!("{OB}/aisp/accounts")
}

pub(crate) fn account_path(id: &str, sub: &str) -> String {
    if sub.is_empty() {
        format!("{OB}/aisp/accounts/{id}")
    } else {
        format!("{OB}/aisp/accounts/{id}/{sub}")
    }
}

pub(crate) fn tx_path(id: &str, from: u64, page: u32) -> String {
    let from = calendar::fmt_iso_seconds(from - from % DAY);
    if page <= 1 {
        format!("{OB}/aisp/accounts/{id}/transactions?fromBookingDateTime={from}")
    } else {
        format!("{OB}/aisp/accounts/{id}/transactions?fromBookingDateTime={from}&page={page}")
    }
}

pub(crate) fn accounts_bytes<R: Rng>(rng: &mut R, n: usize) -> u32 {
    420 + n as u32 * rng.gen_range(430..620)
}

pub(crate) fn balances_bytes<R: Rng>(rng: &mut R) -> u32 {
    rng.gen_range(640..1_450)
}

pub(crate) fn tx_bytes<R: Rng>(rng: &mut R, n: u32) -> u32 {
    let per: u32 = (0..n.min(PAGE)).map(|_| rng.gen_range(470..780)).sum();
    1_050 + per
}

/// Size of a small resource list (beneficiaries, standing orders, direct debits, parties).
pub(crate) fn list_bytes<R: Rng>(rng: &mut R) -> u32 {
    let n = rng.gen_range(0..12);
    380 + n * rng.gen_range(260..420)
}

fn gap<R: Rng>(rng: &mut R, lo: u64, hi: u64) -> u64 {
    rng.gen_range(lo..hi.max(lo + 1))
}

// --- AIS: aggregators, PFMs, accountancy -------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Ev {
    Onboard,
    Unattended,
    Present,
}

/// How a read of a customer's accounts goes.
struct Read {
    present: Option<Ipv4Addr>,
    /// Transactions from this instant.
    from: u64,
    read_account: bool,
    /// Extra per-account endpoints (`beneficiaries`, ...).
    extras: &'static [&'static str],
    /// Pages to read at most (more exist when the window holds more transactions).
    max_pages: u32,
    gap: (u64, u64),
}

enum Outcome {
    Done(u64),
    /// Failed at this instant (outage; retries exhausted).
    Failed(u64),
    /// The consent is gone (403).
    Refused,
}

fn read_accounts<R: Rng>(
    actor: &Actor,
    world: &World,
    rng: &mut R,
    sink: &mut Sink,
    t0: u64,
    c: &Customer,
    r: &Read,
) -> Outcome {
    let mut t = t0;
    if c.expires.is_some_and(|e| t >= e) {
        let b = error_bytes(rng, 403);
        actor.send(
            sink,
            rng,
            world,
            &mut t,
            Call::get(&c.sub, accounts_path(), 0)
                .status(403, b)
                .present(r.present),
        );
        return Outcome::Refused;
    }
    let list = accounts_bytes(rng, c.accounts.len());
    if !actor.send(
        sink,
        rng,
        world,
        &mut t,
        Call::get(&c.sub, accounts_path(), list).present(r.present),
    ) {
        return Outcome::Failed(t);
    }
    for a in &c.accounts {
        let closed = a.closed_from.is_some_and(|x| t >= x);
        t += gap(rng, r.gap.0, r.gap.1);
        if closed {
            let b = error_bytes(rng, 404);
            actor.send(
                sink,
                rng,
                world,
                &mut t,
                Call::get(&c.sub, account_path(&a.id, "balances"), 0)
                    .status(404, b)
                    .present(r.present),
            );
            continue;
        }
        if r.read_account {
            let b = rng.gen_range(700..1_100);
            if !actor.send(
                sink,
                rng,
                world,
                &mut t,
                Call::get(&c.sub, account_path(&a.id, ""), b).present(r.present),
            ) {
                return Outcome::Failed(t);
            }
            t += gap(rng, r.gap.0, r.gap.1);
        }
        let b = balances_bytes(rng);
        if !actor.send(
            sink,
            rng,
            world,
            &mut t,
            Call::get(&c.sub, account_path(&a.id, "balances"), b).present(r.present),
        ) {
            return Outcome::Failed(t);
        }
        let days = t.saturating_sub(r.from) as f64 / DAY as f64;
        let n_tx = poisson(rng, f64::from(a.tx_per_day) * days);
        let pages = (n_tx.div_ceil(PAGE)).clamp(1, r.max_pages.max(1));
        for page in 1..=pages {
            t += gap(rng, r.gap.0, r.gap.1);
            let on_page = if page * PAGE <= n_tx {
                PAGE
            } else {
                n_tx.saturating_sub((page - 1) * PAGE)
            };
            let b = tx_bytes(rng, on_page);
            if !actor.send(
                sink,
                rng,
                world,
                &mut t,
                Call::get(&c.sub, tx_path(&a.id, r.from, page), b).present(r.present),
            ) {
                return Outcome::Failed(t);
            }
        }
        for ep in r.extras {
            t += gap(rng, r.gap.0, r.gap.1);
            let b = list_bytes(rng);
            if !actor.send(
                sink,
                rng,
                world,
                &mut t,
                Call::get(&c.sub, account_path(&a.id, ep), b).present(r.present),
            ) {
                return Outcome::Failed(t);
            }
        }
    }
    Outcome::Done(t)
}

/// POST account-access-consents, then (after the PSU authorised at the bank) GET it.
fn new_ais_consent<R: Rng>(
    tpp: &Tpp,
    world: &World,
    rng: &mut R,
    sink: &mut Sink,
    t: &mut u64,
    consent: &str,
    ip: Ipv4Addr,
) -> bool {
    let client = tpp.client().clone();
    let b = rng.gen_range(1_150..1_650);
    tpp.fg.send(
        sink,
        rng,
        world,
        t,
        Call::post(&client, format!("{OB}/aisp/account-access-consents"), b).present(Some(ip)),
    );
    if rng.gen_bool(0.1) {
        return false; // abandoned at the bank
    }
    *t += gap(rng, 35_000, 240_000);
    let b = rng.gen_range(1_150..1_650);
    tpp.fg.send(
        sink,
        rng,
        world,
        t,
        Call::get(
            &client,
            format!("{OB}/aisp/account-access-consents/{consent}"),
            b,
        )
        .present(Some(ip)),
    )
}

/// Aggregators, PFMs and accountancy platforms: per customer, a time-ordered list of
/// onboarding, unattended refreshes and customer-present sessions, run through the consent's
/// state (expiry, re-authorisation).
fn ais_clients<R: Rng>(tpp: &Tpp, world: &World, rng: &mut R, sink: &mut Sink) {
    // Batch windows (queue workers) are simulated separately from per-customer phases.
    let batches = batch_times(tpp, world, rng);
    for (ci, c) in tpp.customers.iter().enumerate() {
        let mut evs: Vec<(u64, Ev)> = Vec::new();
        if let Some(j) = c.joined {
            evs.push((j, Ev::Onboard));
        }
        // Unattended refreshes.
        match &tpp.spec {
            Spec::Aggregator {
                per_day,
                window: None,
                ..
            }
            | Spec::Pfm {
                background_per_day: per_day @ 2..,
                ..
            } => {
                let period = DAY / u64::from((*per_day).max(1));
                let mut t = world.start - world.start % DAY + c.phase % period;
                while t < world.end {
                    let jitter = rng.gen_range(0..20 * MINUTE);
                    evs.push((t + jitter, Ev::Unattended));
                    t += period;
                }
            }
            _ => {
                for (times, stride) in &batches {
                    for day_start in times {
                        evs.push((
                            day_start
                                + (ci as u64 * stride.0) / stride.1.max(1)
                                + rng.gen_range(0..2_000),
                            Ev::Unattended,
                        ));
                    }
                }
            }
        }
        // Customer-present sessions.
        let curve: &Curve = match tpp.kind {
            Kind::Accountancy => &calendar::OFFICE,
            _ => &calendar::RETAIL_APP,
        };
        for day in world.day_numbers() {
            let mean = match tpp.kind {
                Kind::Accountancy if !calendar::is_business_day(day) => c.activity * 0.08,
                Kind::Pfm if calendar::is_payday_25(day) => c.activity * 1.6,
                _ => c.activity,
            };
            for _ in 0..poisson(rng, mean) {
                evs.push((calendar::sample_in_day(rng, c.tz, day, curve), Ev::Present));
            }
        }
        evs.retain(|(t, _)| *t >= tpp.live_from && c.live(*t));
        evs.sort();
        run_customer(tpp, world, rng, sink, c, &evs);
    }
}

/// Batch start instants (one list per daily batch) and each customer's offset in the queue
/// as (per-customer ms × index / workers): (times, (ms per customer, workers)).
fn batch_times<R: Rng>(tpp: &Tpp, world: &World, rng: &mut R) -> Vec<(Vec<u64>, (u64, u64))> {
    let mut out = Vec::new();
    let mut daily = |tz: Tz, h: u32, m: u32, workers: u64, per_customer: u64| {
        let times: Vec<u64> = (world.first_day - 1..=world.first_day + i64::from(world.days))
            .map(|d| tz.at(d, h, m) + rng.gen_range(0..3_000))
            .collect();
        out.push((times, (per_customer, workers)));
    };
    match &tpp.spec {
        Spec::Aggregator {
            per_day,
            window: Some((tz, h)),
            ..
        } => {
            for k in 0..*per_day {
                daily(*tz, (h + 12 * k) % 24, 0, 2, 2_600);
            }
        }
        Spec::Pfm {
            background_per_day: 0..=1,
            digest_hour,
            ..
        } => {
            daily(Tz::London, *digest_hour, 15, 2, 2_400);
        }
        Spec::Accountancy {
            cron: (tz, h, m),
            workers,
            ..
        } => {
            daily(*tz, *h, *m, *workers as u64, 4_800);
        }
        _ => {}
    }
    out
}

fn run_customer<R: Rng>(
    tpp: &Tpp,
    world: &World,
    rng: &mut R,
    sink: &mut Sink,
    c: &Customer,
    evs: &[(u64, Ev)],
) {
    let (window_days, read_account, extras_on_board, backfill, stop_on_403) = match &tpp.spec {
        Spec::Aggregator {
            window_days,
            read_account,
            onboarding_extras,
            backfill,
            stop_on_403,
            ..
        } => (
            *window_days,
            *read_account,
            *onboarding_extras,
            *backfill,
            *stop_on_403,
        ),
        Spec::Pfm { .. } => (3, false, false, (3, 6), true),
        _ => (2, false, false, (12, 24), false),
    };
    let weekly_payees = matches!(
        &tpp.spec,
        Spec::Accountancy {
            weekly_payees: true,
            ..
        }
    );
    let fast = (60, 420);
    // Consent state: refused since (403s seen), re-authorised after expiry.
    let mut expired_seen: Option<u64> = None;
    let mut reauthorised: Option<Customer> = None;
    let mut last_unattended: Option<u64> = None;
    let mut catch_up: Option<u64> = None;
    let mut queue: Vec<(u64, Ev)> = evs.to_vec();
    let mut i = 0;
    while let Some((t, ev)) = queue.get(i).copied() {
        i += 1;
        let cust = reauthorised.as_ref().unwrap_or(c);
        match ev {
            Ev::Onboard => {
                let ip = c.session_ip(rng, t);
                let mut t = t;
                if !new_ais_consent(tpp, world, rng, sink, &mut t, &c.consent, ip) {
                    return;
                }
                t += gap(rng, 800, 4_000);
                let months = rng.gen_range(backfill.0..=backfill.1.max(backfill.0));
                let read = Read {
                    present: Some(ip),
                    from: t.saturating_sub(u64::from(months) * 30 * DAY),
                    read_account: true,
                    extras: if extras_on_board {
                        &["beneficiaries", "standing-orders", "direct-debits"]
                    } else {
                        &[]
                    },
                    max_pages: 400,
                    gap: (120, 900),
                };
                read_accounts(&tpp.bg, world, rng, sink, t, cust, &read);
                last_unattended = Some(t);
            }
            Ev::Unattended => {
                if let Some(seen) = expired_seen
                    && (stop_on_403 || t > seen + 2 * DAY)
                {
                    continue;
                }
                let from = last_unattended
                    .unwrap_or(t - DAY)
                    .min(t.saturating_sub(u64::from(window_days) * DAY));
                let is_monday = calendar::weekday((t / DAY) as i64) == 0;
                let read = Read {
                    present: None,
                    from,
                    read_account,
                    extras: if weekly_payees && is_monday {
                        &["beneficiaries"]
                    } else {
                        &[]
                    },
                    max_pages: 20,
                    gap: fast,
                };
                match read_accounts(&tpp.bg, world, rng, sink, t, cust, &read) {
                    Outcome::Done(_) => last_unattended = Some(t),
                    Outcome::Refused => {
                        expired_seen.get_or_insert(t);
                    }
                    Outcome::Failed(at) => {
                        // Catch up once after the outage.
                        if catch_up.is_none()
                            && let Some((_, end, _)) = world
                                .outage_at(at)
                                .or_else(|| world.outage_at(at.saturating_sub(MINUTE)))
                        {
                            let when = end + rng.gen_range(MINUTE..25 * MINUTE);
                            catch_up = Some(when);
                            let pos = queue
                                .iter()
                                .position(|(x, _)| *x > when)
                                .unwrap_or(queue.len());
                            queue.insert(pos.max(i), (when, Ev::Unattended));
                        } else {
                            catch_up = None;
                        }
                    }
                }
            }
            Ev::Present => {
                let ip = c.session_ip(rng, t);
                let mut t = t;
                if cust.expires.is_some_and(|e| t >= e) && rng.gen_bool(0.5) {
                    // The app asks the customer to re-authorise; half do, straight away.
                    let consent = format!("aac-{}", ids::uuid(rng));
                    if new_ais_consent(tpp, world, rng, sink, &mut t, &consent, ip) {
                        let mut fresh = c.clone();
                        fresh.expires = None;
                        fresh.consent = consent;
                        reauthorised = Some(fresh);
                        expired_seen = None;
                        t += gap(rng, 500, 3_000);
                    }
                }
                let cust = reauthorised.as_ref().unwrap_or(c);
                let window = match tpp.kind {
                    Kind::Pfm => 30,
                    Kind::Accountancy => 14,
                    _ => 7,
                };
                let read = Read {
                    present: Some(ip),
                    from: t.saturating_sub(window * DAY),
                    read_account: false,
                    extras: &[],
                    max_pages: if rng.gen_bool(0.2) { 4 } else { 1 },
                    gap: (90, 700),
                };
                if let Outcome::Refused = read_accounts(&tpp.fg, world, rng, sink, t, cust, &read) {
                    expired_seen.get_or_insert(t);
                }
            }
        }
    }
}

// --- PISP --------------------------------------------------------------------------------

fn sample_days<R: Rng>(
    rng: &mut R,
    world: &World,
    tz: Tz,
    curve: &Curve,
    mean_per_day: f64,
    weekend: f64,
) -> Vec<u64> {
    let mut out = Vec::new();
    for day in world.day_numbers() {
        let mean = if calendar::is_weekend(day) {
            mean_per_day * weekend
        } else {
            mean_per_day
        };
        for _ in 0..poisson(rng, mean) {
            out.push(calendar::sample_in_day(rng, tz, day, curve));
        }
    }
    out.sort_unstable();
    out
}

/// One domestic payment: consent, authorisation at the bank, submission, status polls.
/// Returns the time after the submission.
fn payment<R: Rng>(
    tpp: &Tpp,
    world: &World,
    rng: &mut R,
    sink: &mut Sink,
    t: &mut u64,
    (payer, present): (&Customer, Option<Ipv4Addr>),
    authorise: (u64, u64),
) -> bool {
    let client = tpp.client().clone();
    let consent = format!("pdc-{}", ids::uuid(rng));
    let b = rng.gen_range(1_350..1_950);
    if !tpp.bg.send(
        sink,
        rng,
        world,
        t,
        Call::post(&client, format!("{OB}/pisp/domestic-payment-consents"), b).present(present),
    ) {
        return false;
    }
    *t += gap(rng, authorise.0, authorise.1);
    if rng.gen_bool(0.4) {
        let b = rng.gen_range(1_350..1_950);
        tpp.bg.send(
            sink,
            rng,
            world,
            t,
            Call::get(
                &client,
                format!("{OB}/pisp/domestic-payment-consents/{consent}"),
                b,
            ),
        );
        *t += gap(rng, 150, 900);
    }
    if rng.gen_bool(0.3) {
        let b = rng.gen_range(420..560);
        tpp.bg.send(
            sink,
            rng,
            world,
            t,
            Call::get(
                &payer.sub,
                format!("{OB}/pisp/domestic-payment-consents/{consent}/funds-confirmation"),
                b,
            )
            .present(present),
        );
        *t += gap(rng, 150, 900);
    }
    let rejected = rng.gen_bool(0.015);
    let call = Call::post(
        &payer.sub,
        format!("{OB}/pisp/domestic-payments"),
        rng.gen_range(1_450..2_150),
    )
    .present(present);
    let call = if rejected {
        call.status(400, error_bytes(rng, 400))
    } else {
        call
    };
    if !tpp.bg.send(sink, rng, world, t, call) || rejected {
        return false;
    }
    let pid = ids::uuid(rng);
    let mut tp = *t;
    for k in 0..rng.gen_range(1..=3u32) {
        tp += [2_000u64, 6_000, 20_000]
            .get(k as usize)
            .copied()
            .unwrap_or(30_000)
            + rng.gen_range(0..1_500);
        let b = rng.gen_range(1_500..2_200);
        tpp.bg.send(
            sink,
            rng,
            world,
            &mut tp,
            Call::get(&client, format!("{OB}/pisp/domestic-payments/{pid}"), b),
        );
    }
    true
}

fn checkout<R: Rng>(tpp: &Tpp, world: &World, rng: &mut R, sink: &mut Sink, per_day: f64) {
    for t in sample_days(rng, world, Tz::London, &calendar::ECOMMERCE, per_day, 1.25) {
        let Some(payer) = pick(rng, &tpp.customers) else {
            return;
        };
        let ip = payer.session_ip(rng, t);
        let mut t = t;
        if rng.gen_bool(0.14) {
            // Checkout abandoned after the consent was created.
            let client = tpp.client().clone();
            let b = rng.gen_range(1_350..1_950);
            tpp.bg.send(
                sink,
                rng,
                world,
                &mut t,
                Call::post(&client, format!("{OB}/pisp/domestic-payment-consents"), b)
                    .present(Some(ip)),
            );
            continue;
        }
        payment(
            tpp,
            world,
            rng,
            sink,
            &mut t,
            (payer, Some(ip)),
            (20_000, 150_000),
        );
    }
}

fn payroll<R: Rng>(tpp: &Tpp, world: &World, rng: &mut R, sink: &mut Sink) {
    for (bi, business) in tpp.customers.iter().enumerate() {
        // Pay cycle: monthly on the 25th (most), weekly on Fridays, or month-end.
        let cycle = bi % 10;
        for day in world.day_numbers() {
            let pay = match cycle {
                0..=5 => calendar::is_payday_25(day),
                6 | 7 => calendar::weekday(day) == 4 && calendar::is_business_day(day),
                _ => calendar::is_month_end(day),
            };
            let singles = if calendar::is_business_day(day) {
                poisson(rng, business.activity * 0.5)
            } else {
                0
            };
            let ip = business.session_ip(rng, day as u64 * DAY);
            if pay {
                let mut t = calendar::sample_in_day(rng, Tz::London, day, &calendar::OFFICE);
                let n = rng.gen_range(4..=14);
                for _ in 0..n {
                    payment(
                        tpp,
                        world,
                        rng,
                        sink,
                        &mut t,
                        (business, Some(ip)),
                        (8_000, 45_000),
                    );
                    t += gap(rng, 3_000, 40_000);
                }
            }
            for _ in 0..singles {
                let mut t = calendar::sample_in_day(rng, Tz::London, day, &calendar::OFFICE);
                payment(
                    tpp,
                    world,
                    rng,
                    sink,
                    &mut t,
                    (business, Some(ip)),
                    (15_000, 120_000),
                );
            }
        }
    }
}

fn standing_orders<R: Rng>(tpp: &Tpp, world: &World, rng: &mut R, sink: &mut Sink, per_day: f64) {
    let client = tpp.client().clone();
    for t in sample_days(rng, world, Tz::London, &calendar::RETAIL_APP, per_day, 0.8) {
        let Some(payer) = pick(rng, &tpp.customers) else {
            return;
        };
        let ip = payer.session_ip(rng, t);
        let mut t = t;
        let consent = format!("sdsoc-{}", ids::uuid(rng));
        let b = rng.gen_range(1_500..2_100);
        if !tpp.bg.send(
            sink,
            rng,
            world,
            &mut t,
            Call::post(
                &client,
                format!("{OB}/pisp/domestic-standing-order-consents"),
                b,
            )
            .present(Some(ip)),
        ) {
            continue;
        }
        if rng.gen_bool(0.12) {
            continue;
        }
        t += gap(rng, 30_000, 200_000);
        let b = rng.gen_range(1_500..2_100);
        tpp.bg.send(
            sink,
            rng,
            world,
            &mut t,
            Call::get(
                &client,
                format!("{OB}/pisp/domestic-standing-order-consents/{consent}"),
                b,
            ),
        );
        t += gap(rng, 200, 1_500);
        let b = rng.gen_range(1_600..2_300);
        tpp.bg.send(
            sink,
            rng,
            world,
            &mut t,
            Call::post(&payer.sub, format!("{OB}/pisp/domestic-standing-orders"), b)
                .present(Some(ip)),
        );
        t += gap(rng, 2_000, 10_000);
        let b = rng.gen_range(1_600..2_300);
        let id = ids::uuid(rng);
        tpp.bg.send(
            sink,
            rng,
            world,
            &mut t,
            Call::get(
                &client,
                format!("{OB}/pisp/domestic-standing-orders/{id}"),
                b,
            ),
        );
    }
}

// --- CBPII -------------------------------------------------------------------------------

fn cbpii<R: Rng>(tpp: &Tpp, world: &World, rng: &mut R, sink: &mut Sink, per_day: f64) {
    let client = tpp.client().clone();
    for t in sample_days(rng, world, Tz::London, &calendar::SHOPPING, per_day, 1.3) {
        let Some(c) = pick(rng, &tpp.customers) else {
            return;
        };
        let mut t = t;
        let present = if rng.gen_bool(0.25) {
            Some(c.session_ip(rng, t))
        } else {
            None
        };
        if rng.gen_bool(0.006) {
            // Consent expired: refused, the CBPII asks the customer for a fresh one.
            let b = error_bytes(rng, 403);
            tpp.bg.send(
                sink,
                rng,
                world,
                &mut t,
                Call::post(&c.sub, format!("{OB}/cbpii/funds-confirmations"), 0)
                    .status(403, b)
                    .present(present),
            );
            t += gap(rng, 60_000, 900_000);
            let b = rng.gen_range(900..1_300);
            tpp.bg.send(
                sink,
                rng,
                world,
                &mut t,
                Call::post(
                    &client,
                    format!("{OB}/cbpii/funds-confirmation-consents"),
                    b,
                )
                .present(present),
            );
            t += gap(rng, 30_000, 180_000);
            let cid = ids::uuid(rng);
            let b = rng.gen_range(900..1_300);
            tpp.bg.send(
                sink,
                rng,
                world,
                &mut t,
                Call::get(
                    &client,
                    format!("{OB}/cbpii/funds-confirmation-consents/{cid}"),
                    b,
                ),
            );
            continue;
        }
        let b = rng.gen_range(360..470);
        tpp.bg.send(
            sink,
            rng,
            world,
            &mut t,
            Call::post(&c.sub, format!("{OB}/cbpii/funds-confirmations"), b).present(present),
        );
    }
}

// --- Lender ------------------------------------------------------------------------------

fn lender<R: Rng>(tpp: &Tpp, world: &World, rng: &mut R, sink: &mut Sink, per_day: f64) {
    let client = tpp.client().clone();
    let mut curve = calendar::OFFICE;
    for (h, w) in curve.iter_mut().enumerate() {
        if (18..=22).contains(&h) {
            *w += 0.6;
        }
    }
    let app_gen = CustomerGen {
        activity_median: 1.0,
        ..payer_gen(1)
    };
    for t in sample_days(rng, world, Tz::London, &curve, per_day, 0.6) {
        let Some(mut applicant) = customers(
            rng,
            world,
            &CustomerGen {
                accounts: (1, 3),
                tx_per_day: (1.5, 5.0),
                ..app_gen.clone()
            },
        )
        .pop() else {
            continue;
        };
        applicant.expires = None;
        let ip = applicant.session_ip(rng, t);
        let mut t = t;
        if !new_ais_consent(tpp, world, rng, sink, &mut t, &applicant.consent, ip) {
            continue;
        }
        t += gap(rng, 500, 2_500);
        let read = Read {
            present: Some(ip),
            from: t.saturating_sub(365 * DAY),
            read_account: true,
            extras: if rng.gen_bool(0.5) {
                &["standing-orders", "direct-debits"]
            } else {
                &["direct-debits"]
            },
            max_pages: 60,
            gap: (150, 600),
        };
        if let Outcome::Done(end) = read_accounts(&tpp.bg, world, rng, sink, t, &applicant, &read) {
            let mut t = end + gap(rng, 200, 900);
            let b = rng.gen_range(600..1_100);
            tpp.bg.send(
                sink,
                rng,
                world,
                &mut t,
                Call::get(&applicant.sub, format!("{OB}/aisp/party"), b).present(Some(ip)),
            );
            t += gap(rng, 2_000, 30_000);
            let consent = applicant.consent.clone();
            tpp.bg.send(
                sink,
                rng,
                world,
                &mut t,
                Call {
                    method: Method::Delete,
                    path: format!("{OB}/aisp/account-access-consents/{consent}"),
                    sub: &client,
                    status: 204,
                    bytes: 0,
                    customer_ip: None,
                },
            );
        }
    }
}
