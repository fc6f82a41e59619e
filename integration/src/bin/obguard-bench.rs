//! `make bench`, macro level: one Envoy with one listener per variant (see
//! `obguard_integration::bench`), closed-loop throughput with wrk and open-loop latency at a
//! fixed rate with oha (latency correction on), interleaved rounds, every figure reported as a
//! ratio to bare Envoy measured in the same run. Writes `docs/benchmarks.md` (macro section)
//! and `docs/benchmarks.png`.
//!
//! Envoy runs with one worker pinned to CPU 0 and the load generator on CPU 1.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use obguard_integration::bench::{self, Variant};
use obguard_integration::measure::{machine, median, min_max, register_chart_font, rss_mb};
use obguard_integration::{
    Envoy, EnvoyOptions, RateLimitService, envoy_bin, noop_wasm_path, wasm_path, workspace_root,
};

#[derive(Parser)]
#[command(
    about = "Macro benchmark of obguard inside Envoy (throughput and latency ratios to bare Envoy)"
)]
struct Args {
    /// Interleaved rounds per variant
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds per wrk / oha run
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// wrk connections (one wrk thread)
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Open-loop request rate for the latency runs
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Only these variants (comma-separated names); bare is always included
    #[arg(long)]
    only: Option<String>,
    /// Markdown report to write
    #[arg(long, default_value = "docs/benchmarks.md")]
    out: PathBuf,
    /// Chart to write
    #[arg(long, default_value = "docs/benchmarks.png")]
    png: PathBuf,
    /// oha binary (open-loop latency); skipped when missing
    #[arg(long, default_value = ".tools/bin/oha")]
    oha: PathBuf,
    /// Distinct clients for the memory run (0: skip it)
    #[arg(long, default_value_t = 100_000)]
    rss_clients: usize,
    /// Seconds of load in the memory run (enough to reach every client once)
    #[arg(long, default_value_t = 30)]
    rss_seconds: u64,
}

#[derive(Default, Clone)]
struct Samples {
    rps: Vec<f64>,
    ratio: Vec<f64>,
    p50_us: Vec<f64>,
    p99_us: Vec<f64>,
}

