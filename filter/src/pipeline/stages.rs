//! The request stages, in the order they run; each hands the request on or refuses it:
//!
//! 0. **threat intelligence**: the trusted client address, ASN or country on a `deny` feed
//!    is refused before anything of the request is parsed (a `watch` match is kept for the
//!    assess stage);
//! 1. **request**: the path is unambiguous, the credential is where RFC 6750 allows;
//! 2. **route**: the route and its parameters (or the `unmatched` policy), no method
//!    override, the FAPI headers and the idempotency key;
//! 3. **identify**: the token is verified (or taken from `jwt_authn`), not revoked, and its
//!    client (or subject) not quarantined;
//! 4. **scopes**: the token carries the route's scopes;
//! 5. **consent**: the route's consent-bound parameters are within the token's consent
//!    (which may need a consent-service fetch: the request is then decided again);
//! 6. **sender**: a bound token is used by its holder (RFC 8705 certificate, RFC 9449 DPoP
//!    proof). After the consent stage because a fetch decides the request twice, and a
//!    proof's `jti` must be recorded once;
//! 7. **assess**: the verdict: pinned, or the model's against the client's baseline;
//! 8. **rules**: the hard rules, whose stricter verdict wins;
//! 9. **enforce**: the verdict answered here (step-up, throttle, block) or carried on;
//! 10. **rate limit**: whether the rate-limit service is asked before forwarding.

use super::{Action, Decision, Refusal, RequestView, Worker};
use crate::assess::model::{self as model_stage, WhenUnavailable};
use crate::assess::{self, Assessment, Verdict};
use crate::authorise::config::UnmatchedPolicy;
use crate::authorise::consent::{self, ConsentCheck, ConsentDenial};
use crate::authorise::fapi;
use crate::authorise::method_override::{self, MethodOverridePolicy};
use crate::authorise::path;
use crate::authorise::routes::Route;
use crate::config::FilterConfig;
use crate::enforce::reply::Denial;
use crate::identify::binding::{self, BindingError};
use crate::identify::config::BindingMode;
use crate::identify::dpop;
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
    screen_threats(config, worker, request, decision)?;
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
    check_fapi(config, request, route, decision)?;
    let identity = identify(config, worker, request, &credential, now, decision)?;
    let client_key = identity.qualified_client_id();
    decision.client_id = Some(client_key.clone());
    decision.subject = identity.subject.clone();
    check_containment(
        config,
        worker,
        &credential,
        &identity,
        &client_key,
        now,
        decision,
    )?;
    check_scopes(route, &identity)?;
    let now_ms = if request.now_ms == 0 {
        now.saturating_mul(1000)
    } else {
        request.now_ms
    };
    if let Some(consent_id) = check_consent(
        config,
        worker,
        request,
        route,
        &params,
        &identity,
        &client_key,
        now_ms,
        decision,
    )? {
        return Ok(Action::FetchConsent { consent_id });
    }
    check_sender(
        config,
        worker,
        request,
        path,
        route,
        &credential,
        &identity,
        now,
        decision,
    )?;
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
        Verdict::Allow | Verdict::Throttle => {
            plan_ratelimit(config, request, decision, Some(&identity))
        }
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

