//! Names shared by metrics and access logs. These are public interfaces (dashboards and
//! alerts are built on them), documented in README.md ("Metrics and log fields").

use crate::authorise::path::PathError;
use crate::identify::TokenError;
use crate::identify::extract::ExtractError;

/// What happened to a request, one per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Valid token and scopes: forwarded with identity headers.
    Allowed,
    /// A public (`anonymous`) route: forwarded without checks.
    Anonymous,
    /// Matched no route and `unmatched` is `allow`: forwarded without checks.
    Passthrough,
    MissingToken,
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
    RouteDenied,
    /// The issuer's remote keys are unavailable (IdP down, never fetched): 503 by default.
    IdpUnavailable,
    /// 429: the rate-limit service answered `OVER_LIMIT`.
    RateLimited,
    /// 429 or 503: the rate-limit check failed and the route fails closed.
    RateLimitFailed,
    /// 401 RFC 9470 step-up: the verdict `step_up`.
    Challenged,
    /// 429: the model's verdict `throttle` without a rate-limit service.
    Throttled,
    /// 403: the model's verdict `block`.
    Blocked,
    /// 503: no model accepted yet and `model.when_unavailable` is `refuse`.
    ModelUnavailable,
    /// 403 `access_denied`: a consent-bound resource outside the token's consent (or no
    /// usable consent); the reason says which.
    ConsentDenied,
    /// 503: the consent service failed and no cached answer is usable.
    ConsentUnavailable,
    /// 403 `access_denied`: the client (or its subject) is quarantined (containment).
    Quarantined,
    /// 403 `access_denied`: the client address is on a threat-intelligence deny feed
    /// (refused before the token is looked at).
    ThreatDenied,
}

impl Outcome {
    pub const ALL: [Outcome; 19] = [
        Outcome::Allowed,
        Outcome::Anonymous,
        Outcome::Passthrough,
        Outcome::MissingToken,
        Outcome::InvalidRequest,
        Outcome::InvalidToken,
        Outcome::InsufficientScope,
        Outcome::RouteDenied,
        Outcome::IdpUnavailable,
        Outcome::RateLimited,
        Outcome::RateLimitFailed,
        Outcome::Challenged,
        Outcome::Throttled,
        Outcome::Blocked,
        Outcome::ModelUnavailable,
        Outcome::ConsentDenied,
        Outcome::ConsentUnavailable,
        Outcome::Quarantined,
        Outcome::ThreatDenied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Anonymous => "anonymous",
            Outcome::Passthrough => "passthrough",
            Outcome::MissingToken => "missing_token",
            Outcome::InvalidRequest => "invalid_request",
            Outcome::InvalidToken => "invalid_token",
            Outcome::InsufficientScope => "insufficient_scope",
            Outcome::RouteDenied => "route_denied",
            Outcome::IdpUnavailable => "idp_unavailable",
            Outcome::RateLimited => "rate_limited",
            Outcome::RateLimitFailed => "ratelimit_failed",
            Outcome::Challenged => "challenged",
            Outcome::Throttled => "throttled",
            Outcome::Blocked => "blocked",
            Outcome::ModelUnavailable => "model_unavailable",
            Outcome::ConsentDenied => "consent_denied",
            Outcome::ConsentUnavailable => "consent_unavailable",
            Outcome::Quarantined => "quarantined",
            Outcome::ThreatDenied => "threat_denied",
        }
    }
}

