//! The committed default model loads with this build's schema and behaves as the model card
//! says on a plain story: a steady client is allowed, a 3 AM burst from a new country is not.
//! If this fails after a feature change, run `make model` and commit the new file.
// Test helpers may unwrap and index like #[test] fns (clippy.toml): failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use obguard_models::{
    ClientBaseline, ExtractConfig, Model, RequestEvent, Verdict, explain, extract, load,
    observe_response,
};

const SHIPPED: &[u8] = include_bytes!("../shipped/obguard-default.model");
const DAY: u64 = 86_400_000;
const START: u64 = 1_767_571_200_000; // Monday 2026-01-05 00:00Z

fn request<'a>(ts: u64, path: &'a str, country: &'a str, asn: u32, ip: &str) -> RequestEvent<'a> {
    let mut ev = RequestEvent::for_path(ts, "tpp-pis-demo", "GET", path);
    ev.ip = ip.parse().ok();
    ev.country = Some(country);
    ev.asn = Some(asn);
    ev.user_agent = Some("demo-connector/2.1 (+https://tpp.example)");
    ev.customer_present = true;
    ev
}

#[test]
fn shipped_model_loads_and_separates_a_plain_story() {
    let model = load(SHIPPED).unwrap_or_else(|e| panic!("{e} (run `make model`)"));
    assert!(model.encoded_len() <= 256 * 1024);
    let cfg = ExtractConfig {
        utc_offset_minutes: model.metadata().utc_offset_minutes,
    };
    let mut b = ClientBaseline::new();
    let mut normal_verdicts = Vec::new();
    // Two weeks of business-hours account checks from GB, one network.
    for d in 0..14 {
        for k in 0..60u64 {
            let ts = START + d * DAY + 9 * 3_600_000 + k * 480_000 + (k * 7919 % 60_000);
            let path = format!("/open-banking/v3.1/aisp/accounts/acc-{:08}/balances", k % 5);
            let ev = request(ts, &path, "GB", 64500, "203.0.113.10");
            let fv = extract(&cfg, &mut b, model.population(), &ev);
            if d >= 2 {
                normal_verdicts.push(Model::verdict(model.score(&fv), model.thresholds()));
            }
            observe_response(&mut b, 200, 800, ts + 30);
        }
    }
    let allowed = normal_verdicts
        .iter()
        .filter(|v| **v == Verdict::Allow)
        .count();
    assert!(
        allowed * 100 >= normal_verdicts.len() * 99,
        "{allowed}/{} normal requests allowed",
        normal_verdicts.len()
    );

    // 03:05 the next night: the same credentials from RU, a new ASN and network.
    let mut caught = None;
    for k in 0..20u64 {
        let ts = START + 14 * DAY + 3 * 3_600_000 + 5 * 60_000 + k * 4_000;
        let path = format!(
            "/open-banking/v3.1/aisp/accounts/acc-{:08}/transactions",
            k % 5
        );
        let ev = request(ts, &path, "RU", 65100, "198.51.100.77");
        let fv = extract(&cfg, &mut b, model.population(), &ev);
        let verdict = Model::verdict(model.score(&fv), model.thresholds());
        if verdict != Verdict::Allow && caught.is_none() {
            let reasons: Vec<String> = explain(&fv, &b).iter().map(ToString::to_string).collect();
            caught = Some((k + 1, verdict, reasons));
        }
        observe_response(&mut b, 200, 9_000, ts + 30);
    }
    let (at, verdict, reasons) = caught.expect("3 AM new-country burst never left allow");
    assert!(at <= 5, "first non-allow at request {at}");
    assert!(
        reasons
            .iter()
            .any(|r| r == "new_country(RU)" || r.starts_with("hour_rare(03:")),
        "{verdict:?} {reasons:?}"
    );
}
