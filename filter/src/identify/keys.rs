//! Issuer keys: JWKs turned into ready-to-use verifiers once, at configuration time, so no
//! request pays for parsing a key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::*;

use super::algorithm::{Algorithm, KeyFamily};
use super::config::RawJwk;
use crate::config::ConfigError;

/// Verified claims as jwt-simple returns them; registered claims typed, the rest as JSON.
pub type Claims = JWTClaims<serde_json::Map<String, serde_json::Value>>;

/// Smallest RSA modulus accepted (NIST SP 800-57: 2048 bits).
const MIN_RSA_BITS: usize = 2048;
/// Smallest HMAC secret accepted: as long as the SHA-256 output (RFC 7518 §3.2).
const MIN_SECRET_BYTES: usize = 32;

/// One key bound to one algorithm.
pub enum AlgVerifier {
    RS256(RS256PublicKey),
    RS384(RS384PublicKey),
    RS512(RS512PublicKey),
    PS256(PS256PublicKey),
    PS384(PS384PublicKey),
    PS512(PS512PublicKey),
    ES256(ES256PublicKey),
    ES384(ES384PublicKey),
    EdDSA(Ed25519PublicKey),
    HS256(HS256Key),
    HS384(HS384Key),
    HS512(HS512Key),
}

impl AlgVerifier {
    /// Checks the signature and decodes the claims. Time and audience checks are ours
    /// (see `claims.rs`); jwt-simple is asked to skip them by pinning its clock to 0.
    pub fn verify(&self, token: &str) -> Result<Claims, jwt_simple::Error> {
        let options = Some(VerificationOptions {
            accept_future: true,
            time_tolerance: None,
            artificial_time: Some(UnixTimeStamp::from_secs(0)),
            max_token_length: None,
            ..Default::default()
        });
        match self {
            AlgVerifier::RS256(k) => k.verify_token(token, options),
            AlgVerifier::RS384(k) => k.verify_token(token, options),
            AlgVerifier::RS512(k) => k.verify_token(token, options),
            AlgVerifier::PS256(k) => k.verify_token(token, options),
            AlgVerifier::PS384(k) => k.verify_token(token, options),
            AlgVerifier::PS512(k) => k.verify_token(token, options),
            AlgVerifier::ES256(k) => k.verify_token(token, options),
            AlgVerifier::ES384(k) => k.verify_token(token, options),
            AlgVerifier::EdDSA(k) => k.verify_token(token, options),
            AlgVerifier::HS256(k) => k.verify_token(token, options),
            AlgVerifier::HS384(k) => k.verify_token(token, options),
            AlgVerifier::HS512(k) => k.verify_token(token, options),
        }
    }
}

/// A configured key with a verifier for every allowed algorithm its type supports.
pub struct IssuerKey {
    pub kid: Option<String>,
    pub family: KeyFamily,
    /// SubjectPublicKeyInfo DER for the host's `verify_signature` (RSA and EC keys).
    pub spki_der: Option<Vec<u8>>,
    verifiers: Vec<(Algorithm, AlgVerifier)>,
}

impl IssuerKey {
    pub fn verifier_for(&self, alg: Algorithm) -> Option<&AlgVerifier> {
        self.verifiers
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, verifier)| verifier)
    }
}

fn decode_b64url(path: &str, field: &str, value: Option<&String>) -> Result<Vec<u8>, ConfigError> {
    let value = value.ok_or_else(|| ConfigError::new(path, format!("missing `{field}`")))?;
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| ConfigError::new(format!("{path}.{field}"), "not base64url"))
}

