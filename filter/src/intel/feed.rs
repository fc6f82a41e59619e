//! Feed bodies, text or JSON, into entries and entries into a [`FeedList`].

use serde_json::Value;

use super::ipset::{self, IpSet, Network};
use super::sets::{self, AsnSet, CountrySet, parse_asn};
use super::{FeedError, FeedFormat, FeedKind, FeedList};

/// Parses a feed `body` of `kind` written as `format`, with at most `max_entries` entries as
/// written (duplicates counted, before merging).
///
/// **Text**: one entry per line, the first whitespace-delimited token after cutting `#` and
/// `;` comments (`1.10.16.0/20 ; SBL256894` is `1.10.16.0/20`); blank and comment-only lines
/// are skipped; CRLF and a leading UTF-8 BOM are tolerated.
///
/// **JSON**: an array of entries, or an object with an `"entries"` array (other members
/// ignored). An entry is a string (surrounding whitespace ignored), for ASNs also a number, or
/// an object with exactly one of `"cidr"`/`"ip"`/`"network"` (IP), `"asn"` (ASN) or
/// `"country"` (country) holding such a value; its other members (`"comment"`...) are ignored.
///
/// Entries: IP feeds take an address (a /32 or /128) or a CIDR; host bits are cleared
/// (`10.1.2.3/8` is `10.0.0.0/8`, as feeds often write it). ASN feeds take `AS64500`,
/// `as64500` or `64500` (1 to 4294967295). Country feeds take two ASCII letters, any case.
///
/// Strict: the first bad entry refuses the feed. A feed with no entries is valid and empty.
pub fn parse_feed(
    kind: FeedKind,
    format: FeedFormat,
    body: &[u8],
    max_entries: usize,
) -> Result<FeedList, FeedError> {
    let text = std::str::from_utf8(body).map_err(|_| FeedError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut builder = Builder::new(kind);
    let mut count = 0usize;
    let mut add = |line: usize, entry: Entry<'_>| {
        if count >= max_entries {
            return Err(FeedError::TooManyEntries { max: max_entries });
        }
        count = count.saturating_add(1);
        builder
            .add(entry)
            .map_err(|(shown, why)| FeedError::bad_entry(format, line, &shown, why))
    };
    match format {
        FeedFormat::Text => {
            for (i, line) in text.split('\n').enumerate() {
                if let Some(token) = text_entry(line) {
                    add(i.saturating_add(1), Entry::Text(token))?;
                }
            }
        }
        FeedFormat::Json => {
            let doc: Value = serde_json::from_str(text).map_err(|_| FeedError::NotJson)?;
            let entries = match &doc {
                Value::Array(entries) => entries,
                Value::Object(object) => match object.get("entries") {
                    Some(Value::Array(entries)) => entries,
                    _ => return Err(FeedError::NotJson),
                },
                _ => return Err(FeedError::NotJson),
            };
            for (i, value) in entries.iter().enumerate() {
                add(i.saturating_add(1), json_entry(kind, value))?;
            }
        }
    }
    Ok(builder.finish())
}

/// A text line's entry: the first whitespace-delimited token before any `#` or `;`.
fn text_entry(line: &str) -> Option<&str> {
    let content = line.split(['#', ';']).next().unwrap_or_default();
    content.split_whitespace().next()
}

/// One entry, before its kind's parser.
enum Entry<'a> {
    Text(&'a str),
    /// A JSON number (ASN feeds).
    Number(&'a serde_json::Number),
    /// Not an entry at all: shown as its JSON, with why.
    Refused(&'a Value, &'static str),
}

/// The keys an object entry may hold its value under.
fn object_keys(kind: FeedKind) -> &'static [&'static str] {
    match kind {
        FeedKind::Ip => &["cidr", "ip", "network"],
        FeedKind::Asn => &["asn"],
        FeedKind::Country => &["country"],
    }
}