/// Reasons that are not token errors.
pub const REASON_NO_CREDENTIALS: &str = "no_credentials";
pub const REASON_OTHER_SCHEME: &str = "other_scheme";
pub const REASON_NO_ROUTE: &str = "no_route";
pub const REASON_MISSING_SCOPE: &str = "missing_scope";
/// The behavioural model's verdict; its own reasons are in the `reasons` log field.
pub const REASON_RISK: &str = "risk";
// A hard rule that decided names itself: `psd2_unattended_limit`, `payment_velocity`
// (`crate::rules::RULE_NAMES`, defined in `obguard_models::rules`).
/// A model is configured but none has been accepted yet.
pub const REASON_MODEL_UNAVAILABLE: &str = "model_unavailable";
pub const REASON_OVER_LIMIT: &str = "over_limit";
/// 400: the request carries `X-HTTP-Method-Override` (or a variant) and
/// `method_override` is `refuse`.
pub const REASON_METHOD_OVERRIDE: &str = "method_override";
/// 400: a path parameter's value has a character outside its charset (default RFC 3986
/// unreserved) or is too long.
pub const REASON_PATH_PARAMETER: &str = "path_parameter";
/// A `throttle` verdict answered by obguard although a rate-limit service is configured:
/// no call would have been made for the request (`call: never`, or a descriptor value
/// missing), so forwarding would have dropped the verdict.
pub const REASON_NO_RATELIMIT_CALL: &str = "no_ratelimit_call";
/// 503: the consent service failed and no cached answer is usable (`consent_service.
/// when_unavailable: unavailable`).
pub const REASON_CONSENT_UNAVAILABLE: &str = "consent_unavailable";
/// 403: the client, or the client for this subject, is quarantined (`containment`).
pub const REASON_QUARANTINED: &str = "quarantined";
/// 403: the client address, ASN or country is on a `deny` threat-intelligence feed.
pub const REASON_THREAT_INTEL: &str = "threat_intel";

/// Counter names. Envoy shows them with its `wasmcustom.` prefix.
pub mod metric {
    use super::*;

    pub fn requests(outcome: Outcome) -> String {
        format!("obguard.requests.{}", outcome.as_str())
    }

    pub fn token_invalid(error: TokenError) -> String {
        format!("obguard.token_invalid.{}", error.reason())
    }

    pub fn request_invalid(reason: &str) -> String {
        format!("obguard.request_invalid.{reason}")
    }

    /// Baseline updates by fate: `stored`, `slot_taken` (another active client holds the
    /// slot), `lost` (compare-and-swap lost every retry, or shared data refused the write).
    pub fn baseline_write(fate: &str) -> String {
        format!("obguard.baseline.{fate}")
    }

    /// Hard-rule hits by rule, in [`crate::rules::RULE_NAMES`] order (`rules` configured;
    /// counted whatever the rule's verdict, and whether or not it decided). Constants rather
    /// than formatted: fewer bytes in the module.
    pub const RULES_HIT: [&str; 2] = [
        "obguard.rules.hit.psd2_unattended_limit",
        "obguard.rules.hit.payment_velocity",
    ];

    /// Rule state updates by fate: `stored`, `slot_taken`, `lost` (as for baselines).
    pub const RULES_STATE: [&str; 3] = [
        "obguard.rules.state.stored",
        "obguard.rules.state.slot_taken",
        "obguard.rules.state.lost",
    ];

    /// The model's verdicts, counted in shadow mode too.
    pub fn verdict(verdict: &str) -> String {
        format!("obguard.verdict.{verdict}")
    }

    pub fn scope_denied(route: &str) -> String {
        format!("obguard.scope_denied.{route}")
    }

    /// Signature checks by implementation: `host` (Envoy's BoringSSL) or `wasm` (jwt-simple).
    pub fn signature_checks(path: crate::identify::host_crypto::VerifyPath) -> String {
        format!("obguard.signature_checks.{}", path.as_str())
    }

