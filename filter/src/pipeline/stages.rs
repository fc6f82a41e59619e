//! The request stages, in the order they run; each hands the request on or refuses it:
//!
//! 1. **request**: the path is unambiguous, the credential is where RFC 6750 allows;
//! 2. **route**: the route and its parameters (or the `unmatched` policy), no method override;
//! 3. **identify**: the token is verified (or taken from `jwt_authn`);
//! 4. **scopes**: the token carries the route's scopes;
//! 5. **assess**: the verdict: pinned, or the model's against the client's baseline;
//! 6. **rules**: the hard rules, whose stricter verdict wins;
//! 7. **enforce**: the verdict answered here (step-up, throttle, block) or carried on;
//! 8. **rate limit**: whether the rate-limit service is asked before forwarding.

use super::{Action, Decision, Refusal, RequestView, Worker};
use crate::assess::model::{self as model_stage, WhenUnavailable};
use crate::assess::{self, Assessment, Verdict};
use crate::authorise::config::UnmatchedPolicy;
use crate::authorise::method_override::{self, MethodOverridePolicy};
use crate::authorise::path;
use crate::authorise::routes::Route;
use crate::config::FilterConfig;
use crate::enforce::reply::Denial;
use crate::identify::extract::{self, Credential};
use crate::identify::host_crypto::VerifyPath;
use crate::identify::{self, Identity, TokenError};
use crate::ratelimit::config::ThrottleWithoutCall;
use crate::ratelimit::{self as ratelimit_stage, Call};
use crate::telemetry::{self, Outcome};

/// Where the route stage leaves a request.
enum Routed<'c, 'r> {
    /// No route, `unmatched: allow`: forwarded unchecked.
    Passthrough,
    /// An `anonymous` route: forwarded without a token.
    Anonymous,
    /// A token is required: `route` is `None` for `unmatched: authenticate`.
    Protected {
        route: Option<&'c Route>,
        /// Parameter name (the route's) and value (the path's).
        params: Vec<(&'c str, &'r str)>,
    },
}

/// An authenticated request past its scopes: what stages 5 and 6 judge.
struct Authenticated<'a> {
    request: &'a RequestView<'a>,
    path: &'a str,
    route: Option<&'a Route>,
    params: &'a [(&'a str, &'a str)],
    identity: &'a Identity,
    /// `<client id>@<namespace>`: what baselines are keyed by.
    client_key: &'a str,
    now_ms: u64,
}

pub(super) fn run<'c>(
    config: &'c FilterConfig,
    worker: &mut Worker,
    request: &RequestView<'_>,
    now: u64,
    decision: &mut Decision<'c>,
) -> Result<Action<'c>, Refusal> {
    let (path, credential) = check_request(request)?;
    let (route, params) = match find_route(config, request, path, decision)? {
        Routed::Passthrough => {
            decision.outcome = Outcome::Passthrough;
            decision.reason = Some(telemetry::REASON_NO_ROUTE);
            return Ok(forward(config, request, decision, None));
        }
        Routed::Anonymous => {
            decision.outcome = Outcome::Anonymous;
            return Ok(forward(config, request, decision, None));
        }
        Routed::Protected { route, params } => (route, params),
    };
    let identity = identify(config, worker, request, &credential, now, decision)?;
    let client_key = identity.qualified_client_id();
    decision.client_id = Some(client_key.clone());
    check_scopes(route, &identity)?;
    decision.subject = identity.subject.clone();
    let now_ms = if request.now_ms == 0 {
        now.saturating_mul(1000)
    } else {
        request.now_ms
    };
    let caller = Authenticated {
        request,
        path,
        route,
        params: &params,
        identity: &identity,
        client_key: &client_key,
        now_ms,
    };
    let assessment = assess(config, worker, &caller, decision)?;
    let (assessment, rule_reason) = apply_rules(config, worker, &caller, assessment, decision);
    decision.assessment = Some(assessment);
    // A step-up or a block is answered here: no call to plan.
    let call = match assessment.verdict {
        Verdict::StepUp | Verdict::Block => None,
        Verdict::Allow | Verdict::Throttle => plan_ratelimit(config, request, decision),
    };
    enforce(
        config,
        assessment,
        call.is_some(),
        decision.route,
        rule_reason.unwrap_or(telemetry::REASON_RISK),
    )?;
    Ok(forward_with(
        config,
        request,
        decision,
        Some(&identity),
        call,
    ))
}

