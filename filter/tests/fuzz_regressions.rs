//! Inputs the fuzz targets (`fuzz/`, docs/fuzzing.md) found, kept as regression tests.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use obguard::identify::TokenError;
use obguard::identify::jose_header;
use obguard::telemetry::Outcome;
use obguard_testkit as kit;
use serde_json::{Value, json};

/// fuzz target `jose_header`, input `[""]`: serde fills a struct from a JSON array (fields by
/// position), so `["HS256"]` read as a header with `alg` HS256. RFC 7515 §5.2 wants an object.
#[test]
fn a_jose_header_that_is_a_json_array_is_malformed() {
    for header in [
        r#"[""]"#,
        r#"["HS256"]"#,
        r#"["ES256","ec-p256","at+jwt"]"#,
        " [\"RS256\"]",
    ] {
        assert_eq!(
            jose_header::parse(&kit::b64(header)).err(),
            Some(TokenError::Malformed),
            "{header}"
        );
    }
    assert!(jose_header::parse(&kit::b64(" \n{\"alg\":\"HS256\"}")).is_ok());
}

/// fuzz target `jose_header` (stable corpus replay, seed 1): invalid UTF-8 inside a member
/// obguard ignores (`jku` here) was accepted, serde_json not checking what it skips.
#[test]
fn a_jose_header_with_invalid_utf8_is_malformed() {
    let mut header = br#"{"alg":"ES256","kid":"k","jku":"ht"#.to_vec();
    header.extend_from_slice(b"\xff\xff");
    header.extend_from_slice(br#"s://evil"}"#);
    assert_eq!(
        jose_header::parse(&kit::b64(&header)).err(),
        Some(TokenError::Malformed)
    );
}

/// End to end: a token whose header is `["HS256"]`, signed with the HMAC issuer's secret, was
/// allowed (jwt-simple's header model reads arrays the same way).
#[test]
fn a_signed_token_with_an_array_header_is_refused() {
    let config = kit::pipeline::load(&kit::config::with_hmac_issuer());
    let mut claims = kit::claims("tpp-h", "accounts");
    claims["iss"] = json!(kit::HMAC_ISSUER);
    let decide_with = |header: &Value| {
        let token = kit::sign_hmac("HS256", kit::HMAC_SECRET, header, &claims);
        let decision = kit::pipeline::decide_get(&config, "/accounts", &token, kit::now());
        (decision.outcome, decision.reason)
    };
    assert_eq!(
        decide_with(&json!({"alg": "HS256"})),
        (Outcome::Allowed, None)
    );
    assert_eq!(
        decide_with(&json!(["HS256"])),
        (Outcome::InvalidToken, Some("malformed"))
    );
}
