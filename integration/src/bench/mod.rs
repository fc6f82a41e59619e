//! `make bench`, macro level (the `obguard-bench` binary is a thin wrapper around [`main`]):
//! one Envoy with one listener per variant, closed-loop throughput with wrk and open-loop
//! latency at a fixed rate with oha (latency correction on), interleaved rounds, every figure
//! a ratio to bare Envoy — and for obguard's variants also to the floor probe — measured in the
//! same round. Writes `docs/benchmarks.md` and `docs/benchmarks.png`.
//!
//! * [`request`]: the one request every listener is sent (same bytes everywhere);
//! * [`variants`]: the listeners (filters per variant) and the Envoy bootstrap;
//! * [`run`]: where each process runs ([`run::Placement`]), wrk / oha, the request capture,
//!   the interleaved rounds;
//! * [`memory`]: Envoy's RSS with 100 000 tracked clients;
//! * [`report`]: the Markdown report; [`chart`]: the PNG.

pub mod chart;
pub mod memory;
pub mod report;
pub mod request;
pub mod run;
pub mod variants;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

pub use request::{TokenKind, Tokens};
pub use variants::{Modules, Variant, bootstrap, variants};

use crate::measure::rss_mb;
use crate::{
    Envoy, EnvoyOptions, RateLimitService, floor_probe_wasm_path, noop_wasm_path, wasm_path,
    workspace_root,
};

/// The command line of `obguard-bench`.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    about = "Macro benchmark of obguard inside Envoy (throughput and latency ratios to bare Envoy and to the floor probe)"
)]
pub struct Options {
    /// Interleaved rounds per variant
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds per wrk / oha run
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// wrk connections (one wrk thread)
    #[arg(long, default_value_t = 16)]
    pub connections: u32,
    /// Open-loop request rate for the latency runs
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// Only these variants (comma-separated names); bare, and the floors the chosen ones are
    /// compared with, are always included
    #[arg(long)]
    pub only: Option<String>,
    /// Markdown report to write
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub out: PathBuf,
    /// Chart to write
    #[arg(long, default_value = "docs/benchmarks.png")]
    pub png: PathBuf,
    /// oha binary (open-loop latency); skipped when missing
    #[arg(long, default_value = ".tools/bin/oha")]
    pub oha: PathBuf,
    /// Distinct clients for the memory run (0: skip it)
    #[arg(long, default_value_t = 100_000)]
    pub rss_clients: usize,
    /// Seconds of load in the memory run (enough to reach every client once)
    #[arg(long, default_value_t = 30)]
    pub rss_seconds: u64,
}

/// One wrk run's figures.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// One closed-loop round: every variant's figures, measured back to back.
pub type Round = HashMap<&'static str, Throughput>;

/// Open-loop latency of one variant: `(p50 µs, p99 µs)` per round.
pub type OpenLoop = HashMap<&'static str, Vec<(f64, f64)>>;

/// Everything a run measured, for [`report`] and [`chart`].
pub struct Results {
    pub closed: Vec<Round>,
    pub open: OpenLoop,
    /// Envoy's RSS at the end, all variants loaded.
    pub rss_mb: Option<f64>,
    pub memory: Option<memory::Memory>,
    /// What the same-request check found (one sentence per comparison).
    pub request_check: Vec<String>,
    /// The length of the token every request carries.
    pub token_bytes: usize,
    pub pinned: bool,
    pub elapsed_s: u64,
}

/// The built wasm modules (panics with a hint when `obguard.wasm` is missing).
pub fn built_modules() -> Modules {
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    Modules {
        obguard: path(wasm_path()),
        noop: path(noop_wasm_path()),
        floor_probe: path(floor_probe_wasm_path()),
    }
}

/// The variants `--only` keeps: the named ones, bare, and the floors they are compared with.
pub fn select(mut all: Vec<Variant>, only: Option<&str>) -> Vec<Variant> {
    let Some(only) = only else { return all };
    let mut keep: Vec<&str> = only.split(',').map(str::trim).collect();
    keep.push("bare");
    let floors: Vec<&str> = all
        .iter()
        .filter(|v| keep.contains(&v.name))
        .filter_map(|v| v.floor)
        .collect();
    keep.extend(floors);
    all.retain(|v| keep.contains(&v.name));
    all
}

/// The whole benchmark: measure, then write the report and the chart.
pub fn main(opts: &Options) {
    let root = workspace_root();
    let placement = run::Placement::for_this_machine();
    // Before any thread starts: the rate-limit service's thread inherits this.
    let self_pinned = placement.pin_this_process();
    let variants = select(variants(&built_modules()), opts.only.as_deref());
    let oha = Some(root.join(&opts.oha)).filter(|p| p.exists());
    let load = run::Load::new(placement, opts.connections, oha, Tokens::mint())
        .unwrap_or_else(|e| panic!("write the wrk scripts: {e}"));
    let started = Instant::now();

    let request_check = load.check_same_request();
    for line in &request_check {
        eprintln!("same request: {line}");
    }

    // No limits, so nothing to count: in memory, and `make bench` needs no Redis.
    let rls =
        variants::needs_ratelimit(&variants).then(|| RateLimitService::start_in_memory(Vec::new()));
    let envoy = Envoy::start(EnvoyOptions {
        bootstrap_override: Some(bootstrap(&variants, rls.as_ref().map(|r| r.port()))),
        component_log_level: None,
        ..EnvoyOptions::new(0)
    });
    let pinned = placement.pin_envoy(&envoy) && self_pinned;
    let ports: HashMap<&'static str, u16> = {
        let by_name = envoy.listener_ports();
        variants
            .iter()
            .map(|v| (v.name, by_name.get(v.name).copied().unwrap_or(0)))
            .collect()
    };

    run::warm_up(&load, &variants, &ports, rls.as_ref());
    let closed = run::closed_loop(&load, &variants, &ports, opts);
    let open = match &load.oha {
        Some(_) => run::open_loop(&load, &variants, &ports, opts),
        None => {
            eprintln!(
                "{} not found: skipping open-loop latency (make bench installs it)",
                root.join(&opts.oha).display()
            );
            OpenLoop::new()
        }
    };
    let floor_requests = envoy.counter("wasmcustom.floor.requests");
    if variants.iter().any(|v| v.name == variants::FLOOR) && floor_requests == 0 {
        panic!("the floor probe counted no requests: is it loaded?");
    }
    let rss = envoy.pid().and_then(rss_mb);
    drop(envoy);
    drop(rls);
    let memory = (opts.rss_clients > 0)
        .then(|| memory::run(&load, &variants, opts.rss_clients, opts.rss_seconds))
        .flatten();

    let results = Results {
        closed,
        open,
        rss_mb: rss,
        memory,
        request_check,
        token_bytes: load.tokens.rs256.len(),
        pinned,
        elapsed_s: started.elapsed().as_secs(),
    };
    let out = root.join(&opts.out);
    if let Err(err) = std::fs::write(&out, report::render(opts, &placement, &variants, &results)) {
        eprintln!("cannot write {}: {err}", out.display());
        std::process::exit(1);
    }
    eprintln!("wrote {}", out.display());
    let png = root.join(&opts.png);
    match chart::draw(&png, &variants, &results.closed) {
        Ok(()) => eprintln!("wrote {}", png.display()),
        Err(err) => eprintln!("chart skipped: {err}"),
    }
}
