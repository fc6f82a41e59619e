//! Every fuzz target on the stable toolchain: its committed corpus replayed, then seeded
//! mutations of it (`OBGUARD_FUZZ_SEED`, default 1; `OBGUARD_FUZZ_ITERATIONS`, default 1500,
//! scaled per target by its weight in percent). Deterministic: the same seed runs the same inputs everywhere. The
//! coverage-guided runs are `make fuzz` (libFuzzer); see docs/fuzzing.md.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Instant;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(name: &str, weight: u64) {
    let (_, target) = obguard_fuzz::targets::ALL
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no target {name}"));
    let seed = env_number("OBGUARD_FUZZ_SEED", 1);
    // Slow targets (whole configurations, model files) run fewer by default.
    let iterations = (env_number("OBGUARD_FUZZ_ITERATIONS", 1500) * weight / 100) as usize;
    let failures = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let start = Instant::now();
    match obguard_fuzz::mutate::run(name, *target, seed, iterations, &failures) {
        Ok(stats) => eprintln!(
            "{name}: {} corpus inputs, {} mutations (seed {seed}) in {:.2?}",
            stats.replayed,
            stats.mutated,
            start.elapsed()
        ),
        Err(message) => panic!("{message}"),
    }
}

macro_rules! targets {
    ($($name:ident: $weight:literal),* $(,)?) => {
        $(#[test] fn $name() { run(stringify!($name), $weight); })*

        #[test]
        fn every_target_is_replayed() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in obguard_fuzz::targets::ALL {
                assert!(tested.contains(name), "{name} has no replay test");
            }
        }
    };
}

targets!(
    token: 100,
    jose_header: 100,
    claims: 100,
    config_bytes: 100,
    config_json: 20,
    jwks: 100,
    jwks_json: 100,
    model_file: 20,
    model_body: 40,
    baseline: 100,
    decide: 100,
    rls_reply: 100,
    rls_response: 100,
    dpop_proof: 100,
    intel_feed: 100,
);
