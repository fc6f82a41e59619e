//! What obguard needs from its proxy, as plain Rust values.
//!
//! [`Host`] is the proxy-wasm ABI surface obguard uses — headers, properties, shared data
//! with compare-and-swap, HTTP and gRPC callouts, timers, metrics, the clock and the log —
//! with every answer a value: a status the host returns is an [`HostError`], bytes that are
//! not UTF-8 stay bytes (or are replaced, where the caller only compares them). Nothing
//! behind this trait can panic on what the host says. In Envoy it is implemented by the
//! adapter over the raw ABI (`adapter/abi.rs`); natively, by the in-memory host in
//! `obguard-testkit`, so the runtime logic above it is tested without a proxy.

pub mod wire;

use std::time::Duration;

/// A non-`Ok` status from the host (proxy-wasm ABI 0.2.1 `WasmResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    NotFound,
    BadArgument,
    SerializationFailure,
    ParseFailure,
    InvalidMemoryAccess,
    Empty,
    CasMismatch,
    InternalFailure,
    Unimplemented,
    /// The host's answer could not be decoded (a malformed map or a size that does not fit).
    Malformed,
    Other(u32),
}

impl HostError {
    /// From an ABI status code; `None` for `Ok`.
    pub fn from_status(code: u32) -> Option<HostError> {
        Some(match code {
            0 => return None,
            1 => HostError::NotFound,
            2 => HostError::BadArgument,
            3 => HostError::SerializationFailure,
            4 => HostError::ParseFailure,
            6 => HostError::InvalidMemoryAccess,
            7 => HostError::Empty,
            8 => HostError::CasMismatch,
            10 => HostError::InternalFailure,
            12 => HostError::Unimplemented,
            other => HostError::Other(other),
        })
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Other(code) => write!(f, "status {code}"),
            other => write!(f, "{other:?}"),
        }
    }
}

pub type HostResult<T> = Result<T, HostError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

/// Header maps the host keeps (ABI `MapType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderMap {
    RequestHeaders = 0,
    RequestTrailers = 1,
    ResponseHeaders = 2,
    ResponseTrailers = 3,
    /// Headers of the answer to an HTTP callout, readable in `on_http_call_response` only
    /// when the callout got an answer.
    HttpCallResponseHeaders = 6,
}

/// Byte buffers the host keeps (ABI `BufferType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Buffer {
    HttpCallResponseBody = 4,
    GrpcReceiveBuffer = 5,
    PluginConfiguration = 7,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

/// A header list as the core reads it. Values that are not UTF-8 are replaced lossily by the
/// host layer: such a value can only fail later checks, never pass them.
pub type Headers = Vec<(String, String)>;

/// The host calls obguard makes. Methods take `&self`: a proxy-wasm host has no Rust-visible
/// state, and the in-memory host keeps its own behind interior mutability.
pub trait Host {
    fn log(&self, level: LogLevel, message: &str);

    /// Host clock, nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> HostResult<u64>;

    /// Up to `max` bytes of a buffer from `start`; an absent buffer is `Ok(empty)`.
    fn buffer(&self, buffer: Buffer, start: usize, max: usize) -> HostResult<Vec<u8>>;

    fn header_pairs(&self, map: HeaderMap) -> HostResult<Headers>;

    /// One header's value, as bytes (an `ETag` need not be UTF-8).
    fn header(&self, map: HeaderMap, name: &str) -> HostResult<Option<Vec<u8>>>;

    /// Replaces every value of `name` with `value`.
    fn set_header(&self, map: HeaderMap, name: &str, value: &str) -> HostResult<()>;

    fn remove_header(&self, map: HeaderMap, name: &str) -> HostResult<()>;

    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>>;

    fn set_property(&self, path: &[&str], value: &[u8]) -> HostResult<()>;

    /// A shared-data value and its CAS token (`Ok((None, None))` when the key is absent).
    fn shared_data(&self, key: &str) -> HostResult<(Option<Vec<u8>>, Option<u32>)>;

    /// Stores `value`; with a non-zero `cas`, only if the key's CAS token still equals it
    /// (`Err(CasMismatch)` otherwise). `None` and `Some(0)` store unconditionally.
    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> HostResult<()>;

    /// Answers the current request locally.
    fn send_reply(&self, status: u16, headers: &[(String, String)], body: &[u8]) -> HostResult<()>;

    /// Lets the current (paused) request continue.
    fn resume_request(&self) -> HostResult<()>;

