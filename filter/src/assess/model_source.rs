//! Where model files come from and when one is accepted. Pure: the adapter does the HTTP
//! calls and the shared-data writes, this module decides.
//!
//! A file is accepted only when it passes, in this order: size, magic, format version,
//! feature-schema hash, ed25519 signature by a trusted key (unless `allow_unsigned`), body
//! decoding and validation (all in `obguard_models::Model::load_verified`), then the optional
//! digest pin. Anything else is a [`Rejection`] and the model that was serving keeps serving.

use std::sync::Arc;

use obguard_models::{Model, ModelError, PublicKey, SignaturePolicy};

/// A model that passed every check, with the digest that names it in logs and metrics.
#[derive(Debug)]
pub struct LoadedModel {
    pub model: Model,
    /// Lower-case hex SHA-256 (see docs/models-lifecycle.md); what rollbacks point at.
    pub digest: String,
}

impl LoadedModel {
    /// The first 12 hex digits: enough to tell models apart in a log line.
    pub fn short_digest(&self) -> &str {
        self.digest.get(..12).unwrap_or(&self.digest)
    }
}

/// Which keys may sign model files, and optionally which exact file is wanted.
#[derive(Debug, Clone)]
pub struct Trust {
    pub keys: Vec<PublicKey>,
    /// Development only: accept files without a signature (a present one is not checked).
    pub allow_unsigned: bool,
}

/// Why a model file was refused. `reason` is metric-safe (`obguard.model.rejected.<reason>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: &'static str,
    pub message: String,
}

/// Every rejection reason, for defining metrics up front.
pub const REJECTION_REASONS: [&str; 11] = [
    "too_large",
    "bad_magic",
    "version",
    "corrupt",
    "schema_mismatch",
    "invalid",
    "unsigned",
    "unknown_key",
    "bad_signature",
    "bad_key",
    "digest_mismatch",
];

impl From<ModelError> for Rejection {
    fn from(err: ModelError) -> Self {
        Rejection {
            reason: err.reason(),
            message: err.to_string(),
        }
    }
}

/// Checks a model file against the trusted keys and the optional digest pin.
pub fn accept(bytes: &[u8], trust: &Trust, pin: Option<&str>) -> Result<LoadedModel, Rejection> {
    let policy = if trust.allow_unsigned {
        SignaturePolicy::NotRequired
    } else {
        SignaturePolicy::Required(&trust.keys)
    };
    let model = Model::load_verified(bytes, policy)?;
    let digest = model.digest_hex();
    if let Some(pin) = pin
        && !pin.eq_ignore_ascii_case(&digest)
    {
        return Err(Rejection {
            reason: "digest_mismatch",
            message: format!("model file has digest {digest}, the configuration pins {pin}"),
        });
    }
    Ok(LoadedModel { model, digest })
}

/// Polling a model file over an Envoy cluster.
#[derive(Debug, Clone)]
pub struct HttpSource {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub poll_s: u64,
    pub timeout_ms: u64,
    pub max_bytes: usize,
}

/// One of the (at most two) models: the primary decides, the shadow is only scored and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Shadow,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Primary, Role::Shadow];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Shadow => "shadow",
        }
    }
}

/// A configured model: where it comes from and what pins it.
#[derive(Debug, Clone)]
pub struct ModelSource {
    /// Parsed at configure time (inline files), or loaded later (HTTP).
    pub inline: Option<Arc<LoadedModel>>,
    pub http: Option<HttpSource>,
    /// `sha256`: only the file with this digest is accepted (rollback pins the previous one).
    pub pin: Option<String>,
}

impl HttpSource {
    /// Shared-data keys are per role *and* per source, so a configuration that points a role
    /// elsewhere (a rollback to another path) never loads what the old source stored.
    fn key(&self, role: Role, what: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [&self.cluster, &self.authority, &self.path] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let id: String = h
            .finalize()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("obguard.model.{}.{id}.{what}", role.as_str())
    }

    /// The small record naming the last accepted file: fetch time, ETag and digest
    /// ([`encode_stored`]). Workers read it every tick; the file only when it changes.
    pub fn head_key(&self, role: Role) -> String {
        self.key(role, "head")
    }

