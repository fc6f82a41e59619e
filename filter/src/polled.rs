//! Lists obguard polls over an Envoy cluster and shares with every worker: the
//! threat-intelligence feeds (`threat_intel.feeds[].fetch`) and the external containment list
//! (`containment.list`). The same rules as a remote JWKS: one worker fetches (claimed with a
//! compare-and-swap), the answer is validated before it is stored, every worker loads it
//! from shared data, `If-None-Match` saves the transfer when nothing changed, a failure keeps
//! the last good list, and a list older than `max_stale_s` is dropped.
//!
//! Shared data, per source (`<key>` is `obguard.<kind>.<name>`):
//! * `<key>`: `etag length (2 bytes, big-endian) || etag || body`, written only when the
//!   content changed, so its version says when workers must parse again;
//! * `<key>.fetched`: Unix seconds of the last good answer (a `304` refreshes only this);
//! * `<key>.attempt`: Unix seconds of the last attempt by any worker (the claim).

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::defaults::{default_u64, default_usize};

/// `fetch` of a feed, and `containment.list`, as written.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawPolledSource {
    /// Envoy cluster serving the list.
    pub cluster: String,
    /// Request path, e.g. `/drop.txt`.
    pub path: String,
    /// `:authority` of the request (default: the cluster name).
    #[serde(default)]
    pub authority: Option<String>,
    /// How often the list is asked for again.
    #[serde(default = "default_u64::<300>")]
    pub refresh_s: u64,
    /// After a failed attempt, how long until the next.
    #[serde(default = "default_u64::<30>")]
    pub retry_s: u64,
    #[serde(default = "default_u64::<2000>")]
    pub timeout_ms: u64,
    /// Largest answer read (default 4 MiB); a larger one is refused, the last good list stays.
    #[serde(default = "default_usize::<4_194_304>")]
    pub max_bytes: usize,
    /// A list not refreshed for this long is dropped (default 7 days; 0: kept however old).
    #[serde(default = "default_u64::<604_800>")]
    pub max_stale_s: u64,
}

/// Longest callout timeout accepted (the timer runs every second).
const MAX_TIMEOUT_MS: u64 = 60_000;
/// Largest list accepted: Envoy keeps one copy in shared data and each worker its parsed form.
const MAX_BYTES_LIMIT: usize = 32 * 1024 * 1024;

/// A compiled list source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolledSource {
    /// For log lines: `threat_intel feed drop`, `containment list`.
    pub label: String,
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub refresh_s: u64,
    pub retry_s: u64,
    pub timeout_ms: u64,
    pub max_bytes: usize,
    pub max_stale_s: u64,
    /// Shared-data key of the content (see the module documentation for the others).
    pub shared_key: String,
}

impl PolledSource {
    /// `key` names the source in shared data (`obguard.intel.drop`).
    pub fn compile(
        path: &str,
        label: String,
        key: String,
        raw: &RawPolledSource,
    ) -> Result<Self, ConfigError> {
        let field = |name: &str| format!("{path}.{name}");
        if raw.cluster.is_empty() {
            return Err(ConfigError::new(field("cluster"), "must not be empty"));
        }
        if !raw.path.starts_with('/') || raw.path.bytes().any(|b| b <= 0x20 || b >= 0x7f) {
            return Err(ConfigError::new(
                field("path"),
                "must be an absolute request path, e.g. /feeds/drop.txt",
            ));
        }
        for (name, value) in [
            ("refresh_s", raw.refresh_s),
            ("retry_s", raw.retry_s),
            ("timeout_ms", raw.timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::new(field(name), "must be positive"));
            }
        }
        if raw.timeout_ms > MAX_TIMEOUT_MS {
            return Err(ConfigError::new(
                field("timeout_ms"),
                format!("must be at most {MAX_TIMEOUT_MS}"),
            ));
        }
        if raw.max_bytes == 0 || raw.max_bytes > MAX_BYTES_LIMIT {
            return Err(ConfigError::new(
                field("max_bytes"),
                format!("must be between 1 and {MAX_BYTES_LIMIT}"),
            ));
        }
        if raw.max_stale_s != 0 && raw.max_stale_s < raw.refresh_s {
            return Err(ConfigError::new(
                field("max_stale_s"),
                "must be 0 (never dropped) or at least refresh_s",
            ));
        }
        Ok(Self {
            label,
            cluster: raw.cluster.clone(),
            path: raw.path.clone(),
            authority: raw.authority.clone().unwrap_or_else(|| raw.cluster.clone()),
            refresh_s: raw.refresh_s,
            retry_s: raw.retry_s,
            timeout_ms: raw.timeout_ms,
            max_bytes: raw.max_bytes,
            max_stale_s: raw.max_stale_s,
            shared_key: key,
        })
    }

    pub fn fetched_key(&self) -> String {
        format!("{}.fetched", self.shared_key)
    }

    pub fn attempt_key(&self) -> String {
        format!("{}.attempt", self.shared_key)
    }

    /// Whether a worker should ask now: never fetched, or `refresh_s` since the last good
    /// answer; and never within `retry_s` of the last attempt by any worker.
    pub fn fetch_due(&self, now: u64, fetched_at: Option<u64>, last_attempt: Option<u64>) -> bool {
        if last_attempt.is_some_and(|t| now.saturating_sub(t) < self.retry_s.min(self.refresh_s)) {
            return false;
        }
        fetched_at.is_none_or(|t| now.saturating_sub(t) >= self.refresh_s)
    }

    /// Whether a list last confirmed at `fetched_at` is too old to use.
    pub fn is_stale(&self, now: u64, fetched_at: u64) -> bool {
        self.max_stale_s != 0 && now.saturating_sub(fetched_at) > self.max_stale_s
    }
}

