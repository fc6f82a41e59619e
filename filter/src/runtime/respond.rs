//! The runtime side of automated response (`crate::respond`): after each decided request,
//! the playbooks and the security event; on the timer, the shared containment list's reload
//! and sweep, and the event POSTs to the webhook. Nothing here holds a request back: an
//! event is queued in memory and sent by the timer, and a playbook costs shared-data writes
//! only for the requests it matches.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::list_poll::{Fetched, PollState, Refresh};
use super::metrics::Metrics;
use super::plugin::Shared;
use crate::config::FilterConfig;
use crate::enforce::interaction_id;
use crate::host::{HeaderMap, Host, HostExt, LogLevel};
use crate::pipeline::{Action, Decision, RequestView, Worker};
use crate::respond::config::LOCAL_LIST_KEY;
use crate::respond::containment::{
    Facts, PlaybookFate, Subject, add_entry, decode_list, parse_external, run_playbooks, sweep,
};
use crate::respond::events::{
    self, ContainmentTaken, EventData, EventQueue, Failed, IntelMatch, ReasonDetail, RecentRequest,
    RecentRequests,
};
use crate::telemetry::metric;

/// Per-worker event state shared by the request streams (which queue) and the timer (which
/// sends).
pub struct Responder {
    queue: Option<RefCell<EventQueue>>,
    recent: Option<RefCell<RecentRequests>>,
    /// The queue refused an event since the last one it took (the drop was logged).
    dropping: Cell<bool>,
}

impl Responder {
    pub fn new(config: &FilterConfig) -> Self {
        Self {
            queue: config
                .events
                .as_ref()
                .map(|e| RefCell::new(EventQueue::new(e))),
            recent: config
                .events
                .as_ref()
                .map(|e| RefCell::new(RecentRequests::new(e))),
            dropping: Cell::new(false),
        }
    }
}

/// The timer's bookkeeping (the plugin owns it).
#[derive(Default)]
pub struct Delivery {
    /// The event POST in flight.
    in_flight: Option<u32>,
    /// Version of the shared local list this worker last loaded.
    local_cas: Option<u32>,
    /// The external containment list's polling.
    list: PollState,
}

impl Delivery {
    pub fn owns(&self, token: u32) -> bool {
        self.in_flight == Some(token) || self.list.owns(token).is_some()
    }
}