    /// A worker started scoring with a newly accepted model file (one per worker and swap).
    pub fn model_swapped(role: &str) -> String {
        format!("obguard.model.{role}.swapped")
    }
    /// A poll fetched a new file that passed every check (once per file, not per worker).
    pub fn model_fetched(role: &str) -> String {
        format!("obguard.model.{role}.fetched")
    }
    /// A poll found the file unchanged (`304`, or the same digest).
    pub fn model_not_modified(role: &str) -> String {
        format!("obguard.model.{role}.not_modified")
    }
    /// A file refused: `too_large`, `bad_magic`, `version`, `corrupt`, `schema_mismatch`,
    /// `invalid`, `unsigned`, `unknown_key`, `bad_signature`, `digest_mismatch`.
    pub fn model_rejected(role: &str, reason: &str) -> String {
        format!("obguard.model.{role}.rejected.{reason}")
    }
    /// A poll that got no new file: `unreachable`, `status`, `too_large`, `dispatch`, `store`.
    pub fn model_fetch_failed(role: &str, reason: &str) -> String {
        format!("obguard.model.{role}.fetch_failed.{reason}")
    }
    /// The shadow model's verdicts (`shadow_model` configured).
    pub fn shadow_verdict(verdict: &str) -> String {
        format!("obguard.shadow_verdict.{verdict}")
    }
    /// Requests not scored because no primary model has been accepted yet.
    pub const MODEL_UNAVAILABLE: &str = "obguard.model.unavailable";
    /// A request answered 503 because the host could not give obguard what deciding needs
    /// (its headers), or the worker state was re-entered.
    pub const HOST_REFUSED: &str = "obguard.host.request_refused";

    /// Consent-bound requests refused, by reason (`consent_mismatch`, `consent_missing`,
    /// `consent_inactive`, `consent_unknown`, `consent_unresolved`).
    pub fn consent_denied(reason: &str) -> String {
        format!("obguard.consent.denied.{reason}")
    }
    /// Consents known without asking: from the token (`claim`), the shared cache (`cache`),
    /// past their TTL because the service failed (`stale`); and `fetched`.
    pub fn consent_source(source: &str) -> String {
        format!("obguard.consent.{source}")
    }
    /// Consent-service calls that failed: `dispatch`, `unreachable`, `status`, `too_large`,
    /// `garbage`.
    pub fn consent_fetch_failed(reason: &str) -> String {
        format!("obguard.consent.fetch_failed.{reason}")
    }
    /// Sender-constrained tokens refused, by reason (`certificate_mismatch`,
    /// `dpop_proof_replayed`...).
    pub fn sender_constraint_refused(reason: &str) -> String {
        format!("obguard.sender_constraint.refused.{reason}")
    }
    /// Requests whose proof of possession verified: `mtls`, `dpop`, `mtls_dpop`.
    pub fn sender_constraint_verified(kind: &str) -> String {
        format!("obguard.sender_constraint.verified.{kind}")
    }
    /// Invalid FAPI headers forwarded (`fapi.on_invalid: log`), by reason.
    pub fn fapi_logged(reason: &str) -> String {
        format!("obguard.fapi.logged.{reason}")
    }

    /// Security events queued, delivered (accepted by the webhook), retried.
    pub const EVENTS_QUEUED: &str = "obguard.events.queued";
    pub const EVENTS_SENT: &str = "obguard.events.sent";
    pub const EVENTS_RETRIED: &str = "obguard.events.retried";
    /// Events dropped: `queue_full`, `undeliverable` (out of attempts).
    pub fn events_dropped(reason: &str) -> String {
        format!("obguard.events.dropped.{reason}")
    }
    /// Failed POSTs: `dispatch`, `unreachable`, `status`.
    pub fn events_failed(reason: &str) -> String {
        format!("obguard.events.failed.{reason}")
    }
    /// Gauge: events waiting on a worker (the last worker's timer to write wins).
    pub const EVENTS_QUEUE_DEPTH: &str = "obguard.events.queue_depth";
    pub const EVENT_FAILURES: [&str; 3] = ["dispatch", "unreachable", "status"];

