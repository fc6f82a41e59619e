//! Model-file polling: the plugin's timer polls HTTP model sources (one worker at a time,
//! claimed with compare-and-swap), keeps the last accepted file in shared data, and every
//! worker swaps to a file it has not loaded yet. What is accepted is decided in
//! `assess/model_source.rs`.
//!
//! The swap is one `Arc` replacement in the worker: a request holds the model it started
//! with, and baselines are keyed by client, not by model, so they survive.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::metrics::Metrics;
use crate::assess::model::ModelStage;
use crate::assess::model_source::{self, HttpSource, LoadedModel, ModelSource, Role};
use crate::config::FilterConfig;
use crate::host::{Buffer, HeaderMap, Host, HostExt, LogLevel};
use crate::pipeline::Worker;

/// Per-worker bookkeeping for HTTP model sources.
#[derive(Default)]
pub struct ModelSourceState {
    /// Digest of the stored file each role last tried to load (to notice new fetches, and
    /// not to re-check a file this worker refused on every tick).
    tried: HashMap<&'static str, Vec<u8>>,
    /// In-flight polls: call token → role.
    in_flight: HashMap<u32, Role>,
    /// Polls answered while no model is loaded yet are logged once, not every tick.
    warned_unavailable: bool,
}

impl ModelSourceState {
    pub fn owns(&self, token: u32) -> bool {
        self.in_flight.contains_key(&token)
    }
}

fn sources(stage: &ModelStage) -> impl Iterator<Item = (Role, &ModelSource)> {
    std::iter::once((Role::Primary, &stage.primary))
        .chain(stage.shadow_model.iter().map(|s| (Role::Shadow, s)))
}

fn slot(worker: &mut Worker, role: Role) -> &mut Option<Arc<LoadedModel>> {
    match role {
        Role::Primary => &mut worker.models.primary,
        Role::Shadow => &mut worker.models.shadow,
    }
}

fn digest_of(model: Option<&Arc<LoadedModel>>) -> &str {
    model.map_or("none", |m| m.short_digest())
}

/// Loads files other workers fetched, and starts polls that are due.
pub fn on_tick(
    host: &dyn Host,
    config: &FilterConfig,
    worker: &mut Worker,
    state: &mut ModelSourceState,
    metrics: &Metrics,
) {
    let Some(stage) = &config.model else { return };
    for (role, source) in sources(stage) {
        let Some(http) = &source.http else { continue };
        let (head, _) = host
            .shared_data(&http.head_key(role))
            .unwrap_or((None, None));
        let mut etag = None;
        if let Some(head) = head.as_deref().and_then(model_source::decode_stored) {
            etag = head.etag.map(str::to_owned);
            if state.tried.get(role.as_str()).map(Vec::as_slice) != Some(head.digest) {
                state.tried.insert(role.as_str(), head.digest.to_vec());
                if let Ok((Some(file), _)) = host.shared_data(&http.file_key(role)) {
                    load(host, stage, source, worker, metrics, role, &file);
                }
            }
        }
        if role == Role::Primary && worker.models.primary.is_none() && !state.warned_unavailable {
            state.warned_unavailable = true;
            host.log(
                LogLevel::Warn,
                &format!(
                    "obguard: no model accepted yet from cluster {} path {}; requests are {}",
                    http.cluster,
                    http.path,
                    match stage.when_unavailable {
                        crate::assess::model::WhenUnavailable::Allow => "allowed unscored",
                        crate::assess::model::WhenUnavailable::Refuse { .. } => "refused (503)",
                    }
                ),
            );
        }
        if state.in_flight.values().any(|r| *r == role) {
            continue;
        }
        poll(
            host,
            http,
            role,
            etag.as_deref(),
            slot(worker, role).is_some(),
            state,
            metrics,
        );
    }
}

/// A worker's swap: the file was checked by the worker that fetched it; checking again here
/// costs one signature verification per worker and swap, and guards against a worker whose
/// configuration trusts different keys.
fn load(
    host: &dyn Host,
    stage: &ModelStage,
    source: &ModelSource,
    worker: &mut Worker,
    metrics: &Metrics,
    role: Role,
    file: &[u8],
) {
    let current = slot(worker, role);
    match model_source::accept(file, &stage.trust, source.pin.as_deref()) {
        Ok(loaded) if current.as_ref().is_some_and(|m| m.digest == loaded.digest) => {}
        Ok(loaded) => {
            host.log(
                LogLevel::Info,
                &format!(
                    "obguard: {} model is now {} (was {})",
                    role.as_str(),
                    loaded.digest,
                    digest_of(current.as_ref())
                ),
            );
            *current = Some(Arc::new(loaded));
            metrics.model_swapped(role);
        }
        Err(rejection) => {
            metrics.model_rejected(role, rejection.reason);
            host.log(
                LogLevel::Warn,
                &format!(
                    "obguard: stored {} model refused ({}): {}; still serving {}",
                    role.as_str(),
                    rejection.reason,
                    rejection.message,
                    digest_of(current.as_ref())
                ),
            );
        }
    }
}

