//! Identity headers for the upstream. Every configured name is first removed from the
//! incoming request (a caller must never be able to claim an identity by sending the header
//! itself), then set from the verified token.

use crate::assess::Assessment;
use crate::config::ConfigError;
use crate::config::raw::RawHeaders;
use crate::identify::Identity;

pub struct HeaderPolicy {
    pub client_id: Option<String>,
    pub subject: Option<String>,
    pub scopes: Option<String>,
    pub route: Option<String>,
    pub verdict: Option<String>,
    pub risk_band: Option<String>,
    /// `(claim, header)`.
    pub claims: Vec<(String, String)>,
    /// Every header removed from incoming requests: all of the above plus `strip`.
    pub strip: Vec<String>,
    pub forward_authorization: bool,
}

const DEFAULT_IDENTITY_HEADERS: [&str; 6] = [
    "x-obguard-client-id",
    "x-obguard-subject",
    "x-obguard-scopes",
    "x-obguard-route",
    "x-obguard-verdict",
    "x-obguard-risk-band",
];

/// Headers obguard must never overwrite or strip.
const RESERVED: [&str; 11] = [
    "authorization",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "cookie",
    "x-fapi-interaction-id",
    "x-request-id",
];

fn validate_name(path: &str, name: &str) -> Result<(), ConfigError> {
    let token_byte =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token_byte) {
        return Err(ConfigError::new(
            path,
            "must be a lower-case HTTP header name",
        ));
    }
    if RESERVED.contains(&name) {
        return Err(ConfigError::new(path, format!("`{name}` is reserved")));
    }
    Ok(())
}

impl HeaderPolicy {
    pub fn compile(path: &str, raw: &RawHeaders) -> Result<Self, ConfigError> {
        let mut strip: Vec<String> = Vec::new();
        let add = |field: String, name: &str, strip: &mut Vec<String>| -> Result<(), ConfigError> {
            validate_name(&field, name)?;
            if strip.iter().any(|n| n == name) {
                return Err(ConfigError::new(
                    field,
                    format!("header `{name}` is configured twice"),
                ));
            }
            strip.push(name.to_owned());
            Ok(())
        };
        for (field, name) in [
            ("client_id", &raw.client_id),
            ("subject", &raw.subject),
            ("scopes", &raw.scopes),
            ("route", &raw.route),
            ("verdict", &raw.verdict),
            ("risk_band", &raw.risk_band),
        ] {
            if let Some(name) = name {
                add(format!("{path}.{field}"), name, &mut strip)?;
            }
        }
        let mut claims = Vec::new();
        for (index, claim) in raw.claims.iter().enumerate() {
            if claim.claim.is_empty() {
                return Err(ConfigError::new(
                    format!("{path}.claims[{index}].claim"),
                    "must not be empty",
                ));
            }
            add(
                format!("{path}.claims[{index}].header"),
                &claim.header,
                &mut strip,
            )?;
            claims.push((claim.claim.clone(), claim.header.clone()));
        }
        for (index, name) in raw.strip.iter().enumerate() {
            add(format!("{path}.strip[{index}]"), name, &mut strip)?;
        }
        // The default names are stripped even when renamed or disabled: an upstream written
        // against the defaults must never see a client-supplied value under them.
        for name in DEFAULT_IDENTITY_HEADERS {
            if !strip.iter().any(|n| n == name) {
                strip.push(name.to_owned());
            }
        }
        Ok(Self {
            client_id: raw.client_id.clone(),
            subject: raw.subject.clone(),
            scopes: raw.scopes.clone(),
            route: raw.route.clone(),
            verdict: raw.verdict.clone(),
            risk_band: raw.risk_band.clone(),
            claims,
            strip,
            forward_authorization: raw.forward_authorization,
        })
    }

    /// Headers to set upstream for an allowed request. `assessment` is present for
    /// authenticated requests.
    pub fn headers_for(
        &self,
        identity: Option<&Identity>,
        route: Option<&str>,
        assessment: Option<Assessment>,
    ) -> Vec<(String, String)> {
        let mut set = Vec::new();
        if let (Some(name), Some(route)) = (&self.route, route) {
            set.push((name.clone(), route.to_owned()));
        }
        let Some(identity) = identity else {
            return set;
        };
        if let Some(name) = &self.client_id {
            set.push((name.clone(), identity.client_id.clone()));
        }
        if let (Some(name), Some(subject)) = (&self.subject, &identity.subject) {
            set.push((name.clone(), subject.clone()));
        }
        if let Some(name) = &self.scopes {
            set.push((name.clone(), identity.scopes.join(" ")));
        }
        if let Some(assessment) = assessment {
            if let Some(name) = &self.verdict {
                set.push((name.clone(), assessment.verdict.as_str().to_owned()));
            }
            if let Some(name) = &self.risk_band {
                set.push((name.clone(), assessment.risk_band.as_str().to_owned()));
            }
        }
        set.extend(identity.claim_headers.iter().cloned());
        set
    }
}
