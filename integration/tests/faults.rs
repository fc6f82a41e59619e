//! Fault injection through the real Envoy (two workers) for every callout obguard makes: the
//! remote JWKS (`jwks_remote`), the model registry (`model.http`) and the rate-limit service
//! (`ratelimit`, gRPC). For each callout and each way the far end can misbehave on the wire
//! ([`Fault`], [`Behaviour`]) a scenario delivers the fault
//!
//! 1. before anything good was ever fetched (no keys / no model yet),
//! 2. then lets the far end recover (the good answer reaches every worker again),
//! 3. then delivers the fault again while the last good keys / model serve
//!
//! (the rate-limit service has no state: fault, then recovery), and after every delivery
//! checks that
//! (a) Envoy's log shows no trap: no `panicked`, no `RuntimeError: unreachable`, no failed
//!     wasm callback (`proxy_on_… failed: …`);
//! (b) every worker still answers with the configured decision: [`SPREAD`] connections held
//!     open together, spread over both workers by `exact_balance`, each checked;
//! (c) the failure is counted in its documented metric and named in a warning.
//!
//! Compiling obguard.wasm is most of an Envoy's start-up (about 3 s of CPU), so scenarios
//! share Envoys: each scenario has its own obguard plugin instance (its own issuer / model
//! source / rate-limit cluster and its own far end), all in one VM per worker, selected per
//! request by the `x-fault-scenario` header. A lane runs its scenarios one after the other on
//! one Envoy; while a scenario runs, every other far end of the lane is idle (a survivable
//! failure whose metric no scenario expects). A scenario that fails (a trap kills the VM of
//! every plugin instance on that worker) ends its Envoy: the lane goes on with a new one.
//!
//! Each test function prints one line per scenario and fails listing every failed scenario.
//! `OBGUARD_FAULTS=cut_short,drip` runs only the scenarios whose name contains one of the
//! given words.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use obguard_integration::{
    Behaviour, Counters, Envoy, EnvoyOptions, Fault, FaultServer, RateLimitService, RawRequest,
    Response, grpc_cluster, loopback_cluster, obguard_filter, wasm_path,
};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

const WORKERS: u32 = 2;
/// Connections per check, held open together so that every worker gets its share.
const SPREAD: usize = 20;
/// Lanes (Envoys running at once) per HTTP callout.
const LANES: usize = 4;
/// Per fetch / per check. Small, so a slow far end costs little; generous enough for a busy
/// machine on the good path (loopback).
const TIMEOUT_MS: u64 = 1000;
/// How long a delivered fault may take to show up as a metric or a trap.
const OUTCOME_WITHIN: Duration = Duration::from_millis(TIMEOUT_MS + 4000);
/// How long the good answer may take to reach every worker again.
const RECOVERY_WITHIN: Duration = Duration::from_secs(8);
const JWKS_RETRY_AFTER: &str = "7";
const MODEL_RETRY_AFTER: &str = "9";
const MODEL_PATH: &str = "/models/current.model";
const INTERACTION_ID: &str = "6f0c1e2d-3b4a-4c5d-8e9f-0a1b2c3d4e5f";
/// The request header that selects a scenario's plugin instance.
const SCENARIO_HEADER: &str = "x-fault-scenario";

// ---------------------------------------------------------------------------------------
// Scenarios, lanes and the summary

/// One callout × fault.
trait Scenario: Send {
    /// `callout/fault`.
    fn name(&self) -> &str;
    /// This scenario's obguard plugin configuration.
    fn plugin(&self) -> Value;
    /// The Envoy cluster of this scenario's far end.
    fn cluster(&self) -> Value;
    /// Puts the far end in its idle state (while other scenarios of the lane run).
    fn idle(&self);
    /// Waits until nothing this scenario started is still on its way (a fetch the far end
    /// is still answering), so that it cannot move the next scenario's counters.
    fn settle(&self) {}
    /// Delivers the fault and checks; panics on the first failed check.
    fn run(&self, envoy: &Envoy, laps: &mut Laps);
}

/// The plugin instance (HTTP filter) name of a scenario, also the value of
/// [`SCENARIO_HEADER`] that selects it.
fn plugin_id(scenario: &dyn Scenario) -> String {
    scenario.name().replace('/', ".")
}

/// Where a scenario's time went, for the summary line.
struct Laps {
    last: Instant,
    laps: Vec<String>,
}

