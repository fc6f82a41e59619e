//! Envoy's memory with many tracked clients: RSS of an Envoy with only the bare listener, of one
//! with only the no-op wasm filter, and of one with only `obguard_warm_model` (`max_clients`
//! 400 000: 4x the clients) before and after wrk cycles through `clients` tokens with distinct
//! client ids (ES256, so the first pass verifies each one). Every request is the benchmark's
//! request ([`super::request`]) with the token swapped.

use super::request::{self, TokenKind};
use super::run::Load;
use super::variants::{Variant, bootstrap};
use crate::measure::rss_mb;
use crate::{Envoy, EnvoyOptions};

/// What the memory run found.
#[derive(Debug, Clone)]
pub struct Memory {
    pub clients: usize,
    pub seconds: u64,
    pub requests: u64,
    pub bare_mb: f64,
    pub noop_mb: f64,
    pub loaded_mb: f64,
    pub after_mb: f64,
    pub stored: u64,
    pub slot_taken: u64,
}

/// The memory run; `None` when a variant it needs was left out or a step failed.
pub fn run(load: &Load, variants: &[Variant], clients: usize, seconds: u64) -> Option<Memory> {
    let only = |name: &str| -> Vec<Variant> {
        variants
            .iter()
            .filter(|v| v.name == name)
            .cloned()
            .collect()
    };
    let start = |set: &[Variant]| {
        let envoy = Envoy::start(EnvoyOptions {
            bootstrap_override: Some(bootstrap(set, None)),
            component_log_level: None,
            ..EnvoyOptions::new(0)
        });
        load.placement.pin_envoy(&envoy);
        envoy
    };
    // Starts an Envoy with only `name`, sends it a second of load, returns its RSS.
    let rss_alone = |name: &str| {
        let envoy = start(&only(name));
        let _ = load.wrk(envoy.listener_ports()[name], TokenKind::Rs256, 1);
        envoy.pid().and_then(rss_mb)
    };
    let model = only("obguard_warm_model");
    if model.is_empty() || only("noop_wasm").is_empty() {
        return None;
    }
    let bare_mb = rss_alone("bare")?;
    let noop_mb = rss_alone("noop_wasm")?;

    eprintln!("memory run: minting {clients} ES256 tokens with distinct client ids");
    let dir = tempfile::tempdir().ok()?;
    let tokens_path = dir.path().join("tokens.txt");
    let mut lines = String::with_capacity(clients * 700);
    let claims = request::bench_claims();
    for i in 0..clients {
        let mut c = claims.clone();
        c["client_id"] = serde_json::json!(format!("tpp-mem-{i}"));
        c["sub"] = serde_json::json!(format!("psu-mem-{i}"));
        lines.push_str(&obguard_testkit::token(
            "ES256",
            obguard_testkit::Key::P256,
            &c,
        ));
        lines.push('\n');
    }
    std::fs::write(&tokens_path, lines).ok()?;
    let script = dir.path().join("tokens.lua");
    std::fs::write(&script, request::tokens_lua()).ok()?;

    let envoy = start(&model);
    let port = envoy.listener_ports()["obguard_warm_model"];
    let _ = load.wrk(port, TokenKind::Rs256, 1);
    let loaded_mb = envoy.pid().and_then(rss_mb)?;
    let out = load
        .wrk_with_script(port, &script, seconds)
        .env("OBGUARD_TOKENS", &tokens_path)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let requests = text
        .lines()
        .find_map(|l| {
            l.trim()
                .split(" requests in ")
                .next()
                .filter(|_| l.contains(" requests in "))
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    if text.contains("Non-2xx") {
        eprintln!("memory run: wrk saw non-2xx answers:\n{text}");
    }
    let after_mb = envoy.pid().and_then(rss_mb)?;
    let stored = envoy.counter("wasmcustom.obguard.baseline.stored");
    let slot_taken = envoy.counter("wasmcustom.obguard.baseline.slot_taken");
    eprintln!(
        "memory run: bare {bare_mb:.0} MB; no-op wasm {noop_mb:.0} MB; obguard {loaded_mb:.0} MB loaded, {after_mb:.0} MB after {requests} requests from {clients} clients"
    );
    Some(Memory {
        clients,
        seconds,
        requests,
        bare_mb,
        noop_mb,
        loaded_mb,
        after_mb,
        stored,
        slot_taken,
    })
}
