//! The behavioural model stage: build the request event, update the caller's baseline, score,
//! and turn the score into a verdict with its reasons. Feature extraction and scoring are
//! `obguard-models`' — the same code the trainer runs, so there is no training/serving skew.

use std::net::IpAddr;
use std::sync::Arc;

use obguard_models::{ExtractConfig, RequestEvent, Thresholds, explain, extract, observe_response};

use super::baselines::{self, BaselineStore};
use super::model_source::{LoadedModel, ModelSource, Trust};
use super::pending::{ObservedResponse, PendingResponses};
use super::{Assessment, RiskBand, Verdict};

/// Compiled `model` configuration. The models themselves live in the worker
/// ([`ActiveModels`]): they can be swapped while the configuration stays.
pub struct ModelStage {
    pub primary: ModelSource,
    /// `shadow_model`: scored and logged next to the primary, never enforced.
    pub shadow_model: Option<ModelSource>,
    pub trust: Trust,
    /// What requests get while no primary model has been accepted yet (HTTP source).
    pub when_unavailable: WhenUnavailable,
    pub extract: ExtractConfig,
    /// `mode: shadow`: the primary's verdicts are logged and counted but not enforced.
    pub shadow: bool,
    pub max_clients: u32,
    pub client_ttl_s: u64,
    pub country_header: Option<String>,
    pub asn_header: Option<String>,
    /// Where the caller's IP comes from (never the leftmost `x-forwarded-for` entry, which
    /// the client writes).
    pub client_ip: ClientIp,
    pub step_up_acr_values: String,
    pub step_up_max_age_s: Option<u64>,
    pub throttle_retry_after_s: u64,
}

/// `model.client_ip`, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIp {
    /// Envoy's `source.address` without its port: the connection's peer, or the client
    /// address Envoy derived itself (`use_remote_address`, `xff_num_trusted_hops`,
    /// `original_ip_detection_extensions`).
    Connection,
    /// The address Envoy would trust with `xff_num_trusted_hops: trusted_hops`: entry
    /// `trusted_hops + 1` from the right of `header` as obguard sees it (Envoy appends the
    /// connection's address before filters run when `use_remote_address` is true, so this is
    /// entry `trusted_hops` from the right of what the previous hop sent). Fewer entries, or
    /// one that is not an IP: `source.address`, as Envoy falls back to the connection.
    Header { name: String, trusted_hops: u32 },
    /// No IP.
    None,
}

impl ClientIp {
    /// The caller's IP for a request with these `headers` and Envoy `source.address`.
    pub fn resolve(
        &self,
        headers: &[(String, String)],
        source_address: Option<&str>,
    ) -> Option<IpAddr> {
        let connection = || source_address.and_then(parse_address);
        match self {
            ClientIp::None => None,
            ClientIp::Connection => connection(),
            ClientIp::Header { name, trusted_hops } => {
                // Repeated header lines are one list, in order (RFC 9110 §5.3).
                let mut entries: Vec<&str> = Vec::new();
                for (_, value) in headers.iter().filter(|(n, _)| n == name) {
                    entries.extend(value.split(',').map(str::trim));
                }
                let hops = usize::try_from(*trusted_hops).unwrap_or(usize::MAX);
                entries
                    .iter()
                    .rev()
                    .nth(hops)
                    .and_then(|entry| parse_address(entry))
                    .or_else(connection)
            }
        }
    }
}

/// An IP from `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678` (Envoy writes `source.address`
/// with the port).
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
        })
}

/// `model.when_unavailable`: no primary model accepted yet (only possible with an HTTP
/// source before its first good file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenUnavailable {
    /// Identity and scopes are still enforced; the request is not scored (counted).
    Allow,
    /// 503 with `Retry-After`.
    Refuse { retry_after_s: u64 },
}

/// The models one worker scores with. Requests take an `Arc` at their start, so a swap
/// never changes the model of a request in flight.
#[derive(Debug, Clone, Default)]
pub struct ActiveModels {
    pub primary: Option<Arc<LoadedModel>>,
    pub shadow: Option<Arc<LoadedModel>>,
}