fn main() {
    let args = Args::parse();
    let root = workspace_root();
    let obguard = wasm_path().to_string_lossy().into_owned();
    let noop = noop_wasm_path().to_string_lossy().into_owned();
    let mut variants = bench::variants(&obguard, &noop);
    if let Some(only) = &args.only {
        let keep: Vec<&str> = only.split(',').map(str::trim).collect();
        variants.retain(|v| v.name == "bare" || keep.contains(&v.name));
    }
    let tokens: HashMap<&str, Option<String>> = variants
        .iter()
        .map(|v| (v.name, bench::token(v.token)))
        .collect();

    // The rate-limit service answers OK to everything, in this process (it shares CPU 1 with
    // the load generator).
    let rls = bench::needs_ratelimit(&variants).then(|| RateLimitService::start(Vec::new()));
    let envoy = Envoy::start(EnvoyOptions {
        bootstrap_override: Some(bench::bootstrap(&variants, rls.as_ref().map(|r| r.port()))),
        component_log_level: None,
        ..EnvoyOptions::new(0)
    });
    let pinned = pin_envoy(&envoy);
    let ports = envoy.listener_ports();
    let started = Instant::now();

    eprintln!("warming up {} variants", variants.len());
    for v in &variants {
        let _ = wrk(
            ports[v.name],
            tokens[v.name].as_deref(),
            1,
            args.connections,
        );
    }

    let mut closed: HashMap<&str, Samples> = HashMap::new();
    for round in 0..args.rounds {
        // Rotate the order so no variant always runs first or last.
        let mut order: Vec<&Variant> = variants.iter().collect();
        order.rotate_left(round % variants.len().max(1));
        let mut bare_rps = None;
        let mut round_rps = HashMap::new();
        for v in order {
            let result = wrk(
                ports[v.name],
                tokens[v.name].as_deref(),
                args.duration,
                args.connections,
            );
            eprintln!(
                "round {}: {:<34} {:>9.0} rps  p50 {:>7.0} us  p99 {:>7.0} us",
                round + 1,
                v.name,
                result.rps,
                result.p50_us,
                result.p99_us
            );
            if v.name == "bare" {
                bare_rps = Some(result.rps);
            }
            round_rps.insert(v.name, result);
        }
        let bare = bare_rps.unwrap_or(f64::NAN);
        for (name, r) in round_rps {
            let s = closed.entry(name).or_default();
            s.rps.push(r.rps);
            s.ratio.push(r.rps / bare);
            s.p50_us.push(r.p50_us);
            s.p99_us.push(r.p99_us);
        }
    }

    let oha = root.join(&args.oha);
    let mut open: HashMap<&str, Samples> = HashMap::new();
    let open_variants = OPEN_LOOP_VARIANTS;
    if oha.exists() {
        for round in 0..args.rounds {
            for name in open_variants {
                if !ports.contains_key(name) {
                    continue;
                }
                match oha_run(
                    &oha,
                    ports[name],
                    tokens[name].as_deref(),
                    args.duration,
                    args.rate,
                ) {
                    Some((p50, p99)) => {
                        eprintln!(
                            "open loop {} round {}: {name:<14} p50 {p50:>7.0} us  p99 {p99:>7.0} us",
                            args.rate,
                            round + 1
                        );
                        let s = open.entry(name).or_default();
                        s.p50_us.push(p50);
                        s.p99_us.push(p99);
                    }
                    None => eprintln!("oha failed for {name}"),
                }
            }
        }
    } else {
        eprintln!(
            "{} not found: skipping open-loop latency (make bench installs it)",
            oha.display()
        );
    }
    let rss_mb = envoy.pid().and_then(rss_mb);
    drop(envoy);
    drop(rls);
    let memory = if args.rss_clients > 0 {
        memory_run(&variants, args.rss_clients, args.rss_seconds)
    } else {
        None
    };
    let elapsed = started.elapsed().as_secs();

    let report = render(
        &args,
        &variants,
        &closed,
        &open,
        pinned,
        rss_mb,
        memory.as_ref(),
        elapsed,
    );
    let out = root.join(&args.out);
    if let Err(err) = std::fs::write(&out, report) {
        eprintln!("cannot write {}: {err}", out.display());
        std::process::exit(1);
    }
    eprintln!("wrote {}", out.display());
    match chart(&root.join(&args.png), &variants, &closed) {
        Ok(()) => eprintln!("wrote {}", root.join(&args.png).display()),
        Err(err) => eprintln!("chart skipped: {err}"),
    }
}

/// Pins every Envoy thread to CPU 0 (wrk and oha run on CPU 1).
fn pin_envoy(envoy: &Envoy) -> bool {
    let Some(pid) = envoy.pid() else { return false };
    Command::new("taskset")
        .args(["-a", "-p", "-c", "0", &pid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success())
}

struct WrkResult {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

fn wrk(port: u16, token: Option<&str>, seconds: u64, connections: u32) -> WrkResult {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1", "wrk", "-t1", "--latency"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"));
    if let Some(token) = token {
        cmd.args(["-H", &format!("authorization: Bearer {token}")]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}/accounts"));
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run wrk (apt-get install wrk): {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") {
        panic!("wrk saw non-2xx answers on port {port}:\n{text}");
    }
    let mut result = WrkResult {
        rps: f64::NAN,
        p50_us: f64::NAN,
        p99_us: f64::NAN,
    };
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["Requests/sec:", value] => result.rps = value.parse().unwrap_or(f64::NAN),
            ["50%", value] => result.p50_us = duration_us(value),
            ["99%", value] => result.p99_us = duration_us(value),
            _ => {}
        }
    }
    result
}

fn duration_us(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => value,
        "ms" => value * 1e3,
        "s" => value * 1e6,
        _ => f64::NAN,
    }
}

/// Open loop at `rate` req/s with latency correction; returns (p50, p99) in microseconds.
fn oha_run(
    oha: &Path,
    port: u16,
    token: Option<&str>,
    seconds: u64,
    rate: u32,
) -> Option<(f64, f64)> {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1"]).arg(oha).args([
        "--no-tui",
        "--output-format",
        "json",
        "--latency-correction",
        "-z",
        &format!("{seconds}s"),
        "-q",
        &rate.to_string(),
        "-c",
        "16",
    ]);
    if let Some(token) = token {
        cmd.args(["-H", &format!("authorization: Bearer {token}")]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}/accounts"));
    let out = cmd.output().ok()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let pct = &json["latencyPercentiles"];
    Some((pct["p50"].as_f64()? * 1e6, pct["p99"].as_f64()? * 1e6))
}

