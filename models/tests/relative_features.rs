//! The shipped model judges a client against its own history, not against what clients
//! "usually" are: an aggregator with a library user agent, hundreds of accounts and several
//! egress addresses stays allowed; the same client switching to a tool, calling from a new
//! country at night, or walking ids it never touched is not. If this fails after a feature
//! change, run `make model` and commit the new file.
// Test helpers may unwrap and index like #[test] fns (clippy.toml): failing loudly is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use obguard_models::{
    ClientBaseline, ExtractConfig, Model, RequestEvent, Verdict, explain, extract, load,
    observe_response,
};

const SHIPPED: &[u8] = include_bytes!("../shipped/obguard-default.model");
const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;
const START: u64 = 1_767_571_200_000; // Monday 2026-01-05 00:00Z
const ACCOUNTS: u64 = 400;
const EGRESS: [&str; 3] = ["3.8.17.20", "18.130.4.77", "35.176.90.12"];

struct Request<'a> {
    ts: u64,
    path: String,
    ip: &'a str,
    country: &'a str,
    asn: u32,
    user_agent: &'a str,
    status: u16,
    bytes: u64,
}

struct Client {
    model: Model,
    cfg: ExtractConfig,
    baseline: ClientBaseline,
}

impl Client {
    fn new() -> Self {
        let model = load(SHIPPED).unwrap_or_else(|e| panic!("{e} (run `make model`)"));
        let cfg = ExtractConfig {
            utc_offset_minutes: model.metadata().utc_offset_minutes,
        };
        Self {
            model,
            cfg,
            baseline: ClientBaseline::new(),
        }
    }

