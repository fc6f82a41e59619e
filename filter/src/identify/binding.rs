//! Sender-constrained tokens (stage 6 of [`crate::pipeline`]): a token bound to a key is
//! accepted only from the holder of that key. RFC 8705 binds it to the TLS client
//! certificate (`cnf.x5t#S256`), RFC 9449 to a DPoP proof key (`cnf.jkt`, see
//! [`super::dpop`]). A stolen bound token is refused for certain instead of scored.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::config::{BindingMode, RawRouteSenderConstraint, RawSenderConstraint};
use super::dpop::{DpopAlgorithm, DpopError};
use crate::config::ConfigError;

/// An issuer's compiled `sender_constraint`.
#[derive(Debug, Clone)]
pub struct SenderPolicy {
    pub mtls: BindingMode,
    pub dpop: BindingMode,
    pub dpop_algorithms: Vec<DpopAlgorithm>,
    pub dpop_max_age_s: u64,
    /// Normalised (`scheme://host[:port]`, default port dropped, lower case).
    pub dpop_origins: Vec<String>,
}

impl SenderPolicy {
    pub fn compile(path: &str, raw: &RawSenderConstraint) -> Result<Self, ConfigError> {
        let mut algorithms = Vec::new();
        for (i, name) in raw.dpop_algorithms.iter().enumerate() {
            let alg = DpopAlgorithm::parse(name).ok_or_else(|| {
                ConfigError::new(
                    format!("{path}.dpop_algorithms[{i}]"),
                    format!(
                        "`{name}` is not a supported DPoP proof algorithm (ES256, ES384, EdDSA)"
                    ),
                )
            })?;
            algorithms.push(alg);
        }
        if algorithms.is_empty() && raw.dpop != BindingMode::Off {
            return Err(ConfigError::new(
                format!("{path}.dpop_algorithms"),
                "at least one algorithm is required unless `dpop` is `off`",
            ));
        }
        if raw.dpop_max_age_s == 0 {
            return Err(ConfigError::new(
                format!("{path}.dpop_max_age_s"),
                "must be at least 1",
            ));
        }
        let mut origins = Vec::new();
        for (i, origin) in raw.dpop_origins.iter().enumerate() {
            match super::dpop::normalise_origin(origin) {
                Some((normal, "")) => origins.push(normal),
                _ => {
                    return Err(ConfigError::new(
                        format!("{path}.dpop_origins[{i}]"),
                        "must be an origin: `https://host[:port]` without a path",
                    ));
                }
            }
        }
        Ok(Self {
            mtls: raw.mtls,
            dpop: raw.dpop,
            dpop_algorithms: algorithms,
            dpop_max_age_s: raw.dpop_max_age_s,
            dpop_origins: origins,
        })
    }

    /// The modes for a route (its own replace the issuer's, per mechanism).
    pub fn modes(&self, route: Option<&RouteSenderModes>) -> (BindingMode, BindingMode) {
        (
            route.and_then(|r| r.mtls).unwrap_or(self.mtls),
            route.and_then(|r| r.dpop).unwrap_or(self.dpop),
        )
    }
}

/// A route's compiled `sender_constraint`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteSenderModes {
    pub mtls: Option<BindingMode>,
    pub dpop: Option<BindingMode>,
}

impl From<&RawRouteSenderConstraint> for RouteSenderModes {
    fn from(raw: &RawRouteSenderConstraint) -> Self {
        Self {
            mtls: raw.mtls,
            dpop: raw.dpop,
        }
    }
}

/// The token's `cnf` claim (RFC 7800), as far as obguard checks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Confirmation {
    /// RFC 8705 §3.1: base64url SHA-256 of the client certificate (DER).
    pub x5t_s256: Option<String>,
    /// RFC 9449 §6.1: base64url SHA-256 JWK thumbprint (RFC 7638) of the proof key.
    pub jkt: Option<String>,
}

impl Confirmation {
    pub fn from_claim(cnf: Option<&serde_json::Value>) -> Self {
        let member = |name: &str| {
            cnf.and_then(|c| c.get(name))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Self {
            x5t_s256: member("x5t#S256"),
            jkt: member("jkt"),
        }
    }
}

/// Why a sender-constrained check refused the token (the access log's reason and the
/// metric suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingError {
    /// The route or issuer requires a certificate-bound token and this one is not.
    CertificateBindingRequired,
    /// The token is certificate-bound and the connection has no client certificate.
    CertificateMissing,
    /// The token is bound to another certificate.
    CertificateMismatch,
    /// The route or issuer requires a DPoP-bound token and this one is not.
    DpopBindingRequired,
    /// A DPoP-bound token presented with the `Bearer` scheme (RFC 9449 §7.1), or an unbound
    /// token presented with `DPoP`.
    DpopSchemeMismatch,
    Proof(DpopError),
}

