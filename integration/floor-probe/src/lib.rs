//! The benchmarks' floor: a proxy-wasm HTTP filter that makes the host calls obguard's warm
//! path with the model cannot avoid, and nothing else (no token parsing, no routes, no model).
//! `obguard-bench` measures obguard as a fraction of it, so the ratio shows obguard's own work
//! on top of the proxy-wasm boundary it has to cross anyway.
//!
//! Per request (`on_http_request_headers`), in this order:
//!
//! 1. the request headers in one map call (`proxy_get_header_map_pairs`);
//! 2. one clock read;
//! 3. one shared-data read and a compare-and-swap write of a 200-byte value (about the size
//!    of a client baseline slot) under `obguard.floor.<value of key_header>`, unless
//!    `shared_data=off`;
//! 4. three request headers set (`proxy_replace_header_map_value`);
//! 5. one filter-state field (`set_property` on `wasm.obguard_floor`, what an access-log field
//!    costs);
//! 6. one counter increment (`wasmcustom.floor.requests`);
//!
//! and one response header in `on_http_response_headers`.
//!
//! With `verify=rs256|es256` it also checks the bearer token's signature once per request with
//! Envoy's `verify_signature` foreign function (what obguard's cold path does with
//! `host_crypto`): split off the signature, base64url-decode it, DER-encode it for ES256, and
//! call the host with the key given as `spki=<base64 SubjectPublicKeyInfo DER>`. A signature
//! that does not verify is answered 401, so a broken floor shows up as non-2xx answers.
//!
//! Configuration: the plugin configuration string, space-separated `key=value` words:
//! `key_header=<name>` (default `x-client-asn`), `shared_data=on|off` (default on),
//! `verify=none|rs256|es256` (default none), `spki=<base64>` (required with `verify`).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// Size of the value written to shared data on every request.
pub const VALUE_BYTES: usize = 200;

/// Which signature, if any, each request's token is checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    None,
    Rs256,
    Es256,
}

/// The probe's configuration (see the crate documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub key_header: String,
    pub shared_data: bool,
    pub verify: Verify,
    pub spki_der: Vec<u8>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            key_header: "x-client-asn".to_owned(),
            shared_data: true,
            verify: Verify::None,
            spki_der: Vec::new(),
        }
    }
}

impl Config {
    /// Parses the plugin configuration string; an empty one is the default.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut config = Config::default();
        for word in text.split_whitespace() {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| format!("`{word}`: expected key=value"))?;
            match key {
                "key_header" => config.key_header = value.to_ascii_lowercase(),
                "shared_data" => {
                    config.shared_data = match value {
                        "on" => true,
                        "off" => false,
                        _ => return Err(format!("shared_data={value}: expected on or off")),
                    }
                }
                "verify" => {
                    config.verify = match value {
                        "none" => Verify::None,
                        "rs256" => Verify::Rs256,
                        "es256" => Verify::Es256,
                        _ => return Err(format!("verify={value}: expected none, rs256, es256")),
                    }
                }
                "spki" => {
                    config.spki_der = STANDARD
                        .decode(value)
                        .map_err(|e| format!("spki: not base64: {e}"))?
                }
                _ => return Err(format!("unknown key `{key}`")),
            }
        }
        if config.verify != Verify::None && config.spki_der.is_empty() {
            return Err("verify needs spki=<base64 SubjectPublicKeyInfo DER>".to_owned());
        }
        Ok(config)
    }
}

/// The `verify_signature` arguments for the bearer token in `authorization` (Envoy's
/// `VerifySignatureArguments`: 1 hash name, 2 public key, 3 signature, 4 signed text), or
/// `None` when the header is no `Bearer <header>.<payload>.<signature>`.
pub fn verify_arguments(config: &Config, authorization: &str) -> Option<Vec<u8>> {
    let token = authorization.strip_prefix("Bearer ")?;
    let (signed, signature) = token.rsplit_once('.')?;
    let raw = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let signature = match config.verify {
        Verify::None => return None,
        Verify::Rs256 => raw,
        Verify::Es256 => ecdsa_p256_der(&raw)?,
    };
    let mut out = Vec::with_capacity(signed.len() + signature.len() + config.spki_der.len() + 24);
    put_bytes(&mut out, 1, b"sha256");
    put_bytes(&mut out, 2, &config.spki_der);
    put_bytes(&mut out, 3, &signature);
    put_bytes(&mut out, 4, signed.as_bytes());
    Some(out)
}

/// Whether Envoy's `VerifySignatureResult` says the signature verified (field 1, a bool).
pub fn verified(result: &[u8]) -> bool {
    // A true `result` is encoded first as tag 0x08, value 1; a false one is omitted.
    matches!(result, [0x08, 0x01, ..])
}

/// Protobuf length-delimited field `field` (wire type 2).
fn put_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push((field << 3) | 2);
    let mut len = bytes.len();
    while len >= 0x80 {
        out.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(bytes);
}

/// JWS carries ES256 signatures as 64 bytes `r || s`; BoringSSL wants an ASN.1 DER
/// `SEQUENCE { INTEGER r, INTEGER s }`.
fn ecdsa_p256_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() != 64 {
        return None;
    }
    let (r, s) = raw.split_at(32);
    let (r, s) = (der_integer(r), der_integer(s));
    let mut out = Vec::with_capacity(2 + r.len() + s.len());
    out.push(0x30);
    out.push(u8::try_from(r.len() + s.len()).ok()?);
    out.extend_from_slice(&r);
    out.extend_from_slice(&s);
    Some(out)
}