/// Variants measured open loop (latency at a fixed rate).
const OPEN_LOOP_VARIANTS: [&str; 4] = ["bare", "noop_wasm", "obguard_warm", "obguard_warm_model"];

/// Envoy's memory with `clients` distinct clients tracked by the model stage.
struct Memory {
    clients: usize,
    requests: u64,
    bare_mb: f64,
    noop_mb: f64,
    loaded_mb: f64,
    after_mb: f64,
    stored: u64,
    slot_taken: u64,
}

/// RSS of an Envoy with only the bare listener, then of an Envoy with only
/// `obguard_warm_model` (`max_clients` 400 000: 4x the clients) before and after wrk cycles through
/// `clients` tokens with distinct client ids (ES256, so the first pass verifies each one).
fn memory_run(variants: &[Variant], clients: usize, seconds: u64) -> Option<Memory> {
    let only = |name: &str| -> Vec<Variant> {
        variants
            .iter()
            .filter(|v| v.name == name)
            .cloned()
            .collect()
    };
    let start = |set: &[Variant]| {
        let envoy = Envoy::start(EnvoyOptions {
            bootstrap_override: Some(bench::bootstrap(set, None)),
            component_log_level: None,
            ..EnvoyOptions::new(0)
        });
        pin_envoy(&envoy);
        envoy
    };
    let model = only("obguard_warm_model");
    if model.is_empty() || only("noop_wasm").is_empty() {
        return None;
    }
    let bare = start(&only("bare"));
    let _ = wrk(bare.listener_ports()["bare"], None, 1, 16);
    let bare_mb = bare.pid().and_then(rss_mb)?;
    drop(bare);
    let noop = start(&only("noop_wasm"));
    let _ = wrk(noop.listener_ports()["noop_wasm"], None, 1, 16);
    let noop_mb = noop.pid().and_then(rss_mb)?;
    drop(noop);

    eprintln!("memory run: minting {clients} ES256 tokens with distinct client ids");
    let dir = tempfile::tempdir().ok()?;
    let tokens_path = dir.path().join("tokens.txt");
    let mut tokens = String::with_capacity(clients * 700);
    let claims = bench::bench_claims();
    for i in 0..clients {
        let mut c = claims.clone();
        c["client_id"] = serde_json::json!(format!("tpp-mem-{i}"));
        c["sub"] = serde_json::json!(format!("psu-mem-{i}"));
        tokens.push_str(&obguard_testkit::token(
            "ES256",
            obguard_testkit::Key::P256,
            &c,
        ));
        tokens.push('\n');
    }
    std::fs::write(&tokens_path, tokens).ok()?;
    let script = dir.path().join("tokens.lua");
    std::fs::write(&script, WRK_TOKENS_LUA).ok()?;

    let envoy = start(&model);
    let port = envoy.listener_ports()["obguard_warm_model"];
    let _ = wrk(
        port,
        bench::token(bench::TokenKind::Rs256).as_deref(),
        1,
        16,
    );
    let loaded_mb = envoy.pid().and_then(rss_mb)?;
    let out = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1", "-c16"])
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/accounts"))
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
        requests,
        bare_mb,
        noop_mb,
        loaded_mb,
        after_mb,
        stored,
        slot_taken,
    })
}

/// wrk script: each request carries the next token of the file `$OBGUARD_TOKENS`.
const WRK_TOKENS_LUA: &str = r#"
local tokens = {}
for line in io.lines(os.getenv("OBGUARD_TOKENS")) do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", "/accounts", {["authorization"] = "Bearer " .. tokens[i]})
end
"#;

fn tool_version(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_else(|_| "not found".into())
}