/// Builds a verification key from a JWK. `allowed` is the issuer's algorithm allow-list;
/// verifiers are created only for allowed algorithms the key type (and the JWK's own `alg`,
/// if present) permits.
pub fn key_from_jwk(
    path: &str,
    jwk: &RawJwk,
    allowed: &[Algorithm],
) -> Result<Option<IssuerKey>, ConfigError> {
    for (name, present) in [
        ("d", jwk.d.is_some()),
        ("p", jwk.p.is_some()),
        ("q", jwk.q.is_some()),
        ("dp", jwk.dp.is_some()),
        ("dq", jwk.dq.is_some()),
        ("qi", jwk.qi.is_some()),
        ("k", jwk.k.is_some()),
    ] {
        if present {
            return Err(ConfigError::new(
                format!("{path}.{name}"),
                "private or symmetric key material does not belong in a JWKS; publish only public keys (use `shared_secret` for HS*)",
            ));
        }
    }
    match jwk.use_.as_deref() {
        None | Some("sig") => {}
        // Encryption keys are legitimately published beside signing keys; they never verify.
        Some("enc") => return Ok(None),
        Some(other) => {
            return Err(ConfigError::new(
                format!("{path}.use"),
                format!("unknown key use `{other}` (RFC 7517: `sig` or `enc`)"),
            ));
        }
    }
    if let Some(ops) = &jwk.key_ops {
        // RFC 7517 §4.3: a key whose operations exclude `verify` must not verify.
        if !ops.iter().any(|op| op == "verify") {
            return Ok(None);
        }
    }
    let jwk_alg = match &jwk.alg {
        None => None,
        Some(name) => Some(name.parse::<Algorithm>().map_err(|()| {
            ConfigError::new(
                format!("{path}.alg"),
                format!("unsupported algorithm `{name}`"),
            )
        })?),
    };

    let family = match jwk.kty.as_str() {
        "RSA" => KeyFamily::Rsa,
        "EC" => match jwk.crv.as_deref() {
            Some("P-256") => KeyFamily::P256,
            Some("P-384") => KeyFamily::P384,
            Some(other) => {
                return Err(ConfigError::new(
                    format!("{path}.crv"),
                    format!("unsupported curve `{other}` (P-256 and P-384 are supported)"),
                ));
            }
            None => return Err(ConfigError::new(path, "missing `crv`")),
        },
        "OKP" => match jwk.crv.as_deref() {
            Some("Ed25519") => KeyFamily::Ed25519,
            Some(other) => {
                return Err(ConfigError::new(
                    format!("{path}.crv"),
                    format!("unsupported curve `{other}` (Ed25519 is supported)"),
                ));
            }
            None => return Err(ConfigError::new(path, "missing `crv`")),
        },
        "oct" => {
            return Err(ConfigError::new(
                format!("{path}.kty"),
                "symmetric keys are not accepted in a JWKS; use the issuer's `shared_secret`",
            ));
        }
        other => {
            return Err(ConfigError::new(
                format!("{path}.kty"),
                format!("unsupported key type `{other}` (RSA, EC, OKP are supported)"),
            ));
        }
    };
    if let Some(alg) = jwk_alg
        && alg.key_family() != family
    {
        return Err(ConfigError::new(
            format!("{path}.alg"),
            format!("`{alg}` does not match key type `{}`", jwk.kty),
        ));
    }

    let mut verifiers = Vec::new();
    let mut spki_der = None;
    let usable = allowed
        .iter()
        .copied()
        .filter(|alg| alg.key_family() == family && jwk_alg.is_none_or(|a| a == *alg));
    match family {
        KeyFamily::Rsa => {
            let n = decode_b64url(path, "n", jwk.n.as_ref())?;
            let e = decode_b64url(path, "e", jwk.e.as_ref())?;
            let bits = n.iter().position(|b| *b != 0).map_or(0, |first| {
                (n.len() - first) * 8 - n.get(first).map_or(0, |b| b.leading_zeros() as usize)
            });
            if bits < MIN_RSA_BITS {
                return Err(ConfigError::new(
                    format!("{path}.n"),
                    format!("RSA modulus of {bits} bits is too small (minimum {MIN_RSA_BITS})"),
                ));
            }
            let bad = |_| ConfigError::new(path, "invalid RSA public key");
            spki_der = Some(
                RS256PublicKey::from_components(&n, &e)
                    .and_then(|key| key.to_der())
                    .map_err(bad)?,
            );
            for alg in usable {
                let verifier = match alg {
                    Algorithm::RS256 => {
                        AlgVerifier::RS256(RS256PublicKey::from_components(&n, &e).map_err(bad)?)
                    }
                    Algorithm::RS384 => {
                        AlgVerifier::RS384(RS384PublicKey::from_components(&n, &e).map_err(bad)?)
                    }
                    Algorithm::RS512 => {
                        AlgVerifier::RS512(RS512PublicKey::from_components(&n, &e).map_err(bad)?)
                    }
                    Algorithm::PS256 => {
                        AlgVerifier::PS256(PS256PublicKey::from_components(&n, &e).map_err(bad)?)
                    }
                    Algorithm::PS384 => {
                        AlgVerifier::PS384(PS384PublicKey::from_components(&n, &e).map_err(bad)?)
                    }
                    Algorithm::PS512 => {
                        AlgVerifier::PS512(PS512PublicKey::from_components(&n, &e).map_err(bad)?)
                    }
                    _ => continue,
                };
                verifiers.push((alg, verifier));
            }
        }
        KeyFamily::P256 | KeyFamily::P384 => {
            let size = if family == KeyFamily::P256 { 32 } else { 48 };
            let x = decode_b64url(path, "x", jwk.x.as_ref())?;
            let y = decode_b64url(path, "y", jwk.y.as_ref())?;
            if x.len() != size || y.len() != size {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "`x` and `y` must be {size} bytes for {}",
                        jwk.crv.as_deref().unwrap_or("")
                    ),
                ));
            }
            // SEC1 uncompressed point: 0x04 || x || y. The curve library rejects points not
            // on the curve.
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let bad = |_| ConfigError::new(path, "`x`/`y` is not a point on the curve");
            spki_der = Some(if family == KeyFamily::P256 {
                ES256PublicKey::from_bytes(&point)
                    .and_then(|key| key.to_der())
                    .map_err(bad)?
            } else {
                ES384PublicKey::from_bytes(&point)
                    .and_then(|key| key.to_der())
                    .map_err(bad)?
            });
            for alg in usable {
                let verifier = match alg {
                    Algorithm::ES256 => {
                        AlgVerifier::ES256(ES256PublicKey::from_bytes(&point).map_err(bad)?)
                    }
                    Algorithm::ES384 => {
                        AlgVerifier::ES384(ES384PublicKey::from_bytes(&point).map_err(bad)?)
                    }
                    _ => continue,
                };
                verifiers.push((alg, verifier));
            }
        }
        KeyFamily::Ed25519 => {
            let x = decode_b64url(path, "x", jwk.x.as_ref())?;
            if x.len() != 32 {
                return Err(ConfigError::new(
                    format!("{path}.x"),
                    "must be 32 bytes for Ed25519",
                ));
            }
            for alg in usable {
                if alg == Algorithm::EdDSA {
                    let key = Ed25519PublicKey::from_bytes(&x).map_err(|_| {
                        ConfigError::new(format!("{path}.x"), "invalid Ed25519 key")
                    })?;
                    verifiers.push((alg, AlgVerifier::EdDSA(key)));
                }
            }
        }
        KeyFamily::SharedSecret => {}
    }
    Ok(Some(IssuerKey {
        kid: jwk.kid.clone(),
        family,
        spki_der,
        verifiers,
    }))
}

/// Builds the HMAC key of an issuer from its base64url `shared_secret`.
pub fn key_from_secret(
    path: &str,
    secret: &str,
    allowed: &[Algorithm],
) -> Result<IssuerKey, ConfigError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(secret.trim_end_matches('='))
        .map_err(|_| ConfigError::new(path, "not base64url"))?;
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::new(
            path,
            format!(
                "shared secret of {} bytes is too short (minimum {MIN_SECRET_BYTES})",
                bytes.len()
            ),
        ));
    }
    let verifiers = allowed
        .iter()
        .filter_map(|alg| {
            let verifier = match alg {
                Algorithm::HS256 => AlgVerifier::HS256(HS256Key::from_bytes(&bytes)),
                Algorithm::HS384 => AlgVerifier::HS384(HS384Key::from_bytes(&bytes)),
                Algorithm::HS512 => AlgVerifier::HS512(HS512Key::from_bytes(&bytes)),
                _ => return None,
            };
            Some((*alg, verifier))
        })
        .collect();
    Ok(IssuerKey {
        kid: None,
        family: KeyFamily::SharedSecret,
        spki_der: None,
        verifiers,
    })
}
