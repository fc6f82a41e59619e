//! A request against the feeds, in bounded time per feed: a binary search over merged
//! ranges for networks, a hash lookup for ASNs and countries. The address is the trusted
//! client address (`threat_intel.client_ip`); the country and ASN come from the headers the
//! edge sets.

use super::FeedList;
use super::config::{FeedAction, ThreatIntelConfig};

/// A feed the request matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntelHit {
    /// Index into `threat_intel.feeds`.
    pub feed: usize,
    pub action: FeedAction,
    /// What matched: the listed network, `AS<n>`, or the country code.
    pub matched: String,
}

/// Every feed the request matches, deny feeds first (the first deny refuses).
pub fn screen(
    config: &ThreatIntelConfig,
    lists: &[Option<FeedList>],
    headers: &[(String, String)],
    source_address: Option<&str>,
) -> Vec<IntelHit> {
    let header = |name: &Option<String>| {
        let name = name.as_deref()?;
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
    };
    let mut ip = None;
    let mut ip_resolved = false;
    let asn = header(&config.asn_header).and_then(super::parse_asn);
    let country = header(&config.country_header);
    let mut hits = Vec::new();
    for (index, (feed, list)) in config.feeds.iter().zip(lists).enumerate() {
        let Some(list) = list else {
            continue;
        };
        let matched = match list {
            FeedList::Ip(set) => {
                if !ip_resolved {
                    ip = config.client_ip.resolve(headers, source_address);
                    ip_resolved = true;
                }
                ip.and_then(|ip| set.matching(ip)).map(|n| n.to_string())
            }
            FeedList::Asn(set) => asn.filter(|a| set.contains(*a)).map(|a| format!("AS{a}")),
            FeedList::Country(set) => country
                .filter(|c| set.contains(c))
                .map(|c| c.to_ascii_uppercase()),
        };
        if let Some(matched) = matched {
            hits.push(IntelHit {
                feed: index,
                action: feed.action,
                matched,
            });
        }
    }
    hits.sort_by_key(|h| h.action != FeedAction::Deny);
    hits
}
