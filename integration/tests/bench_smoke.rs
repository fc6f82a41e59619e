//! The macro benchmark's Envoy still starts and every variant answers 200 to the request the
//! load generator will send (`make bench` itself is not part of `make test`).

use obguard_integration::bench::{self, TokenKind};
use obguard_integration::{
    Envoy, EnvoyOptions, RateLimitService, RawRequest, noop_wasm_path, wasm_path,
};

#[test]
fn every_benchmark_variant_serves_its_request() {
    let obguard = wasm_path().to_string_lossy().into_owned();
    let noop = noop_wasm_path();
    assert!(noop.exists(), "build it: make build ({})", noop.display());
    let variants = bench::variants(&obguard, &noop.to_string_lossy());
    let rls = RateLimitService::start(Vec::new());
    let opts = EnvoyOptions {
        bootstrap_override: Some(bench::bootstrap(&variants, Some(rls.port()))),
        ..EnvoyOptions::new(0)
    };
    let envoy = Envoy::start(opts);
    let ports = envoy.listener_ports();
    for variant in &variants {
        let port = ports[variant.name];
        let mut req = RawRequest::get("/accounts");
        if let Some(token) = bench::token(variant.token) {
            req = req.bearer(token);
        }
        let resp = obguard_integration::send(port, &req);
        assert_eq!(resp.status, 200, "{}: {}", variant.name, resp.text());
        if variant.name == "obguard_rls_every_request" {
            assert!(
                !rls.received().is_empty(),
                "the rate-limit service was asked"
            );
        }
        if variant.token == TokenKind::None {
            continue;
        }
        // The same variant refuses a request without the token: the filters really run.
        let resp = obguard_integration::send(port, &RawRequest::get("/accounts"));
        assert_eq!(resp.status, 401, "{} without a token", variant.name);
    }
}
