//! Security events: what is sent, and the per-worker queue that sends it without ever
//! holding a request back.
//!
//! An event is a CloudEvents 1.0 JSON object (docs/events.md) built when the request is
//! decided, with what an analyst needs to act without a second query: the client, subject,
//! route, verdict, score, the model's reasons with the client's own baseline values, the
//! model digest, the interaction id, threat-intelligence matches, the containment it
//! triggered, and the client's last requests as this worker saw them. It is serialised at
//! once (bounded size) and queued; the plugin's timer POSTs batches
//! (`application/cloudevents-batch+json`) to the webhook cluster, one batch in flight per
//! worker, retrying with exponential back-off. A full queue drops the new event and a batch
//! out of attempts is dropped: both are counted, neither delays a request.

use std::collections::VecDeque;
use std::num::NonZeroUsize;

use lru::LruCache;
use serde::Serialize;
use serde_json::{Value, json};

use super::config::EventsConfig;
use crate::assess::Verdict;
use crate::telemetry::Outcome;

/// CloudEvents `type`s.
pub const TYPE_VERDICT: &str = "io.obguard.security.verdict";
pub const TYPE_REFUSAL: &str = "io.obguard.security.refusal";
pub const TYPE_CONTAINMENT: &str = "io.obguard.security.containment";

/// The `type` of the event a decided request sends, if any: a model or rule verdict at or
/// above `min_verdict`, else a refusal listed by outcome or reason.
pub fn event_type(
    config: &EventsConfig,
    outcome: Outcome,
    reason: Option<&str>,
    verdict: Option<Verdict>,
) -> Option<&'static str> {
    if verdict.is_some_and(|v| v != Verdict::Allow && v >= config.min_verdict) {
        return Some(TYPE_VERDICT);
    }
    let listed_reason = reason.is_some_and(|r| config.reasons.iter().any(|x| x == r));
    (config.outcomes.contains(&outcome) || listed_reason).then_some(TYPE_REFUSAL)
}

/// One of the client's recent requests.
#[derive(Debug, Clone, Serialize)]
pub struct RecentRequest {
    pub at: String,
    pub method: String,
    pub route: Option<String>,
    pub outcome: &'static str,
    pub verdict: Option<&'static str>,
    pub score: Option<f32>,
}

/// Each worker's memory of its clients' last requests: at most `recent_clients` clients
/// (least recently seen evicted) of at most `recent_requests` each.
pub struct RecentRequests {
    per_client: LruCache<String, VecDeque<RecentRequest>>,
    depth: usize,
}

impl RecentRequests {
    pub fn new(config: &EventsConfig) -> Self {
        Self {
            per_client: LruCache::new(
                NonZeroUsize::new(config.recent_clients).unwrap_or(NonZeroUsize::MIN),
            ),
            depth: config.recent_requests,
        }
    }

    /// The client's requests before this one, oldest first.
    pub fn before(&mut self, client: &str) -> Vec<RecentRequest> {
        self.per_client
            .get(client)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn record(&mut self, client: &str, request: RecentRequest) {
        if self.depth == 0 {
            return;
        }
        if let Some(queue) = self.per_client.get_mut(client) {
            if queue.len() >= self.depth {
                queue.pop_front();
            }
            queue.push_back(request);
            return;
        }
        let mut queue = VecDeque::with_capacity(self.depth);
        queue.push_back(request);
        self.per_client.put(client.to_owned(), queue);
    }

    pub fn len(&self) -> usize {
        self.per_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.per_client.is_empty()
    }
}

/// A model reason with how strongly it stands out; `text` carries the client's own usual
/// value where there is one (`hour_rare(03:10, client p=0.002)`).
#[derive(Debug, Clone, Serialize)]
pub struct ReasonDetail {
    pub feature: String,
    pub text: String,
    pub strength: f32,
}

/// A threat-intelligence match.
#[derive(Debug, Clone, Serialize)]
pub struct IntelMatch {
    pub feed: String,
    pub action: &'static str,
    /// What matched: the listed network, ASN or country.
    #[serde(rename = "match")]
    pub matched: String,
}

/// Containment a request triggered.
#[derive(Debug, Clone, Serialize)]
pub struct ContainmentTaken {
    /// `quarantine_client`, `quarantine_subject`, `revoke_token`.
    pub action: &'static str,
    pub playbook: String,
    pub until: String,
}

/// What an event says about its request (`data` of the CloudEvent).
#[derive(Debug, Clone, Serialize)]
pub struct EventData {
    pub at: String,
    pub interaction_id: String,
    pub client_id: Option<String>,
    pub subject: Option<String>,
    pub route: Option<String>,
    pub method: String,
    /// Without the query string (which may carry personal data).
    pub path: String,
    pub client_ip: Option<String>,
    pub outcome: &'static str,
    pub reason: Option<String>,
    /// The local reply's status; `null` for a forwarded request (decided before the
    /// upstream answers).
    pub status: Option<u16>,
    pub verdict: Option<&'static str>,
    pub score: Option<f32>,
    pub risk_band: Option<&'static str>,
    pub reasons: Vec<ReasonDetail>,
    pub model: Option<Value>,
    pub intel: Vec<IntelMatch>,
    pub containment: Option<ContainmentTaken>,
    /// The client's requests before this one on the emitting worker, oldest first.
    pub recent: Vec<RecentRequest>,
}

/// The CloudEvent, serialised: `id` is fresh for every event (the interaction id may be
/// the client's, and repeat).
pub fn to_cloudevent(
    config: &EventsConfig,
    event_type: &str,
    id: &str,
    data: &EventData,
) -> String {
    let event = json!({
        "specversion": "1.0",
        "id": id,
        "source": config.source,
        "type": event_type,
        "subject": data.client_id,
        "time": data.at,
        "datacontenttype": "application/json",
        "data": data,
    });
    event.to_string()
}

/// Why an event was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The queue was full when the event came.
    QueueFull,
    /// Its batch failed `max_attempts` times.
    Undeliverable,
}