    /// Starts an HTTP callout over `cluster`; the answer arrives as `on_http_call_response`
    /// with the returned token.
    fn http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> HostResult<u32>;

    /// Starts a unary gRPC call; `upstream` is a cluster name or a serialised
    /// `envoy.config.core.v3.GrpcService`.
    fn grpc_call(
        &self,
        upstream: &[u8],
        service: &str,
        method: &str,
        message: &[u8],
        timeout: Duration,
    ) -> HostResult<u32>;

    fn set_tick_period(&self, period: Duration) -> HostResult<()>;

    fn define_metric(&self, kind: MetricKind, name: &str) -> HostResult<u32>;

    fn increment_metric(&self, id: u32, delta: i64) -> HostResult<()>;

    fn record_metric(&self, id: u32, value: u64) -> HostResult<()>;

    /// A host-provided function (`NotFound` when the host has none by that name).
    fn call_foreign_function(&self, name: &str, arguments: &[u8]) -> HostResult<Option<Vec<u8>>>;
}

/// Conveniences every caller would otherwise write again.
pub trait HostExt: Host {
    /// Seconds and milliseconds since the epoch from one clock read (0 if the host will
    /// not say: the clock is only used for windows and expiry, where 0 fails closed).
    fn now_secs_and_ms(&self) -> (u64, u64) {
        let nanos = self.now_nanos().unwrap_or(0);
        (nanos / 1_000_000_000, nanos / 1_000_000)
    }

    fn now_secs(&self) -> u64 {
        self.now_secs_and_ms().0
    }

    fn now_ms(&self) -> u64 {
        self.now_secs_and_ms().1
    }

    /// A header value as text; a non-UTF-8 value is treated as absent.
    fn header_str(&self, map: HeaderMap, name: &str) -> Option<String> {
        self.header(map, name)
            .ok()
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        self.define(MetricKind::Counter, name)
    }

    fn define_gauge(&self, name: &str) -> Option<u32> {
        self.define(MetricKind::Gauge, name)
    }

    fn define(&self, kind: MetricKind, name: &str) -> Option<u32> {
        match self.define_metric(kind, name) {
            Ok(id) => Some(id),
            Err(err) => {
                self.log(
                    LogLevel::Warn,
                    &format!("obguard: cannot define metric {name}: {err}"),
                );
                None
            }
        }
    }

    fn increment(&self, id: Option<u32>) {
        if let Some(id) = id {
            // A counter that cannot be bumped has nowhere to report to.
            let _ = self.increment_metric(id, 1);
        }
    }

    fn record(&self, id: Option<u32>, value: u64) {
        if let Some(id) = id {
            let _ = self.record_metric(id, value);
        }
    }

    /// Sets a request header, logging (not failing) when the host refuses.
    fn set_request_header(&self, name: &str, value: &str) {
        if let Err(err) = self.set_header(HeaderMap::RequestHeaders, name, value) {
            self.log(
                LogLevel::Warn,
                &format!("obguard: cannot set request header {name}: {err}"),
            );
        }
    }

    fn remove_request_header(&self, name: &str) {
        if let Err(err) = self.remove_header(HeaderMap::RequestHeaders, name) {
            self.log(
                LogLevel::Warn,
                &format!("obguard: cannot remove request header {name}: {err}"),
            );
        }
    }

    fn set_response_header(&self, name: &str, value: &str) {
        if let Err(err) = self.set_header(HeaderMap::ResponseHeaders, name, value) {
            self.log(
                LogLevel::Warn,
                &format!("obguard: cannot set response header {name}: {err}"),
            );
        }
    }

    /// Written to Envoy filter state as `wasm.<key>`, readable in access logs.
    fn set_log_field(&self, key: &str, value: &str) {
        if let Err(err) = self.set_property(&[key], value.as_bytes()) {
            self.log(
                LogLevel::Debug,
                &format!("obguard: cannot set property {key}: {err}"),
            );
        }
    }

    /// Answers locally; `false` (logged) when the host refused.
    fn reply(&self, status: u16, headers: &[(String, String)], body: &str) -> bool {
        match self.send_reply(status, headers, body.as_bytes()) {
            Ok(()) => true,
            Err(err) => {
                self.log(
                    LogLevel::Error,
                    &format!("obguard: cannot send local reply: {err}"),
                );
                false
            }
        }
    }

    fn resume(&self) {
        if let Err(err) = self.resume_request() {
            self.log(
                LogLevel::Error,
                &format!("obguard: cannot resume request: {err}"),
            );
        }
    }
}

impl<H: Host + ?Sized> HostExt for H {}
