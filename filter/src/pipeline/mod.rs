//! The per-request decision, as a small state machine of pure functions:
//!
//! 1. [`decide`] runs the request stages in order and ends in an [`Action`]: reply now,
//!    forward, or forward once the rate-limit service agrees (`Action::Continue` with a
//!    `ratelimit` call);
//! 2. [`ratelimit::settle`] turns the service's answer into the request's final outcome;
//! 3. [`response::observed`] reads the upstream's answer for the caller's baseline.
//!
//! The runtime gathers the request view from the host, calls these and applies what they
//! return; it decides nothing itself.

pub mod ratelimit;
mod refusal;
pub mod response;
mod stages;

pub use refusal::Refusal;

use crate::assess::Assessment;
use crate::assess::baselines::{BaselineStore, MemoryStore};
use crate::assess::model::{ActiveModels, Scored};
use crate::assess::pending::PendingResponses;
use crate::authorise::consent::{ConsentFetchError, ConsentSource, FetchedConsent};
use crate::config::FilterConfig;
use crate::enforce::interaction_id;
use crate::enforce::reply::LocalReply;
use crate::identify::TokenError;
use crate::identify::cache::{CacheLookup, TokenCache};
use crate::identify::host_crypto::VerifyPath;
use crate::identify::jwks_remote::RemoteKeySet;
use crate::ratelimit::Call;
use crate::respond::containment::Containment;
use crate::telemetry::Outcome;

use std::borrow::Cow;

/// What the filter needs from a request's headers.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// `:path` as Envoy normalised it, query string included.
    pub path: &'a str,
    /// Every `Authorization` value, in order.
    pub authorization: &'a [&'a str],
    pub interaction_id: Option<&'a str>,
    /// `jwt_authn`'s dynamic metadata namespace, when an issuer delegates to it.
    pub jwt_authn_payloads: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// Every request header (for the model's geography, network and client signals).
    pub headers: &'a [(String, String)],
    /// Envoy's `source.address` property (`ip:port`): the client as Envoy sees it. Read by
    /// the adapter only when [`FilterConfig::reads_source_address`].
    pub source_address: Option<&'a str>,
    /// Request time in Unix milliseconds for the model; 0 means `now` seconds × 1000.
    pub now_ms: u64,
    /// The TLS connection, asked only when a token is certificate-bound (each answer is a
    /// host call).
    pub connection: &'a dyn Connection,
    /// The consent service's answer, when the request is decided again after
    /// [`Action::FetchConsent`].
    pub consent_answer: Option<&'a FetchedConsent>,
}

/// Facts about the downstream connection, read on demand.
pub trait Connection: std::fmt::Debug {
    /// Hex SHA-256 of the TLS client certificate (Envoy's
    /// `connection.sha256_peer_certificate_digest`); `None` without one.
    fn peer_certificate_sha256(&self) -> Option<String>;
}

/// A connection without TLS (native callers and tests that need no certificate).
#[derive(Debug)]
pub struct Plaintext;

impl Connection for Plaintext {
    fn peer_certificate_sha256(&self) -> Option<String> {
        None
    }
}

/// What was decided about a request, and how (for metrics and the access log).
#[derive(Debug)]
pub struct Decision<'c> {
    pub interaction_id: String,
    pub outcome: Outcome,
    /// Why, for anything but a plain allow (also the metric suffix).
    pub reason: Option<&'static str>,
    pub route: Option<&'c str>,
    /// The verified client, qualified by its issuer's namespace: `<client id>@<namespace>`
    /// (see [`crate::identify::Identity::qualified_client_id`]).
    pub client_id: Option<String>,
    /// The token's `sub`, for rate-limit descriptors.
    pub subject: Option<String>,
    /// The token's `jti`, when a `revoke_token` playbook is configured.
    pub jti: Option<String>,
    /// The token's hash, when it has no `jti` and a playbook may revoke it.
    pub token_hash: Option<u64>,
    /// Verdict and risk band of an authenticated request past its scopes (`None` for
    /// refusals before that, anonymous routes and pass-through).
    pub assessment: Option<Assessment>,
    /// How the stages got there: what metrics and log fields report besides the outcome.
    pub trace: Trace,
    pub action: Action<'c>,
}