/// Why a fetch gave no new list (the metric suffix of `…fetch_failed.<reason>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollError {
    /// Envoy could not dispatch the call (unknown cluster).
    Dispatch,
    /// No answer: refused, reset or timed out (Envoy reports these without headers).
    Unreachable,
    /// An answer other than 200 or 304.
    Status,
    /// Larger than `max_bytes` (refused by its announced size, unread).
    TooLarge,
    /// The body is not a valid list (the source's parser says why in the log).
    Invalid,
    /// The list could not be written to shared data.
    Store,
}

impl PollError {
    pub const ALL: [PollError; 6] = [
        PollError::Dispatch,
        PollError::Unreachable,
        PollError::Status,
        PollError::TooLarge,
        PollError::Invalid,
        PollError::Store,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            PollError::Dispatch => "dispatch",
            PollError::Unreachable => "unreachable",
            PollError::Status => "status",
            PollError::TooLarge => "too_large",
            PollError::Invalid => "invalid",
            PollError::Store => "store",
        }
    }
}

/// Longest `ETag` kept (a longer one is not sent back: the next fetch is a full one).
pub const MAX_ETAG_BYTES: usize = 256;

/// The content key's value: `etag length || etag || body`.
pub fn encode_content(etag: Option<&str>, body: &[u8]) -> Vec<u8> {
    let etag = etag
        .filter(|e| e.len() <= MAX_ETAG_BYTES)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(2 + etag.len() + body.len());
    out.extend_from_slice(&u16::try_from(etag.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(etag.as_bytes());
    out.extend_from_slice(body);
    out
}

/// `(etag, body)` of a content value; `None` when corrupt.
pub fn decode_content(bytes: &[u8]) -> Option<(Option<&str>, &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    let (etag, body) = rest.split_at_checked(len)?;
    let etag = std::str::from_utf8(etag).ok().filter(|e| !e.is_empty());
    Some((etag, body))
}

/// A Unix-seconds timestamp stored on its own.
pub fn decode_time(bytes: &[u8]) -> Option<u64> {
    bytes.first_chunk::<8>().map(|b| u64::from_be_bytes(*b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn raw() -> RawPolledSource {
        serde_json::from_value(serde_json::json!({"cluster": "intel", "path": "/drop.txt"}))
            .unwrap()
    }

    fn source() -> PolledSource {
        PolledSource::compile("f", "feed".into(), "obguard.intel.f".into(), &raw()).unwrap()
    }

    #[test]
    fn content_round_trips_and_refuses_corruption() {
        let bytes = encode_content(Some("\"abc\""), b"1.2.3.0/24\n");
        assert_eq!(
            decode_content(&bytes),
            Some((Some("\"abc\""), &b"1.2.3.0/24\n"[..]))
        );
        assert_eq!(
            decode_content(&encode_content(None, b"x")),
            Some((None, &b"x"[..]))
        );
        assert_eq!(decode_content(&[0, 9, b'a']), None);
        assert_eq!(decode_content(&[0]), None);
        let long = "x".repeat(MAX_ETAG_BYTES + 1);
        assert_eq!(
            decode_content(&encode_content(Some(&long), b"b")),
            Some((None, &b"b"[..]))
        );
    }

    #[test]
    fn fetches_when_due_and_not_within_the_retry_gap() {
        let s = source();
        assert!(s.fetch_due(1000, None, None));
        assert!(!s.fetch_due(1000, None, Some(990)), "retry gap");
        assert!(s.fetch_due(1000, None, Some(960)));
        assert!(!s.fetch_due(1000, Some(900), Some(900)), "fresh");
        assert!(s.fetch_due(1200, Some(900), Some(900)), "refresh_s");
    }

    #[test]
    fn staleness_and_config_errors() {
        let s = source();
        assert!(!s.is_stale(1000 + 7 * 24 * 3600, 1000));
        assert!(s.is_stale(1001 + 7 * 24 * 3600, 1000));
        let mut r = raw();
        r.max_stale_s = 10;
        let err = PolledSource::compile("f", "l".into(), "k".into(), &r).unwrap_err();
        assert_eq!(err.path, "f.max_stale_s");
        let mut r = raw();
        r.path = "drop.txt".into();
        assert_eq!(
            PolledSource::compile("f", "l".into(), "k".into(), &r)
                .unwrap_err()
                .path,
            "f.path"
        );
    }
}
