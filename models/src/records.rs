//! Traffic records: the JSONL format of `docs/records.md` (host only).
//!
//! One request per line. The simulator writes it, Envoy's access log can be shaped into it,
//! and `train`, `eval` and `explain` read it. Parsing is strict about the fields the features
//! need and says which line and why when it refuses one; unknown fields are ignored.

use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::event::{RequestEvent, split_path};

/// Label of legitimate traffic.
pub const NORMAL: &str = "normal";

/// Attack types the simulator produces (any other label is accepted and reported as is).
pub const ATTACK_TYPES: [&str; 7] = [
    "credential_stuffing",
    "bola_enumeration",
    "offhours_new_country",
    "token_replay",
    "bulk_exfiltration",
    "scraping_bot",
    "low_and_slow",
];

/// `customer_present`: a boolean, or the `x-fapi-customer-ip-address` value (present when
/// non-empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CustomerPresent {
    Flag(bool),
    Address(String),
}

impl CustomerPresent {
    pub fn is_present(&self) -> bool {
        match self {
            CustomerPresent::Flag(b) => *b,
            CustomerPresent::Address(a) => !a.trim().is_empty(),
        }
    }
}

impl Default for CustomerPresent {
    fn default() -> Self {
        CustomerPresent::Flag(false)
    }
}

/// `asn`: a number or `"AS64500"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Asn {
    Number(u32),
    Text(String),
}

impl Asn {
    fn value(&self) -> Result<u32, String> {
        match self {
            Asn::Number(n) => Ok(*n),
            Asn::Text(t) => {
                let digits = t
                    .trim()
                    .trim_start_matches(['A', 'a'])
                    .trim_start_matches(['S', 's']);
                digits
                    .parse()
                    .map_err(|_| format!("asn: {t:?} is neither a number nor \"AS<number>\""))
            }
        }
    }
}

fn number_or_text<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64> + Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }
    let n = match Either::deserialize(d)? {
        Either::Number(n) => n,
        Either::Text(t) => t.trim().parse::<u64>().map_err(|_| {
            serde::de::Error::custom(format!("{t:?} is not a non-negative integer"))
        })?,
    };
    T::try_from(n).map_err(|_| serde::de::Error::custom(format!("{n} is out of range")))
}

/// A record as it appears on a line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawRecord {
    pub ts: String,
    pub client_id: String,
    #[serde(default)]
    pub sub: Option<String>,
    pub method: String,
    pub path: String,
    /// A number, or a numeric string (some access-log formats render every value as text).
    #[serde(deserialize_with = "number_or_text")]
    pub status: u16,
    #[serde(deserialize_with = "number_or_text")]
    pub resp_bytes: u64,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub asn: Option<Asn>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(default)]
    pub customer_present: CustomerPresent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<String>,
}

/// A validated record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub ts_ms: u64,
    pub client_id: String,
    pub sub: Option<String>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub resp_bytes: u64,
    pub ip: Option<IpAddr>,
    pub country: Option<String>,
    pub asn: Option<u32>,
    pub user_agent: Option<String>,
    pub route: Option<String>,
    pub customer_present: bool,
    /// `None` for unlabelled traffic (real logs).
    pub label: Option<String>,
    pub episode: Option<String>,
}

/// A refused line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for RecordError {}

impl Record {
    /// Parse one line (1-based `line` for the error).
    pub fn parse(text: &str, line: usize) -> Result<Self, RecordError> {
        let err = |reason: String| RecordError { line, reason };
        let raw: RawRecord = serde_json::from_str(text).map_err(|e| err(e.to_string()))?;
        let ts = OffsetDateTime::parse(&raw.ts, &Rfc3339)
            .map_err(|e| err(format!("ts: {:?} is not RFC 3339 ({e})", raw.ts)))?;
        let ts_ms = u64::try_from(ts.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| err(format!("ts: {:?} is before 1970", raw.ts)))?;
        if raw.client_id.trim().is_empty() {
            return Err(err("client_id: empty".into()));
        }
        if raw.method.is_empty() || !raw.method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(err(format!(
                "method: {:?} is not an HTTP method",
                raw.method
            )));
        }
        if !raw.path.starts_with('/') {
            return Err(err(format!("path: {:?} does not start with '/'", raw.path)));
        }
        if !(100..=599).contains(&raw.status) {
            return Err(err(format!("status: {} is not an HTTP status", raw.status)));
        }
        let ip = match raw.ip.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                s.parse::<IpAddr>()
                    .map_err(|_| err(format!("ip: {s:?} is not an IP address")))?,
            ),
        };
        let asn = raw.asn.as_ref().map(Asn::value).transpose().map_err(err)?;
        let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        Ok(Record {
            ts_ms,
            client_id: raw.client_id,
            sub: nonempty(raw.sub),
            method: raw.method.to_ascii_uppercase(),
            path: raw.path,
            status: raw.status,
            resp_bytes: raw.resp_bytes,
            ip,
            country: nonempty(raw.country),
            asn,
            user_agent: nonempty(raw.user_agent),
            route: nonempty(raw.route),
            customer_present: raw.customer_present.is_present(),
            label: nonempty(raw.label),
            episode: nonempty(raw.episode),
        })
    }

    /// The request as the filter would see it. Same derivation of route and ids as the
    /// filter uses ([`split_path`]).
    pub fn event(&self) -> RequestEvent<'_> {
        let (template, resource_ids) = split_path(&self.path);
        RequestEvent {
            ts_ms: self.ts_ms,
            client_id: &self.client_id,
            route: match &self.route {
                Some(r) => Cow::Borrowed(r.as_str()),
                None => Cow::Owned(template),
            },
            method: &self.method,
            resource_ids,
            ip: self.ip,
            country: self.country.as_deref(),
            asn: self.asn,
            user_agent: self.user_agent.as_deref(),
            customer_present: self.customer_present,
        }
    }

    /// True for attack traffic; unlabelled counts as normal.
    pub fn is_attack(&self) -> bool {
        self.label.as_deref().is_some_and(|l| l != NORMAL)
    }
}

