//! Assertions on obguard's answers that several test suites make.

/// A `WWW-Authenticate` value is the RFC 9470 step-up challenge the model tests configure
/// (`acr_values` `urn:openbanking:psd2:sca`, `max_age_s` 300).
pub fn step_up_challenge(challenge: &str) {
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("acr_values=\"urn:openbanking:psd2:sca\""),
        "{challenge}"
    );
    assert!(challenge.contains("max_age=300"), "{challenge}");
}
