//! The rate-limit stage natively: configuration, descriptors and weighting from real
//! pipeline decisions, and every answer (OK, OVER_LIMIT, failures) turned into the next step.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::time::Duration;

use obguard::config::{self, FilterConfig};
use obguard::pipeline::{Action, Worker, decide};
use obguard::ratelimit::config::{CallPolicy, FailureMode};
use obguard::ratelimit::reply::{self, Answer, Failure, Next, Reserved};
use obguard::ratelimit::{Call, plan};
use obguard_rls_proto::envoy::service::ratelimit::v3::rate_limit_response::{
    Code, DescriptorStatus, rate_limit::Unit,
};
use obguard_rls_proto::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use obguard_testkit::pipeline::view;
use obguard_testkit::ratelimit::{
    descriptor_entries as entries, descriptor_status, header_value as hv, pairs, request_facts,
};
use obguard_testkit::{self as kit, Key};
use prost::Message;
use serde_json::{Value, json};

fn ratelimit_section() -> Value {
    json!({
        "cluster": "ratelimit",
        "domain": "bank",
        "descriptors": [
            {"entries": [{"key": "client", "from": "client_id"}]},
            {"entries": [{"key": "client", "from": "client_id"}, {"key": "route", "from": "route"}]},
            {"entries": [{"key": "tier", "value": "gold"}, {"key": "sub", "from": "subject"}]},
            {"entries": [{"key": "verdict", "from": "verdict"}, {"key": "risk", "from": "risk_band"}]},
            {"entries": [{"key": "country", "from": "country"}]}
        ],
        "country_header": "x-client-country",
        "hits": {"low": 1, "medium": 3, "high": 5},
        "timeout_ms": 25,
        "routes": {
            "payments": {"call": "non_allow", "failure_mode": "fail_closed", "failure_status": 429},
            "health": {"call": "never"}
        }
    })
}

fn config_with(ratelimit: Value, statics: Value) -> FilterConfig {
    let mut c = kit::config::with("ratelimit", ratelimit);
    c["static_assessments"] = statics;
    kit::pipeline::load(&c)
}

fn config() -> FilterConfig {
    config_with(
        ratelimit_section(),
        json!({"tpp-risky": {"verdict": "throttle", "risk_band": "high"}}),
    )
}

/// Runs the pipeline for `method path` with a token for `client` and plans the call.
fn plan_for(
    config: &FilterConfig,
    method: &str,
    path: &str,
    client: Option<&str>,
    country: Option<&str>,
) -> Option<Call> {
    let token = client.map(|c| kit::token_for("ES256", Key::P256, c, "accounts payments"));
    let bearer = token.map(|t| format!("Bearer {t}"));
    let authorization: Vec<&str> = bearer.iter().map(String::as_str).collect();
    let view = view(method, path, &authorization);
    let mut worker = Worker::new(config);
    let decision = decide(config, &mut worker, &view, kit::now());
    assert!(
        matches!(decision.action, Action::Continue { .. }),
        "{:?}",
        decision.reason
    );
    plan(
        config.ratelimit.as_ref().unwrap(),
        &request_facts(&decision, country),
    )
}

#[test]
fn descriptors_come_from_identity_route_assessment_and_country() {
    let config = config();
    let call = plan_for(&config, "GET", "/accounts", Some("tpp-1"), Some("GB")).unwrap();
    let request = RateLimitRequest::decode(call.message.as_slice()).unwrap();
    assert_eq!(request.domain, "bank");
    assert_eq!(request.hits_addend, 1);
    assert_eq!(
        entries(&request),
        pairs(&[
            &[("client", "tpp-1@idp.obguard.test")],
            &[("client", "tpp-1@idp.obguard.test"), ("route", "accounts")],
            &[("tier", "gold"), ("sub", "psu-tpp-1")],
            &[("verdict", "allow"), ("risk", "low")],
            &[("country", "GB")],
        ])
    );
    assert_eq!(call.policy.timeout, Duration::from_millis(25));
    assert_eq!(call.policy.failure, FailureMode::FailOpen);
    assert_eq!(call.policy.call, CallPolicy::Always);
}

