//! Envoy's `verify_signature` foreign function (BoringSSL, outside the VM).
//!
//! The messages are Envoy's `envoy.source.extensions.common.wasm.VerifySignatureArguments`
//! and `VerifySignatureResult` (source/extensions/common/wasm/ext/verify_signature.proto),
//! encoded by prost. Envoy does not publish that proto in its API tree, so the field numbers
//! are declared here; the integration tests exercise them against the real Envoy.

use crate::host::{Host, HostError};

const FUNCTION: &str = "verify_signature";

#[derive(Clone, PartialEq, prost::Message)]
pub struct VerifySignatureArguments {
    #[prost(string, tag = "1")]
    pub hash_function: String,
    /// SubjectPublicKeyInfo DER.
    #[prost(bytes = "vec", tag = "2")]
    pub public_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub signature: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub text: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VerifySignatureResult {
    #[prost(bool, tag = "1")]
    pub result: bool,
    #[prost(string, tag = "2")]
    pub error: String,
}

/// Whether this host exports `verify_signature`: an empty argument is a well-formed but
/// keyless request, which Envoy answers `BadArgument`; a host without the function answers
/// `NotFound`.
pub fn host_offers_verify_signature(host: &dyn Host) -> bool {
    !matches!(
        host.call_foreign_function(FUNCTION, &[]),
        Err(HostError::NotFound)
    )
}

/// One signature check through the host: `Some(true)` verified, `Some(false)` did not,
/// `None` when the host gave no usable answer (then the in-wasm verifier decides rather
/// than guess).
pub fn verify_signature(
    host: &dyn Host,
    hash: &str,
    spki_der: &[u8],
    signature: &[u8],
    text: &[u8],
) -> Option<bool> {
    let arguments = prost::Message::encode_to_vec(&VerifySignatureArguments {
        hash_function: hash.to_owned(),
        public_key: spki_der.to_vec(),
        signature: signature.to_vec(),
        text: text.to_vec(),
    });
    match host.call_foreign_function(FUNCTION, &arguments) {
        Ok(Some(bytes)) => <VerifySignatureResult as prost::Message>::decode(bytes.as_slice())
            .ok()
            .map(|answer| answer.result),
        Ok(None) | Err(_) => None,
    }
}
