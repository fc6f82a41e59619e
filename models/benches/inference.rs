//! Per-request cost in the filter: decode baseline, extract (features + baseline update),
//! score, verdict, encode baseline; and the response-phase update. Native; the wasm cost is
//! measured by the lead through Envoy.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use obguard_models::{
    ClientBaseline, ExtractConfig, Model, RequestEvent, explain, extract, load, observe_response,
};

const SHIPPED: &[u8] = include_bytes!("../shipped/obguard-default.model");

fn warmed(model: &Model) -> ClientBaseline {
    let cfg = ExtractConfig::default();
    let mut b = ClientBaseline::new();
    for k in 0..500u64 {
        let path = format!("/open-banking/v3.1/aisp/accounts/acc-{:08}/balances", k % 7);
        let mut ev =
            RequestEvent::for_path(1_767_571_200_000 + k * 45_000, "tpp-agg001", "GET", &path);
        ev.ip = "203.0.113.7".parse().ok();
        ev.country = Some("GB");
        ev.asn = Some(64500);
        ev.user_agent = Some("agg001-connector/2.3");
        extract(&cfg, &mut b, model.population(), &ev);
        observe_response(&mut b, 200, 900, 1_767_571_200_000 + k * 45_000 + 40);
    }
    b
}

fn bench(c: &mut Criterion) {
    let model = match load(SHIPPED) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("shipped model does not load: {e}");
            return;
        }
    };
    let cfg = ExtractConfig::default();
    let baseline = warmed(&model);
    let bytes = baseline.encode().unwrap_or_default();
    let ts = 1_767_571_200_000 + 501 * 45_000;
    let path = "/open-banking/v3.1/aisp/accounts/acc-00000003/transactions";
    let event = {
        let mut ev = RequestEvent::for_path(ts, "tpp-agg001", "GET", path);
        ev.ip = "203.0.113.7".parse().ok();
        ev.country = Some("GB");
        ev.asn = Some(64500);
        ev.user_agent = Some("agg001-connector/2.3");
        ev
    };
    let fv = {
        let mut b = baseline.clone();
        extract(&cfg, &mut b, model.population(), &event)
    };

    c.bench_function("extract (features + baseline update)", |bench| {
        bench.iter(|| {
            let mut b = baseline.clone();
            black_box(extract(&cfg, &mut b, model.population(), black_box(&event)))
        })
    });
    c.bench_function("score (30-tree forest)", |bench| {
        bench.iter(|| black_box(model.score(black_box(&fv))))
    });
    c.bench_function(
        "request path: decode + event + extract + score + verdict + encode",
        |bench| {
            bench.iter(|| {
                let mut b = ClientBaseline::decode(black_box(&bytes)).unwrap_or_default();
                let mut ev = RequestEvent::for_path(ts, "tpp-agg001", "GET", black_box(path));
                ev.ip = event.ip;
                ev.country = Some("GB");
                ev.asn = Some(64500);
                ev.user_agent = Some("agg001-connector/2.3");
                let fv = extract(&cfg, &mut b, model.population(), &ev);
                let score = model.score(&fv);
                let verdict = Model::verdict(score, model.thresholds());
                black_box((verdict, b.encode()))
            })
        },
    );
    c.bench_function(
        "response path: decode + observe_response + encode",
        |bench| {
            bench.iter(|| {
                let mut b = ClientBaseline::decode(black_box(&bytes)).unwrap_or_default();
                observe_response(&mut b, 200, 1_830, ts + 40);
                black_box(b.encode())
            })
        },
    );
    c.bench_function("explain", |bench| {
        bench.iter(|| black_box(explain(black_box(&fv), &baseline)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