/// What the stages observed on the way, for telemetry only (nothing here changes the
/// outcome once `decide` returns).
#[derive(Debug, Default)]
pub struct Trace {
    /// Set when the refusal is a token error.
    pub token_error: Option<TokenError>,
    pub cache: CacheLookup,
    /// Which implementation checked the token's signature (none on a cache hit).
    pub verified_by: Option<VerifyPath>,
    /// Refused as a bad signature remembered by the negative cache (no check this time).
    pub rejected_from_cache: bool,
    /// An unknown `kid` for an issuer with a remote JWKS: the runtime may ask for an early
    /// refetch (rate-limited per issuer).
    pub refetch_keys_for: Option<usize>,
    /// The model's score, verdict and reasons (also in shadow mode).
    pub model: Option<Scored>,
    /// A model is configured but none has been accepted yet (HTTP source): not scored.
    pub model_unavailable: bool,
    /// The hard rules' check (`rules` configured, authenticated request past its scopes).
    pub rules: Option<crate::rules::RuleCheck>,
    /// How the consent of a consent-bound route was known.
    pub consent: Option<ConsentSource>,
    /// The consent service failed for this request (the stale answer or the
    /// `when_unavailable` policy decided).
    pub consent_fetch_error: Option<ConsentFetchError>,
    /// A FAPI header was invalid and `fapi.on_invalid` is `log`: forwarded anyway.
    pub fapi_logged: Option<&'static str>,
    /// The request was sender-constrained: `mtls`, `dpop` (for the log).
    pub sender_constraint: Option<&'static str>,
    /// The containment entry that refused the request.
    pub containment: Option<crate::respond::containment::Hit>,
    /// The threat-intelligence feeds the request matched (deny first).
    pub intel: Vec<crate::intel::screen::IntelHit>,
}

#[derive(Debug)]
pub enum Action<'c> {
    /// Forward upstream after removing `remove` (and `Authorization` if asked) and setting
    /// `set`. `remove` holds every configured identity header name, plus the names under
    /// which this request carries another spelling of one (`x_obguard_client_id`) or a
    /// header obguard strips for other reasons. With `ratelimit`, the request first waits
    /// for the rate-limit service's answer ([`ratelimit::settle`]).
    Continue {
        remove: Cow<'c, [String]>,
        remove_authorization: bool,
        set: Vec<(Cow<'c, str>, Cow<'c, str>)>,
        ratelimit: Option<Call>,
    },
    Reply(LocalReply),
    /// Ask the consent service about this consent id, then decide again with its answer
    /// in [`RequestView::consent_answer`] (nothing was recorded for the request yet).
    FetchConsent {
        consent_id: String,
    },
}

/// What one Envoy worker keeps between requests: verified tokens and the remote JWKS keys
/// it last loaded from shared data.
pub struct Worker {
    pub cache: TokenCache,
    /// Per issuer (same order as the configuration).
    pub remote_keys: Vec<Option<RemoteKeySet>>,
    /// Per-client baselines: shared data in Envoy, memory natively.
    pub baselines: Box<dyn BaselineStore>,
    /// The models this worker scores with (swapped by the model-source timer).
    pub models: ActiveModels,
    /// Responses folded into baselines with their client's next request (or by the timer).
    pub pending_responses: PendingResponses,
    /// Cached consents, seen DPoP proofs, playbook counters and the containment list:
    /// shared data in Envoy (every worker), memory natively.
    pub shared_slots: Box<dyn BaselineStore>,
    /// This worker's copy of the quarantine and revocation lists (loaded by the timer).
    pub containment: Containment,
    /// This worker's parsed threat-intelligence feeds (same order as the configuration;
    /// `None` until loaded, or once stale).
    pub intel: Vec<Option<crate::intel::FeedList>>,
}

impl Worker {
    pub fn new(config: &FilterConfig) -> Self {
        Self {
            cache: TokenCache::with_negative(
                config.cache_entries,
                config.negative_cache_entries,
                config.negative_cache_ttl_s,
            ),
            remote_keys: config.issuers.iter().map(|_| None).collect(),
            baselines: Box::new(MemoryStore::default()),
            models: ActiveModels::from_config(config.model.as_ref()),
            pending_responses: PendingResponses::default(),
            shared_slots: Box::new(MemoryStore::default()),
            containment: Containment::default(),
            intel: config
                .threat_intel
                .as_ref()
                .map(|t| t.feeds.iter().map(|_| None).collect())
                .unwrap_or_default(),
        }
    }
}

/// Runs the stages in order (see [`stages`]); the first refusal ends the request.
pub fn decide<'c>(
    config: &'c FilterConfig,
    worker: &mut Worker,
    request: &RequestView<'_>,
    now: u64,
) -> Decision<'c> {
    let mut decision = Decision {
        interaction_id: interaction_id::resolve(request.interaction_id),
        outcome: Outcome::Allowed,
        reason: None,
        route: None,
        client_id: None,
        subject: None,
        jti: None,
        token_hash: None,
        assessment: None,
        trace: Trace::default(),
        action: Action::Continue {
            remove: Cow::Borrowed(&config.headers.strip),
            remove_authorization: !config.headers.forward_authorization,
            set: Vec::new(),
            ratelimit: None,
        },
    };
    match stages::run(config, worker, request, now, &mut decision) {
        Ok(action) => decision.action = action,
        Err(refusal) => {
            decision.outcome = refusal.outcome;
            decision.reason = Some(refusal.reason);
            decision.trace.token_error = refusal.token_error;
            decision.action = Action::Reply(refusal.reply(&config.realm, &decision.interaction_id));
        }
    }
    decision
}
