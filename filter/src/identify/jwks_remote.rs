//! Remote JWKS: keys fetched from the identity provider over an Envoy cluster, refreshed on a
//! timer, shared by every worker through proxy-wasm shared data, with stale-if-error.
//!
//! This module is the pure half: settings, parsing a fetched body into keys, the stored form,
//! and when to fetch. The adapter (`adapter/jwks.rs`) does the timer, the HTTP call and the
//! shared data.

use super::algorithm::Algorithm;
use super::config::{RawJwks, RawRemoteJwks};
use super::keys::{IssuerKey, key_from_jwk};
use crate::config::ConfigError;

/// Compiled `issuers[].jwks_remote`.
#[derive(Debug, Clone)]
pub struct RemoteJwks {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub refresh_s: u64,
    pub timeout_ms: u64,
    pub min_refetch_interval_s: u64,
    pub max_stale_s: u64,
    pub max_bytes: usize,
    pub max_keys: usize,
    pub unavailable_status: u16,
    pub retry_after_s: u64,
    /// Shared-data key for this issuer's keys (derived from the issuer, so every worker and
    /// every listener configured for the same issuer share one copy).
    pub shared_key: String,
}

/// Keys from the last good fetch.
pub struct RemoteKeySet {
    pub keys: Vec<IssuerKey>,
    /// Unix seconds of the fetch.
    pub fetched_at: u64,
}

impl RemoteKeySet {
    /// Usable for verification: not older than `max_stale_s` (stale-if-error bound).
    pub fn is_fresh(&self, remote: &RemoteJwks, now: u64) -> bool {
        now.saturating_sub(self.fetched_at) <= remote.max_stale_s
    }
}

/// Why a fetch failed; the suffix of `obguard.jwks.fetch_failed.<reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchError {
    /// Envoy could not dispatch the call (unknown cluster, ...).
    Dispatch,
    /// No response in time or the connection failed.
    Unreachable,
    /// A response other than 200.
    Status,
    TooLarge,
    NotJwks,
    NoUsableKeys,
}

impl FetchError {
    pub const ALL: [FetchError; 6] = [
        FetchError::Dispatch,
        FetchError::Unreachable,
        FetchError::Status,
        FetchError::TooLarge,
        FetchError::NotJwks,
        FetchError::NoUsableKeys,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            FetchError::Dispatch => "dispatch",
            FetchError::Unreachable => "unreachable",
            FetchError::Status => "status",
            FetchError::TooLarge => "too_large",
            FetchError::NotJwks => "not_jwks",
            FetchError::NoUsableKeys => "no_usable_keys",
        }
    }
}

const MAX_TIMEOUT_MS: u64 = 60_000;

