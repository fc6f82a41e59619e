//! Running the load: which CPU each process gets, the wrk and oha command lines (built from
//! [`super::request`] only), the check that every listener is sent the same bytes, and the
//! interleaved rounds.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::request::{self, TokenKind, Tokens};
use super::variants::{RateLimitCalls, Variant};
use super::{OpenLoop, Options, Round, Throughput};
use crate::{Envoy, RateLimitService};

/// Where the processes run. Envoy (one worker) gets a CPU of its own; the load generator
/// another; the rate-limit service (a thread of the bench process) a third when the machine
/// has one, else it shares the load generator's.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub cpus: usize,
    pub envoy_cpu: usize,
    pub load_cpu: usize,
    pub rls_cpu: usize,
}

impl Placement {
    pub fn for_this_machine() -> Placement {
        // SAFETY: sysconf has no preconditions.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        let cpus = usize::try_from(online).unwrap_or(1);
        let (envoy_cpu, load_cpu, rls_cpu) = match cpus {
            0 | 1 => (0, 0, 0),
            2 => (0, 1, 1),
            _ => (0, 1, 2),
        };
        Placement {
            cpus,
            envoy_cpu,
            load_cpu,
            rls_cpu,
        }
    }

    /// One sentence for the report.
    pub fn describe(&self) -> String {
        let rls = if self.rls_cpu == self.load_cpu {
            format!(
                "the rate-limit service (a thread of the bench process) shares CPU {} with the load generator ({} CPUs: none left for it alone)",
                self.rls_cpu, self.cpus
            )
        } else {
            format!(
                "the rate-limit service (a thread of the bench process) on CPU {} alone",
                self.rls_cpu
            )
        };
        format!(
            "Envoy pinned to CPU {}; load generator on CPU {}; {rls}",
            self.envoy_cpu, self.load_cpu
        )
    }

    /// Pins the calling thread — at the start of `main`, so every thread the process starts
    /// later (the rate-limit service's among them) — to the rate-limit service's CPU.
    pub fn pin_this_process(&self) -> bool {
        // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(self.rls_cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        }
    }

    /// Pins every Envoy thread to Envoy's CPU.
    pub fn pin_envoy(&self, envoy: &Envoy) -> bool {
        let Some(pid) = envoy.pid() else { return false };
        Command::new("taskset")
            .args([
                "-a",
                "-p",
                "-c",
                &self.envoy_cpu.to_string(),
                &pid.to_string(),
            ])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn on_load_cpu(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", &self.load_cpu.to_string()]).arg(program);
        cmd
    }
}

/// The load generators, where they run, and the request they send.
pub struct Load {
    pub placement: Placement,
    pub connections: u32,
    /// The oha binary, when installed.
    pub oha: Option<PathBuf>,
    pub tokens: Tokens,
    /// wrk scripts sending the request with each token (see [`request::wrk_script`]).
    scripts: tempfile::TempDir,
}

impl Load {
    pub fn new(
        placement: Placement,
        connections: u32,
        oha: Option<PathBuf>,
        tokens: Tokens,
    ) -> std::io::Result<Load> {
        let scripts = tempfile::tempdir()?;
        for kind in [TokenKind::Rs256, TokenKind::Es256] {
            std::fs::write(
                scripts.path().join(script_name(kind)),
                request::wrk_script(tokens.get(kind)),
            )?;
        }
        Ok(Load {
            placement,
            connections,
            oha,
            tokens,
            scripts,
        })
    }

    /// `wrk -t1 -c<connections> -d<seconds>s --latency -s <script>`.
    pub fn wrk_with_script(&self, port: u16, script: &Path, seconds: u64) -> Command {
        let mut cmd = self.placement.on_load_cpu("wrk");
        cmd.args(["-t1", "--latency"])
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{seconds}s"))
            .arg("-s")
            .arg(script)
            .arg(url(port));
        cmd
    }

    /// wrk sending the benchmark's request with `token`.
    pub fn wrk_command(&self, port: u16, token: TokenKind, seconds: u64) -> Command {
        self.wrk_with_script(port, &self.scripts.path().join(script_name(token)), seconds)
    }

