//! Threat-intelligence feeds: lists of IP networks, ASNs or countries that an operator
//! publishes (or mirrors from Spamhaus DROP, FireHOL, a vendor), parsed into sets a request's
//! caller is matched against.
//!
//! Pure: bytes in, structures out. Fetching, refreshing and what a match does belong to the
//! caller. Parsing is strict: one bad entry refuses the whole feed, so a truncated or corrupted
//! download never silently shrinks a block list; the caller keeps its last good list.
//!
//! * [`parse_feed`] — a feed body (text or JSON) into a [`FeedList`], or a [`FeedError`].
//! * [`IpSet`] — networks as merged ranges, binary-searched; [`Network`] one CIDR block.
//! * [`AsnSet`], [`CountrySet`], and [`parse_asn`] for the edge's ASN header.
//! * [`config`] — the `threat_intel` section; [`screen`] — a request against the feeds.

pub mod config;
mod feed;
mod ipset;
pub mod screen;
mod sets;

use std::fmt;

pub use feed::parse_feed;
pub use ipset::{IpSet, Network};
pub use sets::{AsnSet, CountrySet, parse_asn};

/// What a feed lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    Ip,
    Asn,
    Country,
}

impl FeedKind {
    pub const ALL: [FeedKind; 3] = [FeedKind::Ip, FeedKind::Asn, FeedKind::Country];

    /// The kind's name in configuration, metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            FeedKind::Ip => "ip",
            FeedKind::Asn => "asn",
            FeedKind::Country => "country",
        }
    }
}

/// How a feed is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// One entry per line, `#` and `;` comments (Spamhaus DROP, FireHOL netsets, plain lists).
    Text,
    /// A JSON array of entries, or an object with an `"entries"` array.
    Json,
}

impl FeedFormat {
    pub const ALL: [FeedFormat; 2] = [FeedFormat::Text, FeedFormat::Json];

    /// The format's name in configuration and logs.
    pub fn name(self) -> &'static str {
        match self {
            FeedFormat::Text => "text",
            FeedFormat::Json => "json",
        }
    }
}

/// A parsed feed, ready to match.
#[derive(Debug, Clone)]
pub enum FeedList {
    Ip(IpSet),
    Asn(AsnSet),
    Country(CountrySet),
}

impl FeedList {
    /// Distinct entries: a network, ASN or code listed twice counts once (a network nested in
    /// another still counts). At most the `max_entries` it was parsed with, which bounds the
    /// entries as written, duplicates included.
    pub fn len(&self) -> usize {
        match self {
            FeedList::Ip(set) => set.len(),
            FeedList::Asn(set) => set.len(),
            FeedList::Country(set) => set.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn kind(&self) -> FeedKind {
        match self {
            FeedList::Ip(_) => FeedKind::Ip,
            FeedList::Asn(_) => FeedKind::Asn,
            FeedList::Country(_) => FeedKind::Country,
        }
    }
}

/// Why a feed was refused. The whole feed is: the caller keeps its last good list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedError {
    NotUtf8,
    /// Not JSON, or JSON of another shape than an array or an object with an `"entries"`
    /// array (JSON format only).
    NotJson,
    /// More than `max` entries as written (duplicates counted), so memory stays bounded by
    /// the configuration whatever the feed's publisher sends.
    TooManyEntries {
        max: usize,
    },
    /// The first entry that is not what the feed's kind lists.
    BadEntry {
        format: FeedFormat,
        /// 1-based: the line (text) or the index in the entries array (JSON).
        line: usize,
        /// The entry as written (for JSON, the string's content or the value's JSON text),
        /// truncated to 64 characters.
        entry: String,
        /// What is wrong with it, e.g. `is not an IP or CIDR`.
        why: &'static str,
    },
}

/// How much of a bad entry goes into the error (a log line, not a dump of the feed).
const ENTRY_CHARS: usize = 64;

impl FeedError {
    pub(crate) fn bad_entry(
        format: FeedFormat,
        line: usize,
        entry: &str,
        why: &'static str,
    ) -> Self {
        FeedError::BadEntry {
            format,
            line,
            entry: entry.chars().take(ENTRY_CHARS).collect(),
            why,
        }
    }

    /// Metric-suffix reason: `not_utf8`, `not_json`, `too_many_entries`, `bad_entry`.
    pub fn reason(&self) -> &'static str {
        match self {
            FeedError::NotUtf8 => "not_utf8",
            FeedError::NotJson => "not_json",
            FeedError::TooManyEntries { .. } => "too_many_entries",
            FeedError::BadEntry { .. } => "bad_entry",
        }
    }

    /// Every reason, for declaring the metrics up front.
    pub const REASONS: [&'static str; 4] =
        ["not_utf8", "not_json", "too_many_entries", "bad_entry"];
}

impl fmt::Display for FeedError {
    /// One line for the log, e.g. `line 3: "999.1.1.1/8" is not an IP or CIDR`. The entry is
    /// quoted with its control characters escaped, so a hostile feed cannot forge log lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedError::NotUtf8 => f.write_str("not UTF-8 text"),
            FeedError::NotJson => f.write_str(
                "not a JSON array of entries or a JSON object with an \"entries\" array",
            ),
            FeedError::TooManyEntries { max } => write!(f, "more than {max} entries"),
            FeedError::BadEntry {
                format,
                line,
                entry,
                why,
            } => {
                let position = match format {
                    FeedFormat::Text => "line",
                    FeedFormat::Json => "entry",
                };
                write!(f, "{position} {line}: {entry:?} {why}")
            }
        }
    }
}

impl std::error::Error for FeedError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_messages() {
        let bad = FeedError::bad_entry(FeedFormat::Text, 3, "999.1.1.1/8", ipset::NOT_AN_IP);
        assert_eq!(bad.reason(), "bad_entry");
        assert_eq!(
            bad.to_string(),
            r#"line 3: "999.1.1.1/8" is not an IP or CIDR"#
        );
        let json = FeedError::bad_entry(FeedFormat::Json, 2, "x\ny", sets::NOT_A_COUNTRY);
        assert_eq!(
            json.to_string(),
            r#"entry 2: "x\ny" is not a country code (two letters, ISO 3166-1 alpha-2)"#
        );
        assert_eq!(FeedError::NotUtf8.reason(), "not_utf8");
        assert_eq!(FeedError::NotJson.reason(), "not_json");
        assert_eq!(
            FeedError::TooManyEntries { max: 5 }.reason(),
            "too_many_entries"
        );
        assert_eq!(
            FeedError::TooManyEntries { max: 5 }.to_string(),
            "more than 5 entries"
        );
        let all = [
            FeedError::NotUtf8,
            FeedError::NotJson,
            FeedError::TooManyEntries { max: 1 },
            bad,
        ];
        assert_eq!(all.map(|e| e.reason()), FeedError::REASONS);
    }

    #[test]
    fn bad_entries_are_truncated_by_characters() {
        let long = "é".repeat(100);
        let FeedError::BadEntry { entry, .. } =
            FeedError::bad_entry(FeedFormat::Text, 1, &long, ipset::NOT_AN_IP)
        else {
            panic!("not a bad entry");
        };
        assert_eq!(entry.chars().count(), 64);
    }

    #[test]
    fn names() {
        assert_eq!(FeedKind::ALL.map(FeedKind::name), ["ip", "asn", "country"]);
        assert_eq!(FeedFormat::ALL.map(FeedFormat::name), ["text", "json"]);
    }
}
