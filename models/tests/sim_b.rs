#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! World B simulator: deterministic, sorted, parseable, every attack type present.

use std::collections::{BTreeMap, BTreeSet};

use obguard_models::records;
use obguard_models::sim_b::{WorldBConfig, simulate};

const TYPES: [&str; 9] = [
    "psd2_over_polling",
    "low_and_slow_enumeration",
    "bola_burst",
    "night_exfiltration",
    "payment_burst",
    "token_replay",
    "credential_stuffing",
    "tool_scraping",
    "consent_abuse",
];

fn small() -> WorldBConfig {
    WorldBConfig {
        seed: 5,
        days: 3,
        attacks_per_day: 3,
        scale: 0.2,
        ..WorldBConfig::default()
    }
}

fn run(cfg: &WorldBConfig) -> (Vec<u8>, obguard_models::sim_b::WorldBStats) {
    let mut out = Vec::new();
    let stats = simulate(cfg, &mut out).unwrap();
    (out, stats)
}

#[test]
fn small_world_is_deterministic_sorted_and_parseable() {
    let cfg = small();
    let (a, stats) = run(&cfg);
    let (b, _) = run(&cfg);
    assert!(a == b, "same seed, same bytes");
    let (c, _) = run(&WorldBConfig {
        seed: 6,
        ..cfg.clone()
    });
    assert!(a != c, "another seed, another world");

    let recs: Vec<_> = records::read(a.as_slice()).map(|r| r.unwrap()).collect();
    assert_eq!(recs.len() as u64, stats.records);
    assert!(stats.records > 2_000, "{stats:?}");
    assert!(
        recs.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms),
        "sorted by ts"
    );

    let mut attack_records = 0u64;
    let mut episodes: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut clients = BTreeSet::new();
    for r in &recs {
        clients.insert(r.client_id.as_str());
        let label = r.label.as_deref().expect("every record is labelled");
        assert!(r.route.is_none());
        assert!(r.sub.is_some() && r.ip.is_some() && r.country.is_some() && r.asn.is_some());
        if label == "normal" {
            assert!(r.episode.is_none(), "{r:?}");
        } else {
            attack_records += 1;
            assert!(TYPES.contains(&label), "unknown label {label}");
            let ep = r
                .episode
                .as_deref()
                .expect("attack records carry an episode");
            assert!(ep.starts_with("b-ep-"), "{ep}");
            episodes.entry(label).or_default().insert(ep);
        }
        assert!(r.path.starts_with("/open-banking/v3.1/"), "{}", r.path);
    }
    assert_eq!(attack_records, stats.attack_records);
    assert_eq!(clients.len() as u32, stats.clients);
    assert_eq!(
        episodes.values().map(BTreeSet::len).sum::<usize>() as u32,
        stats.episodes
    );
    for t in TYPES {
        assert!(
            episodes.contains_key(t),
            "attack type {t} missing: {episodes:?}"
        );
    }
    // Timestamps as written are RFC 3339 with milliseconds, UTC.
    let first = std::str::from_utf8(&a).unwrap().lines().next().unwrap();
    let v: serde_json::Value = serde_json::from_str(first).unwrap();
    let ts = v["ts"].as_str().unwrap();
    assert_eq!(ts.len(), 24, "{ts}");
    assert!(ts.ends_with('Z'));
    assert!(v.get("route").is_none());
}

#[test]
fn account_ids_are_resource_ids() {
    let (a, _) = run(&WorldBConfig { days: 1, ..small() });
    for r in records::read(a.as_slice()).map(|r| r.unwrap()).take(5_000) {
        let e = r.event();
        if r.path.contains("/accounts/") {
            assert!(e.route.contains("{id}"), "{} -> {}", r.path, e.route);
            assert!(!e.resource_ids.is_empty());
        }
    }
}

#[test]
fn bad_configs_are_refused() {
    let mut out = Vec::new();
    assert!(simulate(&WorldBConfig { days: 0, ..small() }, &mut out).is_err());
    assert!(
        simulate(
            &WorldBConfig {
                start: "soon".into(),
                ..small()
            },
            &mut out
        )
        .is_err()
    );
    assert!(
        simulate(
            &WorldBConfig {
                scale: 0.0,
                ..small()
            },
            &mut out
        )
        .is_err()
    );
}

/// The default world, written to `$WORLD_B_OUT` (default `/tmp/world_b.jsonl`) with a summary:
/// `cargo test --release -p obguard-models --test sim_b -- --ignored --nocapture`.
#[test]
#[ignore = "generates the full default world (hundreds of thousands of records)"]
fn default_world_summary() {
    let path = std::env::var("WORLD_B_OUT").unwrap_or_else(|_| "/tmp/world_b.jsonl".into());
    let t0 = std::time::Instant::now();
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let stats = simulate(&WorldBConfig::default(), &mut file).unwrap();
    drop(file);
    let elapsed = t0.elapsed();
    let size = std::fs::metadata(&path).unwrap().len();
    println!("{stats:?} in {elapsed:?}, {size} bytes at {path}");

    let text = std::fs::read(&path).unwrap();
    let mut per_type: BTreeMap<String, (BTreeSet<String>, u64)> = BTreeMap::new();
    let mut per_client: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut per_day: BTreeMap<u64, u64> = BTreeMap::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for r in records::read(text.as_slice()).map(|r| r.unwrap()) {
        let e = per_client.entry(r.client_id.clone()).or_default();
        e.0 += 1;
        *per_day.entry(r.ts_ms / 86_400_000).or_default() += 1;
        *statuses.entry(r.status).or_default() += 1;
        if r.is_attack() {
            e.1 += 1;
            let t = per_type.entry(r.label.clone().unwrap()).or_default();
            t.0.insert(r.episode.clone().unwrap());
            t.1 += 1;
        }
    }
    for (t, (eps, n)) in &per_type {
        println!("attack {t:<26} episodes {:>3} records {n:>6}", eps.len());
    }
    for (c, (n, a)) in &per_client {
        println!("client {c:<26} records {n:>7} attack {a:>6}");
    }
    println!("per day: {:?}", per_day.values().collect::<Vec<_>>());
    println!("statuses: {statuses:?}");
}