/// Stage 1: a path obguard can reason about, a credential where RFC 6750 allows one.
fn check_request<'r>(request: &RequestView<'r>) -> Result<(&'r str, Credential<'r>), Refusal> {
    let (path, query) = path::split_query(request.path);
    if let Err(err) = path::check(path) {
        return Err(Refusal::new(
            Outcome::InvalidRequest,
            err.reason(),
            Denial::BadPath,
        ));
    }
    let credential = extract::credential(request.authorization, query).map_err(|err| {
        Refusal::new(
            Outcome::InvalidRequest,
            err.reason(),
            Denial::InvalidRequest {
                description: err.description(),
            },
        )
    })?;
    Ok((path, credential))
}

/// Stage 2: the route, its parameters' charsets, and no method override on a request
/// obguard authorises.
fn find_route<'c, 'r>(
    config: &'c FilterConfig,
    request: &RequestView<'r>,
    path: &'r str,
    decision: &mut Decision<'c>,
) -> Result<Routed<'c, 'r>, Refusal> {
    let (route, params) = match config.routes.find(request.method, path) {
        Some(found) => {
            decision.route = Some(found.route.name.as_str());
            // Parameters become account ids upstream: only their charset gets through.
            if found.route.param_violation(&found.params).is_some() {
                return Err(Refusal::new(
                    Outcome::InvalidRequest,
                    telemetry::REASON_PATH_PARAMETER,
                    Denial::BadPath,
                ));
            }
            (Some(found.route), found.params)
        }
        None => match config.unmatched {
            UnmatchedPolicy::Deny => {
                return Err(Refusal::new(
                    Outcome::RouteDenied,
                    telemetry::REASON_NO_ROUTE,
                    Denial::RouteNotAllowed,
                ));
            }
            UnmatchedPolicy::Allow => return Ok(Routed::Passthrough),
            UnmatchedPolicy::Authenticate => (None, Vec::new()),
        },
    };
    // The upstream may dispatch on the overriding method: refused on every request obguard
    // authorises (with `strip`, and on pass-through, the headers are removed instead).
    if config.method_override == MethodOverridePolicy::Refuse
        && method_override::present(request.headers)
    {
        return Err(Refusal::new(
            Outcome::InvalidRequest,
            telemetry::REASON_METHOD_OVERRIDE,
            Denial::MethodOverride,
        ));
    }
    match route {
        Some(route) if route.anonymous => Ok(Routed::Anonymous),
        route => Ok(Routed::Protected { route, params }),
    }
}

