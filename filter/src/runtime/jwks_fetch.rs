//! Remote JWKS fetching: the plugin's timer loads keys from shared data (written by
//! whichever worker fetched them), decides when to fetch, and dispatches the HTTP call over
//! the configured cluster. The rules (when, what is valid, staleness) are in
//! `identify/jwks_remote.rs`.

use std::collections::HashMap;
use std::time::Duration;

use super::metrics::Metrics;
use crate::config::FilterConfig;
use crate::host::{Buffer, HeaderMap, Host, HostExt, LogLevel};
use crate::identify::jwks_remote::{self, FetchError, RemoteKeySet};
use crate::pipeline::Worker;

/// Per-worker bookkeeping for remote JWKS.
#[derive(Default)]
pub struct JwksState {
    /// Shared-data CAS of the keys each issuer last loaded (to notice new fetches).
    loaded_cas: HashMap<usize, u32>,
    /// In-flight fetches: call token → issuer index.
    in_flight: HashMap<u32, usize>,
}

fn shared_time(host: &dyn Host, key: &str) -> (Option<u64>, Option<u32>) {
    match host.shared_data(key) {
        Ok((bytes, cas)) => (bytes.as_deref().and_then(jwks_remote::decode_time), cas),
        Err(_) => (None, None),
    }
}

/// The timer period while any issuer has a remote JWKS.
pub const TICK: Duration = Duration::from_secs(1);

/// Loads newer keys from shared data and starts fetches that are due.
pub fn on_tick(
    host: &dyn Host,
    config: &FilterConfig,
    worker: &mut Worker,
    jwks: &mut JwksState,
    metrics: &Metrics,
    now: u64,
) {
    for (index, issuer) in config.issuers.iter().enumerate() {
        let Some(remote) = &issuer.remote else {
            continue;
        };
        let (stored, cas) = host.shared_data(&remote.shared_key).unwrap_or((None, None));
        let mut fetched_at = None;
        if let (Some(bytes), Some(cas)) = (stored, cas)
            && let Some((time, body)) = jwks_remote::decode_stored(&bytes)
        {
            fetched_at = Some(time);
            if jwks.loaded_cas.get(&index) != Some(&cas) {
                match jwks_remote::parse(body, &issuer.algorithms, remote.max_keys) {
                    Ok(keys) => {
                        let count = keys.len();
                        if let Some(slot) = worker.remote_keys.get_mut(index) {
                            *slot = Some(RemoteKeySet {
                                keys,
                                fetched_at: time,
                            });
                        }
                        // Tokens verified with a key that may just have been removed must
                        // be verified again.
                        worker.cache.clear();
                        host.log(
                            LogLevel::Info,
                            &format!(
                                "obguard: loaded {count} key(s) for {} (fetched at {time})",
                                issuer.issuer
                            ),
                        );
                    }
                    Err(err) => host.log(
                        LogLevel::Warn,
                        &format!(
                            "obguard: stored JWKS for {} unusable: {}",
                            issuer.issuer,
                            err.reason()
                        ),
                    ),
                }
                jwks.loaded_cas.insert(index, cas);
            }
        }
        if let Some(time) = fetched_at {
            metrics.jwks_age(now.saturating_sub(time));
        }
        // Past `max_stale_s` the keys are dropped, and so are the tokens they verified: a
        // cached token must not outlive the keys that vouched for it.
        if let Some(slot) = worker.remote_keys.get_mut(index)
            && slot.as_ref().is_some_and(|set| !set.is_fresh(remote, now))
        {
            *slot = None;
            worker.cache.clear();
            host.log(
                LogLevel::Warn,
                &format!(
                    "obguard: keys for {} are older than max_stale_s; refusing until a fetch succeeds",
                    issuer.issuer
                ),
            );
        }
        if jwks.in_flight.values().any(|i| *i == index) {
            continue;
        }
        let (last_attempt, attempt_cas) = shared_time(host, &remote.attempt_key());
        let (wanted_at, _) = shared_time(host, &remote.want_key());
        if !remote.fetch_due(now, fetched_at, last_attempt, wanted_at) {
            continue;
        }
        // Claim the attempt with compare-and-swap so one worker fetches, not all of them.
        let claim = host.set_shared_data(&remote.attempt_key(), &now.to_be_bytes(), attempt_cas);
        if claim.is_err() {
            continue;
        }
        let headers = [
            (":method", "GET"),
            (":path", remote.path.as_str()),
            (":authority", remote.authority.as_str()),
            ("accept", "application/json, application/jwk-set+json"),
        ];
        match host.http_call(
            &remote.cluster,
            &headers,
            None,
            Duration::from_millis(remote.timeout_ms),
        ) {
            Ok(token) => {
                jwks.in_flight.insert(token, index);
            }
            Err(err) => {
                metrics.jwks_fetch_failed(FetchError::Dispatch);
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "obguard: cannot fetch JWKS for {} from cluster {}: {err}",
                        issuer.issuer, remote.cluster
                    ),
                );
            }
        }
    }
}