#[test]
fn descriptors_missing_a_value_are_left_out() {
    let config = config();
    // No country header: the country descriptor goes.
    let call = plan_for(&config, "GET", "/accounts", Some("tpp-1"), None).unwrap();
    let request = RateLimitRequest::decode(call.message.as_slice()).unwrap();
    assert_eq!(request.descriptors.len(), 4);
    // Anonymous route with call `never`: no call at all.
    assert!(plan_for(&config, "GET", "/health", None, Some("GB")).is_none());

    // An anonymous route that is checked: only descriptors without identity facts remain.
    let mut section = ratelimit_section();
    section["routes"] = json!({});
    let config = config_with(section, json!({}));
    let call = plan_for(&config, "GET", "/health", None, Some("FR")).unwrap();
    let request = RateLimitRequest::decode(call.message.as_slice()).unwrap();
    assert_eq!(entries(&request), pairs(&[&[("country", "FR")]]));

    // Nothing left to ask: no call.
    let mut section = ratelimit_section();
    section["descriptors"] = json!([{"entries": [{"key": "client", "from": "client_id"}]}]);
    section["routes"] = json!({});
    let config = config_with(section, json!({}));
    assert!(plan_for(&config, "GET", "/health", None, None).is_none());
}

#[test]
fn hits_are_weighted_by_risk_and_non_allow_calls_only_for_non_allow_verdicts() {
    let config = config();
    let call = plan_for(&config, "GET", "/accounts", Some("tpp-risky"), None).unwrap();
    let request = RateLimitRequest::decode(call.message.as_slice()).unwrap();
    assert_eq!(request.hits_addend, 5);
    assert!(entries(&request).contains(&pairs(&[&[("verdict", "throttle"), ("risk", "high")]])[0]));

    // payments: `non_allow`, so only the throttled client is checked.
    assert!(plan_for(&config, "POST", "/domestic-payments", Some("tpp-1"), None).is_none());
    let call = plan_for(
        &config,
        "POST",
        "/domestic-payments",
        Some("tpp-risky"),
        None,
    )
    .unwrap();
    assert_eq!(call.policy.failure, FailureMode::FailClosed);
    assert_eq!(call.policy.failure_status, 429);
}

#[test]
fn verdict_and_risk_headers_go_upstream() {
    let config = config();
    let token = kit::token_for("ES256", Key::P256, "tpp-risky", "accounts");
    let decision = kit::pipeline::decide_get(&config, "/accounts", &token, kit::now());
    let Action::Continue { set, remove, .. } = &decision.action else {
        panic!("refused");
    };
    assert!(set.contains(&("x-obguard-verdict".into(), "throttle".into())));
    assert!(set.contains(&("x-obguard-risk-band".into(), "high".into())));
    assert!(remove.contains(&"x-obguard-verdict".to_owned()));
    assert!(remove.contains(&"x-obguard-risk-band".to_owned()));
}

fn policy(mode: FailureMode, status: u16) -> obguard::ratelimit::config::RoutePolicy {
    obguard::ratelimit::config::RoutePolicy {
        call: CallPolicy::Always,
        timeout: Duration::from_millis(20),
        failure: mode,
        failure_status: status,
        throttle_without_call: Default::default(),
    }
}