impl ActiveModels {
    /// The inline models of the configuration (HTTP sources start empty).
    pub fn from_config(stage: Option<&ModelStage>) -> Self {
        Self {
            primary: stage.and_then(|s| s.primary.inline.clone()),
            shadow: stage
                .and_then(|s| s.shadow_model.as_ref())
                .and_then(|s| s.inline.clone()),
        }
    }
}

/// What the model concluded about one request.
#[derive(Debug, Clone)]
pub struct Scored {
    pub score: f32,
    /// The model's verdict (what would be enforced; in shadow mode it is only logged).
    pub verdict: Verdict,
    pub risk_band: RiskBand,
    /// Top reasons, e.g. `new_country(RU)`; empty for `allow`.
    pub reasons: Vec<String>,
    /// The same reasons with their feature and strength (for security events).
    pub explained: Vec<obguard_models::Reason>,
    /// What happened to the client's baseline update (a metric per case).
    pub baseline: BaselineWrite,
    /// The primary model that scored this request.
    pub model: Arc<LoadedModel>,
    /// The shadow model's opinion of the same features, when one is configured and loaded.
    pub shadow: Option<ShadowScore>,
}

/// A shadow model's score and verdict, for side-by-side comparison in the log.
#[derive(Debug, Clone)]
pub struct ShadowScore {
    pub score: f32,
    pub verdict: Verdict,
    pub model: Arc<LoadedModel>,
}

/// The fate of a baseline update. Neither failure changes the verdict; both are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineWrite {
    Stored,
    /// Another active client holds the slot: scored from a fresh baseline, not remembered.
    SlotTaken,
    /// Every compare-and-swap attempt lost, or the store failed: this request is not folded in.
    Lost,
}

impl BaselineWrite {
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineWrite::Stored => "stored",
            BaselineWrite::SlotTaken => "slot_taken",
            BaselineWrite::Lost => "lost",
        }
    }
}

impl Scored {
    /// A threat-intelligence `watch` match: `by` is added to the score (at most 1), the
    /// verdict and band follow the thresholds, and `reason` comes first.
    pub fn raise(&mut self, by: f32, route_thresholds: Option<&Thresholds>, reason: String) {
        let thresholds = route_thresholds.unwrap_or(self.model.model.thresholds());
        self.score = (self.score + by).min(1.0);
        self.verdict = thresholds.verdict(self.score);
        self.risk_band = risk_band(self.score, thresholds);
        self.explained.insert(
            0,
            obguard_models::Reason {
                feature: "threat_intel_watch",
                text: reason.clone(),
                strength: 1.0,
            },
        );
        self.reasons.insert(0, reason);
    }

    /// The assessment the pipeline enforces: the model's, or `allow` in shadow mode.
    pub fn enforced(&self, shadow: bool) -> Assessment {
        Assessment {
            verdict: if shadow { Verdict::Allow } else { self.verdict },
            risk_band: self.risk_band,
        }
    }
}

/// Request facts the model needs beyond the identity.
pub struct RequestFacts<'a> {
    pub now_ms: u64,
    pub client_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(String, String)],
    /// Envoy's `source.address` (`ip:port`), when the host gave it.
    pub source_address: Option<&'a str>,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn risk_band(score: f32, t: &Thresholds) -> RiskBand {
    if score >= t.throttle {
        RiskBand::High
    } else if score >= t.step_up * 0.5 {
        RiskBand::Medium
    } else {
        RiskBand::Low
    }
}

/// Attempts at a compare-and-swap update before the write is given up (the score stands).
const CAS_ATTEMPTS: usize = 3;

