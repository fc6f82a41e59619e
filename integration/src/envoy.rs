//! Running one Envoy process per test.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{Connection, RawRequest, Response, try_send};
use crate::spawn::{signal, spawn_tied};

/// How often Envoy flushes the access log file (`--file-flush-interval-msec`).
const FILE_FLUSH_MS: u64 = 50;

/// How to configure an [`Envoy`]. Build with [`EnvoyOptions::new`] and the builder methods, or
/// struct-update syntax: `EnvoyOptions { plugin_config: Some(cfg), ..EnvoyOptions::new(port) }`.
#[derive(Clone, Debug)]
pub struct EnvoyOptions {
    /// The obguard plugin configuration. `Some` inserts the wasm filter (before the router),
    /// with this JSON serialised into a `google.protobuf.StringValue`; `None` runs Envoy without
    /// obguard.
    pub plugin_config: Option<Value>,
    /// Path normalisation in the HTTP connection manager (default true): `normalize_path`,
    /// `merge_slashes`, escaped slashes rejected with 400. False: everything kept unchanged.
    /// See [`crate::bootstrap`].
    pub normalize_paths: bool,
    /// Port of the upstream on 127.0.0.1 (cluster `upstream`).
    pub upstream_port: u16,
    /// The wasm module to load instead of [`crate::wasm_path`] (e.g. a broken one).
    pub wasm: Option<PathBuf>,
    /// HTTP filters inserted before obguard (e.g. `envoy.filters.http.jwt_authn`).
    pub extra_http_filters: Vec<Value>,
    /// Extra static clusters (e.g. a JWKS server or a rate-limit service on loopback).
    pub extra_clusters: Vec<Value>,
    /// Extra listeners next to `obguard_listener` (e.g. Envoy serving model files).
    pub extra_listeners: Vec<Value>,
    /// Fields merged into the HTTP connection manager config (a JSON object, or `Null` for
    /// none), e.g. `{"use_remote_address": true}`.
    pub hcm_overrides: Value,
    /// Last-chance edit of the generated bootstrap.
    pub customize: Option<fn(&mut Value)>,
    /// `--component-log-level` (default `wasm:debug`, so the filter's `log::debug!` shows up
    /// in [`Envoy::log`]).
    pub component_log_level: Option<String>,
    /// Worker threads (`--concurrency`, default 1).
    pub concurrency: u32,
    /// `connection_balance_config: exact_balance` on the listener (default false): each new
    /// connection goes to the worker with the fewest open connections, so connections held
    /// open together are spread evenly over the workers (see [`Envoy::send_spread`]).
    pub exact_balance: bool,
    /// How long [`Envoy::try_start`] waits for readiness (default 30 s).
    pub ready_timeout: Duration,
    /// A complete bootstrap used verbatim instead of the generated one (e.g. the benchmark's
    /// one-listener-per-variant Envoy). Listeners should bind `127.0.0.1:0`; find their ports
    /// with [`Envoy::listener_ports`].
    pub bootstrap_override: Option<Value>,
    /// A downstream `transport_socket` for `obguard_listener` (e.g. TLS requiring client
    /// certificates, [`crate::TestPki::downstream_transport_socket`]).
    pub downstream_tls: Option<Value>,
}

impl EnvoyOptions {
    /// Defaults: no plugin, paths normalised, upstream at `127.0.0.1:upstream_port`.
    pub fn new(upstream_port: u16) -> Self {
        Self {
            plugin_config: None,
            normalize_paths: true,
            upstream_port,
            wasm: None,
            extra_http_filters: Vec::new(),
            extra_clusters: Vec::new(),
            extra_listeners: Vec::new(),
            hcm_overrides: Value::Null,
            customize: None,
            component_log_level: Some("wasm:debug".into()),
            concurrency: 1,
            exact_balance: false,
            ready_timeout: Duration::from_secs(30),
            bootstrap_override: None,
            downstream_tls: None,
        }
    }

    /// Runs obguard with this plugin configuration.
    pub fn plugin(mut self, config: Value) -> Self {
        self.plugin_config = Some(config);
        self
    }

