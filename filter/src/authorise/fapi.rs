//! FAPI / UK Open Banking request headers (stage 2 of [`crate::pipeline`]):
//! `x-fapi-auth-date`, `x-fapi-customer-ip-address` and `x-fapi-interaction-id` are checked
//! when present (`fapi` configured), and `x-idempotency-key` is required on the routes that
//! ask for it (payment initiation).

use super::config::{FapiPolicy, RawFapi};

pub const AUTH_DATE: &str = "x-fapi-auth-date";
pub const CUSTOMER_IP: &str = "x-fapi-customer-ip-address";
pub const IDEMPOTENCY_KEY: &str = "x-idempotency-key";

/// The compiled `fapi` section.
#[derive(Debug, Clone, Copy)]
pub struct FapiPolicyConfig {
    /// `None`: the FAPI headers are not checked (only the routes' idempotency keys are).
    pub on_invalid: Option<FapiPolicy>,
    pub idempotency_key_max_bytes: usize,
}

impl FapiPolicyConfig {
    pub fn compile(raw: Option<&RawFapi>) -> Self {
        Self {
            on_invalid: raw.map(|r| r.on_invalid),
            idempotency_key_max_bytes: raw.map_or(40, |r| r.idempotency_key_max_bytes),
        }
    }
}

/// Which header is wrong (also the access log's reason and the metric suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FapiViolation {
    AuthDate,
    CustomerIp,
    InteractionId,
    /// More than one value of a FAPI header: which one to trust is ambiguous.
    Repeated,
    IdempotencyKeyMissing,
    IdempotencyKeyInvalid,
}

impl FapiViolation {
    pub const ALL: [FapiViolation; 6] = [
        FapiViolation::AuthDate,
        FapiViolation::CustomerIp,
        FapiViolation::InteractionId,
        FapiViolation::Repeated,
        FapiViolation::IdempotencyKeyMissing,
        FapiViolation::IdempotencyKeyInvalid,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            FapiViolation::AuthDate => "fapi_auth_date",
            FapiViolation::CustomerIp => "fapi_customer_ip_address",
            FapiViolation::InteractionId => "fapi_interaction_id",
            FapiViolation::Repeated => "fapi_header_repeated",
            FapiViolation::IdempotencyKeyMissing => "idempotency_key_missing",
            FapiViolation::IdempotencyKeyInvalid => "idempotency_key_invalid",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            FapiViolation::AuthDate => "x-fapi-auth-date must be an HTTP-date (RFC 9110)",
            FapiViolation::CustomerIp => "x-fapi-customer-ip-address must be an IP address",
            FapiViolation::InteractionId => "x-fapi-interaction-id must be a UUID",
            FapiViolation::Repeated => "A FAPI header appears more than once",
            FapiViolation::IdempotencyKeyMissing => "x-idempotency-key is required",
            FapiViolation::IdempotencyKeyInvalid => {
                "x-idempotency-key is too long or has characters other than printable ASCII"
            }
        }
    }

    /// Idempotency keys are always refused: forwarding a payment without one risks a double
    /// payment. The other headers follow `on_invalid`.
    pub fn always_refused(self) -> bool {
        matches!(
            self,
            FapiViolation::IdempotencyKeyMissing | FapiViolation::IdempotencyKeyInvalid
        )
    }
}

/// A header name, what a valid value is, and the violation otherwise.
type HeaderRule = (&'static str, fn(&str) -> bool, FapiViolation);

/// The first violation among the request's FAPI headers, then its idempotency key when the
/// route requires one. `headers` are the request's, names lower case.
pub fn check(
    config: &FapiPolicyConfig,
    headers: &[(String, String)],
    requires_idempotency_key: bool,
) -> Option<FapiViolation> {
    let single = |name: &str| single_value(headers, name);
    if config.on_invalid.is_some() {
        let checks: [HeaderRule; 3] = [
            (AUTH_DATE, is_http_date, FapiViolation::AuthDate),
            (CUSTOMER_IP, is_ip_address, FapiViolation::CustomerIp),
            (
                crate::enforce::interaction_id::HEADER,
                is_uuid,
                FapiViolation::InteractionId,
            ),
        ];
        for (name, valid, violation) in checks {
            match single(name) {
                Err(repeated) => return Some(repeated),
                Ok(Some(value)) if !valid(value.trim()) => return Some(violation),
                Ok(_) => {}
            }
        }
    }
    if requires_idempotency_key {
        match single(IDEMPOTENCY_KEY) {
            Err(_) => return Some(FapiViolation::IdempotencyKeyInvalid),
            Ok(None) => return Some(FapiViolation::IdempotencyKeyMissing),
            Ok(Some(key)) if !is_idempotency_key(key, config.idempotency_key_max_bytes) => {
                return Some(FapiViolation::IdempotencyKeyInvalid);
            }
            Ok(Some(_)) => {}
        }
    }
    None
}

/// The one value of header `name`; more than one is ambiguous.
fn single_value<'h>(
    headers: &'h [(String, String)],
    name: &str,
) -> Result<Option<&'h str>, FapiViolation> {
    let mut found = headers.iter().filter(|(n, _)| n == name);
    match (found.next(), found.next()) {
        (None, _) => Ok(None),
        (Some((_, value)), None) => Ok(Some(value.as_str())),
        (Some(_), Some(_)) => Err(FapiViolation::Repeated),
    }
}