impl Laps {
    fn start() -> Laps {
        Laps {
            last: Instant::now(),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, label: &str) {
        let now = Instant::now();
        self.laps
            .push(format!("{label} {:.1}", (now - self.last).as_secs_f64()));
        self.last = now;
    }
}

fn selected(name: &str) -> bool {
    match std::env::var("OBGUARD_FAULTS") {
        Ok(words) if !words.trim().is_empty() => words
            .split(',')
            .map(str::trim)
            .any(|w| !w.is_empty() && name.contains(w)),
        _ => true,
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(panic without a message)".into())
}

/// Every matched route answers 200 itself (`direct_response`), so the checks measure obguard
/// and not an upstream server; the route matching a scenario's header enables that
/// scenario's plugin instance (disabled everywhere else); anything else is a 404.
fn route_by_scenario(bootstrap: &mut Value) {
    let hcm = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    let ids: Vec<String> = hcm["http_filters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["disabled"] == true)
        .filter_map(|f| f["name"].as_str().map(str::to_owned))
        .collect();
    let mut routes: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({
                "match": {"prefix": "/", "headers": [{"name": SCENARIO_HEADER, "string_match": {"exact": id}}]},
                "direct_response": {"status": 200, "body": {"inline_string": "upstream ok"}},
                // Enables the filter on this route (it has no per-route configuration).
                "typed_per_filter_config": {id: {
                    "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                    "config": {"@type": "type.googleapis.com/google.protobuf.Empty"},
                    "is_optional": true,
                }},
            })
        })
        .collect();
    routes.push(json!({"match": {"prefix": "/"}, "direct_response": {"status": 404}}));
    hcm["route_config"]["virtual_hosts"][0]["routes"] = Value::Array(routes);
}

/// One Envoy with a plugin instance and a cluster for each scenario.
fn start_envoy(scenarios: &VecDeque<Box<dyn Scenario>>) -> Envoy {
    let wasm = wasm_path();
    let mut opts = EnvoyOptions::new(9);
    opts.concurrency = WORKERS;
    opts.exact_balance = true;
    opts.customize = Some(route_by_scenario);
    for scenario in scenarios {
        let mut filter = obguard_filter(&plugin_id(scenario.as_ref()), &scenario.plugin(), &wasm);
        filter["disabled"] = json!(true);
        opts.extra_http_filters.push(filter);
        opts.extra_clusters.push(scenario.cluster());
    }
    Envoy::start(opts)
}

/// Runs `scenarios` one after the other on shared Envoys (a new one after each failure).
fn run_lane(scenarios: Vec<Box<dyn Scenario>>) -> Vec<(String, Result<String, String>)> {
    let mut pending: VecDeque<Box<dyn Scenario>> = scenarios.into();
    let mut results = Vec::new();
    while !pending.is_empty() {
        for scenario in &pending {
            scenario.idle();
        }
        let mut laps = Laps::start();
        let envoy = match std::panic::catch_unwind(AssertUnwindSafe(|| start_envoy(&pending))) {
            Ok(envoy) => envoy,
            Err(panic) => {
                let why = panic_text(panic.as_ref());
                for scenario in pending.drain(..) {
                    results.push((scenario.name().to_owned(), Err(why.clone())));
                }
                break;
            }
        };
        laps.lap("envoy start");
        while let Some(scenario) = pending.pop_front() {
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                scenario.run(&envoy, &mut laps);
            }));
            scenario.idle();
            scenario.settle();
            let name = scenario.name().to_owned();
            match outcome {
                Ok(()) => {
                    let took = started.elapsed().as_secs_f64();
                    results.push((name, Ok(format!("{took:.1} s: {}", laps.laps.join(", ")))));
                    laps = Laps::start();
                }
                Err(panic) => {
                    results.push((name, Err(panic_text(panic.as_ref()))));
                    break; // the VMs may be dead: the rest get a new Envoy
                }
            }
        }
    }
    results
}