fn json_entry(kind: FeedKind, value: &Value) -> Entry<'_> {
    let value = match value {
        Value::Object(object) => {
            let mut found = object_keys(kind).iter().filter_map(|k| object.get(*k));
            match (found.next(), found.next()) {
                (Some(inner), None) => inner,
                (None, _) => {
                    return Entry::Refused(
                        value,
                        match kind {
                            FeedKind::Ip => "has none of \"cidr\", \"ip\", \"network\"",
                            FeedKind::Asn => "has no \"asn\"",
                            FeedKind::Country => "has no \"country\"",
                        },
                    );
                }
                (Some(_), Some(_)) => {
                    return Entry::Refused(
                        value,
                        "has more than one of \"cidr\", \"ip\", \"network\"",
                    );
                }
            }
        }
        other => other,
    };
    match value {
        Value::String(s) => Entry::Text(s.trim()),
        Value::Number(n) => Entry::Number(n),
        other => Entry::Refused(other, not_a(kind)),
    }
}

fn not_a(kind: FeedKind) -> &'static str {
    match kind {
        FeedKind::Ip => ipset::NOT_AN_IP,
        FeedKind::Asn => sets::NOT_AN_ASN,
        FeedKind::Country => sets::NOT_A_COUNTRY,
    }
}

/// The list being built; memory grows with the entries accepted, which `max_entries` bounds.
enum Builder {
    Ip(Vec<Network>),
    Asn(Vec<u32>),
    Country(CountrySet),
}

impl Builder {
    fn new(kind: FeedKind) -> Self {
        match kind {
            FeedKind::Ip => Builder::Ip(Vec::new()),
            FeedKind::Asn => Builder::Asn(Vec::new()),
            FeedKind::Country => Builder::Country(CountrySet::default()),
        }
    }

    fn kind(&self) -> FeedKind {
        match self {
            Builder::Ip(_) => FeedKind::Ip,
            Builder::Asn(_) => FeedKind::Asn,
            Builder::Country(_) => FeedKind::Country,
        }
    }