/// The service's `response` (gRPC OK, in no time) obeyed on a fail-open route.
fn obey_ok_answer(response: &RateLimitResponse, interaction_id: &str) -> reply::Obeyed {
    reply::obey(
        &policy(FailureMode::FailOpen, 503),
        0,
        Duration::ZERO,
        Some(&response.encode_to_vec()),
        &Reserved::default(),
        "bank",
        interaction_id,
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn ok_resumes_with_the_services_headers() {
    let response = RateLimitResponse {
        overall_code: Code::Ok as i32,
        request_headers_to_add: vec![
            hv("X-Quota-Tier", "gold"),
            hv(":path", "/admin"),
            hv("host", "evil"),
            hv("x-bad", "a\r\nb"),
        ],
        response_headers_to_add: vec![
            hv("x-ratelimit-note", "fine"),
            hv("x-fapi-interaction-id", "forged"),
        ],
        ..Default::default()
    };
    let obeyed = obey_ok_answer(&response, "id-1");
    assert_eq!(obeyed.answer, Answer::Ok);
    assert_eq!(
        obeyed.next,
        Next::Resume {
            request_headers: vec![("x-quota-tier".into(), "gold".into())],
            response_headers: vec![("x-ratelimit-note".into(), "fine".into())],
        }
    );
}

#[test]
fn over_limit_is_a_429_with_retry_after_and_ratelimit_headers() {
    let response = RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        statuses: vec![
            descriptor_status(
                Code::Ok,
                ("per-client", 100, Unit::Minute),
                40,
                prost_types::Duration {
                    seconds: 12,
                    nanos: 0,
                },
            ),
            descriptor_status(
                Code::OverLimit,
                ("", 10, Unit::Hour),
                0,
                prost_types::Duration {
                    seconds: 1799,
                    nanos: 500,
                },
            ),
            DescriptorStatus {
                code: Code::Ok as i32,
                ..Default::default()
            },
        ],
        response_headers_to_add: vec![hv("x-limit-hint", "slow down"), hv("Retry-After", "0")],
        ..Default::default()
    };
    let obeyed = obey_ok_answer(&response, "id-9");
    assert_eq!(obeyed.answer, Answer::OverLimit);
    let Next::Reply(reply) = obeyed.next else {
        panic!("not a reply")
    };
    assert_eq!(reply.status, 429);
    let h = &reply.headers;
    assert_eq!(header(h, "retry-after"), Some("1800"));
    assert_eq!(
        header(h, "ratelimit-policy"),
        Some("\"per-client\";q=100;w=60, \"descriptor-1\";q=10;w=3600")
    );
    assert_eq!(
        header(h, "ratelimit"),
        Some("\"per-client\";r=40;t=12, \"descriptor-1\";r=0;t=1800")
    );
    assert_eq!(header(h, "x-fapi-interaction-id"), Some("id-9"));
    assert_eq!(header(h, "x-limit-hint"), Some("slow down"));
    assert_eq!(h.iter().filter(|(n, _)| n == "retry-after").count(), 1);
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        body,
        json!({"error": "rate_limited", "error_description": "Too many requests; retry later", "interaction_id": "id-9"})
    );

    // Without statuses: still Retry-After, no RateLimit headers.
    let bare = RateLimitResponse {
        overall_code: Code::OverLimit as i32,
        ..Default::default()
    };
    let obeyed = obey_ok_answer(&bare, "i");
    let Next::Reply(reply) = obeyed.next else {
        panic!("not a reply")
    };
    assert_eq!(header(&reply.headers, "retry-after"), Some("1"));
    assert_eq!(header(&reply.headers, "ratelimit"), None);
}

#[test]
fn failures_become_the_routes_decision() {
    let open = policy(FailureMode::FailOpen, 503);
    let closed_503 = policy(FailureMode::FailClosed, 503);
    let closed_429 = policy(FailureMode::FailClosed, 429);
    let unknown = RateLimitResponse::default().encode_to_vec();
    let fast = Duration::from_millis(3);
    let slow = Duration::from_millis(20);
    let cases: [(u32, Duration, Option<&[u8]>, Failure); 7] = [
        (4, fast, None, Failure::Timeout),
        // Envoy reports its own timeout as UNAVAILABLE: the elapsed time tells.
        (14, slow, None, Failure::Timeout),
        (14, fast, None, Failure::Unavailable),
        (13, fast, None, Failure::Error),
        (13, slow, None, Failure::Timeout),
        (0, fast, Some(&[0xff, 0xff, 0xff]), Failure::Malformed),
        (0, slow, Some(&unknown), Failure::Malformed),
    ];
    for (status, elapsed, body, failure) in cases {
        let obey = |policy| {
            reply::obey(
                policy,
                status,
                elapsed,
                body,
                &Reserved::default(),
                "bank",
                "i",
            )
        };
        let obeyed = obey(&open);
        assert_eq!(obeyed.answer, Answer::FailedOpen(failure));
        assert!(matches!(obeyed.next, Next::Resume { .. }));

        let obeyed = obey(&closed_503);
        assert_eq!(obeyed.answer, Answer::FailedClosed(failure));
        let Next::Reply(reply) = obeyed.next else {
            panic!("not a reply")
        };
        assert_eq!(reply.status, 503);
        let json: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(json["error"], "temporarily_unavailable");
        assert_eq!(header(&reply.headers, "x-fapi-interaction-id"), Some("i"));

        let obeyed = obey(&closed_429);
        let Next::Reply(reply) = obeyed.next else {
            panic!("not a reply")
        };
        assert_eq!(reply.status, 429);
        assert_eq!(
            serde_json::from_str::<Value>(&reply.body).unwrap()["error"],
            "rate_limited"
        );
    }
    assert_eq!(
        Answer::FailedClosed(Failure::Timeout).log_value(),
        "failed_closed:timeout"
    );
}

