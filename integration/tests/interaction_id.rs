//! `x-fapi-interaction-id` on every response, local replies included, and upstream.

use obguard_integration::{EchoUpstream, Envoy, EnvoyOptions, RawRequest};
use obguard_testkit::{self as kit, Key};
use serde_json::json;

const ID: &str = "93bac548-d2de-4546-b106-880a5018460d";

#[test]
fn echoed_when_valid_generated_otherwise_on_every_response() {
    let upstream = EchoUpstream::start();
    let envoy = Envoy::start(EnvoyOptions::new(upstream.port()).plugin(kit::plugin_config()));
    let token = kit::token_for("ES256", Key::P256, "tpp-1", "accounts");
    let cases = [
        (RawRequest::get("/accounts").bearer(&token), 200),
        (RawRequest::get("/accounts"), 401),
        (RawRequest::get("/accounts").bearer("e30.e30.e30"), 401),
        (RawRequest::post("/domestic-payments").bearer(&token), 403),
        (RawRequest::get("/nowhere").bearer(&token), 403),
    ];
    for (req, status) in &cases {
        let resp = envoy.send(&req.clone().header("x-fapi-interaction-id", ID));
        assert_eq!(resp.status, *status, "{}", req.target);
        assert_eq!(
            resp.header("x-fapi-interaction-id"),
            Some(ID),
            "echoed on {status}"
        );
        if *status != 200 {
            assert_eq!(resp.json()["interaction_id"], ID);
        }

        let resp = envoy.send(
            &req.clone()
                .header("x-fapi-interaction-id", "not-a-uuid\"<x>"),
        );
        let generated = resp.header("x-fapi-interaction-id").unwrap_or_default();
        assert_eq!(generated.len(), 36, "generated on {status}");
        assert_ne!(generated, ID);

        let resp = envoy.send(req);
        let a = resp
            .header("x-fapi-interaction-id")
            .unwrap_or_default()
            .to_owned();
        let resp = envoy.send(req);
        let b = resp
            .header("x-fapi-interaction-id")
            .unwrap_or_default()
            .to_owned();
        assert_eq!(a.len(), 36);
        assert_ne!(a, b, "fresh per request");
    }
    let first = &upstream.received()[0];
    assert_eq!(
        first["headers"]["x-fapi-interaction-id"],
        json!([ID]),
        "forwarded upstream"
    );
}