/// RFC 3339 with milliseconds, UTC (CloudEvents `time`).
pub fn rfc3339(ms: u64) -> String {
    let nanos = i128::from(ms).saturating_mul(1_000_000);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Playbooks, then the request's security event (and one per containment it triggered).
pub fn after_decision(
    host: &dyn Host,
    state: &Shared,
    view: &RequestView<'_>,
    decision: &Decision<'_>,
    now_ms: u64,
) {
    let config = &state.config;
    if config.events.is_none() && config.containment.is_none() {
        return;
    }
    let verdict = decision.assessment.map(|a| a.verdict);
    let taken = match (&config.containment, decision.client_id.as_deref()) {
        (Some(containment), Some(client)) if !containment.playbooks.is_empty() => {
            let facts = Facts {
                outcome: decision.outcome,
                reason: decision.reason,
                verdict,
                who: Subject {
                    client,
                    subject: decision.subject.as_deref(),
                    jti: decision.jti.as_deref(),
                    token: None,
                },
                token_hash: decision.token_hash,
                now_ms,
            };
            run_matching_playbooks(host, state, containment, &facts)
        }
        _ => Vec::new(),
    };
    let (Some(events), Some(queue), Some(recent)) = (
        &config.events,
        &state.responder.queue,
        &state.responder.recent,
    ) else {
        return;
    };
    let (Ok(mut queue), Ok(mut recent)) = (queue.try_borrow_mut(), recent.try_borrow_mut()) else {
        return;
    };
    let at = rfc3339(now_ms);
    let score = decision.trace.model.as_ref().map(|s| s.score);
    let event_type = events::event_type(events, decision.outcome, decision.reason, verdict);
    let sends = event_type.is_some() || !taken.is_empty();
    let before = match decision.client_id.as_deref() {
        Some(client) => {
            // The history is copied only for a request that sends an event.
            let history = if sends {
                recent.before(client)
            } else {
                Vec::new()
            };
            recent.record(
                client,
                RecentRequest {
                    at: at.clone(),
                    method: view.method.to_owned(),
                    route: decision.route.map(str::to_owned),
                    outcome: decision.outcome.as_str(),
                    verdict: verdict.map(|v| v.as_str()),
                    score,
                },
            );
            history
        }
        None => Vec::new(),
    };
    if !sends {
        return;
    }
    let mut data = EventData {
        at,
        interaction_id: decision.interaction_id.clone(),
        client_id: decision.client_id.clone(),
        subject: decision.subject.clone(),
        route: decision.route.map(str::to_owned),
        method: view.method.to_owned(),
        path: view.path.split('?').next().unwrap_or("").to_owned(),
        client_ip: trusted_client_ip(config, view),
        outcome: decision.outcome.as_str(),
        reason: decision.reason.map(str::to_owned),
        status: match &decision.action {
            Action::Reply(reply) => Some(reply.status),
            _ => None,
        },
        verdict: verdict.map(|v| v.as_str()),
        score,
        risk_band: decision.assessment.map(|a| a.risk_band.as_str()),
        reasons: reason_details(decision),
        model: decision
            .trace
            .model
            .as_ref()
            .map(|s| json!({"digest": s.model.digest})),
        intel: intel_matches(config, decision),
        containment: None,
        recent: before,
    };
    let mut queued = Vec::new();
    if let Some(event_type) = event_type {
        queued.push(events::to_cloudevent(
            events,
            event_type,
            &interaction_id::resolve(None),
            &data,
        ));
    }
    for action in taken {
        data.containment = Some(action);
        queued.push(events::to_cloudevent(
            events,
            events::TYPE_CONTAINMENT,
            &interaction_id::resolve(None),
            &data,
        ));
    }
    for event in queued {
        match queue.push(event) {
            Ok(()) => {
                state.metrics.count(metric::EVENTS_QUEUED, 1);
                state.responder.dropping.set(false);
            }
            Err(dropped) => {
                state
                    .metrics
                    .count(&metric::events_dropped(dropped.as_str()), 1);
                // Once per episode: a full queue drops every new event until it drains.
                if !state.responder.dropping.replace(true) {
                    host.log(
                        LogLevel::Warn,
                        &format!(
                            "obguard: security-event queue full ({} events; the webhook on cluster {} is slow or down); dropping new events until it drains",
                            events.queue_max, events.cluster
                        ),
                    );
                }
            }
        }
    }
}

/// The model's reasons with their features and strengths, after a rule hit's.
fn reason_details(decision: &Decision<'_>) -> Vec<ReasonDetail> {
    let mut out = Vec::new();
    if let Some(hit) = decision.trace.rules.as_ref().and_then(|c| c.hit.as_ref()) {
        out.push(ReasonDetail {
            feature: "rule".to_owned(),
            text: hit.reason.clone(),
            strength: 1.0,
        });
    }
    if let Some(scored) = &decision.trace.model {
        out.extend(scored.explained.iter().map(|r| ReasonDetail {
            feature: r.feature.to_owned(),
            text: r.text.clone(),
            strength: r.strength,
        }));
    }
    out
}

/// The caller's address as the model sees it (never the client-written leftmost
/// `x-forwarded-for` entry).
fn trusted_client_ip(config: &FilterConfig, view: &RequestView<'_>) -> Option<String> {
    let source = config
        .model
        .as_ref()
        .map(|m| &m.client_ip)
        .or_else(|| config.threat_intel.as_ref().map(|t| &t.client_ip))?;
    source
        .resolve(view.headers, view.source_address)
        .map(|ip| ip.to_string())
}

fn intel_matches(config: &FilterConfig, decision: &Decision<'_>) -> Vec<IntelMatch> {
    let Some(intel) = &config.threat_intel else {
        return Vec::new();
    };
    decision
        .trace
        .intel
        .iter()
        .filter_map(|hit| {
            Some(IntelMatch {
                feed: intel.feeds.get(hit.feed)?.name.clone(),
                action: hit.action.as_str(),
                matched: hit.matched.clone(),
            })
        })
        .collect()
}

/// A loss or a degradation is both counted and told: the counter for dashboards and alerts,
/// the warn line for the operator reading the log.
fn warn_counted(host: &dyn Host, state: &Shared, counter: &str, message: &str) {
    state.metrics.count(counter, 1);
    host.log(LogLevel::Warn, message);
}

/// Runs the playbooks this request matches; adds what they trigger to the shared list and
/// this worker's view. Returns what was taken, for the containment events.
fn run_matching_playbooks(
    host: &dyn Host,
    state: &Shared,
    containment: &crate::respond::config::ContainmentConfig,
    facts: &Facts<'_>,
) -> Vec<ContainmentTaken> {
    let Ok(mut worker) = state.worker.try_borrow_mut() else {
        return Vec::new();
    };
    let worker = &mut *worker;
    let now = facts.now_ms / 1000;
    let mut taken = Vec::new();
    for (playbook, fate) in run_playbooks(containment, worker.shared_slots.as_mut(), facts) {
        match fate {
            PlaybookFate::Triggered(entry) => {
                state
                    .metrics
                    .count(&metric::playbook_triggered(&playbook.name), 1);
                match add_entry(
                    worker.shared_slots.as_mut(),
                    entry,
                    containment.max_entries,
                    now,
                ) {
                    Some(written) => {
                        worker.containment.add_local(entry);
                        state
                            .metrics
                            .count(&metric::containment_added(playbook.action.as_str()), 1);
                        state
                            .metrics
                            .count(metric::CONTAINMENT_EXPIRED, written.expired);
                        if written.evicted > 0 {
                            state
                                .metrics
                                .count(metric::CONTAINMENT_EVICTED, written.evicted);
                            host.log(
                                LogLevel::Warn,
                                &format!(
                                    "obguard: containment list full (max_entries {}): {} entry(ies) expiring first gave way",
                                    containment.max_entries, written.evicted
                                ),
                            );
                        }
                        let until = rfc3339(entry.expires_at.saturating_mul(1000));
                        host.log(
                            LogLevel::Warn,
                            &format!(
                                "obguard: playbook {} took {} for {} until {until}",
                                playbook.name,
                                playbook.action.as_str(),
                                facts.who.client,
                            ),
                        );
                        taken.push(ContainmentTaken {
                            action: playbook.action.as_str(),
                            playbook: playbook.name.clone(),
                            until,
                        });
                    }
                    None => warn_counted(
                        host,
                        state,
                        metric::CONTAINMENT_LOST,
                        &format!(
                            "obguard: playbook {} triggered for {} but the shared list did not take the entry",
                            playbook.name, facts.who.client
                        ),
                    ),
                }
            }
            PlaybookFate::NotCounted => warn_counted(
                host,
                state,
                metric::CONTAINMENT_NOT_COUNTED,
                &format!(
                    "obguard: playbook {} did not count {} (no free counter slot, or the shared write lost its retries; see containment.counter_slots)",
                    playbook.name, facts.who.client
                ),
            ),
            PlaybookFate::Counted | PlaybookFate::NotApplicable => {}
        }
    }
    taken
}

/// The timer: the shared local list's expired entries swept and a newer version loaded;
/// the gauges; and the next event batch sent when nothing is in flight.
pub fn on_tick(
    host: &dyn Host,
    state: &Shared,
    worker: &mut Worker,
    delivery: &mut Delivery,
    now_ms: u64,
) {
    let config = &state.config;
    let now = now_ms / 1000;
    if config.containment.is_some() {
        let expired = sweep(worker.shared_slots.as_mut(), now);
        state.metrics.count(metric::CONTAINMENT_EXPIRED, expired);
        let slot = worker.shared_slots.load(LOCAL_LIST_KEY);
        if slot.cas != delivery.local_cas {
            let entries = slot.bytes.as_deref().map(decode_list).unwrap_or_default();
            worker.containment.load_local(&entries);
            delivery.local_cas = slot.cas;
        }
        external_list(host, state, worker, delivery, now);
        let (quarantines, revocations) = worker.containment.active(now);
        state
            .metrics
            .gauge(&metric::containment_active("quarantine"), quarantines);
        state
            .metrics
            .gauge(&metric::containment_active("revocation"), revocations);
    }
    send_events(host, state, delivery, now_ms);
}

/// The external list: loaded when another version was stored, dropped when stale, fetched
/// when due. A failed fetch keeps the last good list (its entries still expire).
fn external_list(
    host: &dyn Host,
    state: &Shared,
    worker: &mut Worker,
    delivery: &mut Delivery,
    now: u64,
) {
    let Some(containment) = &state.config.containment else {
        return;
    };
    let Some(source) = &containment.list else {
        return;
    };
    match delivery.list.refresh(host, 0, source, now) {
        Refresh::Load(body) => match parse_external(&body, containment.list_max_entries, now) {
            Ok(entries) => {
                host.log(
                    LogLevel::Info,
                    &format!(
                        "obguard: loaded the containment list ({} entries)",
                        entries.len()
                    ),
                );
                worker.containment.load_external(&entries);
            }
            Err(err) => host.log(
                LogLevel::Warn,
                &format!("obguard: stored containment list unusable: {err}"),
            ),
        },
        Refresh::BecameStale => {
            worker.containment.drop_external();
            warn_counted(
                host,
                state,
                &metric::containment_list("stale"),
                &format!(
                    "obguard: the containment list is older than max_stale_s ({} s); its entries are no longer applied",
                    source.max_stale_s
                ),
            );
        }
        Refresh::Unchanged => {}
    }
    if let Err(err) = delivery.list.start_if_due(host, 0, source, now) {
        list_fetch_failed(host, &state.metrics, source, err, None);
    }
}

/// A failed fetch of the external list: counted by reason, one warn line.
fn list_fetch_failed(
    host: &dyn Host,
    metrics: &Metrics,
    source: &crate::polled::PolledSource,
    err: crate::polled::PollError,
    why: Option<String>,
) {
    metrics.count(&metric::containment_list_failed(err.reason()), 1);
    host.log(
        LogLevel::Warn,
        &format!(
            "obguard: containment list fetch from cluster {} failed ({}{}); keeping the last good list",
            source.cluster,
            err.reason(),
            why.map(|w| format!(": {w}")).unwrap_or_default()
        ),
    );
}

fn send_events(host: &dyn Host, state: &Shared, delivery: &mut Delivery, now_ms: u64) {
    let (Some(events), Some(queue)) = (&state.config.events, &state.responder.queue) else {
        return;
    };
    let Ok(mut queue) = queue.try_borrow_mut() else {
        return;
    };
    state
        .metrics
        .gauge(metric::EVENTS_QUEUE_DEPTH, queue.depth());
    if delivery.in_flight.is_some() {
        return;
    }
    let Some((body, _count)) = queue.next_body(now_ms) else {
        return;
    };
    let mut headers: Vec<(&str, &str)> = vec![
        (":method", "POST"),
        (":path", events.path.as_str()),
        (":authority", events.authority.as_str()),
        ("content-type", "application/cloudevents-batch+json"),
    ];
    headers.extend(events.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    match host.http_call(
        &events.cluster,
        &headers,
        Some(body.as_bytes()),
        Duration::from_millis(events.timeout_ms),
    ) {
        Ok(token) => delivery.in_flight = Some(token),
        Err(err) => {
            host.log(
                LogLevel::Warn,
                &format!(
                    "obguard: cannot send security events to cluster {}: {err}",
                    events.cluster
                ),
            );
            state.metrics.count(&metric::events_failed("dispatch"), 1);
            record_failure(&state.metrics, queue.failed(now_ms));
        }
    }
}

fn record_failure(metrics: &Metrics, failed: Option<Failed>) {
    match failed {
        Some(Failed::RetryAt(_)) => metrics.count(metric::EVENTS_RETRIED, 1),
        Some(Failed::Dropped(n)) => metrics.count(
            &metric::events_dropped(events::Dropped::Undeliverable.as_str()),
            n,
        ),
        None => {}
    }
}

/// The webhook answered the batch in flight (2xx: taken), or the POST failed; or the
/// external containment list answered.
pub fn on_response(
    host: &dyn Host,
    state: &Shared,
    delivery: &mut Delivery,
    token: u32,
    body_size: usize,
    now_ms: u64,
) {
    if delivery.list.owns(token).is_some() {
        list_answered(host, state, delivery, token, body_size, now_ms / 1000);
        return;
    }
    delivery.in_flight = None;
    let (Some(events), Some(queue)) = (&state.config.events, &state.responder.queue) else {
        return;
    };
    let Ok(mut queue) = queue.try_borrow_mut() else {
        return;
    };
    let status = host
        .header_str(HeaderMap::HttpCallResponseHeaders, ":status")
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200..=299) => {
            let sent = queue.delivered();
            state.metrics.count(metric::EVENTS_SENT, sent);
        }
        _ => {
            let reason = if status.is_some() {
                "status"
            } else {
                "unreachable"
            };
            state.metrics.count(&metric::events_failed(reason), 1);
            let failed = queue.failed(now_ms);
            host.log(
                LogLevel::Warn,
                &format!(
                    "obguard: security events not accepted by cluster {} ({reason}{}); {}",
                    events.cluster,
                    status.map(|s| format!(" {s}")).unwrap_or_default(),
                    match failed {
                        Some(Failed::RetryAt(_)) => "retrying".to_owned(),
                        Some(Failed::Dropped(n)) => format!("dropped {n} after the last attempt"),
                        None => String::new(),
                    }
                ),
            );
            record_failure(&state.metrics, failed);
        }
    }
    // After the answer too, not only at the tick: a delivered batch leaves the queue now.
    state
        .metrics
        .gauge(metric::EVENTS_QUEUE_DEPTH, queue.depth());
}

fn list_answered(
    host: &dyn Host,
    state: &Shared,
    delivery: &mut Delivery,
    token: u32,
    body_size: usize,
    now: u64,
) {
    let Some(containment) = &state.config.containment else {
        return;
    };
    let Some(source) = &containment.list else {
        return;
    };
    let max = containment.list_max_entries;
    let validate = |body: &[u8]| {
        parse_external(body, max, now)
            .map(|e| e.len())
            .map_err(|e| e.to_string())
    };
    match delivery
        .list
        .on_response(host, token, source, body_size, now, &validate)
    {
        Ok(Fetched::Stored { .. }) => state.metrics.count(&metric::containment_list("loaded"), 1),
        Ok(Fetched::NotModified) => state
            .metrics
            .count(&metric::containment_list("not_modified"), 1),
        Err((err, why)) => list_fetch_failed(host, &state.metrics, source, err, why),
    }
}