    /// Adds `entry`, or says how to show it and what is wrong with it.
    fn add(&mut self, entry: Entry<'_>) -> Result<(), (String, &'static str)> {
        let kind = self.kind();
        let text = match entry {
            Entry::Text(text) => text,
            Entry::Number(n) => {
                let shown = n.to_string();
                return match self {
                    Builder::Asn(asns) => {
                        let asn = n
                            .as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .filter(|&n| n != 0)
                            .ok_or((shown, sets::NOT_AN_ASN))?;
                        asns.push(asn);
                        Ok(())
                    }
                    _ => Err((shown, not_a(kind))),
                };
            }
            Entry::Refused(value, why) => return Err((value.to_string(), why)),
        };
        let bad = |why| (text.to_owned(), why);
        match self {
            Builder::Ip(networks) => networks.push(text.parse().map_err(bad)?),
            Builder::Asn(asns) => asns.push(parse_asn(text).ok_or_else(|| bad(sets::NOT_AN_ASN))?),
            Builder::Country(codes) => {
                if !codes.insert(text) {
                    return Err(bad(sets::NOT_A_COUNTRY));
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> FeedList {
        match self {
            Builder::Ip(networks) => FeedList::Ip(IpSet::from_networks(networks)),
            Builder::Asn(asns) => FeedList::Asn(AsnSet::from_asns(asns)),
            Builder::Country(codes) => FeedList::Country(codes),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn ips(format: FeedFormat, body: &str) -> IpSet {
        match parse_feed(FeedKind::Ip, format, body.as_bytes(), 1000) {
            Ok(FeedList::Ip(set)) => set,
            other => panic!("{other:?}"),
        }
    }

    fn bad(kind: FeedKind, format: FeedFormat, body: &str) -> (usize, String, &'static str) {
        match parse_feed(kind, format, body.as_bytes(), 1000) {
            Err(FeedError::BadEntry {
                line, entry, why, ..
            }) => (line, entry, why),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn spamhaus_drop() {
        let body = "; Spamhaus DROP List 2026/05/01 - (c) 2026 The Spamhaus Project SLU\r\n\
                    ; https://www.spamhaus.org/drop/drop.txt\r\n\
                    ; Last-Modified: Thu, 30 Apr 2026 15:46:05 GMT\r\n\
                    1.10.16.0/20 ; SBL256894\r\n\
                    1.19.0.0/16 ; SBL434604\r\n\
                    2.57.122.0/24 ; SBL636050\r\n";
        let set = ips(FeedFormat::Text, body);
        assert_eq!(set.len(), 3);
        assert!(set.contains(ip("1.10.31.255")));
        assert!(!set.contains(ip("1.10.32.0")));
        assert!(set.contains(ip("2.57.122.7")));
    }

    #[test]
    fn firehol_and_comment_styles() {
        let body = "\u{feff}#\n\
                    # firehol_level1\n\
                    #\n\
                    \n\
                    0.0.0.0/8\n\
                    \t 5.134.128.0/19   # trailing comment\n\
                    198.51.100.7;no space before the comment\n\
                    203.0.113.0/24 extra tokens ignored\n\
                    2001:db8::/32#v6\n\
                    ;;;\n\
                    \r\n\
                    \t\n";
        let set = ips(FeedFormat::Text, body);
        assert_eq!(set.len(), 5);
        for yes in [
            "0.1.2.3",
            "5.134.159.255",
            "198.51.100.7",
            "203.0.113.9",
            "2001:db8::1",
        ] {
            assert!(set.contains(ip(yes)), "{yes}");
        }
        assert!(!set.contains(ip("198.51.100.8")));
    }

    #[test]
    fn empty_feeds_are_valid() {
        for (format, body) in [
            (FeedFormat::Text, ""),
            (FeedFormat::Text, "# nothing today\n; nor here\n\n"),
            (FeedFormat::Text, "\u{feff}"),
            (FeedFormat::Json, "[]"),
            (FeedFormat::Json, r#"{"entries": [], "generated": "today"}"#),
            (FeedFormat::Json, "\u{feff}[]"),
        ] {
            for kind in FeedKind::ALL {
                let list = parse_feed(kind, format, body.as_bytes(), 0).unwrap();
                assert!(list.is_empty(), "{body:?}");
                assert_eq!(list.kind(), kind);
            }
        }
    }

    #[test]
    fn bad_entries_name_their_line() {
        let body = "# header\n10.0.0.0/8\n999.1.1.1/8 ; SBL1\n10.0.0.0/33\n";
        assert_eq!(
            bad(FeedKind::Ip, FeedFormat::Text, body),
            (3, "999.1.1.1/8".into(), ipset::NOT_AN_IP)
        );
        assert_eq!(
            parse_feed(FeedKind::Ip, FeedFormat::Text, body.as_bytes(), 10)
                .unwrap_err()
                .to_string(),
            r#"line 3: "999.1.1.1/8" is not an IP or CIDR"#
        );
        assert_eq!(
            bad(FeedKind::Ip, FeedFormat::Text, "\r\n10.0.0.0/33\r\n"),
            (2, "10.0.0.0/33".into(), ipset::PREFIX_TOO_LONG)
        );
        assert_eq!(
            bad(FeedKind::Ip, FeedFormat::Text, "10.0.0.0/8\nAS64500\n"),
            (2, "AS64500".into(), ipset::NOT_AN_IP)
        );
        assert_eq!(
            bad(FeedKind::Asn, FeedFormat::Text, "AS1\nAS0\n"),
            (2, "AS0".into(), sets::NOT_AN_ASN)
        );
        assert_eq!(
            bad(FeedKind::Country, FeedFormat::Text, "GB\nUS\nGBR\n"),
            (3, "GBR".into(), sets::NOT_A_COUNTRY)
        );
        let long = format!("{}/8", "1".repeat(200));
        let (_, entry, _) = bad(FeedKind::Ip, FeedFormat::Text, &long);
        assert_eq!(entry.len(), 64);
    }

    #[test]
    fn bad_json_entries_name_their_index() {
        let j = FeedFormat::Json;
        assert_eq!(
            bad(FeedKind::Ip, j, r#"["10.0.0.0/8", "10.0.0.0/8", "nope"]"#),
            (3, "nope".into(), ipset::NOT_AN_IP)
        );
        assert_eq!(
            bad(
                FeedKind::Ip,
                j,
                r#"{"entries": [{"cidr": "1.2.3.4"}, {"comment": "x"}]}"#
            ),
            (
                2,
                r#"{"comment":"x"}"#.into(),
                "has none of \"cidr\", \"ip\", \"network\""
            )
        );
        assert_eq!(
            bad(FeedKind::Ip, j, r#"[{"cidr": "1.2.3.4", "ip": "1.2.3.4"}]"#).0,
            1
        );
        assert_eq!(
            bad(FeedKind::Ip, j, r#"[16909060]"#),
            (1, "16909060".into(), ipset::NOT_AN_IP)
        );
        assert_eq!(
            bad(FeedKind::Ip, j, r#"[null]"#),
            (1, "null".into(), ipset::NOT_AN_IP)
        );
        assert_eq!(
            bad(FeedKind::Ip, j, r#"[{"cidr": {"cidr": "1.2.3.4"}}]"#).2,
            ipset::NOT_AN_IP
        );
        for asn in ["0", "-1", "4294967296", "64500.0", r#""AS""#, "true"] {
            assert_eq!(
                bad(FeedKind::Asn, j, &format!("[1, {asn}]")),
                (2, asn.trim_matches('"').into(), sets::NOT_AN_ASN),
                "{asn}"
            );
        }
        assert_eq!(
            bad(FeedKind::Asn, j, r#"[{"asn": 1}, {"country": "GB"}]"#),
            (2, r#"{"country":"GB"}"#.into(), "has no \"asn\"")
        );
        assert_eq!(
            bad(FeedKind::Country, j, r#"["GB", 44]"#),
            (2, "44".into(), sets::NOT_A_COUNTRY)
        );
    }

    #[test]
    fn json_both_shapes() {
        let array = r#"["203.0.113.0/24", "198.51.100.7", {"cidr": "2001:db8::/32", "comment": "x"},
                        {"ip": "192.0.2.1"}, {"network": "10.0.0.0/8", "source": "feed"}, " 172.16.0.0/12 "]"#;
        let object = format!(r#"{{"version": 2, "entries": {array}, "generated": "2026-05-01"}}"#);
        for body in [array, object.as_str()] {
            let set = ips(FeedFormat::Json, body);
            assert_eq!(set.len(), 6);
            for yes in [
                "203.0.113.1",
                "198.51.100.7",
                "2001:db8::9",
                "192.0.2.1",
                "10.9.9.9",
                "172.31.0.1",
            ] {
                assert!(set.contains(ip(yes)), "{yes}");
            }
        }
        let asns = r#"{"entries": [64500, "AS64501", "as64502", "64503", {"asn": 64504}, {"asn": "AS64505", "name": "x"}]}"#;
        let Ok(FeedList::Asn(asns)) =
            parse_feed(FeedKind::Asn, FeedFormat::Json, asns.as_bytes(), 6)
        else {
            panic!("asns")
        };
        assert_eq!(asns.len(), 6);
        assert!((64500..=64505).all(|n| asns.contains(n)));
        let countries = r#"["GB", "us", {"country": "Kp"}]"#;
        let Ok(FeedList::Country(countries)) =
            parse_feed(FeedKind::Country, FeedFormat::Json, countries.as_bytes(), 3)
        else {
            panic!("countries")
        };
        assert!(countries.contains("gb") && countries.contains("US") && countries.contains("kp"));
    }

    #[test]
    fn not_json() {
        for body in [
            "",
            "10.0.0.0/8",
            "[\"10.0.0.0/8\"",
            "{}",
            r#"{"entries": "10.0.0.0/8"}"#,
            r#"{"Entries": []}"#,
            "\"10.0.0.0/8\"",
            "42",
            "null",
            "[] []",
        ] {
            assert_eq!(
                parse_feed(FeedKind::Ip, FeedFormat::Json, body.as_bytes(), 10).unwrap_err(),
                FeedError::NotJson,
                "{body:?}"
            );
        }
    }

    #[test]
    fn not_utf8() {
        for format in FeedFormat::ALL {
            assert_eq!(
                parse_feed(FeedKind::Ip, format, b"10.0.0.0/8\n\xff\n", 10).unwrap_err(),
                FeedError::NotUtf8
            );
        }
    }

    #[test]
    fn max_entries_counts_entries_as_written() {
        let body = "10.0.0.0/8\n10.0.0.0/8\n# comment\n10.0.0.0/8\n";
        let list = parse_feed(FeedKind::Ip, FeedFormat::Text, body.as_bytes(), 3).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            parse_feed(FeedKind::Ip, FeedFormat::Text, body.as_bytes(), 2).unwrap_err(),
            FeedError::TooManyEntries { max: 2 }
        );
        assert_eq!(
            parse_feed(FeedKind::Asn, FeedFormat::Json, b"[1, 2, 3]", 2).unwrap_err(),
            FeedError::TooManyEntries { max: 2 }
        );
        assert_eq!(
            parse_feed(FeedKind::Country, FeedFormat::Text, b"GB", 0).unwrap_err(),
            FeedError::TooManyEntries { max: 0 }
        );
        assert!(parse_feed(FeedKind::Country, FeedFormat::Text, b"GB", 1).is_ok());
    }

    #[test]
    fn asn_text_forms() {
        let body = "AS64500 ; name\nas64501\n64502 # x\n";
        let Ok(FeedList::Asn(set)) =
            parse_feed(FeedKind::Asn, FeedFormat::Text, body.as_bytes(), 3)
        else {
            panic!("asns")
        };
        assert_eq!(set.len(), 3);
        assert!(set.contains(64500) && set.contains(64501) && set.contains(64502));
        assert!(!set.contains(64503));
    }

    #[test]
    fn countries_text() {
        let body = "gb\nUS ; United States\n# none\nkp\nGB\n";
        let Ok(FeedList::Country(set)) =
            parse_feed(FeedKind::Country, FeedFormat::Text, body.as_bytes(), 10)
        else {
            panic!("countries")
        };
        assert_eq!(set.len(), 3);
        assert!(set.contains("GB") && set.contains("us") && set.contains("KP"));
        assert!(!set.contains("FR"));
    }

    #[test]
    fn a_large_feed_parses_quickly() {
        // 100k distinct /24s and hosts: in the time budget even unoptimised.
        let mut body = String::new();
        for i in 0..100_000u32 {
            let a = 0x0a00_0000u32 + i * 256;
            let [w, x, y, z] = a.to_be_bytes();
            if i % 2 == 0 {
                body.push_str(&format!("{w}.{x}.{y}.{z}/24 ; SBL{i}\n"));
            } else {
                body.push_str(&format!("{w}.{x}.{y}.{}\n", z + 7));
            }
        }
        let start = std::time::Instant::now();
        let set = ips_max(&body, 100_000);
        let elapsed = start.elapsed();
        assert_eq!(set.len(), 100_000);
        assert!(set.contains(ip("10.0.0.200")));
        assert!(!set.contains(ip("10.0.1.8")));
        assert!(set.contains(ip("10.0.1.7")));
        assert!(elapsed.as_secs() < 5, "{elapsed:?}");
    }

    /// Parse and lookup times for 100k random networks, text and JSON: `cargo test --release
    /// -p obguard --lib intel::feed::tests::timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing() {
        use std::hint::black_box;
        use std::time::Instant;
        let mut state = 0x1234_5678_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut text = String::new();
        let mut json = String::from("[");
        for i in 0..100_000 {
            let addr = std::net::Ipv4Addr::from(next() as u32);
            let prefix = 16 + next() % 17;
            text.push_str(&format!("{addr}/{prefix} ; SBL{i}\n"));
            json.push_str(&format!(
                "{}\"{addr}/{prefix}\"",
                if i == 0 { "" } else { "," }
            ));
        }
        json.push(']');
        for (format, body) in [(FeedFormat::Text, &text), (FeedFormat::Json, &json)] {
            let runs = 5;
            let start = Instant::now();
            let mut set = IpSet::default();
            for _ in 0..runs {
                match parse_feed(FeedKind::Ip, format, body.as_bytes(), 100_000) {
                    Ok(FeedList::Ip(s)) => set = s,
                    other => panic!("{other:?}"),
                }
            }
            let parse = start.elapsed() / runs;
            let probes: Vec<IpAddr> = (0..1_000_000)
                .map(|_| IpAddr::V4(std::net::Ipv4Addr::from(next() as u32)))
                .collect();
            let start = Instant::now();
            let hits = probes
                .iter()
                .filter(|&&a| black_box(&set).contains(a))
                .count();
            let lookup = start.elapsed() / 1_000_000;
            eprintln!(
                "{format:?}: {} bytes, {} networks, {} ranges: parse {parse:?}; lookup {lookup:?} ({hits} hits of 1M)",
                body.len(),
                set.len(),
                set.range_count()
            );
        }
    }

    fn ips_max(body: &str, max: usize) -> IpSet {
        match parse_feed(FeedKind::Ip, FeedFormat::Text, body.as_bytes(), max) {
            Ok(FeedList::Ip(set)) => set,
            other => panic!("{other:?}"),
        }
    }
}
