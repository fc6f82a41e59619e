//! The `headers` section as users write it (public schema, documented in README.md):
//! which identity headers the upstream gets, what is stripped. Compiled by
//! [`super::upstream::HeaderPolicy::compile`].

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHeaders {
    /// Header carrying the verified client id to the upstream (`null` disables).
    #[serde(default = "default_client_id_header")]
    pub client_id: Option<String>,
    #[serde(default = "default_subject_header")]
    pub subject: Option<String>,
    /// Space-separated granted scopes.
    #[serde(default = "default_scopes_header")]
    pub scopes: Option<String>,
    /// Matched route name.
    #[serde(default = "default_route_header")]
    pub route: Option<String>,
    /// The verified client's issuer namespace (`issuers[].client_namespace`).
    #[serde(default = "default_client_namespace_header")]
    pub client_namespace: Option<String>,
    /// The request's verdict (`allow`, `throttle`, ...), for Envoy's own rate-limit filter.
    #[serde(default = "default_verdict_header")]
    pub verdict: Option<String>,
    /// The request's risk band (`low`, `medium`, `high`).
    #[serde(default = "default_risk_band_header")]
    pub risk_band: Option<String>,
    /// Further claims copied to headers.
    #[serde(default)]
    pub claims: Vec<RawClaimHeader>,
    /// Extra request headers removed before the upstream sees the request.
    #[serde(default)]
    pub strip: Vec<String>,
    /// Whether the upstream receives the `Authorization` header.
    #[serde(default = "default_true")]
    pub forward_authorization: bool,
}

impl Default for RawHeaders {
    fn default() -> Self {
        Self {
            client_id: default_client_id_header(),
            subject: default_subject_header(),
            scopes: default_scopes_header(),
            route: default_route_header(),
            client_namespace: default_client_namespace_header(),
            verdict: default_verdict_header(),
            risk_band: default_risk_band_header(),
            claims: Vec::new(),
            strip: Vec::new(),
            forward_authorization: true,
        }
    }
}

fn default_client_id_header() -> Option<String> {
    Some("x-obguard-client-id".to_owned())
}
fn default_subject_header() -> Option<String> {
    Some("x-obguard-subject".to_owned())
}
fn default_scopes_header() -> Option<String> {
    Some("x-obguard-scopes".to_owned())
}
fn default_route_header() -> Option<String> {
    Some("x-obguard-route".to_owned())
}
fn default_client_namespace_header() -> Option<String> {
    Some("x-obguard-client-namespace".to_owned())
}
fn default_verdict_header() -> Option<String> {
    Some("x-obguard-verdict".to_owned())
}
fn default_risk_band_header() -> Option<String> {
    Some("x-obguard-risk-band".to_owned())
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawClaimHeader {
    pub claim: String,
    pub header: String,
}