    /// Entries a playbook added: `quarantine_client`, `quarantine_subject`, `revoke_token`.
    pub fn containment_added(action: &str) -> String {
        format!("obguard.containment.added.{action}")
    }
    /// Requests refused by an entry: `quarantine`, `revocation`.
    pub fn containment_hits(kind: &str) -> String {
        format!("obguard.containment.hits.{kind}")
    }
    /// Gauges: active entries (`quarantine`, `revocation`) in this worker's view.
    pub fn containment_active(kind: &str) -> String {
        format!("obguard.containment.active.{kind}")
    }
    /// Playbook entries dropped from the shared list once expired.
    pub const CONTAINMENT_EXPIRED: &str = "obguard.containment.expired";
    /// Live playbook entries that gave way because the list was at `max_entries`.
    pub const CONTAINMENT_EVICTED: &str = "obguard.containment.evicted";
    /// A playbook match not counted (no counter slot, or the write lost every retry), and a
    /// triggered entry the shared list did not take.
    pub const CONTAINMENT_NOT_COUNTED: &str = "obguard.containment.not_counted";
    pub const CONTAINMENT_LOST: &str = "obguard.containment.lost";
    /// A playbook reached its count.
    pub fn playbook_triggered(name: &str) -> String {
        format!("obguard.containment.playbook.{name}.triggered")
    }
    /// The external list: `loaded`, `not_modified`, `stale` (dropped past `max_stale_s`).
    pub fn containment_list(event: &str) -> String {
        format!("obguard.containment.list.{event}")
    }
    pub fn containment_list_failed(reason: &str) -> String {
        format!("obguard.containment.list.fetch_failed.{reason}")
    }

    /// Requests matching a feed: `denied` (refused) or `watched` (scored up).
    pub fn intel_hits(feed: &str, action: &str) -> String {
        format!("obguard.intel.{feed}.{action}")
    }
    /// A feed: `loaded`, `not_modified`, `stale`.
    pub fn intel_feed(feed: &str, event: &str) -> String {
        format!("obguard.intel.{feed}.{event}")
    }
    pub fn intel_fetch_failed(feed: &str, reason: &str) -> String {
        format!("obguard.intel.{feed}.fetch_failed.{reason}")
    }
    /// Gauge: entries of the feed a worker uses.
    pub fn intel_entries(feed: &str) -> String {
        format!("obguard.intel.{feed}.entries")
    }

    pub const JWKS_FETCHED: &str = "obguard.jwks.fetched";
    pub const JWKS_REFETCH_REQUESTED: &str = "obguard.jwks.refetch_requested";
    /// Unknown `kid`s that did not trigger a fetch (the per-issuer interval had not passed).
    pub const JWKS_REFETCH_SUPPRESSED: &str = "obguard.jwks.refetch_suppressed";
    /// Gauge: seconds since the keys in use were fetched.
    pub const JWKS_AGE: &str = "obguard.jwks.keys_age_s";

    pub fn jwks_fetch_failed(reason: &str) -> String {
        format!("obguard.jwks.fetch_failed.{reason}")
    }

    pub const CACHE_HIT: &str = "obguard.token_cache.hit";
    pub const CACHE_MISS: &str = "obguard.token_cache.miss";

    /// Rate-limit calls: one of `ok`, `over_limit`, `failure.<kind>` per call made.
    pub const RATELIMIT_OK: &str = "obguard.ratelimit.ok";
    pub const RATELIMIT_OVER_LIMIT: &str = "obguard.ratelimit.over_limit";
    /// Failed calls that forwarded the request / refused it.
    pub const RATELIMIT_FAILED_OPEN: &str = "obguard.ratelimit.failed_open";
    pub const RATELIMIT_FAILED_CLOSED: &str = "obguard.ratelimit.failed_closed";
    /// Headers in a rate-limit answer that obguard did not apply (reserved names, invalid
    /// names or values), one per header.
    pub const RATELIMIT_HEADERS_DROPPED: &str = "obguard.ratelimit.headers_dropped";