impl Dropped {
    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::QueueFull => "queue_full",
            Dropped::Undeliverable => "undeliverable",
        }
    }
}

/// A batch on its way (or waiting for its retry).
#[derive(Debug)]
struct Batch {
    events: Vec<String>,
    attempts: u32,
    due_ms: u64,
}

/// One worker's events waiting to be sent.
#[derive(Debug)]
pub struct EventQueue {
    pending: VecDeque<String>,
    /// A failed batch waiting for its retry (it goes before newer events).
    retry: Option<Batch>,
    in_flight: Option<Batch>,
    max: usize,
    batch_max: usize,
    max_attempts: u32,
    backoff_initial_ms: u64,
    backoff_max_ms: u64,
}

/// What happened to a batch that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// Retried at this time (Unix ms).
    RetryAt(u64),
    /// Out of attempts: this many events dropped.
    Dropped(usize),
}

impl EventQueue {
    pub fn new(config: &EventsConfig) -> Self {
        Self {
            pending: VecDeque::new(),
            retry: None,
            in_flight: None,
            max: config.queue_max,
            batch_max: config.batch_max,
            max_attempts: config.max_attempts,
            backoff_initial_ms: config.backoff_initial_ms,
            backoff_max_ms: config.backoff_max_ms,
        }
    }

    /// Queues an event; never blocks, never grows past `queue_max`.
    pub fn push(&mut self, event: String) -> Result<(), Dropped> {
        if self.pending.len() >= self.max {
            return Err(Dropped::QueueFull);
        }
        self.pending.push_back(event);
        Ok(())
    }