    /// The last accepted file itself (written before its head).
    pub fn file_key(&self, role: Role) -> String {
        self.key(role, "file")
    }

    /// The last fetch attempt, claimed with compare-and-swap so one worker polls.
    pub fn attempt_key(&self, role: Role) -> String {
        self.key(role, "attempt")
    }

    /// Whether a fetch is due: never attempted, or `poll_s` since the last attempt by any
    /// worker. Before the first accepted file, retries come at most every 2 s.
    pub fn fetch_due(&self, now: u64, last_attempt: Option<u64>, have_model: bool) -> bool {
        let interval = if have_model {
            self.poll_s
        } else {
            self.poll_s.min(2)
        };
        last_attempt.is_none_or(|at| now.saturating_sub(at) >= interval)
    }
}

/// The head record of the accepted file: fetch time, the server's ETag (for `If-None-Match`)
/// and the file's digest (hex).
pub fn encode_stored(fetched_at: u64, etag: Option<&str>, digest: &[u8]) -> Vec<u8> {
    let file = digest;
    let etag = etag.unwrap_or("").as_bytes();
    let etag_len = u16::try_from(etag.len()).unwrap_or(0);
    let etag = etag.get(..usize::from(etag_len)).unwrap_or(&[]);
    let mut out = Vec::with_capacity(10 + etag.len() + file.len());
    out.extend_from_slice(&fetched_at.to_be_bytes());
    out.extend_from_slice(&etag_len.to_be_bytes());
    out.extend_from_slice(etag);
    out.extend_from_slice(file);
    out
}

/// What [`encode_stored`] wrote.
#[derive(Debug, PartialEq, Eq)]
pub struct Stored<'a> {
    pub fetched_at: u64,
    pub etag: Option<&'a str>,
    pub digest: &'a [u8],
}

pub fn decode_stored(bytes: &[u8]) -> Option<Stored<'_>> {
    let (time, rest) = bytes.split_first_chunk::<8>()?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let (etag, digest) = rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
    let etag = std::str::from_utf8(etag).ok().filter(|e| !e.is_empty());
    Some(Stored {
        fetched_at: u64::from_be_bytes(*time),
        etag,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_round_trip() {
        let bytes = encode_stored(42, Some("\"v1\""), b"c6c81c70");
        let stored = decode_stored(&bytes).unwrap();
        assert_eq!(stored.fetched_at, 42);
        assert_eq!(stored.etag, Some("\"v1\""));
        assert_eq!(stored.digest, b"c6c81c70");
        let none = encode_stored(7, None, b"x");
        assert_eq!(decode_stored(&none).unwrap().etag, None);
        assert_eq!(decode_stored(&bytes[..9]), None);
    }

    #[test]
    fn polls_sooner_until_a_model_is_accepted() {
        let source = HttpSource {
            cluster: "models".into(),
            path: "/m".into(),
            authority: "models".into(),
            poll_s: 30,
            timeout_ms: 1000,
            max_bytes: 1 << 20,
        };
        assert!(source.fetch_due(100, None, false));
        assert!(!source.fetch_due(101, Some(100), false));
        assert!(source.fetch_due(102, Some(100), false));
        assert!(!source.fetch_due(120, Some(100), true));
        assert!(source.fetch_due(130, Some(100), true));
    }

    #[test]
    fn shared_keys_differ_by_role_and_source() {
        let a = HttpSource {
            cluster: "models".into(),
            path: "/current.model".into(),
            authority: "models".into(),
            poll_s: 30,
            timeout_ms: 1000,
            max_bytes: 1 << 20,
        };
        let b = HttpSource {
            path: "/previous.model".into(),
            ..a.clone()
        };
        assert_ne!(a.head_key(Role::Primary), b.head_key(Role::Primary));
        assert_ne!(a.head_key(Role::Primary), a.head_key(Role::Shadow));
        assert_ne!(a.head_key(Role::Primary), a.file_key(Role::Primary));
        assert_eq!(
            a.attempt_key(Role::Shadow),
            a.clone().attempt_key(Role::Shadow)
        );
    }
}
