//! The runtime (plugin, streams, callouts) against the in-memory host: every host failure
//! and every broken callout answer ends in the configured decision, a metric and a log line.
//! Through real Envoy the same faults are in integration/tests/faults.rs.

// Test code: failing loudly is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::type_complexity
)]

use std::rc::Rc;
use std::time::Duration;

use obguard::host::{HeaderMap, HostError, LogLevel};
use obguard::runtime::{Flow, Plugin, Stream};
use obguard_testkit::host::{HostOp, MemoryHost};
use obguard_testkit::{self as kit, Key};
use serde_json::{Value, json};

fn remote_jwks_config() -> Value {
    let mut config = kit::plugin_config();
    let issuer = config["issuers"][0].as_object_mut().unwrap();
    issuer.remove("jwks");
    issuer.insert(
        "jwks_remote".into(),
        json!({"cluster": "idp", "path": "/jwks", "timeout_ms": 500, "max_bytes": 4096,
               "refresh_s": 60, "min_refetch_interval_s": 30, "max_stale_s": 3600,
               "unavailable": {"status": 503, "retry_after_s": 7}}),
    );
    config
}

fn configured(config: &Value) -> (Rc<MemoryHost>, Plugin) {
    let host = Rc::new(MemoryHost::new(kit::now()));
    host.set_plugin_configuration(config);
    let mut plugin = Plugin::new(host.clone(), None);
    assert!(plugin.configure(), "{:?}", host.logs());
    (host, plugin)
}

fn accounts_request(host: &MemoryHost, token: &str) {
    let auth = format!("Bearer {token}");
    host.start_request([
        (":method", "GET"),
        (":path", "/accounts"),
        (":authority", "bank.test"),
        ("authorization", auth.as_str()),
    ]);
}

/// Valid for the hour the tests advance the host clock through.
fn token() -> String {
    let mut claims = kit::claims("tpp-1", "accounts");
    claims["exp"] = json!(kit::now() + 3500);
    kit::token("ES256", Key::P256, &claims)
}

#[test]
fn configuration_errors_and_unreadable_configuration_refuse_the_plugin() {
    let host = Rc::new(MemoryHost::new(kit::now()));
    let mut config = kit::plugin_config();
    config["routes"][0]["path"] = json!("accounts");
    host.set_plugin_configuration(&config);
    let mut plugin = Plugin::new(host.clone(), None);
    assert!(!plugin.configure());
    assert!(host.logged(
        LogLevel::Error,
        "invalid plugin configuration: routes[0].path"
    ));

    let host = Rc::new(MemoryHost::new(kit::now()));
    host.set_plugin_configuration(&kit::plugin_config());
    host.fail(HostOp::Buffer, HostError::InternalFailure);
    let mut plugin = Plugin::new(host.clone(), None);
    assert!(!plugin.configure());
    assert!(host.logged(LogLevel::Error, "cannot read plugin configuration"));

    // A stream of a plugin that never configured refuses rather than forwards.
    let mut stream = plugin.stream();
    accounts_request(&host, &token());
    assert_eq!(stream.on_request_headers(), Flow::Pause);
    assert_eq!(host.replies()[0].status, 503);
}

