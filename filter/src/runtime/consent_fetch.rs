//! The consent-service callout of one request: dispatched when the consent stage asks for a
//! consent it has no fresh answer for, read when Envoy answers (or reports the call failed).
//! What the answer means and how it is cached is decided in `authorise/consent.rs`.

use std::time::Duration;

use crate::authorise::consent::{self, ConsentFetchError, ConsentService, FetchedConsent};
use crate::host::{Buffer, HeaderMap, Host, HostExt, LogLevel};

/// Starts the GET for `consent_id`; the error is the answer to decide with when Envoy
/// cannot dispatch it (unknown cluster...).
pub fn dispatch(
    host: &dyn Host,
    service: &ConsentService,
    consent_id: &str,
) -> Result<u32, FetchedConsent> {
    let path = service.path_for(consent_id);
    let headers = [
        (":method", "GET"),
        (":path", path.as_str()),
        (":authority", service.authority.as_str()),
        ("accept", "application/json"),
    ];
    host.http_call(
        &service.cluster,
        &headers,
        None,
        Duration::from_millis(service.timeout_ms),
    )
    .map_err(|err| {
        host.log(
            LogLevel::Warn,
            &format!(
                "obguard: cannot ask the consent service (cluster {}): {err}",
                service.cluster
            ),
        );
        Err(ConsentFetchError::Dispatch)
    })
}

/// Reads the answer. Envoy reports timeouts, resets and refused connections as an answer
/// without headers (the `:status` read fails): unreachable.
pub fn answer(host: &dyn Host, service: &ConsentService, body_size: usize) -> FetchedConsent {
    let status = host
        .header_str(HeaderMap::HttpCallResponseHeaders, ":status")
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    // An oversized body is refused by its announced size, without reading it.
    let body = (status == 200 && body_size <= service.max_bytes)
        .then(|| host.buffer(Buffer::HttpCallResponseBody, 0, body_size).ok())
        .flatten();
    let result = consent::parse_answer(service, status, body.as_deref(), body_size);
    if let Err(err) = &result {
        host.log(
            LogLevel::Warn,
            &format!(
                "obguard: consent service (cluster {}) failed: {} (status {status}, {body_size} bytes)",
                service.cluster,
                err.reason()
            ),
        );
    }
    result
}