#[test]
fn config_errors_name_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"domain": "d", "descriptors": []}),
            "ratelimit: missing field `cluster`",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "descriptors": []}),
            "ratelimit.descriptors: at least one descriptor is required",
        ),
        (
            json!({"cluster": "rl", "domain": " ", "descriptors": [{"entries": [{"key": "k", "value": "v"}]}]}),
            "ratelimit.domain: must not be empty",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "descriptors": [{"entries": []}]}),
            "ratelimit.descriptors[0].entries: at least one entry is required",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "descriptors": [{"entries": [{"key": "k"}]}]}),
            "ratelimit.descriptors[0].entries[0]: set exactly one of `from` or `value`",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "descriptors": [{"entries": [{"key": "k", "from": "client_id", "value": "v"}]}]}),
            "ratelimit.descriptors[0].entries[0]: set exactly one of `from` or `value`",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "descriptors": [{"entries": [{"key": "k", "from": "ip"}]}]}),
            "ratelimit.descriptors[0].entries[0].from: unknown variant `ip`",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "descriptors": [{"entries": [{"key": "", "value": "v"}]}]}),
            "ratelimit.descriptors[0].entries[0].key: must not be empty",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "descriptors": [{"entries": [{"key": "c", "from": "country"}]}]}),
            "ratelimit.descriptors[0].entries[0].from: `country` needs `ratelimit.country_header`",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "country_header": "X-Country", "descriptors": [{"entries": [{"key": "k", "value": "v"}]}]}),
            "ratelimit.country_header: must be a lower-case HTTP header name",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "timeout_ms": 0, "descriptors": [{"entries": [{"key": "k", "value": "v"}]}]}),
            "ratelimit.timeout_ms: must be between 1 and 10000 (milliseconds)",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "failure_status": 500, "descriptors": [{"entries": [{"key": "k", "value": "v"}]}]}),
            "ratelimit.failure_status: must be 429 or 503",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "hits": {"high": 0}, "descriptors": [{"entries": [{"key": "k", "value": "v"}]}]}),
            "ratelimit.hits.high: must be between 1 and 1000",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "routes": {"nope": {}}, "descriptors": [{"entries": [{"key": "k", "value": "v"}]}]}),
            "ratelimit.routes.nope: no route has this name",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "routes": {"payments": {"failure_status": 200}}, "descriptors": [{"entries": [{"key": "k", "value": "v"}]}]}),
            "ratelimit.routes.payments.failure_status: must be 429 or 503",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "routes": {"payments": {"mode": "x"}}, "descriptors": [{"entries": [{"key": "k", "value": "v"}]}]}),
            "ratelimit.routes.payments.mode: unknown field `mode`",
        ),
        (
            json!({"cluster": "r l", "domain": "d", "descriptors": [{"entries": [{"key": "k", "value": "v"}]}]}),
            "ratelimit.cluster: must be printable ASCII without spaces, at most 100 bytes",
        ),
        (
            json!({"cluster": "rl", "domain": "d", "call": "sometimes", "descriptors": [{"entries": [{"key": "k", "value": "v"}]}]}),
            "ratelimit.call: unknown variant `sometimes`",
        ),
    ];
    for (section, expected) in cases {
        let mut c = kit::plugin_config();
        c["ratelimit"] = section;
        let err = match config::load(c.to_string().as_bytes()) {
            Ok(_) => panic!("accepted: {expected}"),
            Err(err) => err.to_string(),
        };
        assert!(
            err.starts_with(expected),
            "expected `{expected}`, got `{err}`"
        );
    }

    // Pinned verdicts are enforced now that the model stage exists; unknown ones are refused.
    let mut c = kit::plugin_config();
    c["static_assessments"] = json!({"tpp-x": {"verdict": "block", "risk_band": "high"}});
    assert!(config::load(c.to_string().as_bytes()).is_ok());
    c["static_assessments"] = json!({"tpp-x": {"verdict": "deny", "risk_band": "high"}});
    let err = config::load(c.to_string().as_bytes())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("static_assessments.tpp-x.verdict: unknown variant `deny`"),
        "{err}"
    );
    c["static_assessments"] = json!({"tpp-x": {"verdict": "allow", "risk_band": "severe"}});
    let err = config::load(c.to_string().as_bytes())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("static_assessments.tpp-x.risk_band: unknown variant `severe`"),
        "{err}"
    );
}
