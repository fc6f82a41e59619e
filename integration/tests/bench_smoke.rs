//! The macro benchmark's Envoy still starts and every variant answers 200 to the one request
//! the load generators send (`make bench` itself is not part of `make test`).

use obguard_integration::bench::variants::{FLOOR, RateLimitCalls};
use obguard_integration::bench::{self, Tokens, request};
use obguard_integration::{Envoy, EnvoyOptions, RateLimitService, RawRequest};

#[test]
fn every_benchmark_variant_serves_its_request() {
    let modules = bench::built_modules();
    for path in [&modules.noop, &modules.floor_probe] {
        assert!(
            std::path::Path::new(path).exists(),
            "build it: make build ({path})"
        );
    }
    let variants = bench::variants(&modules);
    let tokens = Tokens::mint();
    let rls = RateLimitService::start_in_memory(Vec::new());
    let opts = EnvoyOptions {
        bootstrap_override: Some(bench::bootstrap(&variants, Some(rls.port()))),
        ..EnvoyOptions::new(0)
    };
    let envoy = Envoy::start(opts);
    let ports = envoy.listener_ports();
    for variant in &variants {
        let port = ports[variant.name];
        let token = tokens.get(variant.token);
        let before = rls.received_count();
        let resp = obguard_integration::send(port, &request::raw_request(token));
        assert_eq!(resp.status, 200, "{}: {}", variant.name, resp.text());
        if variant.ratelimit == RateLimitCalls::EveryRequest {
            assert!(
                rls.received_count() > before,
                "{}: the rate-limit service was asked",
                variant.name
            );
        }
        if variant.name.starts_with(FLOOR) {
            assert!(
                resp.header("x-fapi-interaction-id").is_some(),
                "{}: the probe's response header",
                variant.name
            );
        }
        if !variant.checks_token {
            continue;
        }
        // The same variant refuses a request without the token, and one whose signature does
        // not verify: the filters really run.
        let resp = obguard_integration::send(port, &RawRequest::get(request::PATH));
        assert!(
            [401, 403].contains(&resp.status),
            "{} without a token: {}",
            variant.name,
            resp.status
        );
        let mut forged = token.to_owned();
        forged.truncate(token.len() - 4);
        forged.push_str("AAAA");
        let resp = obguard_integration::send(port, &request::raw_request(&forged));
        assert!(
            [401, 403].contains(&resp.status),
            "{} with a bad signature: {}",
            variant.name,
            resp.status
        );
    }
    assert!(envoy.counter("wasmcustom.floor.requests") > 0);
}