/// Records of a reader, one per non-blank line, each parsed or refused with its line number.
pub fn read(reader: impl BufRead) -> impl Iterator<Item = Result<Record, RecordError>> {
    read_numbered(reader).map(|(_, r)| r)
}

/// [`read`], with each record's 1-based line number (blank lines are skipped, so numbers
/// can jump).
pub fn read_numbered(
    reader: impl BufRead,
) -> impl Iterator<Item = (usize, Result<Record, RecordError>)> {
    reader
        .lines()
        .enumerate()
        .filter_map(|(i, line)| match line {
            Err(e) => Some((
                i + 1,
                Err(RecordError {
                    line: i + 1,
                    reason: format!("unreadable: {e}"),
                }),
            )),
            Ok(l) if l.trim().is_empty() => None,
            Ok(l) => Some((i + 1, Record::parse(&l, i + 1))),
        })
}

/// RFC 3339 with milliseconds, UTC.
pub fn format_ts(ts_ms: u64) -> String {
    let nanos = i128::from(ts_ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"ts":"2026-01-05T09:15:02.120Z","client_id":"tpp-1","sub":"psu-1","method":"GET","path":"/open-banking/v3.1/aisp/accounts/acc-1/balances","status":200,"resp_bytes":812,"ip":"203.0.113.7","country":"GB","asn":"AS64500","user_agent":"Acme/1.0","customer_present":"198.51.100.4","label":"normal","episode":"","extra":{"ignored":true}}"#;

    #[test]
    fn parses_and_ignores_extra_fields() {
        let r = Record::parse(GOOD, 1).unwrap();
        assert_eq!(r.ts_ms, 1_767_604_502_120);
        assert_eq!(r.asn, Some(64500));
        assert!(r.customer_present);
        assert_eq!(r.episode, None);
        assert!(!r.is_attack());
        let e = r.event();
        assert_eq!(e.route, "/open-banking/v3.1/aisp/accounts/{id}/balances");
        assert_eq!(e.resource_ids, vec!["acc-1"]);
        assert_eq!(format_ts(r.ts_ms), "2026-01-05T09:15:02.120Z");
    }

    #[test]
    fn malformed_lines_say_where_and_why() {
        let input = format!(
            "{GOOD}\n\n{}\n{}\nnot json\n",
            GOOD.replace("2026-01-05T09:15:02.120Z", "yesterday"),
            GOOD.replace("203.0.113.7", "999.1.1.1")
        );
        let results: Vec<_> = read(input.as_bytes()).collect();
        assert_eq!(results.len(), 4);
        assert!(results[0].is_ok());
        let e = results[1].clone().unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.reason.starts_with("ts:"), "{e}");
        let e = results[2].clone().unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.reason.starts_with("ip:"), "{e}");
        assert_eq!(results[3].clone().unwrap_err().line, 5);
        let text = Record::parse(&GOOD.replace(r#""status":200"#, r#""status":"404""#), 1).unwrap();
        assert_eq!(text.status, 404);
        let e = Record::parse(&GOOD.replace(r#""status":200"#, r#""status":"-""#), 7).unwrap_err();
        assert_eq!(e.line, 7);
        assert!(e.reason.contains("not a non-negative integer"), "{e}");
        let missing = GOOD.replace(r#""status":200,"#, "");
        let e = Record::parse(&missing, 9).unwrap_err();
        assert!(e.to_string().contains("status"), "{e}");
    }
}
