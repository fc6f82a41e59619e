//! Method-override headers (`X-HTTP-Method-Override: DELETE` on a `POST`): many frameworks
//! (Express `method-override`, Symfony, Laravel, Spring's `HiddenHttpMethodFilter` variants,
//! Google APIs) dispatch on the overriding method, so a request obguard authorised as `GET`
//! could run as `DELETE` upstream. They are refused on routes obguard authorises (default) or
//! stripped; never forwarded.

use serde::Deserialize;

use crate::enforce::upstream::canonical_eq;

/// The header names, in canonical form (any spelling an upstream reads as one of these
/// counts: `X_HTTP_Method_Override` too).
pub const HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// `method_override` in the configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MethodOverridePolicy {
    /// 400 `invalid_request` (reason `method_override`) on matched routes and
    /// `unmatched: authenticate`; stripped from pass-through requests.
    #[default]
    Refuse,
    /// Removed before the request is forwarded.
    Strip,
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