#[allow(clippy::too_many_arguments)]
fn render(
    args: &Args,
    variants: &[Variant],
    closed: &HashMap<&str, Samples>,
    open: &HashMap<&str, Samples>,
    pinned: bool,
    rss_mb: Option<f64>,
    memory: Option<&Memory>,
    elapsed: u64,
) -> String {
    let mut md = String::new();
    let envoy_version = tool_version(&envoy_bin().to_string_lossy(), &["--version"]);
    let wasm_size = std::fs::metadata(wasm_path()).map_or(0, |m| m.len());
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `make bench` on {date}. Do not edit by hand; rerun it.\n"
    );
    let _ = writeln!(md, "- Machine: {}", machine());
    let _ = writeln!(
        md,
        "- Envoy: `{envoy_version}`, one worker (`--concurrency 1`){}",
        if pinned {
            ", pinned to CPU 0; load generator on CPU 1"
        } else {
            " (pinning failed: figures noisier)"
        }
    );
    let _ = writeln!(
        md,
        "- Load: `taskset -c 1 wrk -t1 -c{} -d{}s --latency` per run, {} rounds interleaved (variant order rotated each round), GET /accounts",
        args.connections, args.duration, args.rounds
    );
    let _ = writeln!(
        md,
        "- `obguard.wasm`: {} bytes ({:.2} MB)",
        wasm_size,
        wasm_size as f64 / 1e6
    );
    if let Some(rss) = rss_mb {
        let _ = writeln!(
            md,
            "- Envoy RSS at the end of the run (all variants loaded): {rss:.0} MB"
        );
    }
    let _ = writeln!(md, "- Run time: {elapsed} s\n");
    let _ = writeln!(
        md,
        "Every listener answers with a `direct_response`: no upstream is measured, the HTTP filters run. Ratios are per round (variant rps / bare rps in the same round); the table gives their median and min–max.\n"
    );
    let _ = writeln!(md, "## Throughput (closed loop)\n");
    let _ = writeln!(
        md,
        "| variant | rps median (min–max) | ratio to bare median (min–max) | p50 µs | p99 µs |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
    for v in variants {
        let Some(s) = closed.get(v.name) else {
            continue;
        };
        let (lo, hi) = min_max(&s.rps);
        let (rlo, rhi) = min_max(&s.ratio);
        let _ = writeln!(
            md,
            "| `{}` | {:.0} ({:.0}–{:.0}) | **{:.3}** ({:.3}–{:.3}) | {:.0} | {:.0} |",
            v.name,
            median(&s.rps),
            lo,
            hi,
            median(&s.ratio),
            rlo,
            rhi,
            median(&s.p50_us),
            median(&s.p99_us)
        );
    }
    let _ = writeln!(md, "\nVariants:\n");
    for v in variants {
        let _ = writeln!(md, "- `{}`: {}", v.name, v.description);
    }
    if !open.is_empty() {
        let _ = writeln!(
            md,
            "\n## Latency (open loop, {} req/s, oha with latency correction)\n",
            args.rate
        );
        let _ = writeln!(
            md,
            "| variant | p50 µs median | p99 µs median (min–max) | added p99 vs bare µs |"
        );
        let _ = writeln!(md, "|---|---|---|---|");
        let bare_p99 = open.get("bare").map_or(f64::NAN, |s| median(&s.p99_us));
        for name in OPEN_LOOP_VARIANTS {
            let Some(s) = open.get(name) else { continue };
            let (lo, hi) = min_max(&s.p99_us);
            let _ = writeln!(
                md,
                "| `{name}` | {:.0} | {:.0} ({:.0}–{:.0}) | {:.0} |",
                median(&s.p50_us),
                median(&s.p99_us),
                lo,
                hi,
                median(&s.p99_us) - bare_p99
            );
        }
        let _ = writeln!(
            md,
            "\nCommand per run: `taskset -c 1 oha --no-tui --output-format json --latency-correction -z {}s -q {} -c 16 [-H 'authorization: Bearer …'] http://127.0.0.1:<port>/accounts`",
            args.duration, args.rate
        );
    }
    if let Some(m) = memory {
        let _ = writeln!(md, "\n## Memory with {} tracked clients\n", m.clients);
        let _ = writeln!(
            md,
            "Envoy RSS (one worker), bare listener only vs obguard with the shipped model (`max_clients` 400 000, 4× the clients) before and after `taskset -c 1 wrk -t1 -c16 -d{}s -s tokens.lua` cycled through {} ES256 tokens with distinct client ids ({} requests; baseline writes: {} stored, {} slot taken).\n",
            args.rss_seconds, m.clients, m.requests, m.stored, m.slot_taken
        );
        let _ = writeln!(md, "| Envoy | RSS MB |");
        let _ = writeln!(md, "|---|---|");
        let _ = writeln!(md, "| bare | {:.0} |", m.bare_mb);
        let _ = writeln!(
            md,
            "| no-op wasm filter (V8 and a plugin instance per thread) | {:.0} |",
            m.noop_mb
        );
        let _ = writeln!(md, "| obguard + model, loaded | {:.0} |", m.loaded_mb);
        let _ = writeln!(
            md,
            "| obguard + model, after {} clients | {:.0} (bare + {:.0}) |",
            m.clients,
            m.after_mb,
            m.after_mb - m.bare_mb
        );
    }
    let micro = criterion_rows(&workspace_root().join("target/criterion"));
    if !micro.is_empty() {
        let _ = writeln!(md, "\n## Micro-benchmarks (criterion, native, this run)\n");
        let _ = writeln!(
            md,
            "`cargo bench -p obguard --bench core` — the core decisions without Envoy or the wasm VM (inside V8 expect a small constant factor more).\n"
        );
        let _ = writeln!(md, "| benchmark | median | 95% CI |");
        let _ = writeln!(md, "|---|---|---|");
        for (name, median, lo, hi) in micro {
            let _ = writeln!(
                md,
                "| {name} | {} | {} – {} |",
                human_ns(median),
                human_ns(lo),
                human_ns(hi)
            );
        }
    }
    let _ = writeln!(
        md,
        "\n## Reproduce\n\n```sh\nmake bench            # builds, installs wrk/oha if missing, runs this and the criterion benches\n```\n\nThe exact invocation was: `target/release/obguard-bench --rounds {} --duration {} --connections {} --rate {}`.",
        args.rounds, args.duration, args.connections, args.rate
    );
    md
}