/// A DER INTEGER of the big-endian unsigned `bytes` (at most 32 of them).
fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let digits = bytes.get(start..).unwrap_or_default();
    let pad = digits.first().is_none_or(|b| *b >= 0x80);
    let len = digits.len() + usize::from(pad);
    let mut out = Vec::with_capacity(2 + len);
    out.push(0x02);
    out.push(len as u8);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
    out
}

#[cfg(target_arch = "wasm32")]
mod filter {
    use std::rc::Rc;
    use std::time::UNIX_EPOCH;

    use proxy_wasm::hostcalls;
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};

    use super::{Config, VALUE_BYTES, Verify, verified, verify_arguments};

    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
            Box::new(Root { config: Rc::new(Config::default()), counter: None })
        });
    }}

    struct Root {
        config: Rc<Config>,
        counter: Option<u32>,
    }

    impl Context for Root {}

    impl RootContext for Root {
        fn on_configure(&mut self, _: usize) -> bool {
            let text = hostcalls::get_buffer(
                proxy_wasm::types::BufferType::PluginConfiguration,
                0,
                usize::MAX,
            )
            .ok()
            .flatten()
            .unwrap_or_default();
            match Config::parse(&String::from_utf8_lossy(&text)) {
                Ok(config) => self.config = Rc::new(config),
                Err(err) => {
                    let _ = hostcalls::log(LogLevel::Error, &format!("floor-probe: {err}"));
                    return false;
                }
            }
            self.counter = hostcalls::define_metric(MetricType::Counter, "floor.requests").ok();
            true
        }

        fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(Stream {
                config: Rc::clone(&self.config),
                counter: self.counter,
            }))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct Stream {
        config: Rc<Config>,
        counter: Option<u32>,
    }

    impl Context for Stream {}

    impl HttpContext for Stream {
        fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
            let headers = hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default();
            let now = hostcalls::get_current_time()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64);
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
            };
            if self.config.verify != Verify::None {
                let ok = header("authorization")
                    .and_then(|a| verify_arguments(&self.config, a))
                    .and_then(|args| {
                        hostcalls::call_foreign_function("verify_signature", Some(&args)).ok()
                    })
                    .flatten()
                    .is_some_and(|result| verified(&result));
                if !ok {
                    let _ = hostcalls::send_http_response(401, vec![], None);
                    return Action::Pause;
                }
            }
            if self.config.shared_data {
                let key = format!(
                    "obguard.floor.{}",
                    header(&self.config.key_header).unwrap_or("")
                );
                let (_, cas) = hostcalls::get_shared_data(&key).unwrap_or((None, None));
                let mut value = [0u8; VALUE_BYTES];
                if let Some(head) = value.get_mut(..8) {
                    head.copy_from_slice(&now.to_be_bytes());
                }
                let _ = hostcalls::set_shared_data(&key, Some(&value), cas.or(Some(0)));
            }
            for (name, value) in [
                ("x-obguard-client-id", "tpp-bench"),
                ("x-obguard-route", "accounts"),
                ("x-obguard-verdict", "allow"),
            ] {
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value));
            }
            let _ = hostcalls::set_property(vec!["obguard_floor"], Some(b"allow"));
            if let Some(id) = self.counter {
                let _ = hostcalls::increment_metric(id, 1);
            }
            Action::Continue
        }

        fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
            let _ = hostcalls::set_map_value(
                MapType::HttpResponseHeaders,
                "x-fapi-interaction-id",
                Some("00000000-0000-4000-8000-000000000000"),
            );
            Action::Continue
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_configuration_words() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        let c =
            Config::parse("key_header=X-Client shared_data=off verify=es256 spki=AAEC").unwrap();
        assert_eq!(c.key_header, "x-client");
        assert!(!c.shared_data);
        assert_eq!(c.verify, Verify::Es256);
        assert_eq!(c.spki_der, vec![0, 1, 2]);
        assert!(Config::parse("verify=rs256").is_err(), "no key");
        assert!(Config::parse("shared_data=maybe").is_err());
        assert!(Config::parse("colour=blue").is_err());
        assert!(Config::parse("lonely").is_err());
    }

    #[test]
    fn ecdsa_signatures_become_der() {
        let mut raw = [0u8; 64];
        raw[31] = 0x05; // r = 5
        raw[32] = 0x80; // s has its high bit set: a leading zero keeps it positive
        let der = ecdsa_p256_der(&raw).unwrap();
        assert_eq!(&der[..5], &[0x30, 3 + 35, 0x02, 1, 0x05]);
        assert_eq!(&der[5..8], &[0x02, 33, 0x00]);
        assert_eq!(der.len(), 2 + 3 + 35);
        assert!(ecdsa_p256_der(&raw[..63]).is_none());
    }

    #[test]
    fn verify_arguments_are_the_four_protobuf_fields() {
        let config = Config {
            verify: Verify::Rs256,
            spki_der: vec![9; 300],
            ..Config::default()
        };
        let args = verify_arguments(&config, "Bearer aGVhZA.Ym9keQ.AQID").unwrap();
        assert_eq!(&args[..8], b"\x0a\x06sha256");
        // 300 bytes: a two-byte length varint.
        assert_eq!(&args[8..11], &[0x12, 0xac, 0x02]);
        let rest = &args[11 + 300..];
        assert_eq!(&rest[..5], &[0x1a, 3, 1, 2, 3]);
        assert_eq!(&rest[5..], b"\x22\x0daGVhZA.Ym9keQ");
        assert!(verify_arguments(&config, "Basic abc").is_none());
        assert!(verified(&[0x08, 0x01]));
        assert!(!verified(&[0x12, 0x01, b'x']));
    }
}