#[test]
fn a_jwks_callout_without_an_answer_is_counted_and_the_configured_decision_stands() {
    let (host, mut plugin) = configured(&remote_jwks_config());
    assert_eq!(host.tick_period(), Some(Duration::from_secs(1)));
    // Configuring ran the first tick: one fetch in flight.
    let calls = host.http_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].cluster, "idp");
    assert_eq!(calls[0].header(":path"), Some("/jwks"));
    assert_eq!(calls[0].timeout, Duration::from_millis(500));

    // Reset, timeout, cut-short body: Envoy answers with no headers attached, whose reads
    // fail with BadArgument (the SDK panicked here).
    host.fail_http_call();
    plugin.on_http_call_response(calls[0].token, 0);
    assert_eq!(host.metric("obguard.jwks.fetch_failed.unreachable"), 1);
    assert!(host.logged(
        LogLevel::Warn,
        "JWKS fetch for https://idp.obguard.test failed (unreachable"
    ));

    // Never fetched: the issuer's `unavailable` decision.
    let mut stream = plugin.stream();
    accounts_request(&host, &token());
    assert_eq!(stream.on_request_headers(), Flow::Pause);
    let reply = &host.replies()[0];
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("7"));
    assert_eq!(
        host.property_str(&["obguard.outcome"]).as_deref(),
        Some("idp_unavailable")
    );

    // The next attempt (after the retry gap) is answered: keys are stored, loaded, used.
    host.advance(Duration::from_secs(120));
    plugin.on_tick();
    let retry = host.http_calls().last().cloned().unwrap();
    assert_ne!(retry.token, calls[0].token);
    let jwks = kit::jwks().to_string();
    host.answer_http_call(200, [], jwks.as_bytes());
    plugin.on_http_call_response(retry.token, jwks.len());
    assert_eq!(host.metric("obguard.jwks.fetched"), 1);
    plugin.on_tick();
    let mut stream = plugin.stream();
    accounts_request(&host, &token());
    assert_eq!(stream.on_request_headers(), Flow::Continue);
    assert_eq!(host.replies().len(), 1, "no new local reply");
    assert_eq!(
        host.request_header("x-obguard-client-id").as_deref(),
        Some("tpp-1")
    );
    assert!(host.request_header("authorization").is_none());
}