    /// Scores one request as the filter does, folds its response in; the verdict and reasons.
    fn send(&mut self, r: &Request<'_>) -> (Verdict, Vec<String>) {
        let mut ev = RequestEvent::for_path(r.ts, "tpp-aggregator", "GET", &r.path);
        ev.ip = r.ip.parse().ok();
        ev.country = Some(r.country);
        ev.asn = Some(r.asn);
        ev.user_agent = Some(r.user_agent);
        let fv = extract(&self.cfg, &mut self.baseline, self.model.population(), &ev);
        let score = self.model.score_for_client(&fv, &mut self.baseline).score;
        let verdict = Model::verdict(score, self.model.thresholds());
        let reasons = if verdict == Verdict::Allow {
            Vec::new()
        } else {
            explain(&fv, &self.baseline)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        observe_response(&mut self.baseline, r.status, r.bytes, r.ts + 40);
        (verdict, reasons)
    }
}

fn account(k: u64) -> String {
    format!("acc-{:08}", 31_000 + k * 7)
}

/// A week of an aggregator's unattended refreshes: four times a day every consented account
/// (balances, then two pages of transactions), `python-requests`, from three addresses of
/// one cloud provider. Verdicts after the first day.
fn aggregator_week(client: &mut Client) -> (Vec<Verdict>, Vec<String>) {
    let mut verdicts = Vec::new();
    let mut reasons = Vec::new();
    for d in 0..7 {
        for refresh in 0..4u64 {
            let batch_start = START + d * DAY + refresh * 6 * HOUR + 5 * 60_000;
            for k in 0..ACCOUNTS {
                let ts = batch_start + k * 1_400;
                let acc = account(k);
                for (i, path) in [
                    format!("/open-banking/v3.1/aisp/accounts/{acc}/balances"),
                    format!("/open-banking/v3.1/aisp/accounts/{acc}/transactions?page=1"),
                    format!("/open-banking/v3.1/aisp/accounts/{acc}/transactions?page=2"),
                ]
                .into_iter()
                .enumerate()
                {
                    let (v, why) = client.send(&Request {
                        ts: ts + i as u64 * 300,
                        path,
                        ip: EGRESS[((k + d + refresh) % 3) as usize],
                        country: "GB",
                        asn: 16509,
                        user_agent: "python-requests/2.31.0",
                        status: if k % 97 == 0 { 404 } else { 200 },
                        bytes: 2_000 + (k % 13) * 300,
                    });
                    if d >= 1 {
                        verdicts.push(v);
                        reasons.extend(why.into_iter().take(1));
                    }
                }
            }
        }
    }
    (verdicts, reasons)
}

/// The warmed-up aggregator (shared by the scenarios, each on its own copy).
fn warmed() -> (Client, Vec<Verdict>, Vec<String>) {
    let mut client = Client::new();
    let (verdicts, reasons) = aggregator_week(&mut client);
    (client, verdicts, reasons)
}

/// Index (1-based) of the first non-allow verdict among `requests`, with its reasons.
fn first_flag(client: &mut Client, requests: Vec<Request<'_>>) -> Option<(usize, Vec<String>)> {
    requests.iter().enumerate().find_map(|(i, r)| {
        let (v, reasons) = client.send(r);
        (v != Verdict::Allow).then_some((i + 1, reasons))
    })
}

#[test]
fn a_library_ua_aggregator_with_hundreds_of_accounts_stays_allowed_and_changes_stand_out() {
    let (base, verdicts, reasons) = warmed();
    let flagged = verdicts.iter().filter(|v| **v != Verdict::Allow).count();
    let blocked = verdicts.iter().filter(|v| **v == Verdict::Block).count();
    assert!(
        flagged * 1000 <= verdicts.len(),
        "{flagged} of {} legitimate requests not allowed (at most 0.1%); first reasons: {:?}",
        verdicts.len(),
        reasons.iter().take(12).collect::<Vec<_>>()
    );
    assert_eq!(blocked, 0);
    let after_week = START + 7 * DAY + 2 * HOUR;

    // 1. The same network and paths, driven by curl.
    let mut c = Client {
        baseline: base.baseline.clone(),
        ..Client::new()
    };
    let curl = (0..20u64)
        .map(|k| Request {
            ts: after_week + k * 2_000,
            path: format!("/open-banking/v3.1/aisp/accounts/{}/balances", account(k)),
            ip: EGRESS[0],
            country: "GB",
            asn: 16509,
            user_agent: "curl/8.5.0",
            status: 200,
            bytes: 2_000,
        })
        .collect();
    let (at, reasons) = first_flag(&mut c, curl).expect("a switch to curl is flagged");
    assert!(at <= 3, "flagged at request {at}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("new_user_agent_product(curl)")),
        "{reasons:?}"
    );

    // 2. 03:10 from a new country, ASN and network, the client's own user agent and paths.
    let mut c = Client {
        baseline: base.baseline.clone(),
        ..Client::new()
    };
    let night = START + 7 * DAY + 3 * HOUR + 10 * 60_000;
    let abroad = (0..20u64)
        .map(|k| Request {
            ts: night + k * 20_000,
            path: format!(
                "/open-banking/v3.1/aisp/accounts/{}/transactions?page=1",
                account(k * 11)
            ),
            ip: "45.137.21.9",
            country: "RU",
            asn: 200_350,
            user_agent: "python-requests/2.31.0",
            status: 200,
            bytes: 2_500,
        })
        .collect();
    let (at, reasons) = first_flag(&mut c, abroad).expect("a new country at night is flagged");
    assert!(at <= 20, "flagged at request {at}");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("new_country(RU)") || r.starts_with("new_asn")),
        "{reasons:?}"
    );

    // 3. A burst over account ids the client never touched, mostly refused.
    let mut c = Client {
        baseline: base.baseline.clone(),
        ..Client::new()
    };
    let enumeration = (0..60u64)
        .map(|k| Request {
            ts: after_week + k * 1_500,
            path: format!(
                "/open-banking/v3.1/aisp/accounts/acc-{:08}/balances",
                90_000 + k
            ),
            ip: EGRESS[1],
            country: "GB",
            asn: 16509,
            user_agent: "python-requests/2.31.0",
            status: if k % 5 == 0 { 200 } else { 403 },
            bytes: 300,
        })
        .collect();
    let (at, reasons) = first_flag(&mut c, enumeration).expect("an enumeration burst is flagged");
    assert!(at <= 20, "flagged at request {at}: {reasons:?}");
}
