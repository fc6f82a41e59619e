//! The per-request decision: a pure function of (configuration, request view, clock,
//! token cache). The adapter gathers the view from Envoy and applies the [`Decision`].

use crate::assess::baselines::{BaselineStore, MemoryStore};
use crate::assess::model::{self as model_stage, ActiveModels, Scored, WhenUnavailable};
use crate::assess::pending::PendingResponses;
use crate::assess::{self, Assessment};
use crate::authorise::config::UnmatchedPolicy;
use crate::authorise::method_override::{self, MethodOverridePolicy};
use crate::authorise::path;
use crate::authorise::routes::Route;
use crate::config::FilterConfig;
use crate::enforce::interaction_id;
use crate::enforce::reply::{self, Denial, LocalReply};
use crate::identify::cache::{CacheLookup, TokenCache};
use crate::identify::extract::{self, Credential};
use crate::identify::host_crypto::VerifyPath;
use crate::identify::jwks_remote::RemoteKeySet;
use crate::identify::{self, Identity, TokenError};
use crate::ratelimit::config::ThrottleWithoutCall;
use crate::telemetry::{self, Outcome};

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
}

#[derive(Debug)]
pub struct Decision<'c> {
    pub interaction_id: String,
    pub outcome: Outcome,
    /// Why, for anything but a plain allow (also the metric suffix).
    pub reason: Option<&'static str>,
    /// Set when the refusal is a token error.
    pub token_error: Option<TokenError>,
    pub route: Option<&'c str>,
    /// The verified client, qualified by its issuer's namespace: `<client id>@<namespace>`
    /// (see [`crate::identify::Identity::qualified_client_id`]).
    pub client_id: Option<String>,
    /// The token's `sub`, for rate-limit descriptors.
    pub subject: Option<String>,
    /// Verdict and risk band of an authenticated request that is forwarded (`None` for
    /// refusals, anonymous routes and pass-through). PLACEHOLDER until the Model issue:
    /// see [`assess::placeholder_assessment`].
    pub assessment: Option<Assessment>,
    pub cache: CacheLookup,
    /// Which implementation checked the token's signature (none on a cache hit).
    pub verified_by: Option<VerifyPath>,
    /// Refused as a bad signature remembered by the negative cache (no check this time).
    pub rejected_from_cache: bool,
    /// An unknown `kid` for an issuer with a remote JWKS: the adapter may ask for an early
    /// refetch (rate-limited per issuer).
    pub refetch_keys_for: Option<usize>,
    /// The model's score, verdict and reasons (also in shadow mode).
    pub model: Option<Scored>,
    /// A model is configured but none has been accepted yet (HTTP source): not scored.
    pub model_unavailable: bool,
    /// The hard rules' check (`rules` configured, authenticated request past its scopes).
    pub rules: Option<crate::rules::RuleCheck>,
    pub action: Action<'c>,
}