impl RemoteJwks {
    pub fn compile(path: &str, issuer: &str, raw: &RawRemoteJwks) -> Result<Self, ConfigError> {
        if raw.cluster.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.cluster"),
                "must not be empty",
            ));
        }
        if !raw.path.starts_with('/') || raw.path.bytes().any(|b| b <= 0x20 || b >= 0x7f) {
            return Err(ConfigError::new(
                format!("{path}.path"),
                "must be an absolute request path, e.g. /.well-known/jwks.json",
            ));
        }
        let positive = |field: &str, value: u64| {
            if value == 0 {
                Err(ConfigError::new(
                    format!("{path}.{field}"),
                    "must be positive",
                ))
            } else {
                Ok(())
            }
        };
        positive("refresh_s", raw.refresh_s)?;
        positive("timeout_ms", raw.timeout_ms)?;
        positive("max_stale_s", raw.max_stale_s)?;
        if raw.timeout_ms > MAX_TIMEOUT_MS {
            return Err(ConfigError::new(
                format!("{path}.timeout_ms"),
                format!("must be at most {MAX_TIMEOUT_MS}"),
            ));
        }
        if raw.max_bytes == 0 || raw.max_bytes > 1024 * 1024 {
            return Err(ConfigError::new(
                format!("{path}.max_bytes"),
                "must be between 1 and 1048576",
            ));
        }
        if raw.max_keys == 0 || raw.max_keys > 100 {
            return Err(ConfigError::new(
                format!("{path}.max_keys"),
                "must be between 1 and 100",
            ));
        }
        if !(500..=599).contains(&raw.unavailable.status) && raw.unavailable.status != 401 {
            return Err(ConfigError::new(
                format!("{path}.unavailable.status"),
                "must be a 5xx status (or 401)",
            ));
        }
        let digest = <sha2::Sha256 as sha2::Digest>::digest(issuer.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            cluster: raw.cluster.clone(),
            path: raw.path.clone(),
            authority: raw.authority.clone().unwrap_or_else(|| raw.cluster.clone()),
            refresh_s: raw.refresh_s,
            timeout_ms: raw.timeout_ms,
            min_refetch_interval_s: raw.min_refetch_interval_s,
            max_stale_s: raw.max_stale_s,
            max_bytes: raw.max_bytes,
            max_keys: raw.max_keys,
            unavailable_status: raw.unavailable.status,
            retry_after_s: raw.unavailable.retry_after_s,
            shared_key: format!("obguard.jwks.{hex}"),
        })
    }

    /// Shared-data key holding the time of the last fetch attempt by any worker.
    pub fn attempt_key(&self) -> String {
        format!("{}.attempt", self.shared_key)
    }

    /// Shared-data key where request paths ask for an early refetch (unknown `kid`).
    pub fn want_key(&self) -> String {
        format!("{}.want", self.shared_key)
    }

    /// Whether a worker should fetch now. `fetched_at`: the shared keys' fetch time;
    /// `last_attempt`: the last attempt by any worker; `wanted_at`: the latest unknown-kid
    /// request for a refetch. Failed attempts are retried every `min_refetch_interval_s`
    /// (at least a second), so an IdP outage is not hammered.
    pub fn fetch_due(
        &self,
        now: u64,
        fetched_at: Option<u64>,
        last_attempt: Option<u64>,
        wanted_at: Option<u64>,
    ) -> bool {
        let retry_gap = self.min_refetch_interval_s.max(1);
        if last_attempt.is_some_and(|t| now.saturating_sub(t) < retry_gap) {
            return false;
        }
        match fetched_at {
            None => true,
            Some(fetched) => {
                let refresh_due = now.saturating_sub(fetched) >= self.refresh_s;
                let wanted =
                    wanted_at.is_some_and(|w| w > fetched && last_attempt.is_none_or(|a| w > a));
                refresh_due || wanted
            }
        }
    }

    /// Whether an unknown `kid` may ask for a refetch now (at most one per
    /// `min_refetch_interval_s` per issuer); `false` means the request was suppressed.
    pub fn may_request_refetch(
        &self,
        now: u64,
        last_attempt: Option<u64>,
        wanted_at: Option<u64>,
    ) -> bool {
        let recent =
            |t: Option<u64>| t.is_some_and(|t| now.saturating_sub(t) < self.min_refetch_interval_s);
        !recent(last_attempt) && !recent(wanted_at)
    }
}

/// Parses a fetched JWKS. Keys obguard cannot use (other curves, encryption keys, keys for
/// algorithms not allowed) are skipped, not fatal: an IdP may publish more than we verify.
pub fn parse(
    body: &[u8],
    allowed: &[Algorithm],
    max_keys: usize,
) -> Result<Vec<IssuerKey>, FetchError> {
    let jwks: RawJwks = serde_json::from_slice(body).map_err(|_| FetchError::NotJwks)?;
    let keys: Vec<IssuerKey> = jwks
        .keys
        .iter()
        .take(max_keys)
        .filter_map(|jwk| key_from_jwk("jwks", jwk, allowed).ok().flatten())
        .filter(|key| allowed.iter().any(|alg| key.verifier_for(*alg).is_some()))
        .collect();
    if keys.is_empty() {
        Err(FetchError::NoUsableKeys)
    } else {
        Ok(keys)
    }
}

