//! The legitimate TPPs: who they are ([`Sim::make_clients`]) and the traffic each profile
//! sends ([`Sim::legit_traffic`]), with the legitimate oddities (failover, user-agent
//! upgrade, late payments, catch-up batches, error noise).
#![allow(clippy::indexing_slicing)] // host-only generator; indices come from ranges over the same vecs

use rand::Rng;

use super::world::{
    API, DAY, HOMES, HOUR, MIN, customer_ip, day_start, diurnal, exp_gap, ip, local_hour,
    local_time_of_day, weekday,
};
use super::{EPOCH_MS, Ev, Origin, Sim};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Profile {
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

    /// The profile of the `n`th client: three in ten mobile apps, two payments, one poller,
    /// three aggregators, one batch reconciler.
    fn of_client(n: usize) -> Self {
        match n % 10 {
            0..=2 => Profile::MobileApp,
            3..=4 => Profile::Payments,
            5 => Profile::Poller,
            6..=8 => Profile::Aggregator,
            _ => Profile::Batch,
        }
    }
}

pub(super) struct Client {
    pub(super) id: String,
    pub(super) profile: Profile,
    pub(super) country: &'static str,
    pub(super) offset_min: i32,
    pub(super) asn: u32,
    pub(super) prefixes: Vec<[u8; 3]>,
    pub(super) spare_prefix: [u8; 3],
    pub(super) ua: String,
    pub(super) ua_upgrade: String,
    pub(super) ua_upgrade_at: u64,
    pub(super) failover_at: Option<u64>,
    pub(super) start_ms: u64,
    pub(super) psus: Vec<Psu>,
    /// Requests per hour at peak, or poll period / users per poll.
    pub(super) intensity: f64,
    pub(super) poll_period: u64,
}

pub(super) struct Psu {
    pub(super) sub: String,
    pub(super) accounts: Vec<String>,
}

/// What a profile's traffic generator needs of its client.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    c: usize,
    start: u64,
    end: u64,
    offset: i32,
    intensity: f64,
    period: u64,
    n_psus: usize,
}

impl Sim {
    pub(super) fn make_clients(&mut self) {
        for n in 0..self.cfg.clients {
            let client = self.make_client(n);
            self.clients.push(client);
        }
    }

    fn make_client(&mut self, n: usize) -> Client {
        let profile = Profile::of_client(n);
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
        Client {
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
        let customer_ip = customer.then(|| customer_ip(&mut self.rng));
        let origin = Origin {
            client: c,
            ip: ip(prefix, &mut self.rng),
            country,
            asn,
            ua,
        };
        self.events.push(Ev {
            ts_ms: ts,
            sub,
            method,
            path,
            status,
            resp_bytes,
            origin,
            customer_ip,
            label: crate::records::NORMAL,
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

    /// A domestic payment: consent, its status, the payment, sometimes the payment's status.
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

    /// Every legitimate client's traffic over the whole run, client by client.
    pub(super) fn legit_traffic(&mut self) {
        let end = self.end_ms();
        for c in 0..self.clients.len() {
            let cl = &self.clients[c];
            let profile = cl.profile;
            let s = Schedule {
                c,
                start: cl.start_ms,
                end,
                offset: cl.offset_min,
                intensity: cl.intensity,
                period: cl.poll_period,
                n_psus: cl.psus.len(),
            };
            match profile {
                Profile::Aggregator => self.aggregator_traffic(s),
                Profile::Payments => self.payments_traffic(s),
                Profile::MobileApp => self.mobile_app_traffic(s),
                Profile::Poller => self.poller_traffic(s),
                Profile::Batch => self.batch_traffic(s),
            }
        }
    }

    /// Polls a batch of users every period; occasionally a much bigger catch-up batch.
    fn aggregator_traffic(&mut self, s: Schedule) {
        let mut t = s.start + self.rng.gen_range(0..s.period);
        while t < s.end {
            let mut batch = s.intensity as usize + self.rng.gen_range(0..3);
            if self.rng.gen_bool(0.01) {
                batch *= 4;
            }
            let mut ts = t + self.rng.gen_range(0..20_000);
            for _ in 0..batch {
                let psu = self.rng.gen_range(0..s.n_psus);
                ts = self.ais_visit(s.c, ts, psu, false, 300) + self.rng.gen_range(100..800);
            }
            t += s.period;
        }
    }

    /// The next of Poisson arrivals at `s.intensity` an hour after `t`, within the run.
    fn next_arrival(&mut self, t: u64, s: &Schedule) -> Option<u64> {
        let t = t + exp_gap(&mut self.rng, HOUR as f64 / s.intensity);
        (t < s.end).then_some(t)
    }

    /// Payments in local business hours, a few late in the evening or at the weekend.
    fn payments_traffic(&mut self, s: Schedule) {
        let mut t = s.start;
        while let Some(next) = self.next_arrival(t, &s) {
            t = next;
            let h = local_hour(t, s.offset);
            let wd = weekday(t, s.offset);
            let open = wd < 5 && (8.0..18.0).contains(&h);
            let late = (18.0..22.0).contains(&h) && self.rng.gen_bool(0.08);
            let weekend = wd >= 5 && (9.0..17.0).contains(&h) && self.rng.gen_bool(0.1);
            if open || late || weekend {
                let psu = self.rng.gen_range(0..s.n_psus);
                self.payment(s.c, t, psu);
            }
        }
    }

    /// Thinning: candidate sessions at peak rate, kept with diurnal probability.
    fn mobile_app_traffic(&mut self, s: Schedule) {
        let mut t = s.start;
        while let Some(next) = self.next_arrival(t, &s) {
            t = next;
            if self.rng.gen_bool(diurnal(local_hour(t, s.offset)).min(1.0)) {
                let psu = self.rng.gen_range(0..s.n_psus);
                self.ais_visit(s.c, t, psu, true, 1_500);
            }
        }
    }

    /// One status check every period, around the clock or in local business hours only.
    fn poller_traffic(&mut self, s: Schedule) {
        let around_the_clock = s.intensity > 0.5;
        let customer = self.rng.gen_bool(0.2);
        let mut t = s.start + self.rng.gen_range(0..s.period);
        let mut tick = 0usize;
        while t < s.end {
            let h = local_hour(t, s.offset);
            if around_the_clock || (weekday(t, s.offset) < 5 && (8.0..18.0).contains(&h)) {
                let psu = tick % s.n_psus;
                let sub = self.clients[s.c].psus[psu].sub.clone();
                let acc = self.clients[s.c].psus[psu].accounts[0].clone();
                let path = if tick.is_multiple_of(3) {
                    format!("{API}/pisp/domestic-payments/pay-{:010}", psu)
                } else {
                    format!("{API}/aisp/accounts/{acc}/balances")
                };
                let jitter = self.rng.gen_range(0..1_500);
                self.legit(s.c, t + jitter, sub, "GET", path, 900, customer);
                tick += 1;
            }
            t += s.period;
        }
    }

    /// Every user, once a night, 01:00-01:30 local.
    fn batch_traffic(&mut self, s: Schedule) {
        let mut day = day_start(s.start);
        while day < s.end {
            let local_one = local_time_of_day(1, s.offset);
            let mut ts = day + local_one + self.rng.gen_range(0..30 * MIN);
            if ts >= s.start {
                for psu in 0..s.n_psus {
                    ts = self.ais_visit(s.c, ts, psu, false, 200) + self.rng.gen_range(50..400);
                }
            }
            day += DAY;
        }
    }
}