/// Stage 3: the verified identity, from `jwt_authn`'s metadata when an issuer delegates to
/// it, else from the bearer token.
fn identify(
    config: &FilterConfig,
    worker: &mut Worker,
    request: &RequestView<'_>,
    credential: &Credential<'_>,
    now: u64,
    decision: &mut Decision<'_>,
) -> Result<std::sync::Arc<Identity>, Refusal> {
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
            decision.trace.verified_by = Some(VerifyPath::JwtAuthn);
            result.map(std::sync::Arc::new)
        }
        None => {
            let token = match credential {
                Credential::Bearer(token) => token,
                Credential::Missing | Credential::OtherScheme => {
                    let reason = if *credential == Credential::Missing {
                        telemetry::REASON_NO_CREDENTIALS
                    } else {
                        telemetry::REASON_OTHER_SCHEME
                    };
                    return Err(Refusal::new(
                        Outcome::MissingToken,
                        reason,
                        Denial::MissingToken,
                    ));
                }
            };
            let auth = identify::authenticate(&verifier, &mut worker.cache, token, now);
            decision.trace.cache = auth.cache;
            decision.trace.verified_by = auth.verified_by;
            decision.trace.rejected_from_cache = auth.rejected_from_cache;
            auth.result
        }
    };
    result.map_err(|err| match err {
        TokenError::KeysUnavailable => {
            let (status, retry_after_s) =
                unavailable_answer(config, token_issuer(config, credential));
            Refusal::token(
                Outcome::IdpUnavailable,
                err,
                Denial::IdpUnavailable {
                    status,
                    retry_after_s,
                },
            )
        }
        err => {
            if err == TokenError::UnknownKid {
                decision.trace.refetch_keys_for =
                    token_issuer(config, credential).filter(|index| {
                        config
                            .issuers
                            .get(*index)
                            .is_some_and(|i| i.remote.is_some())
                    });
            }
            Refusal::token(
                Outcome::InvalidToken,
                err,
                Denial::InvalidToken {
                    description: err.description(),
                },
            )
        }
    })
}

/// Stage 4: the route's scopes (none asked for `unmatched: authenticate`).
fn check_scopes(route: Option<&Route>, identity: &Identity) -> Result<(), Refusal> {
    match route {
        Some(route) if !route.scopes.is_satisfied_by(&identity.scopes) => Err(Refusal::new(
            Outcome::InsufficientScope,
            telemetry::REASON_MISSING_SCOPE,
            Denial::InsufficientScope {
                scope: route.scopes.challenge(),
            },
        )),
        _ => Ok(()),
    }
}

/// Stage 5: the client's pinned assessment, else the model's (with `model.when_unavailable`
/// deciding while no model is accepted), else `allow` / `low`.
fn assess(
    config: &FilterConfig,
    worker: &mut Worker,
    caller: &Authenticated<'_>,
    decision: &mut Decision<'_>,
) -> Result<Assessment, Refusal> {
    let pinned = assess::pinned(&config.static_assessments, caller.client_key)
        .or_else(|| assess::pinned(&config.static_assessments, &caller.identity.client_id));
    let stage = match (&config.model, pinned) {
        (_, Some(pinned)) => return Ok(pinned),
        (None, None) => return Ok(Assessment::UNSCORED),
        (Some(stage), None) => stage,
    };
    let facts = model_stage::RequestFacts {
        now_ms: caller.now_ms,
        client_id: caller.client_key,
        method: caller.request.method,
        path: caller.path,
        headers: caller.request.headers,
        source_address: caller.request.source_address,
    };
    let thresholds = caller.route.and_then(|r| r.thresholds.as_ref());
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
            decision.trace.model = Some(scored);
            Ok(enforced)
        }
        None => {
            decision.trace.model_unavailable = true;
            match stage.when_unavailable {
                WhenUnavailable::Refuse { retry_after_s } => Err(Refusal::new(
                    Outcome::ModelUnavailable,
                    telemetry::REASON_MODEL_UNAVAILABLE,
                    Denial::ModelUnavailable { retry_after_s },
                )),
                WhenUnavailable::Allow => Ok(Assessment::UNSCORED),
            }
        }
    }
}

/// Stage 6: the hard rules; the stricter of their verdict and the assessment wins, in
/// shadow mode too (see [`crate::rules`]). Returns the rule's name when it decided.
fn apply_rules(
    config: &FilterConfig,
    worker: &mut Worker,
    caller: &Authenticated<'_>,
    assessment: Assessment,
    decision: &mut Decision<'_>,
) -> (Assessment, Option<&'static str>) {
    let Some(rules) = &config.rules else {
        return (assessment, None);
    };
    let facts = crate::rules::RuleRequest {
        client_id: caller.client_key,
        subject: caller.identity.subject.as_deref(),
        method: caller.request.method,
        path: caller.path,
        route: decision.route,
        params: caller.params,
        customer_present: crate::rules::customer_present(caller.request.headers),
        now_ms: caller.now_ms,
    };
    let check = rules.check(worker.baselines.as_mut(), &facts);
    let combined = crate::rules::combine(assessment, check.hit.as_ref());
    decision.trace.rules = Some(check);
    combined
}

