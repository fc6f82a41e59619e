//! The upstream's answer as the caller's baseline sees it.

use crate::assess::pending::ObservedResponse;

/// The response from its `:status` and `content-length` headers (missing or unreadable
/// values count as 0: a response without a length still counts, its size does not).
pub fn observed(
    status: Option<&str>,
    content_length: Option<&str>,
    at_ms: u64,
) -> ObservedResponse {
    ObservedResponse {
        status: status.and_then(|s| s.parse().ok()).unwrap_or(0),
        bytes: content_length.and_then(|s| s.parse().ok()).unwrap_or(0),
        at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_headers_count_as_zero() {
        let seen = observed(Some("404"), Some("12"), 7);
        assert_eq!((seen.status, seen.bytes, seen.at_ms), (404, 12, 7));
        let seen = observed(Some("abc"), None, 7);
        assert_eq!((seen.status, seen.bytes), (0, 0));
    }
}