    pub fn ratelimit_failure(failure: crate::ratelimit::reply::Failure) -> String {
        format!("obguard.ratelimit.failure.{}", failure.as_str())
    }
}

/// Every `request_invalid` reason, so all counters exist from the start.
pub fn request_invalid_reasons() -> Vec<&'static str> {
    let mut reasons = vec![
        ExtractError::MultipleAuthorization.reason(),
        ExtractError::TokenInQuery.reason(),
        REASON_METHOD_OVERRIDE,
        REASON_PATH_PARAMETER,
    ];
    reasons.extend(
        [
            PathError::NotAbsolute,
            PathError::DotSegment,
            PathError::EmptySegment,
            PathError::EncodedSeparator,
            PathError::Semicolon,
            PathError::Backslash,
            PathError::ControlCharacter,
        ]
        .map(PathError::reason),
    );
    reasons.extend(crate::authorise::fapi::FapiViolation::ALL.map(|v| v.reason()));
    reasons
}

/// Filter-state keys readable in Envoy access logs as
/// `%FILTER_STATE(wasm.obguard.<field>:PLAIN)%`.
/// `access_log.format`: how the fields below reach Envoy's filter state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccessLogFormat {
    /// One property per field: `%FILTER_STATE(wasm.obguard.outcome:PLAIN)%`.
    #[default]
    Fields,
    /// One JSON object with every field (names without `obguard.`) in
    /// `%FILTER_STATE(wasm.obguard.log:PLAIN)%`: one host call per request.
    Json,
}

/// The `access_log` section.
#[derive(Debug, Default, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawAccessLog {
    #[serde(default)]
    pub format: AccessLogFormat,
}

pub mod log_field {
    /// With `access_log.format: json`, the one property holding every field.
    pub const JSON: &str = "obguard.log";
    pub const OUTCOME: &str = "obguard.outcome";
    pub const REASON: &str = "obguard.reason";
    pub const ROUTE: &str = "obguard.route";
    pub const CLIENT_ID: &str = "obguard.client_id";
    pub const INTERACTION_ID: &str = "obguard.interaction_id";
    /// The model's verdict (`allow`, `step_up`, `throttle`, `block`), also in shadow mode.
    pub const VERDICT: &str = "obguard.verdict";
    /// The model's score, 0 to 1.
    pub const SCORE: &str = "obguard.score";
    /// A rule hit's reason (e.g. `psd2_unattended_limit(5th unattended access in 24h)`), then
    /// the model's top reasons, `; `-separated, e.g. `new_country(RU); hour_rare(03:05, …)`.
    pub const REASONS: &str = "obguard.reasons";
    /// `ok`, `over_limit`, `failed_open:<failure>` or `failed_closed:<failure>` when the
    /// rate-limit service was asked.
    pub const RATELIMIT: &str = "obguard.ratelimit";
    /// Digest (first 12 hex digits) of the primary model that scored the request.
    pub const MODEL: &str = "obguard.model";
    /// The shadow model's verdict, score and digest, next to the primary's.
    pub const SHADOW_VERDICT: &str = "obguard.shadow_verdict";
    pub const SHADOW_SCORE: &str = "obguard.shadow_score";
    pub const SHADOW_MODEL: &str = "obguard.shadow_model";
    /// How a consent-bound route's consent was known: `claim`, `cache`, `fetched`, `stale`.
    pub const CONSENT: &str = "obguard.consent";
    /// The proof of possession checked: `mtls`, `dpop` or `mtls_dpop`.
    pub const SENDER_CONSTRAINT: &str = "obguard.sender_constraint";
    /// A FAPI header was invalid and forwarded anyway (`fapi.on_invalid: log`): its reason.
    pub const FAPI_VIOLATION: &str = "obguard.fapi_violation";
    /// Threat-intelligence matches: `deny:drop(203.0.113.0/24) watch:tor(198.51.100.7/32)`.
    pub const INTEL: &str = "obguard.intel";
}