impl ModelStage {
    fn event<'a>(&self, facts: &RequestFacts<'a>) -> RequestEvent<'a> {
        let mut event =
            RequestEvent::for_path(facts.now_ms, facts.client_id, facts.method, facts.path);
        event.ip = self.client_ip.resolve(facts.headers, facts.source_address);
        event.country = self
            .country_header
            .as_deref()
            .and_then(|h| header(facts.headers, h));
        event.asn = self
            .asn_header
            .as_deref()
            .and_then(|h| header(facts.headers, h))
            .and_then(|v| v.trim().trim_start_matches("AS").parse().ok());
        event.user_agent = header(facts.headers, "user-agent");
        event.customer_present = header(facts.headers, "x-fapi-customer-ip-address").is_some();
        event
    }

    /// Scores the request and folds it into the client's baseline (stored when the slot is
    /// the client's). `thresholds`: the route's override or the model's own.
    /// The shadow model, when loaded, scores the same features (computed with the primary's
    /// population prior) under the route's thresholds or its own.
    ///
    /// The client's pending responses (see [`PendingResponses`]) are folded in first, in the
    /// same write.
    pub fn score(
        &self,
        models: &ActiveModels,
        store: &mut dyn BaselineStore,
        pending: &mut PendingResponses,
        facts: &RequestFacts<'_>,
        route_thresholds: Option<&Thresholds>,
    ) -> Option<Scored> {
        let primary = models.primary.clone()?;
        let responses = pending.take(facts.client_id);
        let thresholds = route_thresholds.unwrap_or(primary.model.thresholds());
        let event = self.event(facts);
        let mut outcome = None;
        let mut write = BaselineWrite::Lost;
        for _ in 0..CAS_ATTEMPTS {
            let (slot, owner) = baselines::resolve(
                store,
                facts.client_id,
                self.max_clients,
                facts.now_ms,
                self.client_ttl_s,
            );
            let mine = slot.key.is_some();
            let mut baseline = slot.baseline;
            if mine {
                for r in &responses {
                    observe_response(&mut baseline, r.status, r.bytes, r.at_ms);
                }
            }
            let features = extract(
                &self.extract,
                &mut baseline,
                primary.model.population(),
                &event,
            );
            // Scored before the store: the client's calibration level lives in its baseline.
            let client_score = primary.model.score_for_client(&features, &mut baseline);
            let stored = match &slot.key {
                None => true,
                Some(key) => baselines::encode_slot(owner, &baseline)
                    .is_some_and(|bytes| store.store(key, &bytes, slot.cas.or(Some(0))).is_ok()),
            };
            outcome = Some((features, baseline, client_score));
            if stored {
                write = if mine {
                    BaselineWrite::Stored
                } else {
                    BaselineWrite::SlotTaken
                };
                break;
            }
        }
        let Some((features, baseline, client_score)) = outcome else {
            return Some(Scored {
                score: 0.0,
                verdict: Verdict::Allow,
                risk_band: RiskBand::Low,
                reasons: Vec::new(),
                explained: Vec::new(),
                baseline: BaselineWrite::Lost,
                model: primary,
                shadow: None,
            });
        };
        let shadow = models.shadow.clone().map(|model| {
            // The primary's per-client shift applies to the shadow too, so the two compare.
            let score = (model.model.score(&features) - client_score.shift).max(0.0);
            let thresholds = route_thresholds.unwrap_or(model.model.thresholds());
            ShadowScore {
                score,
                verdict: thresholds.verdict(score),
                model,
            }
        });
        let score = client_score.score;
        let model_verdict = thresholds.verdict(score);
        let explained = if model_verdict == Verdict::Allow {
            Vec::new()
        } else {
            explain(&features, &baseline)
        };
        let reasons = explained.iter().map(ToString::to_string).collect();
        Some(Scored {
            score,
            verdict: model_verdict,
            risk_band: risk_band(score, thresholds),
            reasons,
            explained,
            baseline: write,
            shadow,
            model: primary,
        })
    }

    /// Folds responses into the client's baseline now (the response phase when
    /// [`PendingResponses`] is full, and the timer's flush): the status and size feed the
    /// error-ratio and exfiltration features. Returns the update's fate.
    pub fn observe(
        &self,
        store: &mut dyn BaselineStore,
        client_id: &str,
        responses: &[ObservedResponse],
        now_ms: u64,
    ) -> BaselineWrite {
        for _ in 0..CAS_ATTEMPTS {
            let (slot, owner) = baselines::resolve(
                store,
                client_id,
                self.max_clients,
                now_ms,
                self.client_ttl_s,
            );
            let Some(key) = slot.key else {
                return BaselineWrite::SlotTaken;
            };
            let mut baseline = slot.baseline;
            for r in responses {
                observe_response(&mut baseline, r.status, r.bytes, r.at_ms);
            }
            let Some(bytes) = baselines::encode_slot(owner, &baseline) else {
                return BaselineWrite::Lost;
            };
            if store.store(&key, &bytes, slot.cas.or(Some(0))).is_ok() {
                return BaselineWrite::Stored;
            }
        }
        BaselineWrite::Lost
    }
}
