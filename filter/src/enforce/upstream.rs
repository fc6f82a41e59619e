//! Identity headers for the upstream. Every configured name is first removed from the
//! incoming request (a caller must never be able to claim an identity by sending the header
//! itself), then set from the verified token.
//!
//! Names are removed in every spelling an upstream may read as the same header: WSGI, CGI,
//! Rack and many frameworks map `x_obguard_client_id` and `X-Obguard-Client-Id` onto the same
//! variable as `x-obguard-client-id`, so a request header whose name equals one of obguard's
//! once `_` is read as `-` and case is folded ([`canonical_eq`]) is removed too.

use std::borrow::Cow;

use super::config::RawHeaders;
use crate::assess::Assessment;
use crate::config::ConfigError;
use crate::identify::Identity;

pub struct HeaderPolicy {
    pub client_id: Option<String>,
    pub subject: Option<String>,
    pub scopes: Option<String>,
    pub route: Option<String>,
    pub client_namespace: Option<String>,
    pub verdict: Option<String>,
    pub risk_band: Option<String>,
    /// `(claim, header)`.
    pub claims: Vec<(String, String)>,
    /// Every header removed from incoming requests: all of the above plus `strip`.
    pub strip: Vec<String>,
    /// `strip` plus `x-fapi-interaction-id` (which obguard sets upstream too), in canonical
    /// form (lower case, `_` read as `-`): other spellings of these are removed as well.
    canonical: Vec<String>,
    pub forward_authorization: bool,
}

const DEFAULT_IDENTITY_HEADERS: [&str; 7] = [
    "x-obguard-client-id",
    "x-obguard-client-namespace",
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

/// `name` in the form upstream frameworks read it: lower case, `_` as `-`.
pub fn canonical(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b == b'_' {
                '-'
            } else {
                char::from(b.to_ascii_lowercase())
            }
        })
        .collect()
}

/// Whether header `name` is the same header as `canonical_name` (already in [`canonical`]
/// form) for an upstream that folds case and reads `_` as `-`.
pub fn canonical_eq(name: &str, canonical_name: &str) -> bool {
    name.len() == canonical_name.len()
        && name.bytes().zip(canonical_name.bytes()).all(|(a, b)| {
            let a = if a == b'_' {
                b'-'
            } else {
                a.to_ascii_lowercase()
            };
            a == b
        })
}

fn validate_name(path: &str, name: &str) -> Result<(), ConfigError> {
    let token_byte =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token_byte) {
        return Err(ConfigError::new(
            path,
            "must be a lower-case HTTP header name",
        ));
    }
    if RESERVED.iter().any(|reserved| canonical_eq(name, reserved)) {
        return Err(ConfigError::new(path, format!("`{name}` is reserved")));
    }
    Ok(())
}