fn chart(path: &Path, variants: &[Variant], closed: &HashMap<&str, Samples>) -> Result<(), String> {
    use plotters::prelude::*;
    register_chart_font()?;
    let rows: Vec<(&str, f64, f64, f64)> = variants
        .iter()
        .filter_map(|v| {
            let s = closed.get(v.name)?;
            let (lo, hi) = min_max(&s.ratio);
            Some((v.name, median(&s.ratio), lo, hi))
        })
        .collect();
    let x_max = rows.iter().map(|r| r.3).fold(1.0f64, f64::max) + 0.15;
    let root = BitMapBackend::new(path, (1100, 60 + 44 * rows.len() as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput relative to bare Envoy (median, min–max whiskers)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(280)
        .build_cartesian_2d(0.0..x_max, (0..rows.len()).into_segmented())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows.len())
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(i) => rows.get(*i).map_or(String::new(), |r| r.0.to_owned()),
            _ => String::new(),
        })
        .x_desc("ratio to bare Envoy rps")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, med, lo, hi)) in rows.iter().enumerate() {
        let color = if name.starts_with("obguard") || name.contains("obguard") {
            RGBColor(31, 119, 180)
        } else {
            RGBColor(150, 150, 150)
        };
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (*med, SegmentValue::Exact(i + 1)),
            ],
            color.mix(0.8).filled(),
        );
        bar.set_margin(7, 7, 0, 0);
        chart
            .draw_series(std::iter::once(bar))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![
                    (*lo, SegmentValue::CenterOf(i)),
                    (*hi, SegmentValue::CenterOf(i)),
                ],
                BLACK.stroke_width(2),
            )))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{med:.2}"),
                (med + 0.01, SegmentValue::CenterOf(i)),
                ("sans-serif", 14),
            )))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

/// `(benchmark, median ns, CI low, CI high)` from criterion's saved estimates.
fn criterion_rows(dir: &Path) -> Vec<(String, f64, f64, f64)> {
    let mut rows = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "new") {
                    let read = |f: &str| {
                        std::fs::read(p.join(f))
                            .ok()
                            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    };
                    if let (Some(bench), Some(est)) =
                        (read("benchmark.json"), read("estimates.json"))
                    {
                        let m = &est["median"];
                        rows.push((
                            bench["full_id"].as_str().unwrap_or("?").to_owned(),
                            m["point_estimate"].as_f64().unwrap_or(f64::NAN),
                            m["confidence_interval"]["lower_bound"]
                                .as_f64()
                                .unwrap_or(f64::NAN),
                            m["confidence_interval"]["upper_bound"]
                                .as_f64()
                                .unwrap_or(f64::NAN),
                        ));
                    }
                } else {
                    stack.push(p);
                }
            }
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

fn human_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
