//! `make soak`: Envoy (two workers) with the release `obguard.wasm`, a remote JWKS
//! (`JwksServer`) and a model polled from a registry (`ModelServer`), under a fixed request
//! rate from rotating clients for `--minutes`, while the JWKS is rotated and the model swapped
//! every few minutes. Samples Envoy's RSS, latency and obguard's counters every 10 s; writes
//! a chart and a CSV; fails on an unexpected status, a transport error, a swap or rotation
//! that does not take, or a `panicked` / `unreachable` / ` failed:` line in Envoy's log.
//! The traffic itself is `obguard_integration::soak`; what it shows: `docs/soak.md`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use obguard_integration::measure::{machine, median, register_chart_font, rss_mb};
use obguard_integration::soak::{
    Clients, Epoch, KeyPhase, Load, PINNED, Plan, Recorder, SigningKey, Window, jwks,
};
use obguard_integration::{
    DemoBank, Envoy, EnvoyOptions, JwksServer, ModelServer, demo_bank_fixtures, envoy_bin,
    loopback_cluster, wasm_path, workspace_root,
};
use obguard_testkit as kit;
use serde_json::{Value, json};

/// How often the filter refreshes the JWKS (`jwks_remote.refresh_s`).
const JWKS_REFRESH_S: u64 = 30;
/// At most one JWKS fetch per this interval (unknown `kid`s ask for early ones).
const JWKS_MIN_REFETCH_S: u64 = 10;
/// How often the filter polls the model registry (`model.http.poll_s`).
const MODEL_POLL_S: u64 = 5;
/// Envoy log lines that fail the run.
const BAD_LOG_LINES: [&str; 3] = ["panicked", "unreachable", " failed:"];

#[derive(Parser, Debug)]
#[command(
    about = "Soak test of obguard inside Envoy: fixed-rate load, JWKS rotations, model swaps"
)]
struct Args {
    /// Length of the load (minutes, fractions allowed)
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Requests per second (open loop)
    #[arg(long, default_value_t = 400)]
    rps: u32,
    /// Distinct client ids, cycled through (one token each per signing key)
    #[arg(long, default_value_t = 20_000)]
    clients: usize,
    /// Seconds between JWKS rotations (default: a sixth of the run, 30–300)
    #[arg(long)]
    rotate_every: Option<u64>,
    /// Seconds the previous key stays published after a rotation (default: a fifth of the
    /// rotation interval, 10–60)
    #[arg(long)]
    grace: Option<u64>,
    /// Seconds between model swaps (default: a tenth of the run, 20–180)
    #[arg(long)]
    swap_every: Option<u64>,
    /// Load threads
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Keep-alive connections per load thread
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Baseline slots (`model.max_clients`); fewer than --clients exercises the slot bound
    #[arg(long, default_value_t = 16_384)]
    max_clients: u64,
    /// Verified-token cache per worker (`cache.max_entries`); fewer than --clients exercises
    /// the LRU
    #[arg(long, default_value_t = 10_000)]
    cache_entries: u64,
    /// Seconds per sample
    #[arg(long, default_value_t = 10)]
    sample_every: u64,
    /// Chart to write
    #[arg(long, default_value = "docs/soak.png")]
    png: PathBuf,
    /// CSV to write (one row per sample)
    #[arg(long, default_value = "docs/soak.csv")]
    csv: PathBuf,
}

struct Schedule {
    duration: Duration,
    sample_every: u64,
    rotate_every: u64,
    grace: u64,
    swap_every: u64,
}