/// Stage 7: what the verdict means for the request. A `throttle` goes on only when the
/// rate-limit service will be asked about it (`ratelimit_call`: the call carries the verdict
/// in its descriptors); otherwise it is answered here — a 429, or with
/// `throttle_without_call: block` a 403 — and never forwarded. `reason`: `risk` for the
/// model's verdict, the rule's name for a rule's.
fn enforce(
    config: &FilterConfig,
    assessment: Assessment,
    ratelimit_call: bool,
    route: Option<&str>,
    reason: &'static str,
) -> Result<(), Refusal> {
    let stage = config.model.as_ref();
    let throttled = |reason| {
        Err(Refusal::new(
            Outcome::Throttled,
            reason,
            Denial::Throttled {
                retry_after_s: stage.map_or(60, |s| s.throttle_retry_after_s),
            },
        ))
    };
    match assessment.verdict {
        Verdict::Allow => Ok(()),
        Verdict::StepUp => Err(Refusal::new(
            Outcome::Challenged,
            reason,
            Denial::StepUp {
                acr_values: stage.map_or_else(
                    || "urn:openbanking:psd2:sca".to_owned(),
                    |s| s.step_up_acr_values.clone(),
                ),
                max_age_s: stage.and_then(|s| s.step_up_max_age_s),
            },
        )),
        Verdict::Block => Err(Refusal::new(Outcome::Blocked, reason, Denial::Blocked)),
        Verdict::Throttle => match &config.ratelimit {
            None => throttled(reason),
            Some(_) if ratelimit_call => Ok(()),
            Some(rl) => match rl.policy(route).throttle_without_call {
                ThrottleWithoutCall::Reply => throttled(telemetry::REASON_NO_RATELIMIT_CALL),
                ThrottleWithoutCall::Block => Err(Refusal::new(
                    Outcome::Blocked,
                    telemetry::REASON_NO_RATELIMIT_CALL,
                    Denial::Blocked,
                )),
            },
        },
    }
}

/// Stage 8: the rate-limit call to make before forwarding, if the route's policy asks for
/// one and a descriptor can be built.
fn plan_ratelimit(
    config: &FilterConfig,
    request: &RequestView<'_>,
    decision: &Decision<'_>,
) -> Option<Call> {
    let rl = config.ratelimit.as_ref()?;
    let facts = ratelimit_stage::RequestFacts {
        client_id: decision.client_id.as_deref(),
        subject: decision.subject.as_deref(),
        route: decision.route,
        assessment: decision.assessment,
        country: rl.country_header.as_deref().and_then(|name| {
            request
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }),
    };
    ratelimit_stage::plan(rl, &facts)
}

/// Forwarding without a verified identity (pass-through, anonymous routes).
fn forward<'c>(
    config: &'c FilterConfig,
    request: &RequestView<'_>,
    decision: &Decision<'c>,
    identity: Option<&Identity>,
) -> Action<'c> {
    let call = plan_ratelimit(config, request, decision);
    forward_with(config, request, decision, identity, call)
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

fn forward_with<'c>(
    config: &'c FilterConfig,
    request: &RequestView<'_>,
    decision: &Decision<'c>,
    identity: Option<&Identity>,
    ratelimit: Option<Call>,
) -> Action<'c> {
    Action::Continue {
        remove: config
            .headers
            .removals(request.headers, method_override::is_override_header),
        remove_authorization: !config.headers.forward_authorization,
        set: config
            .headers
            .headers_for(identity, decision.route, decision.assessment),
        ratelimit,
    }
}