/// Runs the selected scenarios in `lanes` lanes, prints one line each, and panics with the
/// failures (each with its first lines) if any failed.
fn run_all(callout: &str, scenarios: Vec<Box<dyn Scenario>>, lanes: usize) {
    let started = Instant::now();
    let mut split: Vec<Vec<Box<dyn Scenario>>> = (0..lanes).map(|_| Vec::new()).collect();
    let chosen = scenarios.into_iter().filter(|s| selected(s.name()));
    for (i, scenario) in chosen.enumerate() {
        split[i % lanes].push(scenario);
    }
    let threads: Vec<_> = split
        .into_iter()
        .filter(|lane| !lane.is_empty())
        .enumerate()
        .map(|(i, lane)| {
            std::thread::Builder::new()
                .name(format!("{callout}-lane-{i}"))
                .spawn(move || run_lane(lane))
                .unwrap_or_else(|e| panic!("start a lane: {e}"))
        })
        .collect();
    let mut results: Vec<(String, Result<String, String>)> = Vec::new();
    for thread in threads {
        results.extend(
            thread
                .join()
                .unwrap_or_else(|panic| panic!("lane crashed: {}", panic_text(panic.as_ref()))),
        );
    }
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let mut summary = Vec::new();
    let mut failures = Vec::new();
    for (name, result) in &results {
        match result {
            Ok(laps) => summary.push(format!("PASS {name} ({laps})")),
            Err(text) => {
                let first = text.lines().next().unwrap_or_default();
                summary.push(format!("FAIL {name}: {first}"));
                failures.push(format!("---- {name}\n{}", head(text, 8)));
            }
        }
    }
    eprintln!(
        "==== {callout}: {} of {} scenarios passed in {:.1} s\n{}",
        results.len() - failures.len(),
        results.len(),
        started.elapsed().as_secs_f64(),
        summary.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of {} {callout} scenarios failed:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
}

fn head(text: &str, n: usize) -> String {
    text.lines().take(n).collect::<Vec<_>>().join("\n")
}

// ---------------------------------------------------------------------------------------
// Checks shared by every callout

/// Lines of Envoy's log that show a trapped VM or a failed wasm callback, each `panicked`
/// line followed by the panic message on the next line. The filter's own messages
/// (`obguard: obguard: …`) are not traps, even when they name a reason `unreachable`.
fn trap_lines(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let own = line.contains("obguard: obguard: ");
        let trap = line.contains("panicked")
            || line.contains("RuntimeError")
            || (!own && line.contains("unreachable"))
            || (!own && line.contains("[wasm]") && line.contains(" failed: "));
        if trap {
            out.push((*line).to_owned());
            if line.contains("panicked")
                && let Some(message) = lines.get(i + 1)
            {
                out.push(format!("    {message}"));
            }
        }
    }
    out
}

/// The failure message for a trap: the first trap line on the first line.
fn trapped(phase: &str, traps: &[String]) -> String {
    format!("{phase}: a wasm VM trapped: {}", traps.join("\n"))
}

fn assert_no_trap(envoy: &Envoy, phase: &str) {
    // The log file is flushed in batches: give the last lines a moment.
    std::thread::sleep(Duration::from_millis(150));
    let traps = trap_lines(&envoy.log());
    assert!(traps.is_empty(), "{}", trapped(phase, &traps));
}