/// A fetch answered (or failed: Envoy reports timeouts, resets and connection failures as a
/// response without headers, whose header reads the host refuses).
pub fn on_response(
    host: &dyn Host,
    config: &FilterConfig,
    jwks: &mut JwksState,
    metrics: &Metrics,
    token: u32,
    body_size: usize,
    now: u64,
) {
    let Some(index) = jwks.in_flight.remove(&token) else {
        return;
    };
    let Some(issuer) = config.issuers.get(index) else {
        return;
    };
    let Some(remote) = &issuer.remote else { return };
    let status = host
        .header_str(HeaderMap::HttpCallResponseHeaders, ":status")
        .and_then(|s| s.parse::<u16>().ok());
    let result = match status {
        None => Err(FetchError::Unreachable),
        Some(200) if body_size > remote.max_bytes => Err(FetchError::TooLarge),
        Some(200) => match host.buffer(Buffer::HttpCallResponseBody, 0, body_size) {
            Ok(body) => {
                jwks_remote::parse(&body, &issuer.algorithms, remote.max_keys).map(|_| body)
            }
            Err(_) => Err(FetchError::Unreachable),
        },
        Some(_) => Err(FetchError::Status),
    };
    match result {
        Ok(body) => {
            let stored = jwks_remote::encode_stored(now, &body);
            match host.set_shared_data(&remote.shared_key, &stored, None) {
                Ok(()) => metrics.jwks_fetched(),
                Err(err) => {
                    metrics.jwks_fetch_failed(FetchError::Dispatch);
                    host.log(
                        LogLevel::Warn,
                        &format!(
                            "obguard: cannot store the JWKS for {} in shared data: {err}",
                            issuer.issuer
                        ),
                    );
                }
            }
        }
        Err(err) => {
            metrics.jwks_fetch_failed(err);
            host.log(
                LogLevel::Warn,
                &format!(
                    "obguard: JWKS fetch for {} failed ({}{}); keeping the last good keys",
                    issuer.issuer,
                    err.reason(),
                    status.map(|s| format!(", status {s}")).unwrap_or_default()
                ),
            );
        }
    }
}

/// An unknown `kid` asks for an early refetch, at most once per `min_refetch_interval_s`.
pub fn request_refetch(
    host: &dyn Host,
    config: &FilterConfig,
    metrics: &Metrics,
    issuer: usize,
    now: u64,
) {
    let Some(remote) = config.issuers.get(issuer).and_then(|i| i.remote.as_ref()) else {
        return;
    };
    let (last_attempt, _) = shared_time(host, &remote.attempt_key());
    let (wanted_at, want_cas) = shared_time(host, &remote.want_key());
    if remote.may_request_refetch(now, last_attempt, wanted_at)
        && host
            .set_shared_data(&remote.want_key(), &now.to_be_bytes(), want_cas)
            .is_ok()
    {
        metrics.jwks_refetch_requested();
    } else {
        metrics.jwks_refetch_suppressed();
    }
}