#[test]
fn every_broken_jwks_answer_keeps_the_last_good_keys() {
    let (host, mut plugin) = configured(&remote_jwks_config());
    let jwks = kit::jwks().to_string();
    let first = host.http_calls()[0].token;
    host.answer_http_call(200, [], jwks.as_bytes());
    plugin.on_http_call_response(first, jwks.len());
    plugin.on_tick();

    let answers: Vec<(&str, Box<dyn Fn(&MemoryHost) -> usize>)> = vec![
        (
            "status",
            Box::new(|h| {
                h.answer_http_call(500, [], b"oops");
                4
            }),
        ),
        (
            "status",
            Box::new(|h| {
                h.answer_http_call(302, [("location", &b"http://evil.test/"[..])], b"");
                0
            }),
        ),
        (
            "not_jwks",
            Box::new(|h| {
                h.answer_http_call(200, [], b"\xff\xfe garbage {");
                14
            }),
        ),
        (
            "not_jwks",
            Box::new(|h| {
                h.answer_http_call(200, [], br#"{"keys": [{"kty": "RSA", "n""#);
                28
            }),
        ),
        (
            "no_usable_keys",
            Box::new(|h| {
                h.answer_http_call(200, [], br#"{"keys": []}"#);
                12
            }),
        ),
        (
            "too_large",
            Box::new(|h| {
                h.answer_http_call(200, [], &[b'x'; 8192]);
                8192
            }),
        ),
        // Headers arrived but the body cannot be read.
        (
            "unreachable",
            Box::new(|h| {
                h.answer_http_call(200, [("etag", &b"\xff"[..])], b"{}");
                h.fail(HostOp::Buffer, HostError::BadArgument);
                2
            }),
        ),
        (
            "unreachable",
            Box::new(|h| {
                h.answer_http_call(200, [], b"{}");
                h.fail(HostOp::Header, HostError::BadArgument);
                2
            }),
        ),
    ];
    for (reason, answer) in answers {
        let before = host.metric(&format!("obguard.jwks.fetch_failed.{reason}"));
        host.advance(Duration::from_secs(61));
        plugin.on_tick();
        let call = host.http_calls().last().cloned().unwrap();
        let size = answer(&host);
        plugin.on_http_call_response(call.token, size);
        host.heal(HostOp::Buffer);
        host.heal(HostOp::Header);
        assert_eq!(
            host.metric(&format!("obguard.jwks.fetch_failed.{reason}")),
            before + 1,
            "{reason}: {:?}",
            host.logs().last()
        );
        // Keys older than refresh but within max_stale_s still verify.
        let mut stream = plugin.stream();
        accounts_request(&host, &token());
        assert_eq!(stream.on_request_headers(), Flow::Continue, "{reason}");
    }
    // A refused dispatch is counted too.
    host.fail(HostOp::HttpCall, HostError::BadArgument);
    host.advance(Duration::from_secs(61));
    plugin.on_tick();
    assert_eq!(host.metric("obguard.jwks.fetch_failed.dispatch"), 1);
    assert!(host.logged(LogLevel::Warn, "cannot fetch JWKS"));
}

#[test]
fn answers_for_tokens_nobody_owns_are_ignored() {
    let (host, mut plugin) = configured(&remote_jwks_config());
    host.fail_http_call();
    plugin.on_http_call_response(9_999, 123);
    assert_eq!(host.metric("obguard.jwks.fetch_failed.unreachable"), 0);
    let mut stream = plugin.stream();
    stream.on_grpc_call_response(9_999, 0, 10);
    assert_eq!(host.resumed(), 0);
}

fn model_http_config() -> Value {
    let mut config = kit::plugin_config();
    config["model"] = json!({
        "http": {"cluster": "models", "path": "/m", "poll_s": 5, "timeout_ms": 300, "max_bytes": 1_000_000},
        "trusted_keys": [kit::model_signing_public_key_b64(1)],
        "when_unavailable": "refuse"
    });
    config
}

#[test]
fn a_model_answer_with_a_non_utf8_etag_is_accepted_without_the_etag() {
    let (host, mut plugin) = configured(&model_http_config());
    let poll = host.http_calls()[0].clone();
    assert_eq!(poll.cluster, "models");
    assert_eq!(poll.header("if-none-match"), None);
    let file = kit::sign_model(&kit::new_country_model(0.0), 1);
    host.answer_http_call(200, [("etag", &b"\"\xff\xfe\""[..])], &file);
    plugin.on_http_call_response(poll.token, file.len());
    assert_eq!(
        host.metric("obguard.model.primary.fetched"),
        1,
        "{:?}",
        host.logs()
    );
    plugin.on_tick();
    assert_eq!(host.metric("obguard.model.primary.swapped"), 1);

    // The next poll carries no If-None-Match (the ETag could not be echoed), and a poll
    // that gets no answer keeps the model serving.
    host.advance(Duration::from_secs(10));
    plugin.on_tick();
    let next = host.http_calls().last().cloned().unwrap();
    assert_ne!(next.token, poll.token);
    assert_eq!(next.header("if-none-match"), None);
    host.fail_http_call();
    plugin.on_http_call_response(next.token, 0);
    assert_eq!(
        host.metric("obguard.model.primary.fetch_failed.unreachable"),
        1
    );
    assert!(host.logged(LogLevel::Warn, "still serving"));
    let mut stream = plugin.stream();
    accounts_request(&host, &token());
    assert_eq!(stream.on_request_headers(), Flow::Continue);
    assert!(host.property_str(&["obguard.verdict"]).is_some());
}

#[test]
fn a_cut_short_or_unreadable_model_file_keeps_refusing_until_a_good_one() {
    let (host, mut plugin) = configured(&model_http_config());
    let poll = host.http_calls()[0].clone();
    let file = kit::sign_model(&kit::new_country_model(0.0), 1);
    // Headers said 200, the body is half of it.
    host.answer_http_call(200, [], &file[..file.len() / 2]);
    plugin.on_http_call_response(poll.token, file.len() / 2);
    assert_eq!(
        host.metric("obguard.model.primary.rejected.corrupt"),
        1,
        "{:?}",
        host.logs()
    );
    let mut stream = plugin.stream();
    accounts_request(&host, &token());
    assert_eq!(stream.on_request_headers(), Flow::Pause);
    assert_eq!(host.replies()[0].status, 503);
    assert_eq!(host.metric("obguard.model.unavailable"), 1);

    host.advance(Duration::from_secs(10));
    plugin.on_tick();
    let next = host.http_calls().last().cloned().unwrap();
    host.answer_http_call(200, [], &file);
    host.fail(HostOp::Buffer, HostError::BadArgument);
    plugin.on_http_call_response(next.token, file.len());
    host.heal(HostOp::Buffer);
    assert_eq!(
        host.metric("obguard.model.primary.fetch_failed.unreachable"),
        1
    );

    // Shared data refuses the store: counted, nothing half-stored.
    host.advance(Duration::from_secs(10));
    plugin.on_tick();
    let next = host.http_calls().last().cloned().unwrap();
    host.answer_http_call(200, [], &file);
    host.fail(HostOp::SetSharedData, HostError::InternalFailure);
    plugin.on_http_call_response(next.token, file.len());
    host.heal(HostOp::SetSharedData);
    assert_eq!(host.metric("obguard.model.primary.fetch_failed.store"), 1);
    assert_eq!(host.metric("obguard.model.primary.swapped"), 0);
}

fn ratelimit_config(failure_mode: &str) -> Value {
    let mut config = kit::plugin_config();
    config["ratelimit"] = json!({
        "cluster": "ratelimit",
        "domain": "bank",
        "descriptors": [{"entries": [{"key": "client", "from": "client_id"}]}],
        "timeout_ms": 25,
        "call": "always",
        "failure_mode": failure_mode,
        "failure_status": 429
    });
    config
}

#[test]
fn rate_limit_failures_follow_the_failure_mode() {
    for (mode, grpc_status, size, reason) in [
        ("fail_open", 14, 0, "unavailable"),
        ("fail_open", 4, 0, "timeout"),
        ("fail_closed", 14, 0, "unavailable"),
        ("fail_closed", 0, 5, "malformed"),
        ("fail_closed", 13, 0, "error"),
    ] {
        let (host, plugin) = configured(&ratelimit_config(mode));
        let mut stream = plugin.stream();
        accounts_request(&host, &token());
        assert_eq!(stream.on_request_headers(), Flow::Pause, "{mode}");
        let call = host.grpc_calls()[0].clone();
        assert_eq!(call.service, "envoy.service.ratelimit.v3.RateLimitService");
        assert_eq!(call.timeout, Duration::from_millis(25));
        // The body and trailers wait with the headers.
        assert_eq!(stream.on_request_body(), Flow::Pause);
        host.set_buffer(obguard::host::Buffer::GrpcReceiveBuffer, vec![0xff; 5]);
        stream.on_grpc_call_response(call.token, grpc_status, size);
        assert_eq!(
            host.metric(&format!("obguard.ratelimit.failure.{reason}")),
            1,
            "{mode} {reason}: {:?}",
            host.logs()
        );
        assert!(host.logged(LogLevel::Warn, "rate-limit check failed"));
        if mode == "fail_open" {
            assert_eq!(host.resumed(), 1);
            assert!(host.replies().is_empty());
            assert_eq!(host.metric("obguard.ratelimit.failed_open"), 1);
        } else {
            assert_eq!(host.resumed(), 0);
            assert_eq!(host.replies()[0].status, 429);
            assert_eq!(host.metric("obguard.ratelimit.failed_closed"), 1);
        }
        assert_eq!(stream.on_request_body(), Flow::Continue);
    }

    // The host refuses to start the call: the dispatch failure, decided at once.
    let (host, plugin) = configured(&ratelimit_config("fail_closed"));
    host.fail(HostOp::GrpcCall, HostError::BadArgument);
    let mut stream = plugin.stream();
    accounts_request(&host, &token());
    assert_eq!(stream.on_request_headers(), Flow::Pause);
    assert_eq!(host.replies()[0].status, 429);
    assert_eq!(host.metric("obguard.ratelimit.failure.dispatch"), 1);
}

#[test]
fn unreadable_request_headers_are_refused() {
    let (host, plugin) = configured(&kit::plugin_config());
    let mut stream = plugin.stream();
    host.fail(HostOp::HeaderPairs, HostError::InternalFailure);
    assert_eq!(stream.on_request_headers(), Flow::Pause);
    assert_eq!(host.replies()[0].status, 503);
    assert!(host.logged(LogLevel::Error, "cannot read request headers"));
    assert_eq!(host.metric("obguard.host.request_refused"), 1);
}

#[test]
fn the_interaction_id_reaches_the_response_even_when_header_writes_fail() {
    let (host, plugin) = configured(&kit::plugin_config());
    let mut stream = plugin.stream();
    let id = "c2b3a9f0-6b2e-4c55-9a47-2f9f3c1d8e11";
    host.start_request([
        (":method", "GET"),
        (":path", "/health"),
        ("x-fapi-interaction-id", id),
    ]);
    assert_eq!(stream.on_request_headers(), Flow::Continue);
    host.attach_map(HeaderMap::ResponseHeaders, [(":status", "200")]);
    assert_eq!(stream.on_response_headers(), Flow::Continue);
    assert_eq!(
        host.response_header("x-fapi-interaction-id").as_deref(),
        Some(id)
    );

    // Property and header writes refused: logged, the request still decided.
    host.fail(HostOp::SetProperty, HostError::BadArgument);
    host.fail(HostOp::SetHeader, HostError::BadArgument);
    let mut stream = plugin.stream();
    accounts_request(&host, &token());
    assert_eq!(stream.on_request_headers(), Flow::Continue);
    assert!(host.logged(LogLevel::Warn, "cannot set request header"));
}

#[test]
fn signature_checks_go_through_the_host_function_when_offered() {
    let host = Rc::new(MemoryHost::new(kit::now()));
    host.set_plugin_configuration(&kit::plugin_config());
    host.offer_foreign_function("verify_signature", |_| Err(HostError::BadArgument));
    let mut plugin = Plugin::new(host.clone(), Some(kit::host_verify_stand_in));
    assert!(plugin.configure());
    assert!(host.logged(LogLevel::Info, "host signature verification available"));
    let mut stream = plugin.stream();
    let rs = kit::token_for("RS256", Key::Rsa1, "tpp-1", "accounts");
    accounts_request(&host, &rs);
    assert_eq!(stream.on_request_headers(), Flow::Continue);
    assert_eq!(host.metric("obguard.signature_checks.host"), 1);

    // A host without the function: the in-wasm verifier.
    let host = Rc::new(MemoryHost::new(kit::now()));
    host.set_plugin_configuration(&kit::plugin_config());
    let mut plugin = Plugin::new(host.clone(), Some(kit::host_verify_stand_in));
    assert!(plugin.configure());
    assert!(host.logged(LogLevel::Info, "host signature verification unavailable"));
    let mut stream: Stream = plugin.stream();
    accounts_request(&host, &rs);
    assert_eq!(stream.on_request_headers(), Flow::Continue);
    assert_eq!(host.metric("obguard.signature_checks.wasm"), 1);
}

#[test]
fn delegated_payloads_are_read_from_the_metadata_property() {
    // Not a Metadata message: treated as "jwt_authn wrote nothing".
    let host = MemoryHost::new(kit::now());
    host.set_property_value(&["metadata"], b"\xff\xff\xff");
    assert!(obguard::runtime::jwt_authn::payloads(&host).is_none());
    host.fail(HostOp::Property, HostError::InternalFailure);
    assert!(obguard::runtime::jwt_authn::payloads(&host).is_none());
}

#[test]
fn access_log_json_writes_every_field_as_one_object_and_rewrites_it_after_the_ratelimit_answer() {
    let mut config = kit::plugin_config();
    config["access_log"] = json!({"format": "json"});
    let (host, plugin) = configured(&config);
    let mut stream = plugin.stream();
    accounts_request(&host, &token());
    assert_eq!(stream.on_request_headers(), Flow::Continue);
    let log: Value = serde_json::from_str(&host.property_str(&["obguard.log"]).unwrap()).unwrap();
    assert_eq!(log["outcome"], "allowed", "{log}");
    assert_eq!(log["route"], "accounts", "{log}");
    assert!(
        log["client_id"].as_str().unwrap().starts_with("tpp-1@"),
        "{log}"
    );
    assert_eq!(log["interaction_id"].as_str().unwrap().len(), 36, "{log}");
    assert_eq!(host.property_str(&["obguard.outcome"]), None);

    // A refusal by the rate-limit answer replaces the outcome in the same object.
    let mut config = ratelimit_config("fail_closed");
    config["access_log"] = json!({"format": "json"});
    let (host, plugin) = configured(&config);
    let mut stream = plugin.stream();
    accounts_request(&host, &token());
    assert_eq!(stream.on_request_headers(), Flow::Pause);
    let call = host.grpc_calls()[0].clone();
    stream.on_grpc_call_response(call.token, 14, 0);
    let log: Value = serde_json::from_str(&host.property_str(&["obguard.log"]).unwrap()).unwrap();
    assert_eq!(log["outcome"], "ratelimit_failed", "{log}");
    assert_eq!(log["reason"], "unavailable", "{log}");
    assert_eq!(log["ratelimit"], "failed_closed:unavailable", "{log}");

    let mut config = kit::plugin_config();
    config["access_log"] = json!({"format": "text"});
    let err = obguard::config::load(config.to_string().as_bytes())
        .err()
        .unwrap();
    assert!(err.to_string().contains("access_log.format"), "{err}");
}

/// One warm request with the model, request and response phase: its host calls by kind.
fn warm_model_request_calls(config: &Value) -> Vec<(HostOp, usize)> {
    let (host, plugin) = configured(config);
    let token = token();
    let request = || {
        let mut stream = plugin.stream();
        accounts_request(&host, &token);
        assert_eq!(
            stream.on_request_headers(),
            Flow::Continue,
            "{:?}",
            host.replies()
        );
        host.attach_map(
            HeaderMap::ResponseHeaders,
            [(":status", "200"), ("content-length", "512")],
        );
        stream.on_response_headers();
        host.advance(Duration::from_secs(2));
    };
    // Past the client's warm-up, so the model scores it.
    for _ in 0..40 {
        request();
    }
    host.reset_calls();
    request();
    let mut calls: Vec<(HostOp, usize)> = host.calls().into_iter().collect();
    calls.sort_by_key(|(op, _)| format!("{op:?}"));
    calls
}

fn model_request_config() -> Value {
    let mut config = kit::plugin_config();
    config["model"] = json!({
        "inline_base64": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, kit::new_country_model(0.0)),
        "allow_unsigned": true,
        "max_clients": 64,
    });
    config
}

#[test]
fn a_warm_model_request_makes_a_bounded_number_of_host_calls() {
    // Every host call crosses the VM boundary in Envoy (80–300 ns hot, ~1 µs more when it
    // returns data: docs/benchmarks-notes.md). Default configuration: one property per
    // access-log field, seven identity headers.
    let default = warm_model_request_calls(&model_request_config());
    let count =
        |calls: &[(HostOp, usize)], op| calls.iter().find(|(o, _)| *o == op).map_or(0, |(_, n)| *n);
    let total = |calls: &[(HostOp, usize)]| calls.iter().map(|(_, n)| n).sum::<usize>();
    println!("default: {} host calls {default:?}", total(&default));
    // The request headers, then the response headers, each in one map read.
    assert_eq!(count(&default, HostOp::HeaderPairs), 2, "{default:?}");
    assert_eq!(count(&default, HostOp::Header), 0, "{default:?}");
    assert_eq!(count(&default, HostOp::Now), 1, "{default:?}");
    assert_eq!(count(&default, HostOp::SharedData), 1, "{default:?}");
    assert_eq!(count(&default, HostOp::SetSharedData), 1, "{default:?}");

    // What the floor probe of `make bench` does besides: access log as one JSON object,
    // three identity headers.
    let mut lean = model_request_config();
    lean["access_log"] = json!({"format": "json"});
    lean["headers"] = json!({"scopes": null, "route": null, "client_namespace": null,
                             "risk_band": null});
    let lean = warm_model_request_calls(&lean);
    println!("lean: {} host calls {lean:?}", total(&lean));
    assert_eq!(count(&lean, HostOp::SetProperty), 1, "{lean:?}");
    assert!(
        total(&lean) + 9 <= total(&default),
        "{lean:?} vs {default:?}"
    );
}
