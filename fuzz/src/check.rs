//! Invariants the targets assert, shared so every target means the same thing by them.

use obguard::config::FilterConfig;
use obguard::enforce::reply::LocalReply;
use obguard::identify::cache::CacheLookup;
use obguard::identify::extract::{self, Credential};
use obguard::pipeline::{Action, Decision, RequestView};
use obguard::telemetry::Outcome;

use crate::fixtures::{self, GATEWAY_ISSUER, GATEWAY_PAYLOAD_KEY};

/// An HTTP field name as obguard emits them: a non-empty lower-case token.
pub fn assert_header_name(name: &str) {
    assert!(
        !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            }),
        "bad header name {name:?}"
    );
}

/// A field value that cannot split or smuggle a header: tab and visible ASCII or space.
pub fn assert_header_value(name: &str, value: &str) {
    assert!(
        value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b)),
        "header {name} has an unsafe value {value:?}"
    );
}

pub fn assert_headers<N: AsRef<str>, V: AsRef<str>>(headers: &[(N, V)]) {
    for (name, value) in headers {
        assert_header_name(name.as_ref());
        assert_header_value(name.as_ref(), value.as_ref());
    }
}

pub fn assert_reply(reply: &LocalReply) {
    assert!(
        (400..=599).contains(&reply.status),
        "local reply with status {}",
        reply.status
    );
    assert_headers(&reply.headers);
    let body: Result<serde_json::Value, _> = serde_json::from_str(&reply.body);
    assert!(body.is_ok(), "reply body is not JSON: {:?}", reply.body);
}

/// What may be said of any decision, under any configuration:
///
/// * a request is forwarded on an authenticated route (anything but an `anonymous` route or
///   an unmatched request under `unmatched: allow`) only with a token whose header and
///   payload are exactly those of a committed token signed by a trusted key, or with a
///   `jwt_authn` payload for the delegating issuer;
/// * under the fixture configurations, that token's time window also holds at `now`, and the
///   decision names its client;
/// * every header set upstream or in a local reply is well formed, replies are 4xx/5xx
///   with a JSON body.
pub fn assert_decision(
    config: &FilterConfig,
    fixture_config: bool,
    request: &RequestView<'_>,
    now: u64,
    decision: &Decision<'_>,
) {
    assert_header_value("x-fapi-interaction-id", &decision.interaction_id);
    let (path, query) = obguard::authorise::path::split_query(request.path);
    let route = config.routes.find(request.method, path).map(|m| m.route);
    match &decision.action {
        // Only consent-bound routes with a consent service ask; no request is decided yet.
        Action::FetchConsent { consent_id } => {
            assert!(config.consent_service.is_some(), "fetch without a service");
            assert!(!consent_id.is_empty());
        }
        Action::Reply(reply) => {
            assert_reply(reply);
            assert!(
                !matches!(
                    decision.outcome,
                    Outcome::Allowed | Outcome::Anonymous | Outcome::Passthrough
                ),
                "outcome {:?} with a local reply",
                decision.outcome
            );
        }
        Action::Continue { set, .. } => {
            assert_headers(set);
            match decision.outcome {
                Outcome::Anonymous => {
                    assert!(
                        route.is_some_and(|r| r.anonymous),
                        "anonymous outcome for {} {}",
                        request.method,
                        request.path
                    );
                    return;
                }
                Outcome::Passthrough => {
                    assert!(
                        route.is_none()
                            && config.unmatched == obguard::config::UnmatchedPolicy::Allow,
                        "passthrough of {} {}",
                        request.method,
                        request.path
                    );
                    return;
                }
                Outcome::Allowed => {}
                other => panic!("outcome {other:?} forwarded the request"),
            }
            assert!(
                !route.is_some_and(|r| r.anonymous),
                "allowed outcome on an anonymous route"
            );
            assert_authenticated(fixture_config, request, query, now, decision);
        }
    }
}

fn assert_authenticated(
    fixture_config: bool,
    request: &RequestView<'_>,
    query: Option<&str>,
    now: u64,
    decision: &Decision<'_>,
) {
    use obguard::identify::host_crypto::VerifyPath;
    if decision.trace.verified_by == Some(VerifyPath::JwtAuthn) {
        let payload = request
            .jwt_authn_payloads
            .and_then(|p| p.get(GATEWAY_PAYLOAD_KEY));
        assert!(
            payload
                .and_then(|p| p.get("iss"))
                .is_some_and(|iss| iss == GATEWAY_ISSUER),
            "delegated identity without a gateway payload"
        );
        return;
    }
    let token = match extract::credential(request.authorization, query) {
        Ok(Credential::Bearer(token)) => token,
        other => panic!("forwarded with credential {other:?}"),
    };
    let fx = fixtures::get();
    let Some(minted) = fx.token_signing(token) else {
        panic!("forwarded a token that is not a committed one: {token:?}");
    };
    assert!(
        minted.trusted,
        "forwarded {} (not signed by a trusted key)",
        minted.name
    );
    if fixture_config {
        assert!(minted.claims_ok, "forwarded {} (bad claims)", minted.name);
        // Every fixture issuer allows at most 60 s of skew.
        let skew = 60;
        assert!(
            now <= minted.exp + skew,
            "forwarded {} after it expired (now {now})",
            minted.name
        );
        // The token cache keeps only `exp`: a token verified at t is served at an earlier
        // t' (the clock stepped back) even before its `nbf`/`iat` (docs/fuzzing.md, findings).
        assert!(
            decision.trace.cache == CacheLookup::Hit || minted.nbf.max(minted.iat) <= now + skew,
            "forwarded {} before its time window (now {now})",
            minted.name
        );
        // Client ids are qualified by their issuer's namespace (`id@namespace`).
        let qualified = decision.client_id.as_deref().unwrap_or_default();
        assert_eq!(
            qualified.rsplit_once('@').map(|(id, _)| id),
            Some(minted.client_id.as_str()),
            "client of {}",
            minted.name
        );
    }
}
