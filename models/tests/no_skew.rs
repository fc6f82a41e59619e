//! The filter and the trainer must compute identical features for the same traffic.
//!
//! The trainer path is `train::replay_features` over parsed records. The filter path is
//! what the proxy-wasm adapter does: per request, fetch the client's baseline bytes from
//! shared data (a map here), decode, `extract`, encode and store; per response, fetch,
//! decode, `observe_response`, encode and store. Every baseline therefore crosses a
//! postcard round trip between every call, as it does between Envoy workers.
// Test helpers may unwrap and index like #[test] fns (clippy.toml): failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
#![cfg(feature = "train")]

use std::collections::HashMap;

use obguard_models::records::{self, Record};
use obguard_models::sim::{SimConfig, simulate};
use obguard_models::train::replay_features;
use obguard_models::{
    ClientBaseline, ExtractConfig, FeatureVector, PopulationBaseline, RequestEvent, extract,
    observe_response, split_path,
};

fn simulated() -> Vec<Record> {
    let mut out = Vec::new();
    simulate(
        SimConfig {
            seed: 11,
            clients: 12,
            days: 3,
            attacks_per_day: 4.0,
        },
        &mut out,
    )
    .unwrap();
    records::read(out.as_slice()).map(Result::unwrap).collect()
}

/// What the adapter does, with nothing but header-level values.
fn filter_path(
    records: &[Record],
    cfg: &ExtractConfig,
    population: &PopulationBaseline,
) -> Vec<FeatureVector> {
    let mut shared: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = Vec::new();
    for r in records {
        // Request headers → event.
        let (template, ids) = split_path(&r.path);
        let event = RequestEvent {
            ts_ms: r.ts_ms,
            client_id: &r.client_id,
            route: template.into(),
            method: &r.method,
            resource_ids: ids,
            ip: r.ip,
            country: r.country.as_deref(),
            asn: r.asn,
            user_agent: r.user_agent.as_deref(),
            customer_present: r.customer_present,
        };
        let mut baseline = shared
            .get(&r.client_id)
            .map(|b| ClientBaseline::decode(b).unwrap())
            .unwrap_or_default();
        out.push(extract(cfg, &mut baseline, population, &event));
        shared.insert(r.client_id.clone(), baseline.encode().unwrap());

        // Response phase.
        let mut baseline = ClientBaseline::decode(&shared[&r.client_id]).unwrap();
        observe_response(&mut baseline, r.status, r.resp_bytes, r.ts_ms);
        let bytes = baseline.encode().unwrap();
        assert!(bytes.len() <= obguard_models::baseline::MAX_ENCODED_LEN);
        shared.insert(r.client_id.clone(), bytes);
    }
    out
}

#[test]
fn filter_and_trainer_paths_give_identical_vectors() {
    let records = simulated();
    assert!(records.len() > 1000, "{} records", records.len());
    let population = PopulationBaseline::default();
    for cfg in [
        ExtractConfig::default(),
        ExtractConfig {
            utc_offset_minutes: 330,
        },
    ] {
        let mut trainer = Vec::new();
        replay_features(
            records.iter().cloned().map(Ok),
            &cfg,
            &population,
            |_, fv, _| trainer.push(*fv),
        )
        .unwrap();
        let filter = filter_path(&records, &cfg, &population);
        assert_eq!(trainer.len(), filter.len());
        for (i, (t, f)) in trainer.iter().zip(&filter).enumerate() {
            let tb: Vec<u32> = t.values.iter().map(|v| v.to_bits()).collect();
            let fb: Vec<u32> = f.values.iter().map(|v| v.to_bits()).collect();
            assert_eq!(tb, fb, "record {i} ({:?}) differs", records[i]);
            assert_eq!(t.context, f.context);
        }
    }
}

#[test]
fn simulation_is_reproducible() {
    let run = |seed| {
        let mut out = Vec::new();
        simulate(
            SimConfig {
                seed,
                clients: 5,
                days: 2,
                attacks_per_day: 3.0,
            },
            &mut out,
        )
        .unwrap();
        out
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}