impl HeaderPolicy {
    pub fn compile(path: &str, raw: &RawHeaders) -> Result<Self, ConfigError> {
        let mut strip: Vec<String> = Vec::new();
        // Headers obguard sets must differ even for an upstream that reads `_` as `-` and
        // folds case; `strip` entries may repeat a spelling (removing twice is harmless).
        let mut set_canonical: Vec<String> = Vec::new();
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
        let mut add_set = |field: String,
                           name: &str,
                           strip: &mut Vec<String>|
         -> Result<(), ConfigError> {
            add(field.clone(), name, strip)?;
            let form = canonical(name);
            if set_canonical.contains(&form) {
                return Err(ConfigError::new(
                    field,
                    format!(
                        "header `{name}` is another spelling of a header already configured (upstreams read `_` as `-`)"
                    ),
                ));
            }
            set_canonical.push(form);
            Ok(())
        };
        for (field, name) in [
            ("client_id", &raw.client_id),
            ("subject", &raw.subject),
            ("scopes", &raw.scopes),
            ("route", &raw.route),
            ("client_namespace", &raw.client_namespace),
            ("verdict", &raw.verdict),
            ("risk_band", &raw.risk_band),
        ] {
            if let Some(name) = name {
                add_set(format!("{path}.{field}"), name, &mut strip)?;
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
            add_set(
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
        let mut canonical_names: Vec<String> = Vec::new();
        for name in strip
            .iter()
            .map(String::as_str)
            .chain([crate::enforce::interaction_id::HEADER])
        {
            let form = canonical(name);
            if !canonical_names.contains(&form) {
                canonical_names.push(form);
            }
        }
        Ok(Self {
            client_id: raw.client_id.clone(),
            subject: raw.subject.clone(),
            scopes: raw.scopes.clone(),
            route: raw.route.clone(),
            client_namespace: raw.client_namespace.clone(),
            verdict: raw.verdict.clone(),
            risk_band: raw.risk_band.clone(),
            claims,
            strip,
            canonical: canonical_names,
            forward_authorization: raw.forward_authorization,
        })
    }

    /// Whether `name` is one of the headers obguard sets or strips, in any spelling an
    /// upstream reads as the same header (including `x-fapi-interaction-id`).
    pub fn is_own(&self, name: &str) -> bool {
        self.canonical.iter().any(|c| canonical_eq(name, c))
    }

    /// Request headers to remove before forwarding: every configured name ([`Self::strip`]),
    /// plus each header of `request` that is another spelling of one of them (or of
    /// `x-fapi-interaction-id`), plus each header for which `also(name)` holds. Borrowed
    /// (no allocation) when the request has none of those.
    pub fn removals<'c>(
        &'c self,
        request: &[(String, String)],
        also: impl Fn(&str) -> bool,
    ) -> Cow<'c, [String]> {
        let mut extra: Vec<String> = Vec::new();
        for (name, _) in request {
            if name == crate::enforce::interaction_id::HEADER
                || self.strip.iter().any(|n| n == name)
                || extra.iter().any(|n| n == name)
            {
                continue;
            }
            if self.is_own(name) || also(name) {
                extra.push(name.clone());
            }
        }
        if extra.is_empty() {
            Cow::Borrowed(self.strip.as_slice())
        } else {
            let mut all = self.strip.clone();
            all.extend(extra);
            Cow::Owned(all)
        }
    }

    /// Headers to set upstream for an allowed request. `assessment` is present for
    /// authenticated requests.
    /// The identity headers to set upstream. Names (and the route, verdict and risk band)
    /// are borrowed from the configuration; only values taken from the token are copied.
    pub fn headers_for<'c>(
        &'c self,
        identity: Option<&Identity>,
        route: Option<&'c str>,
        assessment: Option<Assessment>,
    ) -> Vec<(Cow<'c, str>, Cow<'c, str>)> {
        let mut set = Vec::with_capacity(8);
        if let (Some(name), Some(route)) = (&self.route, route) {
            set.push((Cow::Borrowed(name.as_str()), Cow::Borrowed(route)));
        }
        let Some(identity) = identity else {
            return set;
        };
        if let Some(name) = &self.client_id {
            set.push((name.as_str().into(), identity.client_id.clone().into()));
        }
        // With several issuers the client id alone is ambiguous: the pair is the client.
        if let Some(name) = &self.client_namespace {
            set.push((
                name.as_str().into(),
                identity.client_namespace.to_string().into(),
            ));
        }
        if let (Some(name), Some(subject)) = (&self.subject, &identity.subject) {
            set.push((name.as_str().into(), subject.clone().into()));
        }
        if let Some(name) = &self.scopes {
            set.push((name.as_str().into(), identity.scopes.join(" ").into()));
        }
        if let Some(assessment) = assessment {
            if let Some(name) = &self.verdict {
                set.push((name.as_str().into(), assessment.verdict.as_str().into()));
            }
            if let Some(name) = &self.risk_band {
                set.push((name.as_str().into(), assessment.risk_band.as_str().into()));
            }
        }
        set.extend(
            identity
                .claim_headers
                .iter()
                .map(|(name, value)| (name.clone().into(), value.clone().into())),
        );
        set
    }
}