/// Whether a violation refuses the request (else it is logged and counted).
pub fn refuses(config: &FapiPolicyConfig, violation: FapiViolation) -> bool {
    violation.always_refused() || config.on_invalid == Some(FapiPolicy::Refuse)
}

/// The request's idempotency key, for rate-limit descriptors (only a valid one).
pub fn idempotency_key(headers: &[(String, String)], max_bytes: usize) -> Option<&str> {
    single_value(headers, IDEMPOTENCY_KEY)
        .ok()
        .flatten()
        .filter(|key| is_idempotency_key(key, max_bytes))
}

fn is_http_date(value: &str) -> bool {
    httpdate::parse_http_date(value).is_ok()
}

fn is_ip_address(value: &str) -> bool {
    value.parse::<std::net::IpAddr>().is_ok()
}

fn is_uuid(value: &str) -> bool {
    uuid::Uuid::try_parse(value).is_ok()
}

/// Printable ASCII without spaces, 1 to `max_bytes` bytes: a key that is safe in logs,
/// descriptors and the upstream's idempotency store.
fn is_idempotency_key(value: &str, max_bytes: usize) -> bool {
    !value.is_empty() && value.len() <= max_bytes && value.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    const CHECKED: FapiPolicyConfig = FapiPolicyConfig {
        on_invalid: Some(FapiPolicy::Refuse),
        idempotency_key_max_bytes: 40,
    };

    #[test]
    fn valid_headers_pass() {
        let h = headers(&[
            (AUTH_DATE, "Sun, 10 Sep 2017 19:43:31 GMT"),
            (CUSTOMER_IP, "2001:db8::1"),
            (
                "x-fapi-interaction-id",
                "93bac548-d2de-4546-b106-880a5018460d",
            ),
            (IDEMPOTENCY_KEY, "FRESCO.21302.GFX.20"),
        ]);
        assert_eq!(check(&CHECKED, &h, true), None);
    }

    #[test]
    fn each_bad_header_is_named() {
        for (name, value, expected) in [
            (AUTH_DATE, "yesterday", FapiViolation::AuthDate),
            (CUSTOMER_IP, "10.0.0.300", FapiViolation::CustomerIp),
            ("x-fapi-interaction-id", "abc", FapiViolation::InteractionId),
        ] {
            assert_eq!(
                check(&CHECKED, &headers(&[(name, value)]), false),
                Some(expected),
                "{name}: {value}"
            );
        }
        let twice = headers(&[(CUSTOMER_IP, "10.0.0.1"), (CUSTOMER_IP, "10.0.0.2")]);
        assert_eq!(
            check(&CHECKED, &twice, false),
            Some(FapiViolation::Repeated)
        );
    }

    #[test]
    fn unchecked_without_the_section_but_idempotency_still_required() {
        let off = FapiPolicyConfig::compile(None);
        assert_eq!(check(&off, &headers(&[(AUTH_DATE, "bad")]), false), None);
        assert_eq!(
            check(&off, &headers(&[]), true),
            Some(FapiViolation::IdempotencyKeyMissing)
        );
        let long = "k".repeat(41);
        assert_eq!(
            check(&off, &headers(&[(IDEMPOTENCY_KEY, &long)]), true),
            Some(FapiViolation::IdempotencyKeyInvalid)
        );
        assert_eq!(
            check(&off, &headers(&[(IDEMPOTENCY_KEY, "a b")]), true),
            Some(FapiViolation::IdempotencyKeyInvalid)
        );
        assert!(refuses(&off, FapiViolation::IdempotencyKeyMissing));
        let log = FapiPolicyConfig {
            on_invalid: Some(FapiPolicy::Log),
            ..CHECKED
        };
        assert!(!refuses(&log, FapiViolation::AuthDate));
        assert!(refuses(&CHECKED, FapiViolation::AuthDate));
    }
}