#[derive(Debug)]
pub enum Action<'c> {
    /// Forward upstream after removing `remove` (and `Authorization` if asked) and setting
    /// `set`. `remove` holds every configured identity header name, plus the names under
    /// which this request carries another spelling of one (`x_obguard_client_id`) or a
    /// header obguard strips for other reasons.
    Continue {
        remove: Cow<'c, [String]>,
        remove_authorization: bool,
        set: Vec<(String, String)>,
    },
    Reply(LocalReply),
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
        }
    }
}

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
        token_error: None,
        route: None,
        client_id: None,
        subject: None,
        assessment: None,
        cache: CacheLookup::Disabled,
        verified_by: None,
        rejected_from_cache: false,
        refetch_keys_for: None,
        model: None,
        model_unavailable: false,
        rules: None,
        action: Action::Continue {
            remove: Cow::Borrowed(&config.headers.strip),
            remove_authorization: !config.headers.forward_authorization,
            set: Vec::new(),
        },
    };

    let (path, query) = path::split_query(request.path);
    if let Err(err) = path::check(path) {
        return deny(
            decision,
            config,
            Outcome::InvalidRequest,
            err.reason(),
            Denial::BadPath,
        );
    }
    let credential = match extract::credential(request.authorization, query) {
        Ok(credential) => credential,
        Err(err) => {
            let denial = Denial::InvalidRequest {
                description: err.description(),
            };
            return deny(
                decision,
                config,
                Outcome::InvalidRequest,
                err.reason(),
                denial,
            );
        }
    };

    let mut params: Vec<(&str, &str)> = Vec::new();
    let route: Option<&Route> = match config.routes.find(request.method, path) {
        Some(found) => {
            // Parameters become account ids upstream: only their charset gets through.
            if found.route.param_violation(&found.params).is_some() {
                decision.route = Some(found.route.name.as_str());
                return deny(
                    decision,
                    config,
                    Outcome::InvalidRequest,
                    telemetry::REASON_PATH_PARAMETER,
                    Denial::BadPath,
                );
            }
            params = found.params;
            Some(found.route)
        }
        None => match config.unmatched {
            UnmatchedPolicy::Deny => {
                return deny(
                    decision,
                    config,
                    Outcome::RouteDenied,
                    telemetry::REASON_NO_ROUTE,
                    Denial::RouteNotAllowed,
                );
            }
            UnmatchedPolicy::Allow => {
                decision.outcome = Outcome::Passthrough;
                decision.reason = Some(telemetry::REASON_NO_ROUTE);
                decision.action = continue_with(config, request, None, None, None);
                return decision;
            }
            UnmatchedPolicy::Authenticate => None,
        },
    };
    decision.route = route.map(|r| r.name.as_str());
    // The upstream may dispatch on the overriding method: refused on every request obguard
    // authorises (with `strip`, and on pass-through, the headers are removed instead).
    if config.method_override == MethodOverridePolicy::Refuse
        && method_override::present(request.headers)
    {
        return deny(
            decision,
            config,
            Outcome::InvalidRequest,
            telemetry::REASON_METHOD_OVERRIDE,
            Denial::MethodOverride,
        );
    }
    if let Some(route) = route.filter(|r| r.anonymous) {
        decision.outcome = Outcome::Anonymous;
        decision.action = continue_with(config, request, None, Some(&route.name), None);
        return decision;
    }

    let verifier = identify::Verifier {
        issuers: &config.issuers,
        claim_headers: &config.headers.claims,
        max_token_bytes: config.max_token_bytes,
        host: config.host_verify,
        remote_keys: &worker.remote_keys,
    };
    let delegated = request
        .jwt_authn_payloads
        .and_then(|payloads| identify::from_jwt_authn(&verifier, payloads, now));
    let result = match delegated {
        Some(result) => {
            decision.verified_by = Some(VerifyPath::JwtAuthn);
            result.map(std::sync::Arc::new)
        }
        None => {
            let token = match credential {
                Credential::Bearer(token) => token,
                Credential::Missing | Credential::OtherScheme => {
                    let reason = if credential == Credential::Missing {
                        telemetry::REASON_NO_CREDENTIALS
                    } else {
                        telemetry::REASON_OTHER_SCHEME
                    };
                    return deny(
                        decision,
                        config,
                        Outcome::MissingToken,
                        reason,
                        Denial::MissingToken,
                    );
                }
            };
            let auth = identify::authenticate(&verifier, &mut worker.cache, token, now);
            decision.cache = auth.cache;
            decision.verified_by = auth.verified_by;
            decision.rejected_from_cache = auth.rejected_from_cache;
            auth.result
        }
    };
    let identity = match result {
        Ok(identity) => identity,
        Err(TokenError::KeysUnavailable) => {
            decision.token_error = Some(TokenError::KeysUnavailable);
            let (status, retry_after_s) =
                unavailable_answer(config, token_issuer(config, &credential));
            let denial = Denial::IdpUnavailable {
                status,
                retry_after_s,
            };
            return deny(
                decision,
                config,
                Outcome::IdpUnavailable,
                TokenError::KeysUnavailable.reason(),
                denial,
            );
        }
        Err(err) => {
            if err == TokenError::UnknownKid {
                decision.refetch_keys_for = token_issuer(config, &credential).filter(|index| {
                    config
                        .issuers
                        .get(*index)
                        .is_some_and(|i| i.remote.is_some())
                });
            }
            decision.token_error = Some(err);
            let denial = Denial::InvalidToken {
                description: err.description(),
            };
            return deny(
                decision,
                config,
                Outcome::InvalidToken,
                err.reason(),
                denial,
            );
        }
    };
    // Client ids are the issuer's: `tpp-1` of one issuer is not `tpp-1` of another. The
    // qualified id keys baselines and rate-limit descriptors and is what the log shows.
    let client_key = identity.qualified_client_id();
    decision.client_id = Some(client_key.clone());

    if let Some(route) = route
        && !route.scopes.is_satisfied_by(&identity.scopes)
    {
        let denial = Denial::InsufficientScope {
            scope: route.scopes.challenge(),
        };
        return deny(
            decision,
            config,
            Outcome::InsufficientScope,
            telemetry::REASON_MISSING_SCOPE,
            denial,
        );
    }
    decision.subject = identity.subject.clone();
    let pinned = assess::pinned(&config.static_assessments, &client_key)
        .or_else(|| assess::pinned(&config.static_assessments, &identity.client_id));
    let now_ms = if request.now_ms == 0 {
        now.saturating_mul(1000)
    } else {
        request.now_ms
    };
    let assessment = match (&config.model, pinned) {
        (_, Some(pinned)) => pinned,
        (Some(stage), None) => {
            let facts = model_stage::RequestFacts {
                now_ms,
                client_id: &client_key,
                method: request.method,
                path,
                headers: request.headers,
                source_address: request.source_address,
            };
            let thresholds = route.and_then(|r| r.thresholds.as_ref());
            let scored = stage.score(
                &worker.models,
                worker.baselines.as_mut(),
                &mut worker.pending_responses,
                &facts,
                thresholds,
            );
            match scored {
                Some(scored) => {
                    let enforced = scored.enforced(stage.shadow);
                    decision.model = Some(scored);
                    enforced
                }
                None => {
                    decision.model_unavailable = true;
                    if let WhenUnavailable::Refuse { retry_after_s } = stage.when_unavailable {
                        return deny(
                            decision,
                            config,
                            Outcome::ModelUnavailable,
                            telemetry::REASON_MODEL_UNAVAILABLE,
                            Denial::ModelUnavailable { retry_after_s },
                        );
                    }
                    assess::Assessment::PLACEHOLDER
                }
            }
        }
        (None, None) => assess::Assessment::PLACEHOLDER,
    };
    // Hard rules: the stricter of their verdict and the model's (or the pinned one) wins,
    // in shadow mode too (see crate::rules).
    let rule_check = config.rules.as_ref().map(|rules| {
        let facts = crate::rules::RuleRequest {
            client_id: &client_key,
            subject: identity.subject.as_deref(),
            method: request.method,
            path,
            route: decision.route,
            params: &params,
            customer_present: crate::rules::customer_present(request.headers),
            now_ms,
        };
        rules.check(worker.baselines.as_mut(), &facts)
    });
    let (assessment, rule_reason) = crate::rules::combine(
        assessment,
        rule_check.as_ref().and_then(|check| check.hit.as_ref()),
    );
    decision.rules = rule_check;
    decision.assessment = Some(assessment);
    let facts = crate::ratelimit::RequestFacts {
        client_id: decision.client_id.as_deref(),
        subject: decision.subject.as_deref(),
        route: decision.route,
        assessment: decision.assessment,
        country: config
            .ratelimit
            .as_ref()
            .and_then(|rl| rl.country_header.as_deref())
            .and_then(|name| {
                request
                    .headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            }),
    };
    let reason = rule_reason.unwrap_or(telemetry::REASON_RISK);
    if let Some(refusal) = enforce_verdict(config, assessment, &facts, reason) {
        let (outcome, reason, denial) = refusal;
        return deny(decision, config, outcome, reason, denial);
    }
    decision.action = continue_with(
        config,
        request,
        Some(&identity),
        route.map(|r| r.name.as_str()),
        Some(assessment),
    );
    decision
}