impl BindingError {
    pub fn reason(self) -> &'static str {
        match self {
            BindingError::CertificateBindingRequired => "certificate_binding_required",
            BindingError::CertificateMissing => "certificate_missing",
            BindingError::CertificateMismatch => "certificate_mismatch",
            BindingError::DpopBindingRequired => "dpop_binding_required",
            BindingError::DpopSchemeMismatch => "dpop_scheme_mismatch",
            BindingError::Proof(error) => error.reason(),
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            BindingError::CertificateBindingRequired => {
                "A certificate-bound access token is required"
            }
            BindingError::CertificateMissing => {
                "The access token is bound to a client certificate; none was presented"
            }
            BindingError::CertificateMismatch => {
                "The access token is bound to another client certificate"
            }
            BindingError::DpopBindingRequired => "A DPoP-bound access token is required",
            BindingError::DpopSchemeMismatch => {
                "DPoP-bound access tokens use the DPoP scheme, others the Bearer scheme"
            }
            BindingError::Proof(error) => error.description(),
        }
    }

    /// Every reason, for metrics.
    pub fn all_reasons() -> impl Iterator<Item = &'static str> {
        [
            BindingError::CertificateBindingRequired,
            BindingError::CertificateMissing,
            BindingError::CertificateMismatch,
            BindingError::DpopBindingRequired,
            BindingError::DpopSchemeMismatch,
        ]
        .into_iter()
        .chain(DpopError::ALL.into_iter().map(BindingError::Proof))
        .map(BindingError::reason)
    }
}

/// RFC 8705 §3: `peer_sha256_hex` is Envoy's `connection.sha256_peer_certificate_digest`
/// (hex of the SHA-256 of the client certificate's DER), absent without a client certificate.
pub fn check_certificate(
    mode: BindingMode,
    confirmation: &Confirmation,
    peer_sha256_hex: Option<&str>,
) -> Result<(), BindingError> {
    let bound = match (mode, &confirmation.x5t_s256) {
        (BindingMode::Off, _) => return Ok(()),
        (BindingMode::Required, None) => return Err(BindingError::CertificateBindingRequired),
        (BindingMode::IfBound, None) => return Ok(()),
        (_, Some(bound)) => bound,
    };
    let Some(peer) = peer_sha256_hex.filter(|p| !p.is_empty()) else {
        return Err(BindingError::CertificateMissing);
    };
    let expected = URL_SAFE_NO_PAD.decode(bound.trim_end_matches('='));
    let seen = hex::decode(peer);
    match (expected, seen) {
        (Ok(expected), Ok(seen)) if expected.len() == 32 && expected == seen => Ok(()),
        _ => Err(BindingError::CertificateMismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn bound_to(der: &[u8]) -> Confirmation {
        Confirmation {
            x5t_s256: Some(URL_SAFE_NO_PAD.encode(Sha256::digest(der))),
            jkt: None,
        }
    }

    #[test]
    fn certificate_binding() {
        let cnf = bound_to(b"client-a");
        let peer_a = hex::encode(Sha256::digest(b"client-a"));
        let peer_b = hex::encode(Sha256::digest(b"client-b"));
        assert_eq!(
            check_certificate(BindingMode::IfBound, &cnf, Some(&peer_a)),
            Ok(())
        );
        assert_eq!(
            check_certificate(BindingMode::IfBound, &cnf, Some(&peer_b)),
            Err(BindingError::CertificateMismatch)
        );
        assert_eq!(
            check_certificate(BindingMode::IfBound, &cnf, None),
            Err(BindingError::CertificateMissing)
        );
        assert_eq!(check_certificate(BindingMode::Off, &cnf, None), Ok(()));
        let unbound = Confirmation::default();
        assert_eq!(
            check_certificate(BindingMode::IfBound, &unbound, None),
            Ok(())
        );
        assert_eq!(
            check_certificate(BindingMode::Required, &unbound, Some(&peer_a)),
            Err(BindingError::CertificateBindingRequired)
        );
    }

    #[test]
    fn cnf_members_are_read() {
        let claim = serde_json::json!({"x5t#S256": "abc", "jkt": "def"});
        let cnf = Confirmation::from_claim(Some(&claim));
        assert_eq!(cnf.x5t_s256.as_deref(), Some("abc"));
        assert_eq!(cnf.jkt.as_deref(), Some("def"));
        assert_eq!(Confirmation::from_claim(None), Confirmation::default());
    }
}