impl Schedule {
    fn new(args: &Args) -> Schedule {
        let secs = (args.minutes * 60.0).round().max(10.0) as u64;
        let rotate_every = args.rotate_every.unwrap_or((secs / 6).clamp(30, 300));
        let grace = args.grace.unwrap_or((rotate_every / 5).clamp(10, 60));
        let swap_every = args.swap_every.unwrap_or((secs / 10).clamp(20, 180));
        Schedule {
            duration: Duration::from_secs(secs),
            sample_every: args.sample_every.max(1),
            rotate_every,
            grace,
            swap_every,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum EventKind {
    /// Tokens are signed by a new key from now on (the key was published and fetched first).
    Rotation,
    /// The previous key was removed from the JWKS (and Envoy fetched that).
    Retirement,
    /// Another model file was published and every VM swapped to it.
    Swap,
}

struct Event {
    t_s: f64,
    kind: EventKind,
    detail: String,
}

/// Which model the access log should show.
struct ModelWatch {
    active: String,
    /// No swap is under way and every VM has had a few seconds to use `active`.
    settled_at: Option<Instant>,
}

/// Everything the orchestrating threads share.
struct Run<'a> {
    start: Instant,
    end: Instant,
    schedule: &'a Schedule,
    envoy: &'a Envoy,
    idp: &'a JwksServer,
    registry: &'a ModelServer,
    plan: &'a Plan,
    clients: Clients,
    forger: &'a SigningKey,
    /// Plugin instances (VMs) that swap a model: one per worker plus the main thread's.
    vms: u64,
    models: [(&'static str, Vec<u8>, String); 2],
    stop: AtomicBool,
    events: Mutex<Vec<Event>>,
    failures: Mutex<Vec<String>>,
    watch: Mutex<ModelWatch>,
}

impl Run<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.end
    }

    /// Sleeps until `at`; false if the run stopped first.
    fn sleep_until(&self, at: Instant) -> bool {
        loop {
            if self.stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= at {
                return true;
            }
            std::thread::sleep((at - now).min(Duration::from_millis(200)));
        }
    }

    /// Polls `cond` until it holds (`Some(time taken)`), `within` passes or the run stops.
    fn wait_for(&self, within: Duration, cond: impl Fn() -> bool) -> Option<Duration> {
        let began = Instant::now();
        while began.elapsed() < within && !self.stopped() {
            if cond() {
                return Some(began.elapsed());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        None
    }

    fn t_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn event(&self, kind: EventKind, detail: String) {
        let t_s = self.t_s();
        eprintln!("[{}] {kind:?}: {detail}", clock(t_s));
        lock(&self.events).push(Event { t_s, kind, detail });
    }

    fn fail(&self, why: String) {
        eprintln!("[{}] FAILURE: {why}", clock(self.t_s()));
        lock(&self.failures).push(why);
    }

    fn counter(&self, name: &str) -> u64 {
        self.envoy
            .try_stats()
            .ok()
            .and_then(|s| s.get(name).copied())
            .unwrap_or(0)
    }

    /// Serves `keys` from the JWKS endpoint and waits until Envoy has fetched them and every
    /// worker has had time to load them (the fetching worker stores them in shared data, the
    /// others load on their next 1 s tick). Returns the seconds that took.
    fn publish_jwks(&self, keys: &[&SigningKey]) -> Option<f64> {
        let published = Instant::now();
        self.idp.set_jwks(jwks(keys));
        // Read after publishing: a fetch counted from here on was answered with `keys`.
        let before = self.idp.fetches();
        let within = Duration::from_secs(JWKS_REFRESH_S + 15);
        if self
            .wait_for(within, || self.idp.fetches() > before)
            .is_none()
        {
            if !self.stopped() {
                let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
                self.fail(format!(
                    "the JWKS {kids:?} was not fetched within {within:?}"
                ));
            }
            return None;
        }
        let loaded = Instant::now() + Duration::from_secs(3);
        self.sleep_until(loaded)
            .then(|| published.elapsed().as_secs_f64())
    }

    /// Every `rotate_every` s: publish a new key next to the current one; once Envoy has it,
    /// sign every client's token with it, a quarter of the clients still presenting tokens of
    /// the old key for `grace` s; then remove the old key and, once Envoy has that, send its
    /// tokens as probes that must be refused.
    fn rotate_jwks(&self) {
        nice_this_thread();
        let s = self.schedule;
        let cycle = Duration::from_secs(2 * (JWKS_REFRESH_S + 5) + s.grace);
        let mut due = self.start + Duration::from_secs(s.rotate_every / 2);
        let mut n = 1;
        while due + cycle < self.end {
            if !self.sleep_until(due) {
                return;
            }
            let kid = format!("soak-ec-{n}");
            let next = Arc::new(Epoch::mint(
                n,
                SigningKey::generate(kid),
                self.clients,
                self.forger,
            ));
            let phase = self.plan.keys();
            let old = Arc::clone(&phase.current);
            let Some(took) = self.publish_jwks(&[&old.key, &next.key]) else {
                return;
            };
            self.plan.set_keys(KeyPhase {
                current: Arc::clone(&next),
                lingering: Some(Arc::clone(&old)),
                retired: phase.retired.clone(),
            });
            self.event(
                EventKind::Rotation,
                format!(
                    "tokens now signed by {} (published next to {} {took:.1} s before)",
                    next.key.kid, old.key.kid
                ),
            );
            if !self.sleep_until(Instant::now() + Duration::from_secs(s.grace)) {
                return;
            }
            self.plan.set_keys(KeyPhase {
                current: Arc::clone(&next),
                lingering: None,
                retired: phase.retired.clone(),
            });
            let Some(took) = self.publish_jwks(&[&next.key]) else {
                return;
            };
            self.plan.set_keys(KeyPhase {
                current: Arc::clone(&next),
                lingering: None,
                retired: Some(Arc::clone(&old)),
            });
            self.event(
                EventKind::Retirement,
                format!(
                    "{} removed from the JWKS after {} s of grace (fetched {took:.1} s after); its tokens are probes now",
                    old.key.kid, s.grace
                ),
            );
            n += 1;
            due = (due + Duration::from_secs(s.rotate_every)).max(Instant::now());
        }
    }

    /// Every `swap_every` s: publish the other model and wait until every VM swapped to it.
    fn swap_models(&self) {
        let s = self.schedule;
        let within = Duration::from_secs(MODEL_POLL_S + 15);
        let mut due = self.start + Duration::from_secs(s.swap_every / 2);
        let mut k = 0;
        while due + within < self.end {
            if !self.sleep_until(due) {
                return;
            }
            let (name, file, digest) = &self.models[(k + 1) % 2];
            let swapped = "wasmcustom.obguard.model.primary.swapped";
            let before = self.counter(swapped);
            lock(&self.watch).settled_at = None;
            self.registry.publish(file.clone());
            match self.wait_for(within, || self.counter(swapped) >= before + self.vms) {
                Some(took) => {
                    *lock(&self.watch) = ModelWatch {
                        active: digest.clone(),
                        settled_at: Some(Instant::now() + Duration::from_secs(5)),
                    };
                    self.event(
                        EventKind::Swap,
                        format!(
                            "model {name} ({digest}) on all {} VMs {:.1} s after publication",
                            self.vms,
                            took.as_secs_f64()
                        ),
                    );
                }
                None if self.stopped() => return,
                None => {
                    let got = self.counter(swapped) - before;
                    self.fail(format!(
                        "model {name} published, {got} of {} VMs swapped within {within:?}",
                        self.vms
                    ));
                    return;
                }
            }
            k += 1;
            due = (due + Duration::from_secs(s.swap_every)).max(Instant::now());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Mints the next epoch's tokens at low priority, so that the load and Envoy keep the CPUs.
fn nice_this_thread() {
    // SAFETY: setpriority(2) on the calling thread; no memory is involved.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
}

fn clock(t_s: f64) -> String {
    let t = t_s.max(0.0) as u64;
    format!("{:>2}:{:02}", t / 60, t % 60)
}

/// New complete lines of a file that is being appended to.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    fn lines(&mut self) -> Vec<String> {
        let Ok(mut file) = fs::File::open(&self.path) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        let read = file.read_to_end(&mut bytes).unwrap_or(0);
        self.offset += read as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(last) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(last + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        String::from_utf8_lossy(&done)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The `model` field of a JSON access log line (12 hex digits), if the request was scored.
fn scored_by(line: &str) -> Option<&str> {
    let at = line.find("\"model\":")? + "\"model\":".len();
    let rest = line[at..].trim_start().strip_prefix('"')?;
    rest.split('"').next()
}

/// One row of the CSV.
#[derive(Clone, Default)]
struct Sample {
    t_s: f64,
    rss_mb: f64,
    /// tcmalloc's `server.memory_allocated`.
    allocated_mb: f64,
    answered: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    lag_max_ms: f64,
    errors: u64,
    non_2xx: u64,
    /// obguard's refusals in the window (`obguard.requests.*` other than allowed/anonymous).
    refused: u64,
    cache_hit_pct: f64,
    swaps: u64,
    jwks_fetched: u64,
    jwks_fetch_failed: u64,
    baseline_stored: u64,
    baseline_slot_taken: u64,
    scored_by: [u64; 2],
    stale_model: u64,
    events: String,
}

const CSV_HEADER: &str = "t_s,rss_mb,allocated_mb,answered,p50_ms,p99_ms,max_ms,lag_max_ms,errors,non_2xx,obguard_refused,cache_hit_pct,model_swaps_total,jwks_fetched_total,jwks_fetch_failed_total,baseline_stored_total,baseline_slot_taken_total,scored_by_a,scored_by_b,stale_model_lines,events";

impl Sample {
    fn csv(&self) -> String {
        format!(
            "{:.0},{:.1},{:.1},{},{:.3},{:.3},{:.3},{:.3},{},{},{},{:.1},{},{},{},{},{},{},{},{},{}",
            self.t_s,
            self.rss_mb,
            self.allocated_mb,
            self.answered,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.lag_max_ms,
            self.errors,
            self.non_2xx,
            self.refused,
            self.cache_hit_pct,
            self.swaps,
            self.jwks_fetched,
            self.jwks_fetch_failed,
            self.baseline_stored,
            self.baseline_slot_taken,
            self.scored_by[0],
            self.scored_by[1],
            self.stale_model,
            self.events
        )
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn sum_prefix(stats: &HashMap<String, u64>, prefix: &str) -> u64 {
    stats
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

fn obguard_refused(stats: &HashMap<String, u64>) -> u64 {
    stats
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("wasmcustom.obguard.requests.")
                .map(|o| (o, v))
        })
        .filter(|(o, _)| !matches!(*o, "allowed" | "anonymous" | "passthrough"))
        .map(|(_, v)| v)
        .sum()
}

/// Samples every `sample_every` s until the end of the load; checks Envoy's log and the access
/// log as it goes.
struct Sampler<'a> {
    run: &'a Run<'a>,
    recorder: &'a Recorder,
    log: [Tail; 2],
    access: Tail,
    prev: HashMap<String, u64>,
    bad_lines: Vec<String>,
    key_loads: u64,
    samples: Vec<Sample>,
}

impl Sampler<'_> {
    /// Takes the window ending now (at `t_s`), printing a progress line if `show`.
    fn sample(&mut self, window_start: Instant, t_s: f64, show: bool) -> Option<Sample> {
        let run = self.run;
        let w: Window = self.recorder.take_window();
        let pid = run.envoy.pid()?;
        let rss = rss_mb(pid)?;
        let stats = run.envoy.try_stats().ok()?;
        let delta = |name: &str| {
            stats.get(name).copied().unwrap_or(0) - self.prev.get(name).copied().unwrap_or(0)
        };
        let hits = delta("wasmcustom.obguard.token_cache.hit");
        let misses = delta("wasmcustom.obguard.token_cache.miss");
        let refused = obguard_refused(&stats) - obguard_refused(&self.prev);
        for tail in &mut self.log {
            for line in tail.lines() {
                if line.contains("obguard: loaded") {
                    self.key_loads += 1;
                }
                if BAD_LOG_LINES.iter().any(|bad| line.contains(bad)) && self.bad_lines.len() < 50 {
                    self.bad_lines.push(line);
                }
            }
        }
        let (active, settled) = {
            let watch = lock(&run.watch);
            (
                watch.active.clone(),
                watch.settled_at.is_some_and(|at| at <= window_start),
            )
        };
        let mut scored = [0u64; 2];
        let mut stale = 0;
        for line in self.access.lines() {
            let Some(digest) = scored_by(&line) else {
                continue;
            };
            if let Some(i) = run.models.iter().position(|m| m.2 == digest) {
                scored[i] += 1;
            }
            if settled && digest != active {
                stale += 1;
            }
        }
        let events: Vec<String> = lock(&run.events)
            .iter()
            .filter(|e| e.t_s > t_s - run.schedule.sample_every as f64 && e.t_s <= t_s)
            .map(|e| format!("{:?}", e.kind).to_lowercase())
            .collect();
        let sample = Sample {
            t_s,
            rss_mb: rss,
            allocated_mb: stats.get("server.memory_allocated").copied().unwrap_or(0) as f64
                / 1048576.0,
            answered: w.answered,
            p50_ms: ms(w.latency.value_at_quantile(0.5)),
            p99_ms: ms(w.latency.value_at_quantile(0.99)),
            max_ms: ms(w.latency.max()),
            lag_max_ms: ms(w.lag.max()),
            errors: w.errors(),
            non_2xx: w.non_2xx(),
            refused,
            cache_hit_pct: if hits + misses == 0 {
                f64::NAN
            } else {
                100.0 * hits as f64 / (hits + misses) as f64
            },
            swaps: stats
                .get("wasmcustom.obguard.model.primary.swapped")
                .copied()
                .unwrap_or(0),
            jwks_fetched: stats
                .get("wasmcustom.obguard.jwks.fetched")
                .copied()
                .unwrap_or(0),
            jwks_fetch_failed: sum_prefix(&stats, "wasmcustom.obguard.jwks.fetch_failed."),
            baseline_stored: stats
                .get("wasmcustom.obguard.baseline.stored")
                .copied()
                .unwrap_or(0),
            baseline_slot_taken: stats
                .get("wasmcustom.obguard.baseline.slot_taken")
                .copied()
                .unwrap_or(0),
            scored_by: scored,
            stale_model: stale,
            events: events.join(";"),
        };
        if !show {
            self.prev = stats;
            return Some(sample);
        }
        eprintln!(
            "[{}] rss {:6.1} MB  alloc {:6.1} MB  {:5} answered  p50 {:6.2} ms  p99 {:7.2} ms  max {:7.2} ms  errors {}  non-2xx {}  cache hits {:4.1}%  swaps {}  jwks fetches {}",
            clock(t_s),
            sample.rss_mb,
            sample.allocated_mb,
            sample.answered,
            sample.p50_ms,
            sample.p99_ms,
            sample.max_ms,
            sample.errors,
            sample.non_2xx,
            sample.cache_hit_pct,
            sample.swaps,
            sample.jwks_fetched
        );
        for s in &w.samples {
            eprintln!("    {s}");
        }
        self.prev = stats;
        Some(sample)
    }
}

fn plugin_config(args: &Args) -> Value {
    let mut config = kit::plugin_config();
    let issuer = config["issuers"][0].as_object_mut().expect("issuer object");
    issuer.remove("jwks");
    issuer.insert("algorithms".into(), json!(["ES256"]));
    issuer.insert(
        "jwks_remote".into(),
        json!({
            "cluster": "idp",
            "path": "/.well-known/jwks.json",
            "refresh_s": JWKS_REFRESH_S,
            "timeout_ms": 1000,
            "min_refetch_interval_s": JWKS_MIN_REFETCH_S,
            "max_stale_s": 900,
        }),
    );
    config["cache"]["max_entries"] = json!(args.cache_entries);
    let demo_key =
        fs::read_to_string(workspace_root().join("envoy/demo/keys/DEMO-ONLY-model-signing.pub"))
            .expect("the demo model-signing public key");
    config["model"] = json!({
        "http": {"cluster": "models", "path": "/models/current.model", "poll_s": MODEL_POLL_S, "timeout_ms": 2000},
        "trusted_keys": [demo_key.trim(), kit::model_signing_public_key_b64(1)],
        "mode": "shadow",
        "max_clients": args.max_clients,
    });
    config["static_assessments"] = PINNED
        .iter()
        .map(|(client, verdict)| {
            (
                (*client).to_owned(),
                json!({"verdict": verdict, "risk_band": "high"}),
            )
        })
        .collect::<serde_json::Map<String, Value>>()
        .into();
    config
}

fn main() {
    let args = Args::parse();
    let schedule = Schedule::new(&args);
    let root = workspace_root();
    let clients = Clients {
        count: args.clients.max(1),
    };
    eprintln!(
        "soak: {} s at {} rps, {} clients; JWKS rotation every {} s (grace {} s), model swap every {} s",
        schedule.duration.as_secs(),
        args.rps,
        clients.count,
        schedule.rotate_every,
        schedule.grace,
        schedule.swap_every
    );
    assert!(
        schedule.rotate_every + schedule.grace + 2 * JWKS_REFRESH_S < kit_lifetime_margin(),
        "--rotate-every too long: tokens of one key would expire while in use"
    );

    // The two models: the shipped one (signed with the DEMO-ONLY key) and a one-feature
    // model signed with test key 1. Shadow mode: both score every request, neither refuses.
    let shipped = fs::read(root.join("models/shipped/obguard-default.model"))
        .expect("models/shipped/obguard-default.model");
    let other = kit::sign_model(&kit::new_country_model(10.0), 1);
    let short = |f: &[u8]| kit::model_digest_hex(f)[..12].to_owned();
    let first_model = short(&shipped);
    let models = [
        ("A (shipped)", shipped.clone(), short(&shipped)),
        ("B (new-country)", other.clone(), short(&other)),
    ];

    eprintln!("minting {} tokens for the first key", clients.count);
    let forger = SigningKey::generate("forger");
    let first = Arc::new(Epoch::mint(
        0,
        SigningKey::generate("soak-ec-0"),
        clients,
        &forger,
    ));
    let idp = JwksServer::start(jwks(&[&first.key]));
    let registry = ModelServer::start(shipped);
    let bank = DemoBank::start(0, &demo_bank_fixtures()).expect("demo bank");
    let mut opts = EnvoyOptions::new(bank.port()).plugin(plugin_config(&args));
    opts.concurrency = 2;
    opts.component_log_level = None;
    opts.extra_clusters
        .push(loopback_cluster("idp", idp.port()));
    opts.extra_clusters
        .push(loopback_cluster("models", registry.port()));
    let envoy = Envoy::start(opts);

    // Ready: keys fetched, the first model on every VM.
    let ready = Instant::now();
    let swapped = "wasmcustom.obguard.model.primary.swapped";
    while (envoy.counter("wasmcustom.obguard.jwks.fetched") < 1 || envoy.counter(swapped) < 2)
        && ready.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let vms = envoy.counter(swapped);
    assert!(
        vms >= 2 && envoy.counter("wasmcustom.obguard.jwks.fetched") >= 1,
        "Envoy did not load the JWKS and the model in 30 s:\n{}",
        envoy.log()
    );
    let pid = envoy.pid().expect("Envoy pid");
    let idle_rss = rss_mb(pid).unwrap_or(f64::NAN);
    eprintln!("Envoy ready (pid {pid}, {vms} VMs, RSS {idle_rss:.1} MB); starting the load");

    let plan = Plan::new(clients, first);
    let recorder = Recorder::default();
    let start = Instant::now();
    let run = Run {
        start,
        end: start + schedule.duration,
        schedule: &schedule,
        envoy: &envoy,
        idp: &idp,
        registry: &registry,
        plan: &plan,
        clients,
        forger: &forger,
        vms,
        models,
        stop: AtomicBool::new(false),
        events: Mutex::new(Vec::new()),
        failures: Mutex::new(Vec::new()),
        watch: Mutex::new(ModelWatch {
            active: first_model,
            settled_at: Some(start),
        }),
    };
    let load = Load {
        port: envoy.port(),
        rps: args.rps,
        duration: schedule.duration,
        threads: args.threads.max(1),
        connections: args.connections.max(1),
    };
    let mut sampler = Sampler {
        run: &run,
        recorder: &recorder,
        log: [
            Tail::new(envoy.dir().join("envoy.log")),
            Tail::new(envoy.dir().join("envoy.stderr")),
        ],
        access: Tail::new(envoy.dir().join("access.log")),
        prev: envoy.try_stats().unwrap_or_default(),
        bad_lines: Vec::new(),
        key_loads: 0,
        samples: Vec::new(),
    };
    let sent = std::thread::scope(|s| {
        let loader = s.spawn(|| load.run(start, &plan, &recorder, &run.stop));
        s.spawn(|| run.rotate_jwks());
        s.spawn(|| run.swap_models());
        let every = Duration::from_secs(schedule.sample_every);
        let mut window_start = start;
        loop {
            let at = (window_start + every).min(run.end);
            while Instant::now() < at {
                std::thread::sleep(Duration::from_millis(100));
            }
            let t_s = at.duration_since(start).as_secs_f64();
            match sampler.sample(window_start, t_s, true) {
                Some(sample) => sampler.samples.push(sample),
                None => {
                    run.fail(format!("Envoy is gone at {}", clock(t_s)));
                    run.stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
            window_start = at;
            if at >= run.end {
                break;
            }
        }
        loader.join().unwrap_or(0)
    });
    // The last answers and log lines.
    std::thread::sleep(Duration::from_millis(500));
    // Answers that arrived after the last sample count in the totals, not in a sample.
    let _ = sampler.sample(run.end, schedule.duration.as_secs_f64(), false);
    let final_stats = envoy.try_stats().unwrap_or_default();
    let end_rss = rss_mb(pid).unwrap_or(f64::NAN);

    let total = recorder.total();
    let report = Report {
        args: &args,
        schedule: &schedule,
        run: &run,
        samples: &sampler.samples,
        total: &total,
        scheduled: load.scheduled(),
        sent,
        idle_rss,
        end_rss,
        stats: &final_stats,
        idp_fetches: idp.fetches(),
        key_loads: sampler.key_loads,
        bad_lines: &sampler.bad_lines,
    };
    let failures = report.failures();
    let summary = report.render(&failures);
    println!("{summary}");

    write_csv(&root.join(&args.csv), &sampler.samples, &lock(&run.events));
    match chart(
        &root.join(&args.png),
        &sampler.samples,
        &lock(&run.events),
        &report.caption(),
    ) {
        Ok(()) => eprintln!("wrote {}", root.join(&args.png).display()),
        Err(err) => eprintln!("chart skipped: {err}"),
    }
    drop(total);
    drop(envoy);
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

/// Seconds a token may be in use: its lifetime minus a margin.
fn kit_lifetime_margin() -> u64 {
    obguard_integration::soak::TOKEN_LIFETIME_S - 300
}

fn write_csv(path: &Path, samples: &[Sample], events: &[Event]) {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for s in samples {
        out.push_str(&s.csv());
        out.push('\n');
    }
    out.push_str("# events: t_s,kind,detail\n");
    for e in events {
        let _ = writeln!(
            out,
            "# {:.1},{:?},{}",
            e.t_s,
            e.kind,
            e.detail.replace(',', ";")
        );
    }
    match fs::write(path, out) {
        Ok(()) => eprintln!("wrote {}", path.display()),
        Err(err) => eprintln!("cannot write {}: {err}", path.display()),
    }
}

struct Report<'a> {
    args: &'a Args,
    schedule: &'a Schedule,
    run: &'a Run<'a>,
    samples: &'a [Sample],
    total: &'a Window,
    scheduled: u64,
    sent: u64,
    idle_rss: f64,
    end_rss: f64,
    stats: &'a HashMap<String, u64>,
    idp_fetches: usize,
    key_loads: u64,
    bad_lines: &'a [String],
}

impl Report<'_> {
    fn count(&self, kind: EventKind) -> usize {
        lock(&self.run.events)
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }

    fn stat(&self, name: &str) -> u64 {
        self.stats
            .get(&format!("wasmcustom.obguard.{name}"))
            .copied()
            .unwrap_or(0)
    }

    /// The non-zero counters `wasmcustom.obguard.<prefix>*`: `"name: value, …"`.
    fn family(&self, prefix: &str) -> String {
        let prefix = format!("wasmcustom.obguard.{prefix}");
        let members: BTreeMap<&str, u64> = self
            .stats
            .iter()
            .filter(|(_, v)| **v > 0)
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|n| (n, *v)))
            .collect();
        let list: Vec<String> = members.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        list.join(", ")
    }

    fn failures(&self) -> Vec<String> {
        let mut out = lock(&self.run.failures).clone();
        if !self.bad_lines.is_empty() {
            out.push(format!(
                "Envoy's log has {} line(s) with {BAD_LOG_LINES:?}, first: {}",
                self.bad_lines.len(),
                self.bad_lines[0]
            ));
        }
        if self.total.unexpected_total() > 0 {
            out.push(format!(
                "{} answer(s) with an unexpected status: {:?}",
                self.total.unexpected_total(),
                self.total.unexpected
            ));
        }
        if self.sent < self.scheduled {
            out.push(format!(
                "the load fell behind: {} of {} scheduled requests not sent",
                self.scheduled - self.sent,
                self.scheduled
            ));
        }
        if self.total.transport_errors > 0 {
            out.push(format!(
                "{} request(s) without an answer",
                self.total.transport_errors
            ));
        }
        let stale: u64 = self.samples.iter().map(|s| s.stale_model).sum();
        if stale > 0 {
            out.push(format!(
                "{stale} request(s) scored by the previous model after a swap had settled"
            ));
        }
        if self.count(EventKind::Swap) == 0 {
            out.push("no model swap happened (run too short?)".into());
        }
        if self.count(EventKind::Rotation) == 0 {
            out.push("no JWKS rotation happened (run too short?)".into());
        }
        out
    }

    fn caption(&self) -> String {
        format!(
            "obguard soak: {:.0} min at {} rps, {} clients, Envoy 2 workers",
            self.schedule.duration.as_secs_f64() / 60.0,
            self.args.rps,
            self.args.clients
        )
    }

    fn render(&self, failures: &[String]) -> String {
        let mut md = String::new();
        let s = self.samples;
        let col = |f: fn(&Sample) -> f64| s.iter().map(f).collect::<Vec<f64>>();
        let p99 = col(|x| x.p99_ms);
        // (time, value) of the largest value.
        let peak = |f: fn(&Sample) -> f64| {
            s.iter()
                .map(|x| (x.t_s, f(x)))
                .fold(
                    (0.0, f64::NEG_INFINITY),
                    |a, b| if b.1 > a.1 { b } else { a },
                )
        };
        let (max_p99_at, max_p99) = peak(|x| x.p99_ms);
        let (max_rss_at, max_rss) = peak(|x| x.rss_mb);
        let at_frac = |f: f64| {
            s.get(((s.len() as f64 * f) as usize).min(s.len().saturating_sub(1)))
                .map_or(f64::NAN, |x| x.rss_mb)
        };
        let total = self.total;
        let q = |p: f64| ms(total.latency.value_at_quantile(p));
        let _ = writeln!(md, "## {}\n", self.caption());
        let _ = writeln!(md, "- Machine: {} (shared)", machine());
        let _ = writeln!(
            md,
            "- Envoy: `{}`, `--concurrency 2`; `obguard.wasm` {} bytes",
            envoy_version(),
            fs::metadata(wasm_path()).map_or(0, |m| m.len())
        );
        let _ = writeln!(
            md,
            "- Load: {} threads × {} keep-alive connections, open loop; JWKS rotation every {} s (grace {} s), model swap every {} s; `max_clients` {}, `cache.max_entries` {}",
            self.args.threads,
            self.args.connections,
            self.schedule.rotate_every,
            self.schedule.grace,
            self.schedule.swap_every,
            self.args.max_clients,
            self.args.cache_entries
        );
        let _ = writeln!(md, "\n| | |\n|---|---|");
        let _ = writeln!(
            md,
            "| Requests | {} scheduled, {} sent, {} answered, {} samples of {} s |",
            self.scheduled,
            self.sent,
            total.answered,
            s.len(),
            self.schedule.sample_every
        );
        let _ = writeln!(
            md,
            "| Errors | {} unexpected status, {} without an answer ({} keep-alive reconnects) |",
            total.unexpected_total(),
            total.transport_errors,
            total.reconnects
        );
        let refusals: Vec<String> = total
            .refusals
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            md,
            "| Non-2xx by cause (all expected) | {} |",
            refusals.join(", ")
        );
        let _ = writeln!(
            md,
            "| Envoy RSS | idle before load {:.1} MB; first sample {:.1}; at 25% {:.1}; at 50% {:.1}; end {:.1} (after the load {:.1}); max {:.1} at {} |",
            self.idle_rss,
            s.first().map_or(f64::NAN, |x| x.rss_mb),
            at_frac(0.25),
            at_frac(0.5),
            s.last().map_or(f64::NAN, |x| x.rss_mb),
            self.end_rss,
            max_rss,
            clock(max_rss_at)
        );
        let half = s.len() / 2;
        let _ = writeln!(
            md,
            "| RSS trend | first half {:+.1} MB, second half {:+.1} MB (least-squares slope over the second half: {:+.2} MB per 10 min) |",
            at_frac(0.5) - s.first().map_or(f64::NAN, |x| x.rss_mb),
            s.last().map_or(f64::NAN, |x| x.rss_mb) - at_frac(0.5),
            slope_per_10min(&s[half..])
        );
        let _ = writeln!(
            md,
            "| tcmalloc allocated | first sample {:.1} MB, end {:.1} MB |",
            s.first().map_or(f64::NAN, |x| x.allocated_mb),
            s.last().map_or(f64::NAN, |x| x.allocated_mb)
        );
        let _ = writeln!(
            md,
            "| p99 per window | median {:.2} ms, max {:.2} ms at {} (p50 per window: median {:.2} ms) |",
            median(&p99),
            max_p99,
            clock(max_p99_at),
            median(&col(|x| x.p50_ms))
        );
        let _ = writeln!(
            md,
            "| Whole run | p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; send lag p99 {:.2} ms, max {:.2} ms |",
            q(0.5),
            q(0.99),
            q(0.999),
            ms(total.latency.max()),
            ms(total.lag.value_at_quantile(0.99)),
            ms(total.lag.max())
        );
        let _ = writeln!(
            md,
            "| Model swaps | {} (every one on all {} VMs; `model.primary.swapped` {}, `.fetched` {}, `.not_modified` {}, rejected {}); requests scored by A / B: {} / {} |",
            self.count(EventKind::Swap),
            self.run.vms,
            self.stat("model.primary.swapped"),
            self.stat("model.primary.fetched"),
            self.stat("model.primary.not_modified"),
            sum_prefix(self.stats, "wasmcustom.obguard.model.primary.rejected."),
            s.iter().map(|x| x.scored_by[0]).sum::<u64>(),
            s.iter().map(|x| x.scored_by[1]).sum::<u64>()
        );
        let _ = writeln!(
            md,
            "| JWKS rotations | {} rotations, {} retirements; IdP answered {} fetches; `jwks.fetched` {}, `fetch_failed.*` {}, `refetch_requested` {}, `refetch_suppressed` {}; {} \"loaded key(s)\" log lines |",
            self.count(EventKind::Rotation),
            self.count(EventKind::Retirement),
            self.idp_fetches,
            self.stat("jwks.fetched"),
            sum_prefix(self.stats, "wasmcustom.obguard.jwks.fetch_failed."),
            self.stat("jwks.refetch_requested"),
            self.stat("jwks.refetch_suppressed"),
            self.key_loads
        );
        let hits = self.stat("token_cache.hit");
        let misses = self.stat("token_cache.miss");
        let _ = writeln!(
            md,
            "| Token cache | {hits} hits, {misses} misses ({:.1}% hits) |",
            100.0 * hits as f64 / (hits + misses).max(1) as f64
        );
        let _ = writeln!(
            md,
            "| Baselines | stored {}, slot_taken {}, lost {} |",
            self.stat("baseline.stored"),
            self.stat("baseline.slot_taken"),
            self.stat("baseline.lost")
        );
        let _ = writeln!(
            md,
            "| Verdicts (shadow mode, and pinned clients) | {} |",
            self.family("verdict.")
        );
        let _ = writeln!(md, "| obguard outcomes | {} |", self.family("requests."));
        let _ = writeln!(
            md,
            "| Envoy log | {} |",
            if self.bad_lines.is_empty() {
                format!("no line with {BAD_LOG_LINES:?}")
            } else {
                format!("{} bad line(s)", self.bad_lines.len())
            }
        );
        let _ = writeln!(
            md,
            "| Result | {} |",
            if failures.is_empty() {
                "PASS".to_owned()
            } else {
                format!("FAIL: {}", failures.join("; "))
            }
        );
        let _ = writeln!(md, "\nEvents:\n");
        for e in lock(&self.run.events).iter() {
            let _ = writeln!(md, "- {} {:?}: {}", clock(e.t_s), e.kind, e.detail);
        }
        md
    }
}

/// Least-squares slope of RSS over time, MB per 10 minutes.
fn slope_per_10min(samples: &[Sample]) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let mx = samples.iter().map(|s| s.t_s).sum::<f64>() / n;
    let my = samples.iter().map(|s| s.rss_mb).sum::<f64>() / n;
    let cov: f64 = samples.iter().map(|s| (s.t_s - mx) * (s.rss_mb - my)).sum();
    let var: f64 = samples.iter().map(|s| (s.t_s - mx).powi(2)).sum();
    cov / var * 600.0
}

fn envoy_version() -> String {
    std::process::Command::new(envoy_bin())
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default()
}

fn chart(path: &Path, samples: &[Sample], events: &[Event], caption: &str) -> Result<(), String> {
    use plotters::prelude::*;
    register_chart_font()?;
    let root = BitMapBackend::new(path, (1200, 860)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(caption, ("sans-serif", 22))
        .map_err(|e| e.to_string())?;
    let panels = root.split_evenly((2, 1));
    let x_max = samples.last().map_or(1.0, |s| s.t_s / 60.0).max(0.1);
    let rotation = RGBColor(230, 120, 0);
    let retirement = RGBColor(240, 190, 120);
    let swap = RGBColor(40, 160, 60);
    type Series = (&'static str, RGBColor, fn(&Sample) -> f64);
    let panel_specs: [(&str, [Series; 2]); 2] = [
        (
            "Envoy memory, MB",
            [
                ("RSS (VmRSS)", RGBColor(31, 119, 180), |s: &Sample| s.rss_mb),
                (
                    "tcmalloc allocated",
                    RGBColor(150, 150, 150),
                    |s: &Sample| s.allocated_mb,
                ),
            ],
        ),
        (
            "Latency per 10 s window, ms (from the intended send time)",
            [
                ("p99", RGBColor(200, 40, 40), |s: &Sample| s.p99_ms),
                ("p50", RGBColor(150, 150, 150), |s: &Sample| s.p50_ms),
            ],
        ),
    ];
    for (area, (title, series)) in panels.iter().zip(panel_specs) {
        let y_max = samples
            .iter()
            .flat_map(|s| series.iter().map(move |(_, _, f)| f(s)))
            .filter(|v| v.is_finite())
            .fold(1.0f64, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        for (kind, color, label) in [
            (
                EventKind::Rotation,
                rotation,
                "JWKS rotation (new key signs)",
            ),
            (EventKind::Retirement, retirement, "old key removed"),
            (EventKind::Swap, swap, "model swap"),
        ] {
            let lines: Vec<f64> = events
                .iter()
                .filter(|e| e.kind == kind)
                .map(|e| e.t_s / 60.0)
                .collect();
            let mut first = true;
            for x in lines {
                let drawn = chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, 0.0), (x, y_max)],
                        color.stroke_width(2),
                    )))
                    .map_err(|e| e.to_string())?;
                if first {
                    drawn.label(label).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                    first = false;
                }
            }
        }
        for (label, color, f) in series {
            chart
                .draw_series(LineSeries::new(
                    samples
                        .iter()
                        .map(|s| (s.t_s / 60.0, f(s)))
                        .filter(|p| p.1.is_finite()),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
