//! Test harness that runs the real Envoy binary with the built `obguard.wasm`.
//!
//! Everything here binds to `127.0.0.1` only, is safe to use from several test threads at once
//! (every [`Envoy`] gets its own temp dir, kernel-chosen ports and a dynamic base id) and cleans
//! up after itself (Envoy is killed on drop, and dies with the test process).
//!
//! Typical use in `integration/tests/*.rs`:
//!
//! ```no_run
//! use obguard_integration::{EchoUpstream, Envoy, EnvoyOptions, RawRequest, send};
//!
//! let upstream = EchoUpstream::start();
//! let envoy = Envoy::start(
//!     EnvoyOptions::new(upstream.port()).plugin(serde_json::json!({"routes": []})),
//! );
//! let resp = send(envoy.port(), &RawRequest::get("/accounts").header("authorization", "Bearer x"));
//! assert_eq!(resp.status, 401);
//! let log = envoy.wait_access_log(1);
//! assert_eq!(log[0]["status"], 401);
//! ```
//!
//! Paths to the binaries come from the environment (`ENVOY_BIN`, `OBGUARD_WASM`, both exported by
//! `make test`), with defaults inside the workspace (see [`envoy_bin`] and [`wasm_path`]).

pub mod bench;
mod bootstrap;
mod consent_service;
mod demo_bank;
mod echo;
mod envoy;
mod faults;
mod http;
mod jwks_server;
pub mod measure;
mod model_server;
mod ratelimit_service;
mod redis;
mod serve;
pub mod soak;
mod spawn;
mod tls;
mod webhook;

use std::path::PathBuf;

pub use bootstrap::{ACCESS_LOG_FIELDS, bootstrap, obguard_filter};
pub use consent_service::ConsentService;
pub use demo_bank::DemoBank;
pub use echo::{EchoUpstream, echo_body};
pub use envoy::{Envoy, EnvoyOptions, Spread};
pub use faults::{Fault, FaultServer};
pub use http::{Connection, RawRequest, Response, send, send_raw, try_send, try_send_raw};
pub use jwks_server::{JwksServer, loopback_cluster};
pub use model_server::ModelServer;
/// Rate-limit units for [`Limit`].
pub use obguard_rls_proto::envoy::service::ratelimit::v3::rate_limit_response::rate_limit::Unit;
pub use ratelimit_service::{Behaviour, Counters, FAULT_KEY, Limit, RateLimitService};
pub use redis::{Redis, redis_server_bin};
pub use tls::{CertFiles, TestPki, https_get};
pub use webhook::{Webhook, WebhookMode};

/// A static Envoy cluster `name` for a gRPC service on `127.0.0.1:port` (HTTP/2), for
/// [`EnvoyOptions::extra_clusters`].
pub fn grpc_cluster(name: &str, port: u16) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            },
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": "127.0.0.1",
                "port_value": port,
            }}}}]}],
        },
    })
}

/// Root of the cargo workspace (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The Envoy binary to run: `$ENVOY_BIN` if set and non-empty, else
/// `<workspace>/.tools/bin/envoy` (installed by `make setup`).
///
/// Panics with a hint if the file does not exist.
pub fn envoy_bin() -> PathBuf {
    let path = match std::env::var_os("ENVOY_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".tools/bin/envoy"),
    };
    assert!(
        path.is_file(),
        "Envoy binary not found at {} — run `make setup` or set ENVOY_BIN to an Envoy 1.40 binary",
        path.display()
    );
    path
}

/// The filter module to load: `$OBGUARD_WASM` if set and non-empty, else
/// `<workspace>/target/wasm32-wasip1/release/obguard.wasm` (built by `make build`).
///
/// Panics with a hint if the file does not exist.
pub fn wasm_path() -> PathBuf {
    let path = match std::env::var_os("OBGUARD_WASM") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join("target/wasm32-wasip1/release/obguard.wasm"),
    };
    assert!(
        path.is_file(),
        "obguard.wasm not found at {} — run `make build` (cargo build --release --target \
         wasm32-wasip1 -p obguard) or set OBGUARD_WASM",
        path.display()
    );
    path
}

/// Directory with the demo bank's fixture JSON files (`integration/fixtures/demo-bank`).
pub fn demo_bank_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo-bank")
}

/// The no-op proxy-wasm filter the benchmarks compare with (env `OBGUARD_NOOP_WASM`, else
/// `<workspace>/target/wasm32-wasip1/release/obguard_noop_filter.wasm`).
pub fn noop_wasm_path() -> PathBuf {
    built_wasm("OBGUARD_NOOP_WASM", "obguard_noop_filter.wasm")
}

/// The floor probe, the benchmarks' floor for obguard (env `OBGUARD_FLOOR_WASM`, else
/// `<workspace>/target/wasm32-wasip1/release/obguard_floor_probe.wasm`).
pub fn floor_probe_wasm_path() -> PathBuf {
    built_wasm("OBGUARD_FLOOR_WASM", "obguard_floor_probe.wasm")
}

fn built_wasm(env: &str, file: &str) -> PathBuf {
    std::env::var_os(env)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root()
                .join("target/wasm32-wasip1/release")
                .join(file)
        })
}