    /// Turns path normalisation in the connection manager on or off.
    pub fn normalize_paths(mut self, on: bool) -> Self {
        self.normalize_paths = on;
        self
    }

    /// Loads this wasm file instead of the built `obguard.wasm`.
    pub fn wasm(mut self, path: impl Into<PathBuf>) -> Self {
        self.wasm = Some(path.into());
        self
    }
}

impl Default for EnvoyOptions {
    /// [`EnvoyOptions::new`] with upstream port 0 (set `upstream_port` before use).
    fn default() -> Self {
        Self::new(0)
    }
}

/// A running Envoy (1.40) on loopback with a per-instance temp dir holding its bootstrap, log,
/// access log and admin address file. Killed (SIGTERM, then SIGKILL after 5 s) on drop, and
/// killed by the kernel if the test process dies. Set `OBGUARD_KEEP_ENVOY_DIR=1` to keep the temp
/// dir for inspection (its path is printed).
pub struct Envoy {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    port: u16,
    admin_port: u16,
}

impl Envoy {
    /// Starts Envoy and waits until it is ready; panics with the tail of Envoy's log if it
    /// exits or is not ready within `opts.ready_timeout`.
    pub fn start(opts: EnvoyOptions) -> Envoy {
        Self::try_start(opts)
            .unwrap_or_else(|log| panic!("Envoy failed to start. Log tail:\n{}", tail(&log, 80)))
    }

    /// Starts Envoy and waits until it is ready: admin `/ready` answers `LIVE` and the listener
    /// has a port. `Err` holds Envoy's full output (stderr + log file, plus the exit status) if
    /// it exits first or does not become ready in time; the process is gone by then.
    ///
    /// Observed with Envoy 1.40 and a static listener (the wasm VM is created and the plugin's
    /// `on_configure` runs while the listener config is loaded, before any request):
    /// - plugin `on_configure` returns false → Envoy exits with status 1 within ~0.3 s. The log
    ///   has the filter's own lines (`[error][wasm] ... wasm log obguard obguard: <message>`),
    ///   then `Wasm VM failed Failed to configure base Wasm plugin`, `Plugin obguard failed to
    ///   load`, `Plugin configured to fail closed failed to load`, and finally
    ///   `error initializing configuration '.../bootstrap.json': Unable to create Wasm plugin
    ///   obguard`.
    /// - missing wasm file → exits with status 1: `error initializing configuration ...:
    ///   Invalid path: /nonexistent/obguard.wasm`.
    ///
    /// So a refused plugin config shows up as `Err` quickly, not as a timeout.
    pub fn try_start(opts: EnvoyOptions) -> Result<Envoy, String> {
        let dir = tempfile::Builder::new()
            .prefix("obguard-envoy-")
            .tempdir()
            .map_err(|e| format!("create temp dir: {e}"))?;
        let dir_path = dir.path().to_path_buf();
        let wasm = match (&opts.plugin_config, &opts.wasm) {
            (None, _) => PathBuf::new(),
            (Some(_), Some(path)) => path.clone(),
            (Some(_), None) => crate::wasm_path(),
        };
        let config = match &opts.bootstrap_override {
            Some(config) => config.clone(),
            None => crate::bootstrap(&opts, &wasm, &dir_path.join("access.log")),
        };
        let config_path = dir_path.join("bootstrap.json");
        let pretty = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
        fs::write(&config_path, pretty).map_err(|e| format!("write bootstrap: {e}"))?;

        let stderr = fs::File::create(dir_path.join("envoy.stderr"))
            .map_err(|e| format!("create stderr file: {e}"))?;
        let stdout = stderr
            .try_clone()
            .map_err(|e| format!("dup stderr file: {e}"))?;
        let mut cmd = Command::new(crate::envoy_bin());
        cmd.arg("-c")
            .arg(&config_path)
            .arg("--use-dynamic-base-id")
            .args(["--concurrency", &opts.concurrency.to_string()])
            .args(["-l", "info"])
            .arg("--log-path")
            .arg(dir_path.join("envoy.log"))
            .arg("--admin-address-path")
            .arg(dir_path.join("admin.txt"))
            .args(["--file-flush-interval-msec", &FILE_FLUSH_MS.to_string()])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .current_dir(&dir_path);
        if let Some(level) = &opts.component_log_level {
            cmd.args(["--component-log-level", level]);
        }
        let child = spawn_tied(cmd).map_err(|e| {
            format!(
                "spawn {}: {e}",
                crate::envoy_bin().to_string_lossy().into_owned()
            )
        })?;

        let mut envoy = Envoy {
            child: Some(child),
            dir: Some(dir),
            dir_path,
            port: 0,
            admin_port: 0,
        };
        match envoy.wait_ready(opts.ready_timeout) {
            Ok(()) => Ok(envoy),
            Err(why) => {
                let status = envoy.stop();
                Err(format!(
                    "{why}; Envoy exit status: {status}\n{}",
                    envoy.log()
                ))
            }
        }
    }