/// What a verdict means for the request: `None` to continue. A `throttle` continues only
/// when the rate-limit service will be asked about the request (the rate-limit stage carries
/// the verdict to it); otherwise it is answered here — a 429, or with
/// `throttle_without_call: block` a 403 — and never forwarded. `reason`: `risk` for the
/// model's verdict, the rule's name for a rule's.
fn enforce_verdict(
    config: &FilterConfig,
    assessment: assess::Assessment,
    facts: &crate::ratelimit::RequestFacts<'_>,
    reason: &'static str,
) -> Option<(Outcome, &'static str, Denial)> {
    let stage = config.model.as_ref();
    let throttled = |reason| {
        Some((
            Outcome::Throttled,
            reason,
            Denial::Throttled {
                retry_after_s: stage.map_or(60, |s| s.throttle_retry_after_s),
            },
        ))
    };
    match assessment.verdict {
        assess::Verdict::Allow => None,
        assess::Verdict::StepUp => Some((
            Outcome::Challenged,
            reason,
            Denial::StepUp {
                acr_values: stage.map_or_else(
                    || "urn:openbanking:psd2:sca".to_owned(),
                    |s| s.challenge_acr_values.clone(),
                ),
                max_age_s: stage.and_then(|s| s.challenge_max_age_s),
            },
        )),
        assess::Verdict::Block => Some((Outcome::Blocked, reason, Denial::Blocked)),
        assess::Verdict::Throttle => match &config.ratelimit {
            None => throttled(reason),
            // The same plan the adapter makes next; with none, nothing would carry the verdict.
            Some(rl) if crate::ratelimit::plan(rl, facts).is_some() => None,
            Some(rl) => match rl.policy(facts.route).throttle_without_call {
                ThrottleWithoutCall::Reply => throttled(telemetry::REASON_NO_RATELIMIT_CALL),
                ThrottleWithoutCall::Block => Some((
                    Outcome::Blocked,
                    telemetry::REASON_NO_RATELIMIT_CALL,
                    Denial::Blocked,
                )),
            },
        },
    }
}