    /// Closed loop for `seconds`; panics on non-2xx answers (a variant refusing the request
    /// would measure its refusal).
    pub fn wrk(&self, port: u16, token: TokenKind, seconds: u64) -> Throughput {
        let out = self
            .wrk_command(port, token, seconds)
            .output()
            .unwrap_or_else(|e| panic!("run wrk (apt-get install wrk): {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("Non-2xx") || !out.status.success() {
            panic!(
                "wrk failed or saw non-2xx answers on port {port}:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        parse_wrk(&text)
    }

    /// oha's open loop at `rate` req/s with latency correction, with the request's headers.
    pub fn oha_command(
        &self,
        oha: &Path,
        port: u16,
        token: TokenKind,
        seconds: u64,
        rate: u32,
    ) -> Command {
        let mut cmd = self.placement.on_load_cpu(oha);
        cmd.args([
            "--no-tui",
            "--output-format",
            "json",
            "--latency-correction",
        ])
        .args(["-z", &format!("{seconds}s"), "-q", &rate.to_string()])
        .args(["-c", "16"])
        .args(request::oha_header_args(self.tokens.get(token)))
        .arg(url(port));
        cmd
    }

    /// `(p50, p99)` in microseconds of an open-loop run; `None` when oha is missing or failed.
    pub fn oha(&self, port: u16, token: TokenKind, seconds: u64, rate: u32) -> Option<(f64, f64)> {
        let oha = self.oha.as_deref()?;
        let out = self
            .oha_command(oha, port, token, seconds, rate)
            .output()
            .ok()?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let pct = &json["latencyPercentiles"];
        Some((pct["p50"].as_f64()? * 1e6, pct["p99"].as_f64()? * 1e6))
    }

    /// Runs wrk (and oha, when installed) for a second against a local server that records
    /// the first request's bytes, once with each token, and checks the rule that every
    /// listener gets the same request: the command lines differ only in the port (not in the
    /// bytes: `Host` is fixed) and the token. Panics when wrk's requests break the rule; oha's
    /// are compared with wrk's and reported.
    pub fn check_same_request(&self) -> Vec<String> {
        let wrk = |token| {
            capture(|port| self.wrk_command(port, token, 1))
                .unwrap_or_else(|e| panic!("capture wrk's request: {e}"))
        };
        let (rs, es) = (&self.tokens.rs256, &self.tokens.es256);
        let (wrk_rs, wrk_rs_again) = (wrk(TokenKind::Rs256), wrk(TokenKind::Rs256));
        let wrk_es = wrk(TokenKind::Es256);
        let expected = request::bytes(rs);
        if wrk_rs != expected || wrk_rs_again != expected {
            panic!(
                "wrk does not send the request as defined:\n{}\nagainst\n{}",
                String::from_utf8_lossy(&wrk_rs),
                String::from_utf8_lossy(&expected)
            );
        }
        let mut lines = vec![format!(
            "wrk sends exactly the bytes of `bench/request.rs` ({} bytes), the same from one wrk process (listener) to the next; the listeners' commands differ only in the port",
            wrk_rs.len()
        )];
        match request::same_apart_from_token(&wrk_rs, &wrk_es, (rs, es)) {
            Ok(line) => lines.push(format!("wrk, the ES256 listeners: {line}")),
            Err(e) => panic!("wrk's ES256 request is not the RS256 one with another token: {e}"),
        }
        if let Some(oha) = &self.oha {
            let oha = |token| capture(|port| self.oha_command(oha, port, token, 1, 50));
            let line = match (oha(TokenKind::Rs256), oha(TokenKind::Es256)) {
                (Ok(oha_rs), Ok(oha_es)) => {
                    let across = request::same_apart_from_token(&oha_rs, &oha_es, (rs, es))
                        .unwrap_or_else(|e| format!("NOT the same: {e}"));
                    let vs_wrk = if oha_rs == wrk_rs {
                        "the same bytes as wrk's".to_owned()
                    } else if same_header_set(&oha_rs, &wrk_rs) {
                        "the same request line and headers as wrk's in another order or case"
                            .to_owned()
                    } else {
                        format!(
                            "NOT the same headers as wrk's: {}",
                            String::from_utf8_lossy(&oha_rs)
                                .replace(rs.as_str(), "<token>")
                                .trim()
                                .replace("\r\n", " | ")
                        )
                    };
                    format!("oha, the ES256 listeners against the others: {across}; {vs_wrk}")
                }
                (Err(e), _) | (_, Err(e)) => format!("oha: capture failed: {e}"),
            };
            lines.push(line);
        }
        lines
    }
}

fn script_name(token: TokenKind) -> &'static str {
    match token {
        TokenKind::Rs256 => "rs256.lua",
        TokenKind::Es256 => "es256.lua",
    }
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}{}", request::PATH)
}

/// Whether two requests have the same request line and the same headers (names compared
/// without case, in any order).
fn same_header_set(a: &[u8], b: &[u8]) -> bool {
    let parse = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let mut lines: Vec<String> = text
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .enumerate()
            .map(|(i, l)| match (i, l.split_once(':')) {
                (0, _) | (_, None) => l.to_owned(),
                (_, Some((n, v))) => format!("{}:{}", n.to_ascii_lowercase(), v.trim()),
            })
            .collect();
        lines.sort();
        lines
    };
    parse(a) == parse(b)
}

/// The first request `command(port)` sends to a local server on `port` (which answers every
/// request on the connection with `200 ok`).
fn capture(command: impl FnOnce(u16) -> Command) -> Result<Vec<u8>, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut pending = Vec::new();
                let mut buf = [0u8; 8192];
                let mut first = true;
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    pending.extend_from_slice(buf.get(..n).unwrap_or_default());
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let request: Vec<u8> = pending.drain(..end + 4).collect();
                        if first {
                            let _ = tx.send(request);
                            first = false;
                        }
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(reply).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    let out = command(port).output().map_err(|e| e.to_string())?;
    rx.recv_timeout(Duration::from_secs(5)).map_err(|_| {
        format!(
            "no request arrived ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })
}

fn parse_wrk(text: &str) -> Throughput {
    let mut result = Throughput {
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

/// A second of load on every listener; checks that the variants calling the rate-limit service
/// really did (Envoy's ratelimit filter silently skips routes it has no limits for).
pub fn warm_up(
    load: &Load,
    variants: &[Variant],
    ports: &HashMap<&'static str, u16>,
    rls: Option<&RateLimitService>,
) {
    eprintln!("warming up {} variants", variants.len());
    for v in variants {
        let before = rls.map_or(0, RateLimitService::received_count);
        let _ = load.wrk(ports[v.name], v.token, 1);
        let after = rls.map_or(0, RateLimitService::received_count);
        if v.ratelimit == RateLimitCalls::EveryRequest && after == before {
            panic!("{}: the rate-limit service was not called", v.name);
        }
    }
}

/// `opts.rounds` rounds of wrk on every variant, the order rotated each round so no variant
/// always runs first or last.
pub fn closed_loop(
    load: &Load,
    variants: &[Variant],
    ports: &HashMap<&'static str, u16>,
    opts: &Options,
) -> Vec<Round> {
    (0..opts.rounds)
        .map(|round| {
            let mut order: Vec<&Variant> = variants.iter().collect();
            order.rotate_left(round % variants.len().max(1));
            order
                .into_iter()
                .map(|v| {
                    let r = load.wrk(ports[v.name], v.token, opts.duration);
                    eprintln!(
                        "round {}: {:<34} {:>9.0} rps  p50 {:>7.0} us  p99 {:>7.0} us",
                        round + 1,
                        v.name,
                        r.rps,
                        r.p50_us,
                        r.p99_us
                    );
                    (v.name, r)
                })
                .collect()
        })
        .collect()
}

/// Variants measured open loop (latency at a fixed rate).
pub const OPEN_LOOP_VARIANTS: [&str; 5] = [
    "bare",
    "noop_wasm",
    super::variants::FLOOR,
    "obguard_warm",
    "obguard_warm_model",
];

/// `opts.rounds` rounds of oha at `opts.rate` on [`OPEN_LOOP_VARIANTS`].
pub fn open_loop(
    load: &Load,
    variants: &[Variant],
    ports: &HashMap<&'static str, u16>,
    opts: &Options,
) -> OpenLoop {
    let mut open = OpenLoop::new();
    for round in 0..opts.rounds {
        for v in variants
            .iter()
            .filter(|v| OPEN_LOOP_VARIANTS.contains(&v.name))
        {
            match load.oha(ports[v.name], v.token, opts.duration, opts.rate) {
                Some((p50, p99)) => {
                    eprintln!(
                        "open loop {} round {}: {:<14} p50 {p50:>7.0} us  p99 {p99:>7.0} us",
                        opts.rate,
                        round + 1,
                        v.name
                    );
                    open.entry(v.name).or_default().push((p50, p99));
                }
                None => eprintln!("oha failed for {}", v.name),
            }
        }
    }
    open
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_parsed() {
        let text = "  Latency Distribution\n     50%  302.00us\n     99%    1.38ms\nRequests/sec:  48859.12\n";
        let r = parse_wrk(text);
        assert_eq!(r.rps, 48859.12);
        assert_eq!(r.p50_us, 302.0);
        assert_eq!(r.p99_us, 1380.0);
    }

    #[test]
    fn header_sets_compare_without_case_or_order() {
        let a = b"GET /a HTTP/1.1\r\nHost: x\r\nuser-agent: u\r\n\r\n";
        let b = b"GET /a HTTP/1.1\r\nuser-agent: u\r\nhost: x\r\n\r\n";
        let c = b"GET /a HTTP/1.1\r\nuser-agent: u\r\nhost: x\r\naccept: */*\r\n\r\n";
        assert!(same_header_set(a, b));
        assert!(!same_header_set(a, c));
    }

    #[test]
    fn placement_gives_envoy_a_cpu_of_its_own() {
        let p = Placement::for_this_machine();
        if p.cpus >= 2 {
            assert_ne!(p.envoy_cpu, p.load_cpu);
            assert_ne!(p.envoy_cpu, p.rls_cpu);
        }
        assert!(p.describe().contains("CPU"));
    }
}
