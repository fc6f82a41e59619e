//! Signature checks delegated to the proxy.
//!
//! Envoy exports the wasm foreign function `verify_signature`, which checks RSASSA-PKCS1-v1_5
//! and ECDSA signatures natively with BoringSSL — an order of magnitude faster than the same
//! maths inside the wasm VM. The core only prepares the inputs (SubjectPublicKeyInfo DER,
//! a DER-encoded ECDSA signature, the hash name); the adapter supplies the call. PS* and EdDSA
//! are not covered by the host function and always use jwt-simple, as do hosts without it.

use super::algorithm::Algorithm;

/// Calls the host: `Some(true)` verified, `Some(false)` did not verify, `None` the host could
/// not answer (then the in-wasm verifier decides).
pub type HostVerifyFn =
    fn(hash: &str, spki_der: &[u8], signature: &[u8], signed_text: &[u8]) -> Option<bool>;

/// Which implementation checked a signature; exported as a metric so operators can see the
/// fast path is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyPath {
    Host,
    Wasm,
    /// Envoy's `jwt_authn` filter verified the token; obguard read its payload (delegation).
    JwtAuthn,
}

impl VerifyPath {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyPath::Host => "host",
            VerifyPath::Wasm => "wasm",
            VerifyPath::JwtAuthn => "jwt_authn",
        }
    }
}

/// The hash name Envoy's crypto utility expects, for algorithms the host can verify.
pub fn host_hash(alg: Algorithm) -> Option<&'static str> {
    match alg {
        Algorithm::RS256 | Algorithm::ES256 => Some("sha256"),
        Algorithm::RS384 | Algorithm::ES384 => Some("sha384"),
        Algorithm::RS512 => Some("sha512"),
        _ => None,
    }
}

/// JWS carries ECDSA signatures as fixed-size `r || s` (RFC 7518 §3.4); BoringSSL wants DER.
/// `None` for a signature that is not a valid encoding, including `r = 0` or `s = 0`
/// (CVE-2022-21449), which the curve crates refuse to construct.
pub fn ecdsa_der(alg: Algorithm, raw: &[u8]) -> Option<Vec<u8>> {
    match alg {
        Algorithm::ES256 => p256::ecdsa::Signature::from_slice(raw)
            .ok()
            .map(|sig| sig.to_der().as_bytes().to_vec()),
        Algorithm::ES384 => p384::ecdsa::Signature::from_slice(raw)
            .ok()
            .map(|sig| sig.to_der().as_bytes().to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_malformed_ecdsa_signatures_have_no_der_form() {
        assert!(ecdsa_der(Algorithm::ES256, &[0u8; 64]).is_none());
        assert!(ecdsa_der(Algorithm::ES256, &[1u8; 63]).is_none());
        assert!(ecdsa_der(Algorithm::ES384, &[1u8; 64]).is_none());
        let der = ecdsa_der(Algorithm::ES256, &[1u8; 64]).unwrap_or_default();
        assert_eq!(der.first(), Some(&0x30), "DER SEQUENCE");
    }

    #[test]
    fn only_pkcs1_and_ecdsa_go_to_the_host() {
        assert_eq!(host_hash(Algorithm::RS384), Some("sha384"));
        assert_eq!(host_hash(Algorithm::ES256), Some("sha256"));
        for alg in [Algorithm::PS256, Algorithm::EdDSA, Algorithm::HS256] {
            assert_eq!(host_hash(alg), None);
        }
    }
}
