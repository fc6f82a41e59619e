//! The `threat_intel` section as written, and compiled. A public interface: every field is
//! in README.md's configuration reference and docs/threat-intel.md.

use serde::Deserialize;

use super::{FeedFormat, FeedKind};
use crate::assess::config::{RawClientIp, compile_raw_client_ip};
use crate::assess::model::ClientIp;
use crate::config::ConfigError;
use crate::config::defaults::default_usize;
use crate::polled::{PolledSource, RawPolledSource};

/// `threat_intel`: deny and watch lists of networks, ASNs and countries.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawThreatIntel {
    pub feeds: Vec<RawFeed>,
    /// Where the caller's address comes from (default: Envoy's `source.address`). Never the
    /// leftmost `x-forwarded-for` entry, which the client writes.
    #[serde(default)]
    pub client_ip: Option<RawClientIp>,
    /// Header holding the caller's ISO 3166 country, set by the edge (for `country` feeds).
    #[serde(default)]
    pub country_header: Option<String>,
    /// Header holding the caller's ASN, set by the edge (for `asn` feeds).
    #[serde(default)]
    pub asn_header: Option<String>,
    /// Added to the model's score for a `watch` match (the verdict follows the thresholds).
    #[serde(default = "default_watch_score")]
    pub watch_score: f32,
}

fn default_watch_score() -> f32 {
    0.3
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawFeed {
    /// Names the feed in metrics, logs and events: letters, digits, `_`, `-`.
    pub name: String,
    pub kind: RawFeedKind,
    #[serde(default)]
    pub format: RawFeedFormat,
    pub action: FeedAction,
    /// Most entries accepted; a longer feed is refused (the last good one stays).
    #[serde(default = "default_usize::<200_000>")]
    pub max_entries: usize,
    pub fetch: RawPolledSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RawFeedKind {
    /// IPv4/IPv6 addresses and CIDR networks.
    Ip,
    /// Autonomous system numbers (`AS64500` or `64500`).
    Asn,
    /// ISO 3166 alpha-2 country codes.
    Country,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RawFeedFormat {
    /// One entry per line, `#` and `;` comments.
    #[default]
    Text,
    /// A JSON array of entries, or `{"entries": [...]}`.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FeedAction {
    /// 403 before the token is looked at.
    Deny,
    /// A reason, and `watch_score` added to the model's score.
    Watch,
}

impl FeedAction {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedAction::Deny => "deny",
            FeedAction::Watch => "watch",
        }
    }
}

/// One compiled feed.
#[derive(Debug, Clone)]
pub struct Feed {
    pub name: String,
    pub kind: FeedKind,
    pub format: FeedFormat,
    pub action: FeedAction,
    pub max_entries: usize,
    pub source: PolledSource,
}

/// Compiled `threat_intel`.
#[derive(Debug, Clone)]
pub struct ThreatIntelConfig {
    pub feeds: Vec<Feed>,
    pub client_ip: ClientIp,
    pub country_header: Option<String>,
    pub asn_header: Option<String>,
    pub watch_score: f32,
}

fn header_name(path: &str, value: &Option<String>) -> Result<Option<String>, ConfigError> {
    match value {
        Some(name)
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Err(ConfigError::new(path, "must be a lower-case header name"))
        }
        other => Ok(other.clone()),
    }
}

impl ThreatIntelConfig {
    pub fn compile(path: &str, raw: &RawThreatIntel) -> Result<Self, ConfigError> {
        let mut feeds: Vec<Feed> = Vec::with_capacity(raw.feeds.len());
        for (i, feed) in raw.feeds.iter().enumerate() {
            let at = format!("{path}.feeds[{i}]");
            if feed.name.is_empty()
                || feed.name.len() > 64
                || !feed
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    "1 to 64 letters, digits, `_` or `-` (it names metrics)",
                ));
            }
            if feeds.iter().any(|f| f.name == feed.name) {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    format!("duplicate feed `{}`", feed.name),
                ));
            }
            if feed.max_entries == 0 || feed.max_entries > 5_000_000 {
                return Err(ConfigError::new(
                    format!("{at}.max_entries"),
                    "must be between 1 and 5000000",
                ));
            }
            let kind = match feed.kind {
                RawFeedKind::Ip => FeedKind::Ip,
                RawFeedKind::Asn => FeedKind::Asn,
                RawFeedKind::Country => FeedKind::Country,
            };
            if kind == FeedKind::Country && raw.country_header.is_none() {
                return Err(ConfigError::new(
                    format!("{path}.country_header"),
                    format!("required: feeds[{i}] lists countries"),
                ));
            }
            if kind == FeedKind::Asn && raw.asn_header.is_none() {
                return Err(ConfigError::new(
                    format!("{path}.asn_header"),
                    format!("required: feeds[{i}] lists ASNs"),
                ));
            }
            let source = PolledSource::compile(
                &format!("{at}.fetch"),
                format!("threat-intelligence feed {}", feed.name),
                format!("obguard.intel.{}", feed.name),
                &feed.fetch,
            )?;
            feeds.push(Feed {
                name: feed.name.clone(),
                kind,
                format: match feed.format {
                    RawFeedFormat::Text => FeedFormat::Text,
                    RawFeedFormat::Json => FeedFormat::Json,
                },
                action: feed.action,
                max_entries: feed.max_entries,
                source,
            });
        }
        if feeds.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.feeds"),
                "at least one feed is required",
            ));
        }
        if !(0.0..=1.0).contains(&raw.watch_score) {
            return Err(ConfigError::new(
                format!("{path}.watch_score"),
                "must be between 0 and 1",
            ));
        }
        let client_ip = match &raw.client_ip {
            Some(section) => compile_raw_client_ip(path, section)?,
            None => ClientIp::Connection,
        };
        if client_ip == ClientIp::None && feeds.iter().any(|f| f.kind == FeedKind::Ip) {
            return Err(ConfigError::new(
                format!("{path}.client_ip.source"),
                "`none` leaves the IP feeds nothing to match",
            ));
        }
        Ok(Self {
            feeds,
            client_ip,
            country_header: header_name(&format!("{path}.country_header"), &raw.country_header)?,
            asn_header: header_name(&format!("{path}.asn_header"), &raw.asn_header)?,
            watch_score: raw.watch_score,
        })
    }
}