    /// Events waiting (not in flight).
    pub fn depth(&self) -> usize {
        self.pending.len() + self.retry.as_ref().map_or(0, |b| b.events.len())
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The next POST body, when nothing is in flight and something is due: the retried
    /// batch first, else up to `batch_max` queued events. The batch is in flight until
    /// [`EventQueue::delivered`] or [`EventQueue::failed`].
    pub fn next_body(&mut self, now_ms: u64) -> Option<(String, usize)> {
        if self.in_flight.is_some() {
            return None;
        }
        let batch = match self.retry.take() {
            Some(batch) if batch.due_ms <= now_ms => batch,
            Some(batch) => {
                self.retry = Some(batch);
                return None;
            }
            None if self.pending.is_empty() => return None,
            None => {
                let take = self.pending.len().min(self.batch_max);
                Batch {
                    events: self.pending.drain(..take).collect(),
                    attempts: 0,
                    due_ms: now_ms,
                }
            }
        };
        let body = format!("[{}]", batch.events.join(","));
        let count = batch.events.len();
        self.in_flight = Some(Batch {
            attempts: batch.attempts + 1,
            ..batch
        });
        Some((body, count))
    }

    /// The webhook took the batch in flight; returns how many events it held.
    pub fn delivered(&mut self) -> usize {
        self.in_flight.take().map_or(0, |b| b.events.len())
    }

    /// The batch in flight failed: retried after `backoff_initial_ms × 2^(attempts-1)`
    /// (capped), or dropped after `max_attempts`.
    pub fn failed(&mut self, now_ms: u64) -> Option<Failed> {
        let batch = self.in_flight.take()?;
        if batch.attempts >= self.max_attempts {
            return Some(Failed::Dropped(batch.events.len()));
        }
        let shift = batch.attempts.saturating_sub(1).min(20);
        let wait = self
            .backoff_initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.backoff_max_ms);
        let due_ms = now_ms.saturating_add(wait);
        self.retry = Some(Batch { due_ms, ..batch });
        Some(Failed::RetryAt(due_ms))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::respond::config::RawEvents;

    fn config(extra: Value) -> EventsConfig {
        let mut raw = json!({"cluster": "soc"});
        if let (Some(raw), Some(extra)) = (raw.as_object_mut(), extra.as_object()) {
            raw.extend(extra.clone());
        }
        let raw: RawEvents = serde_json::from_value(raw).unwrap();
        EventsConfig::compile("events", &raw).unwrap()
    }

    #[test]
    fn verdicts_above_the_level_and_listed_refusals_send_events() {
        let c = config(json!({"min_verdict": "throttle"}));
        assert_eq!(
            event_type(&c, Outcome::Blocked, Some("risk"), Some(Verdict::Block)),
            Some(TYPE_VERDICT)
        );
        assert_eq!(
            event_type(&c, Outcome::Challenged, Some("risk"), Some(Verdict::StepUp)),
            None
        );
        assert_eq!(
            event_type(&c, Outcome::ConsentDenied, Some("consent_mismatch"), None),
            Some(TYPE_REFUSAL)
        );
        assert_eq!(
            event_type(&c, Outcome::InvalidToken, Some("dpop_proof_replayed"), None),
            Some(TYPE_REFUSAL)
        );
        assert_eq!(
            event_type(&c, Outcome::InvalidToken, Some("expired"), None),
            None
        );
        assert_eq!(
            event_type(&c, Outcome::Allowed, None, Some(Verdict::Allow)),
            None
        );
    }

    #[test]
    fn the_queue_is_bounded_batches_and_backs_off() {
        let c = config(json!({"queue_max": 3, "batch_max": 2, "max_attempts": 3,
            "backoff_initial_ms": 100, "backoff_max_ms": 150}));
        let mut q = EventQueue::new(&c);
        for i in 0..3 {
            q.push(format!("{{\"n\":{i}}}")).unwrap();
        }
        assert_eq!(q.push("{}".into()), Err(Dropped::QueueFull));
        let (body, n) = q.next_body(0).unwrap();
        assert_eq!((body.as_str(), n), ("[{\"n\":0},{\"n\":1}]", 2));
        assert!(q.next_body(0).is_none(), "one batch in flight");
        assert_eq!(q.failed(1000), Some(Failed::RetryAt(1100)));
        assert!(q.next_body(1050).is_none(), "backing off");
        assert_eq!(q.next_body(1100).unwrap().0, "[{\"n\":0},{\"n\":1}]");
        assert_eq!(q.failed(2000), Some(Failed::RetryAt(2150)), "capped");
        q.next_body(2150).unwrap();
        assert_eq!(q.failed(3000), Some(Failed::Dropped(2)));
        let (body, _) = q.next_body(3000).unwrap();
        assert_eq!(body, "[{\"n\":2}]");
        assert_eq!(q.delivered(), 1);
        assert_eq!(q.depth(), 0);
        assert!(q.next_body(4000).is_none());
    }

    #[test]
    fn recent_requests_are_bounded_per_client_and_in_clients() {
        let c = config(json!({"recent_requests": 2, "recent_clients": 2}));
        let mut recent = RecentRequests::new(&c);
        let r = |n: u32| RecentRequest {
            at: n.to_string(),
            method: "GET".into(),
            route: None,
            outcome: "allowed",
            verdict: None,
            score: None,
        };
        for n in 0..3 {
            recent.record("a", r(n));
        }
        let seen: Vec<String> = recent.before("a").into_iter().map(|r| r.at).collect();
        assert_eq!(seen, ["1", "2"]);
        recent.record("b", r(9));
        recent.record("c", r(9));
        assert_eq!(recent.len(), 2);
        assert!(recent.before("a").is_empty(), "least recently seen evicted");
    }

    #[test]
    fn a_cloudevent_has_the_required_attributes() {
        let c = config(json!({"source": "urn:bank:test"}));
        let data = EventData {
            at: "2026-12-01T10:00:00.000Z".into(),
            interaction_id: "i".into(),
            client_id: Some("tpp@ns".into()),
            subject: None,
            route: Some("accounts".into()),
            method: "GET".into(),
            path: "/accounts".into(),
            client_ip: None,
            outcome: "blocked",
            reason: Some("risk".into()),
            status: Some(403),
            verdict: Some("block"),
            score: Some(0.9),
            risk_band: Some("high"),
            reasons: Vec::new(),
            model: None,
            intel: Vec::new(),
            containment: None,
            recent: Vec::new(),
        };
        let event: Value =
            serde_json::from_str(&to_cloudevent(&c, TYPE_VERDICT, "id-1", &data)).unwrap();
        for attribute in [
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "subject",
            "data",
        ] {
            assert!(event.get(attribute).is_some(), "{attribute}");
        }
        assert_eq!(event["source"], "urn:bank:test");
        assert_eq!(event["data"]["verdict"], "block");
    }
}