/// Polls (up to `within`) until `done` holds or Envoy's log shows a trap.
fn wait_for(envoy: &Envoy, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() || !trap_lines(&envoy.log()).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// obguard's counters, without the `wasmcustom.obguard.` prefix (one admin call).
fn counters(envoy: &Envoy) -> HashMap<String, u64> {
    envoy
        .stats_matching("^wasmcustom\\.obguard\\.")
        .into_iter()
        .map(|(name, v)| (name.trim_start_matches("wasmcustom.obguard.").to_owned(), v))
        .collect()
}

fn counter(envoy: &Envoy, name: &str) -> u64 {
    counters(envoy).get(name).copied().unwrap_or(0)
}

/// How far each of `names` moved since `before`.
fn moved(envoy: &Envoy, before: &HashMap<String, u64>, names: &[&str]) -> Vec<u64> {
    let now = counters(envoy);
    names
        .iter()
        .map(|n| {
            let get = |m: &HashMap<String, u64>| m.get(*n).copied().unwrap_or(0);
            get(&now).saturating_sub(get(before))
        })
        .collect()
}

fn nonzero(envoy: &Envoy) -> Vec<String> {
    let mut list: Vec<String> = counters(envoy)
        .into_iter()
        .filter(|(name, v)| *v > 0 && !name.contains("keys_age"))
        .map(|(name, v)| format!("{name}={v}"))
        .collect();
    list.sort();
    list
}

/// Log lines containing every one of `needles`.
fn count_lines(envoy: &Envoy, needles: &[&str]) -> usize {
    envoy
        .log()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

type Check = dyn Fn(&Response) -> Result<(), String>;

/// `req` on [`SPREAD`] connections spread over the workers: every worker must take its
/// share, and every answer must pass `check`. `Err` describes what did not.
fn every_worker(envoy: &Envoy, req: &RawRequest, check: &Check) -> Result<(), String> {
    let spread = envoy.send_spread(req, SPREAD);
    let share = (SPREAD / WORKERS as usize / 2) as u64;
    if spread.per_worker.len() != WORKERS as usize || spread.per_worker.iter().any(|n| *n < share) {
        return Err(format!(
            "connections per worker {:?}: not spread over {WORKERS} workers",
            spread.per_worker
        ));
    }
    let problems: Vec<String> = spread
        .responses
        .iter()
        .enumerate()
        .filter_map(|(i, resp)| {
            let outcome = match resp {
                Ok(resp) => check(resp)
                    .map_err(|why| format!("{why} (got {}, body {:?})", resp.status, resp.text())),
                Err(e) => Err(e.clone()),
            };
            outcome.err().map(|why| format!("connection {i}: {why}"))
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {SPREAD} answers wrong (workers took {:?}):\n{}",
            problems.len(),
            spread.per_worker,
            problems.join("\n")
        ))
    }
}

fn assert_every_worker(envoy: &Envoy, phase: &str, req: &RawRequest, check: &Check) {
    if let Err(why) = every_worker(envoy, req, check) {
        panic!("{phase}: {why}");
    }
}

/// Retries [`every_worker`] until it passes (up to `within`); panics with the last failure,
/// or at once on a trap.
fn eventually_every_worker(
    envoy: &Envoy,
    phase: &str,
    within: Duration,
    req: &RawRequest,
    check: &Check,
) {
    let deadline = Instant::now() + within;
    loop {
        let result = every_worker(envoy, req, check);
        let traps = trap_lines(&envoy.log());
        assert!(traps.is_empty(), "{}", trapped(phase, &traps));
        match result {
            Ok(()) => return,
            Err(why) if Instant::now() >= deadline => panic!("{phase}: after {within:?}: {why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

fn status_is(want: u16) -> impl Fn(&Response) -> Result<(), String> {
    move |resp| {
        if resp.status == want {
            Ok(())
        } else {
            Err(format!("expected {want}"))
        }
    }
}

/// obguard's `temporarily_unavailable` answer (not Envoy's own 503 for a dead VM).
fn unavailable(retry_after: &'static str) -> impl Fn(&Response) -> Result<(), String> {
    move |resp| {
        let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        if resp.status == 503
            && resp.header("retry-after") == Some(retry_after)
            && body["error"] == "temporarily_unavailable"
        {
            Ok(())
        } else {
            Err(format!(
                "expected obguard's 503 temporarily_unavailable with retry-after {retry_after}"
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------
// HTTP callouts: remote JWKS and model registry

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Callout {
    Jwks,
    Model,
}

/// What a fault should lead to.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Counted in `wasmcustom.obguard.<callout>.<metric>` (e.g. `fetch_failed.unreachable`,
    /// `rejected.bad_magic`) and named in a warning; nothing new is used.
    Failed(&'static str),
    /// The answer is good despite the fault (e.g. a header obguard does not need): used.
    Served,
}

struct HttpScenario {
    name: String,
    callout: Callout,
    fault: Fault,
    expect: Expect,
    server: FaultServer,
}

/// Deterministic bytes that are neither JSON nor a model file.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn jwks() -> Value {
    json!({"keys": [kit::jwk(Key::P256)]})
}

fn model_file() -> Vec<u8> {
    // A lenient model: every request of the probe client is allowed.
    kit::sign_model(&kit::new_country_model(0.0), 1)
}

/// The faults both HTTP callouts go through, with what each leads to. Connection-level
/// failures before a response (refused, reset before headers, a stall past the timeout, a
/// status line Envoy cannot parse, headers over Envoy's limit) reach obguard as Envoy's own
/// 503/504/502 answer, so they count as `status`; failures after the headers arrived reach
/// obguard as a call without a response: `unreachable`. A good body with a header obguard
/// cannot read (a non-UTF-8 `ETag`) or a large one Envoy still accepts (60 KiB) is used: the
/// `ETag` only saves a download.
fn http_faults(callout: Callout) -> Vec<(&'static str, Fault, Expect)> {
    use Expect::{Failed, Served};
    let (truncated, garbage) = match callout {
        Callout::Jwks => {
            let text = jwks().to_string();
            let half = text.as_bytes()[..text.len() / 2].to_vec();
            (
                ("truncated_json", half, "fetch_failed.not_jwks"),
                "fetch_failed.not_jwks",
            )
        }
        Callout::Model => {
            let file = model_file();
            let half = file[..file.len() / 2].to_vec();
            (
                ("truncated_file", half, "rejected.corrupt"),
                "rejected.bad_magic",
            )
        }
    };
    vec![
        ("refused", Fault::Refused, Failed("fetch_failed.status")),
        (
            "reset_on_accept",
            Fault::ResetOnAccept,
            Failed("fetch_failed.status"),
        ),
        (
            "reset_after_headers",
            Fault::ResetAfterHeaders,
            Failed("fetch_failed.unreachable"),
        ),
        (
            "reset_mid_body",
            Fault::ResetMidBody,
            Failed("fetch_failed.unreachable"),
        ),
        (
            "cut_short",
            Fault::CutShort,
            Failed("fetch_failed.unreachable"),
        ),
        (
            "too_large",
            Fault::Oversized(4 << 20),
            Failed("fetch_failed.too_large"),
        ),
        (
            "status_500",
            Fault::Status(500),
            Failed("fetch_failed.status"),
        ),
        (
            "status_404",
            Fault::Status(404),
            Failed("fetch_failed.status"),
        ),
        (
            "redirect_302",
            Fault::Status(302),
            Failed("fetch_failed.status"),
        ),
        (
            "random_bytes",
            Fault::Body(random_bytes(512)),
            Failed(garbage),
        ),
        (truncated.0, Fault::Body(truncated.1), Failed(truncated.2)),
        ("empty_object", Fault::Body(b"{}".to_vec()), Failed(garbage)),
        ("non_utf8_etag", Fault::NonUtf8Header, Served),
        ("header_60k", Fault::HugeHeader(60 * 1024), Served),
        (
            "header_128k",
            Fault::HugeHeader(128 * 1024),
            Failed("fetch_failed.status"),
        ),
        (
            "stall_past_timeout",
            Fault::Stall,
            Failed("fetch_failed.status"),
        ),
        (
            "drip_past_timeout",
            Fault::Drip(Duration::from_millis(200)),
            Failed("fetch_failed.unreachable"),
        ),
        (
            "garbage_status_line",
            Fault::GarbageStatusLine,
            Failed("fetch_failed.status"),
        ),
    ]
}

impl HttpScenario {
    fn all(callout: Callout) -> Vec<Box<dyn Scenario>> {
        http_faults(callout)
            .into_iter()
            .map(|(fault_name, fault, expect)| {
                let server = match callout {
                    Callout::Jwks => FaultServer::jwks(&jwks()),
                    Callout::Model => FaultServer::model(model_file()),
                };
                let prefix = match callout {
                    Callout::Jwks => "jwks",
                    Callout::Model => "model",
                };
                Box::new(HttpScenario {
                    name: format!("{prefix}/{fault_name}"),
                    callout,
                    fault,
                    expect,
                    server,
                }) as Box<dyn Scenario>
            })
            .collect()
    }

    fn fault_name(&self) -> &str {
        self.name.split_once('/').map_or("", |(_, f)| f)
    }

    /// This scenario's own issuer (shared data, and so the fetched keys, are per issuer).
    fn issuer(&self) -> String {
        format!("{}/{}", kit::ISSUER, self.fault_name())
    }

    fn cluster_name(&self) -> String {
        match self.callout {
            Callout::Jwks => format!("idp-{}", self.fault_name()),
            Callout::Model => format!("registry-{}", self.fault_name()),
        }
    }

    fn request(&self) -> RawRequest {
        let mut claims = kit::claims("tpp-faults", "accounts");
        if self.callout == Callout::Jwks {
            claims["iss"] = json!(self.issuer());
        }
        RawRequest::get("/accounts")
            .bearer(kit::token("ES256", Key::P256, &claims))
            .header("x-fapi-interaction-id", INTERACTION_ID)
            .header(SCENARIO_HEADER, self.name.replace('/', "."))
    }

    /// The counter a fault moves.
    fn metric(&self, first_fetch: bool) -> String {
        match (self.callout, self.expect) {
            (Callout::Jwks, Expect::Failed(m)) => format!("jwks.{m}"),
            (Callout::Jwks, Expect::Served) => "jwks.fetched".into(),
            (Callout::Model, Expect::Failed(m)) => format!("model.primary.{m}"),
            (Callout::Model, Expect::Served) if first_fetch => "model.primary.fetched".into(),
            // The same file again is recognised by its digest.
            (Callout::Model, Expect::Served) => "model.primary.not_modified".into(),
        }
    }

    /// The warning that names a failure (it names this scenario's issuer or cluster).
    fn warning(&self) -> Option<String> {
        let Expect::Failed(metric) = self.expect else {
            return None;
        };
        let (kind, reason) = metric.split_once('.').unwrap_or((metric, ""));
        let cluster = self.cluster_name();
        Some(match (self.callout, kind) {
            (Callout::Jwks, _) => format!("JWKS fetch for {} failed ({reason}", self.issuer()),
            (Callout::Model, "rejected") => format!(
                "primary model file from cluster {cluster} path {MODEL_PATH} refused ({reason})"
            ),
            (Callout::Model, _) => format!(
                "polling the primary model from cluster {cluster} path {MODEL_PATH} failed ({reason}"
            ),
        })
    }

    /// Delivers the current fault (at least once) and checks (a), (b) and (c).
    fn fault_phase(&self, envoy: &Envoy, phase: &str, nothing_yet: bool) {
        let metric = self.metric(nothing_yet);
        let warning = self.warning();
        let warnings = |envoy: &Envoy| warning.as_deref().map_or(0, |w| count_lines(envoy, &[w]));
        let (before, warnings_before) = (counter(envoy, &metric), warnings(envoy));
        self.server.set_fault(self.fault.clone());
        if self.fault != Fault::Refused {
            assert!(
                self.server.wait_delivered(1, Duration::from_secs(5)),
                "{phase}: the fault was never delivered (no fetch within 5 s)"
            );
        }
        // After the recovery a good answer may have been on its way when the fault was set:
        // count a "served" fault only from its own delivery on.
        let before = match (self.expect, nothing_yet) {
            (Expect::Served, false) => counter(envoy, &metric),
            _ => before,
        };
        wait_for(envoy, OUTCOME_WITHIN, || {
            counter(envoy, &metric) > before
                && (warning.is_none() || warnings(envoy) > warnings_before)
        });
        // (a) no trap.
        assert_no_trap(envoy, phase);
        // (b) every worker answers as configured.
        let request = self.request();
        match (self.expect, nothing_yet) {
            (Expect::Failed(_), true) => {
                let (outcome, retry_after) = match self.callout {
                    Callout::Jwks => ("requests.idp_unavailable", JWKS_RETRY_AFTER),
                    Callout::Model => ("requests.model_unavailable", MODEL_RETRY_AFTER),
                };
                let outcome_before = counters(envoy);
                assert_every_worker(envoy, phase, &request, &unavailable(retry_after));
                let refusals = moved(envoy, &outcome_before, &[outcome])[0];
                assert!(
                    refusals >= SPREAD as u64,
                    "{phase}: {outcome} moved by {refusals} for {SPREAD} refusals"
                );
            }
            (Expect::Served, true) => {
                eventually_every_worker(envoy, phase, RECOVERY_WITHIN, &request, &status_is(200));
            }
            (_, false) => assert_every_worker(envoy, phase, &request, &status_is(200)),
        }
        // (c) counted and named.
        let after = counter(envoy, &metric);
        assert!(
            after > before,
            "{phase}: wasmcustom.obguard.{metric} did not move ({before} → {after}); obguard \
             counters: {:?}",
            nonzero(envoy)
        );
        if let Some(warning) = &warning {
            assert!(
                warnings(envoy) > warnings_before,
                "{phase}: no new warning line containing {warning:?}"
            );
        }
    }
}

impl Scenario for HttpScenario {
    fn name(&self) -> &str {
        &self.name
    }

    fn plugin(&self) -> Value {
        let mut config = kit::plugin_config();
        match self.callout {
            Callout::Jwks => {
                let issuer = config["issuers"][0]
                    .as_object_mut()
                    .expect("the test issuer");
                issuer.remove("jwks");
                issuer.insert("issuer".into(), json!(self.issuer()));
                issuer.insert(
                    "jwks_remote".into(),
                    json!({
                        "cluster": self.cluster_name(),
                        "path": "/.well-known/jwks.json",
                        "refresh_s": 1,
                        "timeout_ms": TIMEOUT_MS,
                        "min_refetch_interval_s": 1,
                        "max_stale_s": 3600,
                        "unavailable": {"status": 503, "retry_after_s": 7},
                    }),
                );
            }
            Callout::Model => {
                config["model"] = json!({
                    "http": {
                        "cluster": self.cluster_name(),
                        "path": MODEL_PATH,
                        "poll_s": 1,
                        "timeout_ms": TIMEOUT_MS,
                    },
                    "when_unavailable": "refuse",
                    "unavailable_retry_after_s": 9,
                    "trusted_keys": [kit::model_signing_public_key_b64(1)],
                });
            }
        }
        config
    }

    fn cluster(&self) -> Value {
        loopback_cluster(&self.cluster_name(), self.server.port())
    }

    /// A refusal no scenario expects: a JWKS without keys (`no_usable_keys`), an unsigned
    /// model (`rejected.unsigned`).
    fn idle(&self) {
        self.server.set_fault(match self.callout {
            Callout::Jwks => Fault::Body(br#"{"keys": []}"#.to_vec()),
            Callout::Model => Fault::Body(kit::new_country_model(0.0)),
        });
    }

    fn settle(&self) {
        // Best effort: a far end that is still busy shows up in the next checks anyway.
        let _ = self
            .server
            .wait_quiet(Duration::from_millis(TIMEOUT_MS + 4000));
        // Envoy's handling of the last answer, if any.
        std::thread::sleep(Duration::from_millis(200));
    }

    fn run(&self, envoy: &Envoy, laps: &mut Laps) {
        let (none, last) = match self.callout {
            Callout::Jwks => ("[no keys yet]", "[last good keys]"),
            Callout::Model => ("[no model yet]", "[last good model]"),
        };
        // 1. The fault before anything good was fetched.
        self.fault_phase(envoy, none, true);
        laps.lap("fault");
        // 2. The far end recovers: every worker gets the good answer.
        self.server.set_fault(Fault::Good);
        eventually_every_worker(
            envoy,
            "[recovery]",
            RECOVERY_WITHIN,
            &self.request(),
            &status_is(200),
        );
        laps.lap("recovery");
        // 3. The fault again, while the last good keys / model serve.
        self.fault_phase(envoy, last, false);
        laps.lap("fault again");
    }
}

#[test]
fn remote_jwks_faults_never_trap_and_every_worker_keeps_deciding() {
    run_all("jwks_remote", HttpScenario::all(Callout::Jwks), LANES);
}

#[test]
fn model_registry_faults_never_trap_and_every_worker_keeps_deciding() {
    run_all("model.http", HttpScenario::all(Callout::Model), LANES);
}

// ---------------------------------------------------------------------------------------
// The rate-limit service (gRPC over HTTP/2 cleartext)

enum RlsFault {
    /// Nothing listens on the cluster's port (the service starts there to recover).
    Refused,
    Behaving(Behaviour),
}

struct RlsScenario {
    name: String,
    fault: RlsFault,
    /// The failure kind obguard reports (`ratelimit.failure.<kind>`).
    kind: &'static str,
    timeout_ms: u64,
    port: u16,
    service: Mutex<Option<RateLimitService>>,
}

impl RlsScenario {
    fn all() -> Vec<Box<dyn Scenario>> {
        let cases = [
            ("refused", RlsFault::Refused, "unavailable", TIMEOUT_MS),
            // Envoy reports a reset stream as gRPC UNAVAILABLE.
            (
                "stream_reset",
                RlsFault::Behaving(Behaviour::Reset),
                "unavailable",
                TIMEOUT_MS,
            ),
            (
                "garbage_protobuf",
                RlsFault::Behaving(Behaviour::Garbage),
                "malformed",
                TIMEOUT_MS,
            ),
            (
                "grpc_unavailable_14",
                RlsFault::Behaving(Behaviour::Unavailable),
                "unavailable",
                TIMEOUT_MS,
            ),
            (
                "slow_past_timeout",
                RlsFault::Behaving(Behaviour::Delay(Duration::from_millis(2000))),
                "timeout",
                300,
            ),
        ];
        cases
            .into_iter()
            .map(|(name, fault, kind, timeout_ms)| {
                let (service, port) = match &fault {
                    RlsFault::Refused => (None, free_port()),
                    RlsFault::Behaving(_) => {
                        let service = RateLimitService::start(Vec::new());
                        let port = service.port();
                        (Some(service), port)
                    }
                };
                Box::new(RlsScenario {
                    name: format!("ratelimit/{name}"),
                    fault,
                    kind,
                    timeout_ms,
                    port,
                    service: Mutex::new(service),
                }) as Box<dyn Scenario>
            })
            .collect()
    }

    fn cluster_name(&self) -> String {
        self.name.replace('/', "-")
    }

    fn request(&self, request: RawRequest) -> RawRequest {
        let token = kit::token_for("ES256", Key::P256, "tpp-faults", "accounts payments");
        request
            .bearer(token)
            .header("x-fapi-interaction-id", INTERACTION_ID)
            .header(SCENARIO_HEADER, self.name.replace('/', "."))
    }

    fn service(&self) -> std::sync::MutexGuard<'_, Option<RateLimitService>> {
        self.service.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A port that was free a moment ago and has no listener now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("find a free port: {e}"))
}

/// A refusal after a failed check: the configured status with obguard's JSON body.
fn failed_closed(status: u16, error: &'static str) -> impl Fn(&Response) -> Result<(), String> {
    move |resp| {
        let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        if resp.status == status
            && body["error"] == error
            && body["interaction_id"] == INTERACTION_ID
            && resp.header("x-fapi-interaction-id") == Some(INTERACTION_ID)
        {
            Ok(())
        } else {
            Err(format!("expected obguard's {status} {error} (fail_closed)"))
        }
    }
}

impl Scenario for RlsScenario {
    fn name(&self) -> &str {
        &self.name
    }

    fn plugin(&self) -> Value {
        let mut config = kit::plugin_config();
        config["ratelimit"] = json!({
            "cluster": self.cluster_name(),
            "domain": "bank",
            "timeout_ms": self.timeout_ms,
            "descriptors": [{"entries": [{"key": "client", "from": "client_id"}]}],
            "routes": {
                "payments": {"failure_mode": "fail_closed"},
                "balances": {"failure_mode": "fail_closed", "failure_status": 429},
            },
        });
        config
    }

    fn cluster(&self) -> Value {
        grpc_cluster(&self.cluster_name(), self.port)
    }

    /// Answers OK (only this scenario's requests reach it anyway).
    fn idle(&self) {
        if let Some(service) = self.service().as_ref() {
            service.set_behaviour(Behaviour::Limit);
        }
    }

    fn run(&self, envoy: &Envoy, laps: &mut Laps) {
        let phase = "[service failing]";
        if let (RlsFault::Behaving(behaviour), Some(service)) = (&self.fault, &*self.service()) {
            service.set_behaviour(behaviour.clone());
        }
        let before = counters(envoy);
        let open = self.request(RawRequest::get("/accounts"));
        let closed_503 = self.request(RawRequest::post("/domestic-payments").json(&json!({})));
        let closed_429 = self.request(RawRequest::get("/accounts/acc-1/balances"));
        let warning = format!("rate-limit check failed ({}, grpc status", self.kind);
        let on_cluster = format!("on cluster {}", self.cluster_name());
        let warnings_before = count_lines(envoy, &[&warning, &on_cluster]);

        // The requests themselves deliver the fault: first all of them, then the checks.
        let results = [
            every_worker(envoy, &open, &status_is(200)),
            every_worker(
                envoy,
                &closed_503,
                &failed_closed(503, "temporarily_unavailable"),
            ),
            every_worker(envoy, &closed_429, &failed_closed(429, "rate_limited")),
        ];
        // (a) no trap.
        assert_no_trap(envoy, phase);
        // (b) every worker answered as configured: fail_open, fail_closed 503 and 429.
        for result in results {
            if let Err(why) = result {
                panic!("{phase}: {why}");
            }
        }
        // (c) counted and named.
        let n = SPREAD as u64;
        let failure = format!("ratelimit.failure.{}", self.kind);
        let names = [
            failure.as_str(),
            "ratelimit.failed_open",
            "ratelimit.failed_closed",
            "requests.ratelimit_failed",
        ];
        assert_eq!(
            moved(envoy, &before, &names),
            vec![3 * n, n, 2 * n, 2 * n],
            "{phase}: {names:?} moved by; obguard counters: {:?}",
            nonzero(envoy)
        );
        assert!(
            envoy.wait_log(&warning)
                && count_lines(envoy, &[&warning, &on_cluster]) > warnings_before,
            "{phase}: no new warning line containing {warning:?} and {on_cluster:?}"
        );
        laps.lap("fault");

        // The service recovers: every worker obeys its OK again.
        let phase = "[service back]";
        {
            let mut service = self.service();
            match service.as_ref() {
                Some(running) => running.set_behaviour(Behaviour::Limit),
                None => {
                    *service = Some(
                        // No limits, so nothing to count: memory will do.
                        RateLimitService::start_on(self.port, Vec::new(), Counters::InMemory)
                            .unwrap_or_else(|e| {
                                panic!("start the service on port {}: {e}", self.port)
                            }),
                    );
                }
            }
        }
        let before = counters(envoy);
        eventually_every_worker(envoy, phase, RECOVERY_WITHIN, &open, &status_is(200));
        let ok = moved(envoy, &before, &["ratelimit.ok"])[0];
        assert!(
            ok >= n,
            "{phase}: the service's OK was obeyed {ok} times for {n} requests"
        );
        assert_no_trap(envoy, phase);
        laps.lap("recovery");
    }
}

#[test]
fn ratelimit_service_faults_never_trap_and_every_worker_keeps_deciding() {
    run_all("ratelimit", RlsScenario::all(), 1);
}
