//! Host calls with every error handled. proxy-wasm's trait helpers `unwrap()` host results,
//! which would trap the VM on any unexpected status; these wrappers log and carry on.

use std::time::{SystemTime, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{LogLevel, MapType, MetricType};

pub fn log(level: LogLevel, message: &str) {
    // Nowhere left to report a failing log call.
    let _ = hostcalls::log(level, message);
}

/// Envoy's clock (`None` if the host will not say).
pub fn now() -> Option<SystemTime> {
    hostcalls::get_current_time().ok()
}

pub fn now_unix_secs() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

pub fn now_unix_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Unix seconds and milliseconds from one clock read: [`now_unix_secs`] and [`now_unix_ms`]
/// in a single host call.
pub fn now_unix_secs_and_ms() -> (u64, u64) {
    let host = hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
    let ms = host.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let secs = host
        .or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    (secs, ms)
}

/// A string property (e.g. `["source", "address"]`); `None` when absent, unreadable or not
/// UTF-8.
pub fn property_string(path: &[&str]) -> Option<String> {
    hostcalls::get_property(path.to_vec())
        .ok()
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

pub fn response_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpResponseHeaders, name)
        .ok()
        .flatten()
}

pub fn plugin_configuration() -> Option<Vec<u8>> {
    match hostcalls::get_buffer(
        proxy_wasm::types::BufferType::PluginConfiguration,
        0,
        usize::MAX,
    ) {
        Ok(bytes) => bytes,
        Err(status) => {
            log(
                LogLevel::Error,
                &format!("obguard: cannot read plugin configuration: {status:?}"),
            );
            None
        }
    }
}

/// All request headers; values that are not UTF-8 are replaced lossily (they can only fail
/// later checks, never pass them).
pub fn request_headers() -> Vec<(String, String)> {
    match hostcalls::get_map_bytes(MapType::HttpRequestHeaders) {
        Ok(pairs) => pairs
            .into_iter()
            .map(|(name, value)| {
                // Valid UTF-8 (the normal case) keeps its buffer instead of being copied.
                let value = String::from_utf8(value)
                    .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned());
                (name, value)
            })
            .collect(),
        Err(status) => {
            log(
                LogLevel::Error,
                &format!("obguard: cannot read request headers: {status:?}"),
            );
            Vec::new()
        }
    }
}

pub fn set_request_header(name: &str, value: Option<&str>) {
    if let Err(status) = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value) {
        log(
            LogLevel::Warn,
            &format!("obguard: cannot set request header {name}: {status:?}"),
        );
    }
}

pub fn set_response_header(name: &str, value: &str) {
    if let Err(status) = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(value)) {
        log(
            LogLevel::Warn,
            &format!("obguard: cannot set response header {name}: {status:?}"),
        );
    }
}

pub fn send_reply(status: u16, headers: &[(String, String)], body: &str) -> bool {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    match hostcalls::send_http_response(u32::from(status), headers, Some(body.as_bytes())) {
        Ok(()) => true,
        Err(status) => {
            log(
                LogLevel::Error,
                &format!("obguard: cannot send local reply: {status:?}"),
            );
            false
        }
    }
}

/// Written to Envoy filter state as `wasm.<key>`, readable in access logs.
pub fn set_log_field(key: &str, value: &str) {
    if let Err(status) = hostcalls::set_property(vec![key], Some(value.as_bytes())) {
        log(
            LogLevel::Debug,
            &format!("obguard: cannot set property {key}: {status:?}"),
        );
    }
}

pub fn define_counter(name: &str) -> Option<u32> {
    match hostcalls::define_metric(MetricType::Counter, name) {
        Ok(id) => Some(id),
        Err(status) => {
            log(
                LogLevel::Warn,
                &format!("obguard: cannot define metric {name}: {status:?}"),
            );
            None
        }
    }
}

pub fn increment(id: Option<u32>) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, 1);
    }
}

pub fn define_gauge(name: &str) -> Option<u32> {
    match hostcalls::define_metric(MetricType::Gauge, name) {
        Ok(id) => Some(id),
        Err(status) => {
            log(
                LogLevel::Warn,
                &format!("obguard: cannot define metric {name}: {status:?}"),
            );
            None
        }
    }
}

/// Starts a gRPC call; `None` when the host refuses it (the caller decides what that means).
/// `upstream` is a serialised `envoy.config.core.v3.GrpcService` (ASCII, checked at load).
pub fn dispatch_grpc_call(
    upstream: &str,
    service: &str,
    method: &str,
    message: &[u8],
    timeout: std::time::Duration,
) -> Option<u32> {
    match hostcalls::dispatch_grpc_call(
        upstream,
        service,
        method,
        Vec::new(),
        Some(message),
        timeout,
    ) {
        Ok(token) => Some(token),
        Err(status) => {
            log(
                LogLevel::Warn,
                &format!("obguard: cannot start gRPC call {service}/{method}: {status:?}"),
            );
            None
        }
    }
}

pub fn record(id: Option<u32>, value: u64) {
    if let Some(id) = id {
        let _ = hostcalls::record_metric(id, value);
    }
}

/// The body of a gRPC reply being delivered to `on_grpc_call_response`.
pub fn grpc_response_body(size: usize) -> Option<Vec<u8>> {
    match hostcalls::get_buffer(proxy_wasm::types::BufferType::GrpcReceiveBuffer, 0, size) {
        Ok(body) => Some(body.unwrap_or_default()),
        Err(status) => {
            log(
                LogLevel::Warn,
                &format!("obguard: cannot read gRPC reply: {status:?}"),
            );
            None
        }
    }
}

/// Lets a paused request continue.
pub fn resume_request() {
    if let Err(status) = hostcalls::resume_http_request() {
        log(
            LogLevel::Error,
            &format!("obguard: cannot resume request: {status:?}"),
        );
    }
}
