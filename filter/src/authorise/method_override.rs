//! Method-override headers (`X-HTTP-Method-Override: DELETE` on a `POST`): many frameworks
//! (Express `method-override`, Symfony, Laravel, Spring's `HiddenHttpMethodFilter` variants,
//! Google APIs) dispatch on the overriding method, so a request obguard authorised as `GET`
//! could run as `DELETE` upstream. They are refused on routes obguard authorises (default) or
//! stripped; never forwarded.

use crate::config::ConfigError;
use crate::enforce::upstream::canonical_eq;

/// The header names, in canonical form (any spelling an upstream reads as one of these
/// counts: `X_HTTP_Method_Override` too).
pub const HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// `method_override` in the configuration (parsed by [`MethodOverridePolicy::parse`]: a
/// derived `Deserialize` costs more module size than this two-word enum is worth).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MethodOverridePolicy {
    /// 400 `invalid_request` (reason `method_override`) on matched routes and
    /// `unmatched: authenticate`; stripped from pass-through requests.
    #[default]
    Refuse,
    /// Removed before the request is forwarded.
    Strip,
}

impl MethodOverridePolicy {
    /// `"refuse"` or `"strip"` (absent: `refuse`).
    pub fn parse(path: &str, raw: Option<&str>) -> Result<Self, ConfigError> {
        match raw {
            None | Some("refuse") => Ok(Self::Refuse),
            Some("strip") => Ok(Self::Strip),
            Some(other) => Err(ConfigError::new(
                path,
                format!("unknown variant `{other}`, expected `refuse` or `strip`"),
            )),
        }
    }
}

/// Whether `name` is a method-override header.
pub fn is_override_header(name: &str) -> bool {
    HEADERS.iter().any(|header| canonical_eq(name, header))
}

/// Whether the request carries a method-override header.
pub fn present(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(name, _)| is_override_header(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_counts() {
        for name in [
            "x-http-method-override",
            "X-HTTP-Method-Override",
            "x_http_method_override",
            "x-http-method",
            "x-method-override",
        ] {
            assert!(is_override_header(name), "{name}");
        }
        for name in ["x-http-methods", "x-method", "method"] {
            assert!(!is_override_header(name), "{name}");
        }
    }
}