    /// Runs `envoy --mode validate` on the bootstrap for `opts`: `Ok(output)` if Envoy accepts it,
    /// `Err(output)` if not. With Envoy 1.40 validation loads the wasm module and runs the
    /// plugin's `on_configure` too, so a refused plugin config fails here with the filter's log
    /// lines in the output.
    pub fn validate(opts: &EnvoyOptions) -> Result<String, String> {
        let dir = tempfile::Builder::new()
            .prefix("obguard-validate-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let wasm = match (&opts.plugin_config, &opts.wasm) {
            (None, _) => PathBuf::new(),
            (Some(_), Some(path)) => path.clone(),
            (Some(_), None) => crate::wasm_path(),
        };
        let config = crate::bootstrap(opts, &wasm, &dir.path().join("access.log"));
        let config_path = dir.path().join("bootstrap.json");
        fs::write(&config_path, config.to_string()).map_err(|e| e.to_string())?;
        let out = Command::new(crate::envoy_bin())
            .arg("--mode")
            .arg("validate")
            .arg("-c")
            .arg(&config_path)
            .args(["-l", "warning"])
            .arg("--use-dynamic-base-id")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!("Envoy exited during startup ({status})"));
            }
            if self.admin_port == 0 {
                self.admin_port = read_admin_port(&self.dir_path.join("admin.txt")).unwrap_or(0);
            }
            if self.admin_port != 0 && self.is_ready() {
                self.port = self.listener_port().unwrap_or(0);
                if self.port != 0 {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("Envoy not ready after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn is_ready(&self) -> bool {
        try_send(self.admin_port, &RawRequest::get("/ready"))
            .is_ok_and(|r| r.status == 200 && r.text().trim() == "LIVE")
    }

    /// The generated bootstrap's listener, or with a bootstrap override the first listener
    /// once every listener has its port.
    fn listener_port(&self) -> Option<u16> {
        let ports = self.listener_ports();
        if ports.is_empty() || ports.values().any(|p| *p == 0) {
            return None;
        }
        ports
            .get("obguard_listener")
            .or_else(|| ports.values().next())
            .copied()
    }

    /// Every listener's name and port on 127.0.0.1 (0 while not bound yet).
    pub fn listener_ports(&self) -> HashMap<String, u16> {
        let Ok(resp) = try_send(self.admin_port, &RawRequest::get("/listeners?format=json")) else {
            return HashMap::new();
        };
        let Ok(json) = serde_json::from_slice::<Value>(&resp.body) else {
            return HashMap::new();
        };
        json["listener_statuses"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|l| {
                        let name = l["name"].as_str()?.to_owned();
                        let port = l["local_address"]["socket_address"]["port_value"]
                            .as_u64()
                            .and_then(|p| u16::try_from(p).ok())
                            .unwrap_or(0);
                        Some((name, port))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Envoy's process id (e.g. to pin it to a CPU).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The HTTP listener's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin interface's port on 127.0.0.1.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// The temp dir holding `bootstrap.json`, `envoy.log`, `envoy.stderr`, `access.log`,
    /// `admin.txt`.
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// Sends `req` to the listener (shorthand for [`crate::send`]).
    pub fn send(&self, req: &RawRequest) -> Response {
        crate::send(self.port, req)
    }

    /// Sends `req` to the admin interface, e.g. `RawRequest::post("/logging?wasm=trace")`.
    pub fn admin(&self, req: &RawRequest) -> Response {
        crate::send(self.admin_port, req)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Envoy's output so far: stderr/stdout followed by the `--log-path` file. Filter logs
    /// (proxy-wasm `log::info!` etc.) appear here as `[wasm] wasm log obguard obguard obguard:
    /// <message>` lines.
    pub fn log(&self) -> String {
        let stderr = fs::read_to_string(self.dir_path.join("envoy.stderr")).unwrap_or_default();
        let log = fs::read_to_string(self.dir_path.join("envoy.log")).unwrap_or_default();
        format!("{stderr}{log}")
    }

    /// Polls (up to 5 s) until Envoy's log contains `needle`; returns whether it did. The log
    /// file is written in batches (every 50 ms), so a line logged by the filter while handling a
    /// request shows up shortly after the response.
    pub fn wait_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Access log lines written so far, parsed as JSON (fields: [`crate::ACCESS_LOG_FIELDS`]).
    /// Envoy flushes the file every 50 ms, so right after a request prefer
    /// [`Envoy::wait_access_log`].
    pub fn access_log_lines(&self) -> Vec<Value> {
        let text = fs::read_to_string(self.dir_path.join("access.log")).unwrap_or_default();
        text.split_inclusive('\n')
            .filter(|l| l.ends_with('\n')) // a line still being written is skipped
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("access log line is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// Polls (up to 5 s) until at least `n` access log lines exist and returns all lines. If
    /// fewer appear in time, returns those (the caller's assertion then shows what is there).
    pub fn wait_access_log(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.access_log_lines();
            if lines.len() >= n || Instant::now() >= deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// All counters and gauges from admin `/stats?format=json`, name → value (histograms are
    /// left out).
    ///
    /// Custom metrics the filter defines with proxy-wasm `define_metric` appear with the
    /// prefix `wasmcustom.`: a counter defined as `obguard.requests` shows up here as
    /// `wasmcustom.obguard.requests`.
    pub fn stats(&self) -> HashMap<String, u64> {
        self.stats_from("/stats?format=json")
    }

    /// Like [`Envoy::stats`], only the stats whose name matches the regular expression
    /// `regex` (admin `/stats?filter=`): cheaper to poll often.
    pub fn stats_matching(&self, regex: &str) -> HashMap<String, u64> {
        self.stats_from(&format!(
            "/stats?format=json&filter={}",
            percent_encode(regex)
        ))
    }

    /// [`Envoy::stats`] without panicking (e.g. when Envoy may have exited).
    pub fn try_stats(&self) -> Result<HashMap<String, u64>, String> {
        self.try_stats_from("/stats?format=json")
    }

    fn stats_from(&self, target: &str) -> HashMap<String, u64> {
        self.try_stats_from(target)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_stats_from(&self, target: &str) -> Result<HashMap<String, u64>, String> {
        let resp = try_send(self.admin_port, &RawRequest::get(target))?;
        let json: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("admin /stats is not JSON ({e}): {}", resp.text()))?;
        let mut out = HashMap::new();
        for stat in json["stats"].as_array().into_iter().flatten() {
            if let (Some(name), Some(value)) = (stat["name"].as_str(), stat["value"].as_u64()) {
                out.insert(name.to_string(), value);
            }
        }
        Ok(out)
    }

    /// The value of counter or gauge `name`, 0 if it does not exist.
    pub fn counter(&self, name: &str) -> u64 {
        self.stats().get(name).copied().unwrap_or(0)
    }

    /// Polls (up to 5 s) until counter `name` is at least `at_least`; returns its last value.
    pub fn wait_counter(&self, name: &str, at_least: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let value = self.counter(name);
            if value >= at_least || Instant::now() >= deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Connections each worker has accepted on the obguard listener so far
    /// (`listener.obguard_listener.worker_<i>.downstream_cx_total`), by worker index. Empty
    /// with a [`EnvoyOptions::bootstrap_override`].
    pub fn worker_connections(&self) -> Vec<u64> {
        let prefix = "listener.obguard_listener.worker_";
        let stats = self
            .stats_matching("^listener\\.obguard_listener\\.worker_[0-9]+\\.downstream_cx_total$");
        let mut workers: Vec<(usize, u64)> = stats
            .iter()
            .filter_map(|(name, value)| {
                let index = name
                    .strip_prefix(prefix)?
                    .strip_suffix(".downstream_cx_total")?;
                Some((index.parse().ok()?, *value))
            })
            .collect();
        workers.sort_unstable();
        workers.into_iter().map(|(_, value)| value).collect()
    }

    /// Sends `req` on `n` fresh connections that are all opened (and accepted by Envoy) before
    /// the first request goes out, so that with [`EnvoyOptions::exact_balance`] they are spread
    /// evenly over the workers; the requests then run concurrently. Returns every answer (in
    /// connection order) and how many of the connections each worker accepted.
    pub fn send_spread(&self, req: &RawRequest, n: usize) -> Spread {
        let before = self.worker_connections();
        let connections: Vec<Result<Connection, String>> =
            (0..n).map(|_| Connection::open(self.port)).collect();
        let accepted = |now: &[u64]| -> Vec<u64> {
            now.iter()
                .enumerate()
                .map(|(i, v)| v.saturating_sub(before.get(i).copied().unwrap_or(0)))
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut per_worker = accepted(&self.worker_connections());
        while per_worker.iter().sum::<u64>() < n as u64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            per_worker = accepted(&self.worker_connections());
        }
        let responses = std::thread::scope(|scope| {
            let sends: Vec<_> = connections
                .into_iter()
                .map(|conn| scope.spawn(move || conn.and_then(|c| c.send(req))))
                .collect();
            sends
                .into_iter()
                .map(|s| s.join().unwrap_or_else(|_| Err("sender panicked".into())))
                .collect()
        });
        Spread {
            responses,
            per_worker,
        }
    }

    /// Sends `req` on two connections per worker ([`Envoy::send_spread`]) until every answer
    /// is `status` or `within` has passed, and returns the last round's answers. For state
    /// that each worker loads from shared data on its timer (containment lists, threat
    /// feeds), which reaches every worker within a tick. Panics if a worker got no
    /// connection or a request failed: the test cannot tell what it wanted to.
    pub fn send_until_every_worker_answers(
        &self,
        req: &RawRequest,
        status: u16,
        within: Duration,
    ) -> Vec<Response> {
        let deadline = Instant::now() + within;
        loop {
            let workers = self.worker_connections().len().max(1);
            let spread = self.send_spread(req, 2 * workers);
            assert!(
                spread.per_worker.iter().all(|n| *n >= 1),
                "every worker got a connection: {:?}",
                spread.per_worker
            );
            let responses: Vec<Response> = spread
                .responses
                .into_iter()
                .map(|r| r.unwrap_or_else(|e| panic!("request failed: {e}")))
                .collect();
            if responses.iter().all(|r| r.status == status) || Instant::now() > deadline {
                return responses;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops Envoy (SIGTERM, SIGKILL after 5 s) and returns how it ended.
    fn stop(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return "already stopped".into();
        };
        if let Ok(Some(status)) = child.try_wait() {
            return status.to_string();
        }
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return format!("{status} (after SIGTERM)");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        match child.wait() {
            Ok(status) => format!("{status} (after SIGKILL)"),
            Err(e) => format!("wait failed: {e}"),
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "---- Envoy log tail ({}) ----\n{}",
                self.dir_path.display(),
                tail(&self.log(), 40)
            );
        }
        if std::env::var_os("OBGUARD_KEEP_ENVOY_DIR").is_some()
            && let Some(dir) = self.dir.take()
        {
            eprintln!("keeping Envoy dir {}", dir.keep().display());
        }
    }
}

/// What [`Envoy::send_spread`] saw.
#[derive(Debug)]
pub struct Spread {
    /// One answer per connection, in the order the connections were opened.
    pub responses: Vec<Result<Response, String>>,
    /// How many of the connections each worker accepted, by worker index.
    pub per_worker: Vec<u64>,
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for a query value).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn read_admin_port(path: &Path) -> Option<u16> {
    let text = fs::read_to_string(path).ok()?;
    text.trim()
        .rsplit(':')
        .next()?
        .parse()
        .ok()
        .filter(|p| *p != 0)
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