fn poll(
    host: &dyn Host,
    http: &HttpSource,
    role: Role,
    etag: Option<&str>,
    have_model: bool,
    state: &mut ModelSourceState,
    metrics: &Metrics,
) {
    let now = host.now_secs();
    let (attempt, attempt_cas) = match host.shared_data(&http.attempt_key(role)) {
        Ok((bytes, cas)) => (
            bytes
                .as_deref()
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes),
            cas,
        ),
        Err(_) => (None, None),
    };
    if !http.fetch_due(now, attempt, have_model) {
        return;
    }
    // Claim the attempt with compare-and-swap so one worker polls, not all of them.
    if host
        .set_shared_data(&http.attempt_key(role), &now.to_be_bytes(), attempt_cas)
        .is_err()
    {
        return;
    }
    let mut headers = vec![
        (":method", "GET"),
        (":path", http.path.as_str()),
        (":authority", http.authority.as_str()),
        ("accept", "application/octet-stream"),
    ];
    if let Some(etag) = etag {
        headers.push(("if-none-match", etag));
    }
    match host.http_call(
        &http.cluster,
        &headers,
        None,
        Duration::from_millis(http.timeout_ms),
    ) {
        Ok(token) => {
            state.in_flight.insert(token, role);
        }
        Err(err) => {
            metrics.model_fetch_failed(role, "dispatch");
            host.log(
                LogLevel::Warn,
                &format!(
                    "obguard: cannot poll the {} model from cluster {}: {err}",
                    role.as_str(),
                    http.cluster
                ),
            );
        }
    }
}

/// A poll answered (Envoy reports timeouts, resets and connection failures as a response
/// without headers, whose header reads the host refuses). A new file that passes every check goes to shared data, where every worker's
/// next tick picks it up; anything else leaves the serving model alone.
pub fn on_response(
    host: &dyn Host,
    config: &FilterConfig,
    worker: &Worker,
    state: &mut ModelSourceState,
    metrics: &Metrics,
    token: u32,
    body_size: usize,
) {
    let now = host.now_secs();
    let Some(role) = state.in_flight.remove(&token) else {
        return;
    };
    let Some(stage) = &config.model else { return };
    let Some((_, source)) = sources(stage).find(|(r, _)| *r == role) else {
        return;
    };
    let Some(http) = &source.http else { return };
    let serving = match role {
        Role::Primary => worker.models.primary.as_ref(),
        Role::Shadow => worker.models.shadow.as_ref(),
    };
    let status = host
        .header_str(HeaderMap::HttpCallResponseHeaders, ":status")
        .and_then(|s| s.parse::<u16>().ok());
    let failed = |reason: &str, detail: String| {
        metrics.model_fetch_failed(role, reason);
        host.log(
            LogLevel::Warn,
            &format!(
                "obguard: polling the {} model from cluster {} path {} failed ({reason}{detail}); \
                 still serving {}",
                role.as_str(),
                http.cluster,
                http.path,
                digest_of(serving)
            ),
        );
    };
    match status {
        None => failed("unreachable", String::new()),
        Some(304) => metrics.model_not_modified(role),
        Some(200) if body_size > http.max_bytes => failed(
            "too_large",
            format!(", {body_size} bytes > max_bytes {}", http.max_bytes),
        ),
        Some(200) => {
            let body = match host.buffer(Buffer::HttpCallResponseBody, 0, body_size) {
                Ok(body) => body,
                Err(err) => return failed("unreachable", format!(", body: {err}")),
            };
            // An ETag that is not a visible-ASCII entity tag cannot be sent back in
            // `If-None-Match`; without one the file is recognised by its digest instead.
            let etag = host
                .header(HeaderMap::HttpCallResponseHeaders, "etag")
                .ok()
                .flatten()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .filter(|etag| usable_etag(etag));
            // Servers without ETags (Envoy's file_server) answer 200 every time: the same
            // digest as the serving model means the same model, whatever its signature block.
            let digest = obguard_models::file_digest(&body)
                .ok()
                .map(|d| obguard_models::schema::hex(&d));
            if digest.is_some() && serving.map(|m| &m.digest) == digest.as_ref() {
                metrics.model_not_modified(role);
                return;
            }
            match model_source::accept(&body, &stage.trust, source.pin.as_deref()) {
                Ok(loaded) => {
                    // The file first: a worker that sees the new head finds its file.
                    let head =
                        model_source::encode_stored(now, etag.as_deref(), loaded.digest.as_bytes());
                    let stored = host
                        .set_shared_data(&http.file_key(role), &body, None)
                        .and_then(|()| host.set_shared_data(&http.head_key(role), &head, None));
                    match stored {
                        Ok(()) => {
                            metrics.model_fetched(role);
                            host.log(
                                LogLevel::Info,
                                &format!(
                                    "obguard: fetched {} model {} from cluster {} path {}",
                                    role.as_str(),
                                    loaded.digest,
                                    http.cluster,
                                    http.path
                                ),
                            );
                        }
                        Err(err) => failed("store", format!(", shared data: {err}")),
                    }
                }
                Err(rejection) => {
                    metrics.model_rejected(role, rejection.reason);
                    host.log(
                        LogLevel::Warn,
                        &format!(
                            "obguard: {} model file from cluster {} path {} refused ({}): {}; \
                             still serving {}",
                            role.as_str(),
                            http.cluster,
                            http.path,
                            rejection.reason,
                            rejection.message,
                            digest_of(serving)
                        ),
                    );
                }
            }
        }
        Some(other) => failed("status", format!(", status {other}")),
    }
}

/// RFC 9110 entity tags are visible ASCII; anything else (or anything huge) is not echoed.
fn usable_etag(etag: &str) -> bool {
    !etag.is_empty() && etag.len() <= 256 && etag.bytes().all(|b| (0x21..=0x7e).contains(&b))
}