/// Shared-data form: 8 bytes of big-endian fetch time, then the JWKS body as fetched.
pub fn encode_stored(fetched_at: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&fetched_at.to_be_bytes());
    out.extend_from_slice(body);
    out
}

pub fn decode_stored(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (time, body) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*time), body))
}

/// A Unix-seconds timestamp stored on its own (attempt and want markers).
pub fn decode_time(bytes: &[u8]) -> Option<u64> {
    bytes.first_chunk::<8>().map(|b| u64::from_be_bytes(*b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identify::config::RawUnavailable;

    fn remote() -> RemoteJwks {
        let raw = RawRemoteJwks {
            cluster: "idp".into(),
            path: "/jwks".into(),
            authority: None,
            refresh_s: 300,
            timeout_ms: 1000,
            min_refetch_interval_s: 30,
            max_stale_s: 3600,
            max_bytes: 65536,
            max_keys: 20,
            unavailable: RawUnavailable::default(),
        };
        RemoteJwks::compile("jwks_remote", "https://idp", &raw).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn fetch_schedule() {
        let r = remote();
        assert!(r.fetch_due(1000, None, None, None), "never fetched");
        assert!(
            !r.fetch_due(1000, None, Some(990), None),
            "failed 10 s ago: wait the retry gap"
        );
        assert!(r.fetch_due(1000, None, Some(960), None));
        assert!(!r.fetch_due(1000, Some(900), Some(900), None), "fresh");
        assert!(r.fetch_due(1300, Some(900), Some(900), None), "refresh due");
        assert!(
            r.fetch_due(1000, Some(900), Some(900), Some(990)),
            "unknown kid asked"
        );
        assert!(
            !r.fetch_due(1000, Some(900), Some(990), Some(995)),
            "but not twice within the gap"
        );
    }

    #[test]
    fn refetch_requests_are_rate_limited() {
        let r = remote();
        assert!(r.may_request_refetch(1000, Some(900), None));
        assert!(!r.may_request_refetch(1000, Some(990), None));
        assert!(!r.may_request_refetch(1000, Some(900), Some(985)));
    }

    #[test]
    fn stored_form_round_trips() {
        let stored = encode_stored(42, b"{}");
        assert_eq!(decode_stored(&stored), Some((42, &b"{}"[..])));
        assert_eq!(decode_stored(b"short"), None);
    }

    #[test]
    fn parse_skips_unusable_keys_and_needs_one() {
        let allowed = [Algorithm::ES256];
        let body = br#"{"keys":[{"kty":"EC","crv":"P-521","x":"AA","y":"AA"},{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}"#;
        assert_eq!(
            parse(body, &allowed, 20).err(),
            Some(FetchError::NoUsableKeys)
        );
        assert_eq!(
            parse(b"<html>", &allowed, 20).err(),
            Some(FetchError::NotJwks)
        );
    }

    #[test]
    fn settings_are_validated() {
        let mut raw = RawRemoteJwks {
            cluster: "idp".into(),
            path: "jwks".into(),
            authority: None,
            refresh_s: 300,
            timeout_ms: 1000,
            min_refetch_interval_s: 30,
            max_stale_s: 3600,
            max_bytes: 65536,
            max_keys: 20,
            unavailable: RawUnavailable::default(),
        };
        let err = RemoteJwks::compile("issuers[0].jwks_remote", "i", &raw)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "issuers[0].jwks_remote.path: must be an absolute request path, e.g. /.well-known/jwks.json"
            )
        );
        raw.path = "/jwks".into();
        raw.refresh_s = 0;
        let err = RemoteJwks::compile("issuers[0].jwks_remote", "i", &raw)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("issuers[0].jwks_remote.refresh_s: must be positive")
        );
    }
}
