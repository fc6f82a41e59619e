//! What the filter knows about a request when it has to decide: the input of
//! [`crate::extract`].
//!
//! The filter builds a [`RequestEvent`] from headers (after token and scope checks passed);
//! the trainer builds one from a traffic record (`RequestEvent::from_record`, host only). Both
//! derive the route template and the resource ids with [`split_path`], so the two paths
//! agree on what a "resource id" is.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;

/// One request, as seen at request time.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestEvent<'a> {
    /// Request time, Unix epoch milliseconds (Envoy's clock in the filter).
    pub ts_ms: u64,
    /// The OAuth2 client (the TPP); baselines are keyed by it.
    pub client_id: &'a str,
    /// Route name from the filter's route table, or the path template from [`split_path`].
    pub route: Cow<'a, str>,
    /// HTTP method.
    pub method: &'a str,
    /// Resource ids (path parameters): account ids, payment ids, ...
    pub resource_ids: Vec<&'a str>,
    /// Caller's address (downstream remote address, or the edge's forwarded one).
    pub ip: Option<IpAddr>,
    /// ISO 3166 alpha-2 country from an edge header such as `x-client-geo-country`.
    pub country: Option<&'a str>,
    /// Autonomous system number from an edge header such as `x-client-asn`.
    pub asn: Option<u32>,
    /// `User-Agent`, if any.
    pub user_agent: Option<&'a str>,
    /// Whether the request carried `x-fapi-customer-ip-address` (the customer is present).
    pub customer_present: bool,
}

impl<'a> RequestEvent<'a> {
    /// An event for `path`, deriving route template and resource ids with [`split_path`].
    /// Fill the remaining fields directly.
    pub fn for_path(ts_ms: u64, client_id: &'a str, method: &'a str, path: &'a str) -> Self {
        let (route, resource_ids) = split_path(path);
        Self {
            ts_ms,
            client_id,
            route: Cow::Owned(route),
            method,
            resource_ids,
            ip: None,
            country: None,
            asn: None,
            user_agent: None,
            customer_present: false,
        }
    }
}

/// Split a request path into a route template and its resource ids.
///
/// The query string is dropped. A segment is a resource id when it contains an ASCII digit,
/// or is at least 16 characters long and not a lowercase word (`domestic-payment-consents`);
/// version segments (`v3.1`, `v4`) are not ids. Ids are
/// replaced by `{id}` in the template, so `/aisp/accounts/acc-0042/transactions` becomes
/// `/aisp/accounts/{id}/transactions` with ids `["acc-0042"]`.
pub fn split_path(path: &str) -> (String, Vec<&str>) {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let mut template = String::with_capacity(path.len());
    let mut ids = Vec::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        template.push('/');
        if is_resource_id(segment) {
            template.push_str("{id}");
            ids.push(segment);
        } else {
            template.push_str(segment);
        }
    }
    if template.is_empty() {
        template.push('/');
    }
    (template, ids)
}

pub(crate) fn is_resource_id(segment: &str) -> bool {
    let is_version = segment.len() <= 6
        && segment.starts_with(['v', 'V'])
        && segment
            .chars()
            .skip(1)
            .all(|c| c.is_ascii_digit() || c == '.')
        && segment.len() > 1;
    let has_digit = segment.bytes().any(|b| b.is_ascii_digit());
    let is_word = segment
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_');
    !is_version && (has_digit || (segment.len() >= 16 && !is_word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_ids() {
        let (t, ids) = split_path("/open-banking/v3.1/aisp/accounts/acc-0042/transactions?page=2");
        assert_eq!(t, "/open-banking/v3.1/aisp/accounts/{id}/transactions");
        assert_eq!(ids, vec!["acc-0042"]);
        let (t, ids) = split_path("/");
        assert_eq!(t, "/");
        assert!(ids.is_empty());
        let (t, ids) = split_path("/pisp/domestic-payments/5f0c9a2e7b3d4c1aa2b3");
        assert_eq!(t, "/pisp/domestic-payments/{id}");
        assert_eq!(ids.len(), 1);
    }
}