/// The issuer a bearer token names (unverified `iss`, or the only issuer): only used to pick
/// which issuer's JWKS to refresh or whose unavailability answer to give.
fn token_issuer(config: &FilterConfig, credential: &Credential<'_>) -> Option<usize> {
    if let [_] = config.issuers.as_slice() {
        return Some(0);
    }
    let Credential::Bearer(token) = credential else {
        return None;
    };
    let payload = token.split('.').nth(1)?;
    let bytes = crate::identify::jose_header::decode_segment(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let iss = claims.get("iss")?.as_str()?;
    config.issuers.iter().position(|i| i.issuer == iss)
}

fn unavailable_answer(config: &FilterConfig, issuer: Option<usize>) -> (u16, u64) {
    issuer
        .and_then(|i| config.issuers.get(i))
        .and_then(|i| i.remote.as_ref())
        .map_or((503, 30), |r| (r.unavailable_status, r.retry_after_s))
}

fn continue_with<'c>(
    config: &'c FilterConfig,
    request: &RequestView<'_>,
    identity: Option<&Identity>,
    route: Option<&str>,
    assessment: Option<Assessment>,
) -> Action<'c> {
    Action::Continue {
        remove: config
            .headers
            .removals(request.headers, method_override::is_override_header),
        remove_authorization: !config.headers.forward_authorization,
        set: config.headers.headers_for(identity, route, assessment),
    }
}

fn deny<'c>(
    mut decision: Decision<'c>,
    config: &FilterConfig,
    outcome: Outcome,
    reason: &'static str,
    denial: Denial,
) -> Decision<'c> {
    decision.outcome = outcome;
    decision.reason = Some(reason);
    decision.action = Action::Reply(reply::build(
        &denial,
        &config.realm,
        &decision.interaction_id,
    ));
    decision
}