/// Stage 0: the request against the threat-intelligence feeds; a `deny` match refuses
/// before the token is looked at.
fn screen_threats(
    config: &FilterConfig,
    worker: &Worker,
    request: &RequestView<'_>,
    decision: &mut Decision<'_>,
) -> Result<(), Refusal> {
    let Some(intel) = &config.threat_intel else {
        return Ok(());
    };
    decision.trace.intel = crate::intel::screen::screen(
        intel,
        &worker.intel,
        request.headers,
        request.source_address,
    );
    if decision
        .trace
        .intel
        .first()
        .is_some_and(|hit| hit.action == crate::intel::config::FeedAction::Deny)
    {
        return Err(Refusal::new(
            Outcome::ThreatDenied,
            telemetry::REASON_THREAT_INTEL,
            Denial::AccessDenied {
                description: "Requests from this network are not accepted",
            },
        ));
    }
    Ok(())
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
                Credential::Bearer(token) | Credential::Dpop(token) => token,
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

/// Stage 3 (after the token is verified): the token is not revoked, the client (or its
/// subject) not quarantined. Free while both lists are empty; otherwise a hash per list
/// kind in use (the token is hashed only when a list names tokens by hash, or a playbook
/// may revoke one that has no `jti`).
fn check_containment(
    config: &FilterConfig,
    worker: &Worker,
    credential: &Credential<'_>,
    identity: &Identity,
    client_key: &str,
    now: u64,
    decision: &mut Decision<'_>,
) -> Result<(), Refusal> {
    let Some(containment) = &config.containment else {
        return Ok(());
    };
    let token = match credential {
        Credential::Bearer(token) | Credential::Dpop(token) => Some(*token),
        Credential::Missing | Credential::OtherScheme => None,
    };
    // What a `revoke_token` playbook would name; nothing is copied or hashed without one.
    if containment.revokes_tokens() {
        decision.jti = identity.jti.clone();
        if identity.jti.is_none() {
            decision.token_hash = token.map(crate::respond::containment::token_hash);
        }
    }
    let who = crate::respond::containment::Subject {
        client: client_key,
        subject: identity.subject.as_deref(),
        jti: identity.jti.as_deref(),
        token,
    };
    let Some(hit) = worker.containment.check(&who, now) else {
        return Ok(());
    };
    decision.trace.containment = Some(hit);
    if hit.kind.is_revocation() {
        let err = TokenError::Revoked;
        return Err(Refusal::token(
            Outcome::InvalidToken,
            err,
            Denial::InvalidToken {
                description: err.description(),
            },
        ));
    }
    Err(Refusal::new(
        Outcome::Quarantined,
        telemetry::REASON_QUARANTINED,
        Denial::AccessDenied {
            description: "The client is quarantined; contact the bank",
        },
    ))
}

/// Stage 2 (after the route): the FAPI headers (with `fapi`) and the route's idempotency
/// key.
fn check_fapi(
    config: &FilterConfig,
    request: &RequestView<'_>,
    route: Option<&Route>,
    decision: &mut Decision<'_>,
) -> Result<(), Refusal> {
    let requires_key = route.is_some_and(|r| r.idempotency_key);
    let Some(violation) = fapi::check(&config.fapi, request.headers, requires_key) else {
        return Ok(());
    };
    if !fapi::refuses(&config.fapi, violation) {
        decision.trace.fapi_logged = Some(violation.reason());
        return Ok(());
    }
    Err(Refusal::new(
        Outcome::InvalidRequest,
        violation.reason(),
        Denial::InvalidRequest {
            description: violation.description(),
        },
    ))
}

/// Stage 5: the route's consent-bound parameters within the token's consent. `Some(id)`:
/// the consent service must be asked about consent `id` first.
#[allow(clippy::too_many_arguments)]
fn check_consent(
    config: &FilterConfig,
    worker: &mut Worker,
    request: &RequestView<'_>,
    route: Option<&Route>,
    params: &[(&str, &str)],
    identity: &Identity,
    client_key: &str,
    now_ms: u64,
    decision: &mut Decision<'_>,
) -> Result<Option<String>, Refusal> {
    let Some(route) = route.filter(|r| !r.consent_params.is_empty()) else {
        return Ok(None);
    };
    let bound: Vec<&str> = params
        .iter()
        .filter(|(name, _)| route.consent_params.iter().any(|p| p == name))
        .map(|(_, value)| *value)
        .collect();
    let (result, fetch_error) = consent::check(
        config.consent_service.as_ref(),
        worker.shared_slots.as_mut(),
        identity.consent.as_ref(),
        &bound,
        request.consent_answer,
        now_ms,
    );
    decision.trace.consent_fetch_error = fetch_error;
    match result {
        ConsentCheck::Within(source) => {
            decision.trace.consent = Some(source);
            Ok(None)
        }
        ConsentCheck::Fetch(consent_id) => Ok(Some(consent_id)),
        ConsentCheck::Unavailable => Err(Refusal::new(
            Outcome::ConsentUnavailable,
            telemetry::REASON_CONSENT_UNAVAILABLE,
            Denial::ConsentUnavailable {
                retry_after_s: config
                    .consent_service
                    .as_ref()
                    .map_or(5, |s| s.retry_after_s),
            },
        )),
        ConsentCheck::Denied(denial, source) => {
            decision.trace.consent = source;
            // A resource outside the consent is enumeration evidence: it counts in the
            // client's baseline as the 403 it gets.
            if denial == ConsentDenial::Mismatch {
                record_refusal_in_baseline(config, worker, client_key, now_ms);
            }
            Err(Refusal::new(
                Outcome::ConsentDenied,
                denial.reason(),
                Denial::AccessDenied {
                    description: denial.description(),
                },
            ))
        }
    }
}

/// Folds a refused request into the client's baseline as a 403 response (model configured).
fn record_refusal_in_baseline(
    config: &FilterConfig,
    worker: &mut Worker,
    client_key: &str,
    now_ms: u64,
) {
    let Some(stage) = &config.model else {
        return;
    };
    let response = crate::assess::pending::ObservedResponse {
        status: 403,
        bytes: 0,
        at_ms: now_ms,
    };
    if !worker.pending_responses.defer(client_key, response) {
        stage.observe(worker.baselines.as_mut(), client_key, &[response], now_ms);
    }
}

/// Stage 6: a sender-constrained token is used by its holder: the TLS client certificate
/// (RFC 8705) and the DPoP proof (RFC 9449), per the route's or the issuer's modes.
#[allow(clippy::too_many_arguments)]
fn check_sender(
    config: &FilterConfig,
    worker: &mut Worker,
    request: &RequestView<'_>,
    path: &str,
    route: Option<&Route>,
    credential: &Credential<'_>,
    identity: &Identity,
    now: u64,
    decision: &mut Decision<'_>,
) -> Result<(), Refusal> {
    let Some(issuer) = config.issuers.get(identity.issuer) else {
        return Ok(());
    };
    let policy = &issuer.sender;
    let (mtls, dpop) = policy.modes(route.and_then(|r| r.sender.as_ref()));
    let cnf = &identity.confirmation;
    let refuse = |error: BindingError| {
        let dpop_challenge = matches!(
            error,
            BindingError::Proof(_)
                | BindingError::DpopBindingRequired
                | BindingError::DpopSchemeMismatch
        );
        Refusal::new(
            Outcome::InvalidToken,
            error.reason(),
            if dpop_challenge {
                Denial::InvalidDpop {
                    proof: matches!(error, BindingError::Proof(_)),
                    description: error.description(),
                    algorithms: policy
                        .dpop_algorithms
                        .iter()
                        .map(|a| a.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                }
            } else {
                Denial::InvalidToken {
                    description: error.description(),
                }
            },
        )
    };
    if mtls != BindingMode::Off && (cnf.x5t_s256.is_some() || mtls == BindingMode::Required) {
        let peer = request.connection.peer_certificate_sha256();
        binding::check_certificate(mtls, cnf, peer.as_deref()).map_err(refuse)?;
        decision.trace.sender_constraint = Some("mtls");
    }
    if dpop == BindingMode::Off {
        return Ok(());
    }
    let (token, dpop_scheme) = match credential {
        Credential::Dpop(token) => (*token, true),
        Credential::Bearer(token) => (*token, false),
        // Delegated (`jwt_authn`): the scheme is the one jwt_authn accepted.
        Credential::Missing | Credential::OtherScheme => ("", false),
    };
    let jkt = match (&cnf.jkt, dpop) {
        (Some(jkt), _) => jkt,
        (None, BindingMode::Required) => return Err(refuse(BindingError::DpopBindingRequired)),
        (None, _) if dpop_scheme => return Err(refuse(BindingError::DpopSchemeMismatch)),
        (None, _) => return Ok(()),
    };
    if !dpop_scheme {
        return Err(refuse(BindingError::DpopSchemeMismatch));
    }
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let proofs: Vec<&str> = request
        .headers
        .iter()
        .filter(|(n, _)| n == "dpop")
        .map(|(_, v)| v.as_str())
        .collect();
    let rules = dpop::ProofRules {
        algorithms: &policy.dpop_algorithms,
        max_age_s: policy.dpop_max_age_s,
        clock_skew_s: issuer.clock_skew_s,
        origins: &policy.dpop_origins,
        replay_entries: config.dpop_replay_entries,
    };
    let context = dpop::ProofContext {
        proofs: &proofs,
        method: request.method,
        scheme: header(":scheme"),
        authority: header(":authority"),
        path,
        access_token: token,
        now,
    };
    dpop::check_proof(&rules, &context, jkt, worker.shared_slots.as_mut())
        .map_err(|e| refuse(BindingError::Proof(e)))?;
    decision.trace.sender_constraint = Some(match decision.trace.sender_constraint {
        Some(_) => "mtls_dpop",
        None => "dpop",
    });
    Ok(())
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

/// Stage 7: the client's pinned assessment, else the model's (with `model.when_unavailable`
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
        Some(mut scored) => {
            if let Some(intel) = &config.threat_intel {
                for hit in &decision.trace.intel {
                    if let Some(feed) = intel.feeds.get(hit.feed) {
                        let route_thresholds = caller.route.and_then(|r| r.thresholds.as_ref());
                        scored.raise(
                            intel.watch_score,
                            route_thresholds,
                            format!("threat_intel_watch({}:{})", feed.name, hit.matched),
                        );
                    }
                }
            }
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

/// Stage 8: the hard rules; the stricter of their verdict and the assessment wins, in
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

/// Stage 9: what the verdict means for the request. A `throttle` goes on only when the
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

/// Stage 10: the rate-limit call to make before forwarding, if the route's policy asks for
/// one and a descriptor can be built.
fn plan_ratelimit(
    config: &FilterConfig,
    request: &RequestView<'_>,
    decision: &Decision<'_>,
    identity: Option<&Identity>,
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
        idempotency_key: fapi::idempotency_key(
            request.headers,
            config.fapi.idempotency_key_max_bytes,
        ),
        consent_id: identity.and_then(|i| match &i.consent {
            Some(consent::TokenConsent::ConsentId(id)) => Some(id.as_str()),
            _ => None,
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
    let call = plan_ratelimit(config, request, decision, identity);
    forward_with(config, request, decision, identity, call)
}

/// The issuer a bearer token names (unverified `iss`, or the only issuer): only used to pick
/// which issuer's JWKS to refresh or whose unavailability answer to give.
fn token_issuer(config: &FilterConfig, credential: &Credential<'_>) -> Option<usize> {
    if let [_] = config.issuers.as_slice() {
        return Some(0);
    }
    let (Credential::Bearer(token) | Credential::Dpop(token)) = credential else {
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
