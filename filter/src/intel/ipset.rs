//! IP networks and the set a feed of them compiles to.
//!
//! A feed can list a hundred thousand networks and every request asks about one address, so
//! the set is built once into sorted, merged, non-overlapping inclusive ranges per family and a
//! lookup is a binary search over them: O(log n), no allocation. Next to the ranges the set
//! keeps the outermost listed networks (disjoint, sorted), so a hit can name the network it
//! came from in the log without storing a string per entry.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 network: its first address and prefix length. Opaque, so that host bits
/// are always clear and an IPv4-mapped network is always IPv4, which [`IpSet`] relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Network(Repr);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Repr {
    V4 { start: u32, prefix: u8 },
    V6 { start: u128, prefix: u8 },
}

impl Network {
    /// The network of `prefix` bits containing `addr`: host bits are cleared (`10.1.2.3/8` is
    /// `10.0.0.0/8`), as feeds often write the address they saw with its block's length.
    /// An IPv6 network inside `::ffff:0:0/96` (IPv4-mapped) of at least 96 bits becomes the IPv4
    /// network it maps, because lookups treat a mapped address as the IPv4 address it carries.
    /// `None` when `prefix` exceeds 32 (IPv4) or 128 (IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        match addr {
            IpAddr::V4(v4) => (prefix <= 32).then(|| {
                Network(Repr::V4 {
                    start: u32::from(v4).network(prefix),
                    prefix,
                })
            }),
            IpAddr::V6(v6) => {
                if prefix > 128 {
                    return None;
                }
                let start = u128::from(v6).network(prefix);
                match Ipv6Addr::from(start).to_ipv4_mapped() {
                    Some(v4) if prefix >= 96 => Some(Network(Repr::V4 {
                        start: u32::from(v4),
                        prefix: prefix - 96,
                    })),
                    _ => Some(Network(Repr::V6 { start, prefix })),
                }
            }
        }
    }

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        match self.0 {
            Repr::V4 { start, .. } => IpAddr::V4(Ipv4Addr::from(start)),
            Repr::V6 { start, .. } => IpAddr::V6(Ipv6Addr::from(start)),
        }
    }

    /// The network's last address.
    pub fn last(&self) -> IpAddr {
        match self.0 {
            Repr::V4 { start, prefix } => IpAddr::V4(Ipv4Addr::from(start.last(prefix))),
            Repr::V6 { start, prefix } => IpAddr::V6(Ipv6Addr::from(start.last(prefix))),
        }
    }

    pub fn prefix_len(&self) -> u8 {
        match self.0 {
            Repr::V4 { prefix, .. } | Repr::V6 { prefix, .. } => prefix,
        }
    }

    /// Whether `ip` is in the network, by masking: the plain definition, which the tests and
    /// the fuzz target hold [`IpSet::contains`] to. An IPv4-mapped IPv6 address is its IPv4
    /// address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.0, ip.to_canonical()) {
            (Repr::V4 { start, prefix }, IpAddr::V4(v4)) => u32::from(v4).network(prefix) == start,
            (Repr::V6 { start, prefix }, IpAddr::V6(v6)) => u128::from(v6).network(prefix) == start,
            _ => false,
        }
    }
}

/// Why an IP entry is refused, for [`super::FeedError::BadEntry`].
pub(super) const NOT_AN_IP: &str = "is not an IP or CIDR";
pub(super) const PREFIX_TOO_LONG: &str = "has a prefix length beyond 32 (IPv4) or 128 (IPv6)";

impl FromStr for Network {
    type Err = &'static str;

    /// `198.51.100.7` (a /32), `2001:db8::1` (a /128), `203.0.113.0/24`, `2001:db8::/32`. The
    /// prefix length is decimal digits only (no sign, no spaces, at most three). Zone indices
    /// (`fe80::1%eth0`) and ranges (`a-b`) are not networks.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| NOT_AN_IP)?;
        let prefix = match prefix {
            None => match addr {
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => 128,
            },
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| PREFIX_TOO_LONG)?
            }
            Some(_) => return Err(NOT_AN_IP),
        };
        Network::new(addr, prefix).ok_or(PREFIX_TOO_LONG)
    }
}

impl fmt::Display for Network {
    /// Canonical CIDR, always with the prefix: `203.0.113.0/24`, `198.51.100.7/32`,
    /// `2001:db8::/32`. It parses back to the same network.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.prefix_len())
    }
}

/// An address as an unsigned integer, for the range arithmetic shared by both families.
trait Word: Copy + Ord {
    /// The network address of `self` at `prefix` bits (`prefix` at most the width).
    fn network(self, prefix: u8) -> Self;
    /// The last address of the network starting at `self` with `prefix` bits.
    fn last(self, prefix: u8) -> Self;
    fn checked_succ(self) -> Option<Self>;
}

macro_rules! word {
    ($t:ty) => {
        impl Word for $t {
            fn network(self, prefix: u8) -> Self {
                // A shift by the full width is `None`: the mask of /0 is empty.
                let host_bits = <$t>::BITS.saturating_sub(u32::from(prefix));
                self & <$t>::MAX.checked_shl(host_bits).unwrap_or(0)
            }

            fn last(self, prefix: u8) -> Self {
                let host_bits = <$t>::BITS.saturating_sub(u32::from(prefix));
                self | !<$t>::MAX.checked_shl(host_bits).unwrap_or(0)
            }

            fn checked_succ(self) -> Option<Self> {
                self.checked_add(1)
            }
        }
    };
}

word!(u32);
word!(u128);

/// One family's networks, compiled.
#[derive(Debug, Clone, Default)]
struct Family<T> {
    /// Sorted, merged (overlapping and adjacent networks joined), inclusive `(first, last)`.
    ranges: Vec<(T, T)>,
    /// The listed networks not inside another listed one, as `(start, prefix)`: sorted and
    /// disjoint (two CIDR blocks are either nested or disjoint), for [`IpSet::matching`].
    outermost: Vec<(T, u8)>,
}

impl<T: Word> Family<T> {
    /// From `(start, prefix)` pairs with host bits clear, sorted and without duplicates.
    fn build(networks: &[(T, u8)]) -> Self {
        let mut outermost: Vec<(T, u8)> = Vec::new();
        let mut last_end: Option<T> = None;
        // Sorted by start, then shorter prefix first: a network starting inside the previous
        // outermost one is nested in it (CIDR blocks never partly overlap).
        for &(start, prefix) in networks {
            if last_end.is_some_and(|end| start <= end) {
                continue;
            }
            outermost.push((start, prefix));
            last_end = Some(start.last(prefix));
        }
        let mut ranges: Vec<(T, T)> = Vec::with_capacity(outermost.len());
        for &(start, prefix) in &outermost {
            let end = start.last(prefix);
            match ranges.last_mut() {
                Some((_, prev_end)) if prev_end.checked_succ() == Some(start) => *prev_end = end,
                _ => ranges.push((start, end)),
            }
        }
        ranges.shrink_to_fit();
        Family { ranges, outermost }
    }

    fn contains(&self, x: T) -> bool {
        let after = self.ranges.partition_point(|&(first, _)| first <= x);
        after
            .checked_sub(1)
            .and_then(|i| self.ranges.get(i))
            .is_some_and(|&(_, last)| x <= last)
    }

    fn matching(&self, x: T) -> Option<(T, u8)> {
        let after = self.outermost.partition_point(|&(start, _)| start <= x);
        after
            .checked_sub(1)
            .and_then(|i| self.outermost.get(i))
            .copied()
            .filter(|&(start, prefix)| x <= start.last(prefix))
    }
}

/// IPv4 and IPv6 networks as sorted, merged, non-overlapping inclusive ranges: a lookup is a
/// binary search (O(log n)), never a scan, and allocates nothing.
///
/// Memory: per distinct listed network at most one range and one outermost network, so at
/// most 16 bytes for an IPv4 entry and 64 for an IPv6 one (nested and adjacent networks need
/// less).
#[derive(Debug, Clone, Default)]
pub struct IpSet {
    v4: Family<u32>,
    v6: Family<u128>,
    /// Distinct networks listed (after clearing host bits).
    listed: usize,
}

impl IpSet {
    /// The set of `networks`, in any order, duplicates and overlaps allowed.
    pub fn from_networks(networks: impl IntoIterator<Item = Network>) -> Self {
        let mut v4: Vec<(u32, u8)> = Vec::new();
        let mut v6: Vec<(u128, u8)> = Vec::new();
        for network in networks {
            match network {
                Network(Repr::V4 { start, prefix }) => v4.push((start, prefix)),
                Network(Repr::V6 { start, prefix }) => v6.push((start, prefix)),
            }
        }
        v4.sort_unstable();
        v4.dedup();
        v6.sort_unstable();
        v6.dedup();
        IpSet {
            v4: Family::build(&v4),
            v6: Family::build(&v6),
            listed: v4.len().saturating_add(v6.len()),
        }
    }

    /// Whether `ip` is in a listed network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is
    /// its IPv4 address: a dual-stack listener reports IPv4 callers that way. Other IPv6
    /// addresses, including IPv4-compatible `::a.b.c.d`, are only IPv6.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(v4) => self.v4.contains(u32::from(v4)),
            IpAddr::V6(v6) => self.v6.contains(u128::from(v6)),
        }
    }

    /// The listed network containing `ip`, for the log and the event: the outermost one when
    /// listed networks nest (`10.0.0.0/8` over `10.1.0.0/16`), in canonical form (host bits
    /// cleared: `10.1.2.3/8` is reported as `10.0.0.0/8`). Allocation-free; `to_string()` it
    /// for text. `Some` exactly when [`IpSet::contains`] is true.
    pub fn matching(&self, ip: IpAddr) -> Option<Network> {
        match ip.to_canonical() {
            IpAddr::V4(v4) => self
                .v4
                .matching(u32::from(v4))
                .map(|(start, prefix)| Network(Repr::V4 { start, prefix })),
            IpAddr::V6(v6) => self
                .v6
                .matching(u128::from(v6))
                .map(|(start, prefix)| Network(Repr::V6 { start, prefix })),
        }
    }

    /// Distinct networks listed (duplicates once; a network inside another still counts).
    pub fn len(&self) -> usize {
        self.listed
    }

    pub fn is_empty(&self) -> bool {
        self.listed == 0
    }

    /// Merged ranges over both families: what a lookup searches.
    pub fn range_count(&self) -> usize {
        self.v4.ranges.len().saturating_add(self.v6.ranges.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Network {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn set(networks: &[&str]) -> IpSet {
        IpSet::from_networks(networks.iter().map(|n| net(n)))
    }

    #[test]
    fn parses_addresses_and_cidrs() {
        assert_eq!(
            net("198.51.100.7"),
            Network(Repr::V4 {
                start: 0xc633_6407,
                prefix: 32
            })
        );
        assert_eq!(net("2001:db8::1").prefix_len(), 128);
        assert_eq!(net("203.0.113.0/24").to_string(), "203.0.113.0/24");
        assert_eq!(net("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(net("::/0").to_string(), "::/0");
    }

    #[test]
    fn host_bits_are_cleared() {
        assert_eq!(net("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(net("2001:db8:ffff::1/32").to_string(), "2001:db8::/32");
        assert_eq!(net("10.1.2.3/8"), net("10.0.0.0/8"));
    }

    #[test]
    fn mapped_ipv6_networks_are_ipv4() {
        assert_eq!(net("::ffff:192.0.2.0/120").to_string(), "192.0.2.0/24");
        assert_eq!(net("::ffff:192.0.2.1").to_string(), "192.0.2.1/32");
        assert_eq!(net("::ffff:0:0/96").to_string(), "0.0.0.0/0");
        // Wider than the mapped block: stays IPv6 and does not match IPv4 callers.
        assert_eq!(net("::/80").to_string(), "::/80");
        let s = set(&["::ffff:192.0.2.0/120"]);
        assert!(s.contains(ip("192.0.2.9")));
        assert!(s.contains(ip("::ffff:192.0.2.9")));
    }

    #[test]
    fn refuses_what_is_not_a_network() {
        for bad in [
            "",
            "999.1.1.1",
            "999.1.1.1/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "10.0.0.0/8/8",
            "10.0.0.0/0008",
            "10.0.0",
            "01.2.3.4",
            "fe80::1%eth0",
            "10.0.0.1-10.0.0.9",
            "[::1]",
            "example.com",
            "/8",
        ] {
            assert_eq!(bad.parse::<Network>(), Err(NOT_AN_IP), "{bad:?}");
        }
        for long in ["10.0.0.0/33", "::/129", "10.0.0.0/255", "10.0.0.0/999"] {
            assert_eq!(long.parse::<Network>(), Err(PREFIX_TOO_LONG), "{long:?}");
        }
        assert!("10.0.0.0/32".parse::<Network>().is_ok());
        assert!("::/128".parse::<Network>().is_ok());
        assert!("10.0.0.0/008".parse::<Network>().is_ok());
    }

    #[test]
    fn overlapping_and_adjacent_networks_merge() {
        let s = set(&[
            "10.0.0.0/24",
            "10.0.1.0/24",   // adjacent
            "10.0.0.128/25", // nested
            "10.0.0.0/24",   // duplicate
            "10.0.3.0/24",   // gap at 10.0.2.0/24
            "2001:db8::/33",
            "2001:db8:8000::/33", // adjacent: together 2001:db8::/32
        ]);
        assert_eq!(s.len(), 6);
        assert_eq!(s.range_count(), 3);
        assert!(s.contains(ip("10.0.1.255")));
        assert!(!s.contains(ip("10.0.2.0")));
        assert!(s.contains(ip("10.0.3.0")));
        assert!(s.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!s.contains(ip("2001:db9::")));
    }

    #[test]
    fn range_boundaries() {
        let s = set(&["203.0.113.0/24", "2001:db8::/64"]);
        assert!(!s.contains(ip("203.0.112.255")));
        assert!(s.contains(ip("203.0.113.0")));
        assert!(s.contains(ip("203.0.113.255")));
        assert!(!s.contains(ip("203.0.114.0")));
        assert!(!s.contains(ip("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(s.contains(ip("2001:db8::")));
        assert!(s.contains(ip("2001:db8::ffff:ffff:ffff:ffff")));
        assert!(!s.contains(ip("2001:db8:0:1::")));
        // The ends of the address space.
        let ends = set(&["0.0.0.0/32", "255.255.255.255/32", "::/128", "ffff::/16"]);
        assert!(ends.contains(ip("0.0.0.0")));
        assert!(!ends.contains(ip("0.0.0.1")));
        assert!(ends.contains(ip("255.255.255.255")));
        assert!(!ends.contains(ip("255.255.255.254")));
        assert!(ends.contains(ip("::")));
        assert!(ends.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!ends.contains(ip("fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_ranges() {
        let s = set(&["192.0.2.0/24"]);
        assert!(s.contains(ip("::ffff:192.0.2.1")));
        assert!(s.contains(ip("::ffff:c000:0201")));
        assert!(!s.contains(ip("::ffff:192.0.3.1")));
        // IPv4-compatible (deprecated) and NAT64 addresses are not IPv4.
        assert!(!s.contains(ip("::192.0.2.1")));
        assert!(!s.contains(ip("64:ff9b::192.0.2.1")));
        assert_eq!(
            s.matching(ip("::ffff:192.0.2.1")).map(|n| n.to_string()),
            Some("192.0.2.0/24".into())
        );
    }

    #[test]
    fn zero_prefix_covers_its_family_only() {
        let v4 = set(&["0.0.0.0/0"]);
        assert!(v4.contains(ip("0.0.0.0")));
        assert!(v4.contains(ip("255.255.255.255")));
        assert!(v4.contains(ip("::ffff:1.2.3.4")));
        assert!(!v4.contains(ip("::")));
        assert!(!v4.contains(ip("2001:db8::1")));
        let v6 = set(&["::/0"]);
        assert!(v6.contains(ip("::")));
        assert!(v6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!v6.contains(ip("1.2.3.4")));
        assert!(!v6.contains(ip("::ffff:1.2.3.4")));
        assert_eq!(v4.range_count(), 1);
        assert_eq!(v6.range_count(), 1);
    }

    #[test]
    fn matching_names_the_outermost_listed_network() {
        let s = set(&[
            "10.1.0.0/16",
            "10.0.0.0/8",
            "10.2.3.4/32",
            "11.0.0.0/8",
            "198.51.100.7",
            "2001:db8::/32",
        ]);
        let m = |a: &str| s.matching(ip(a)).map(|n| n.to_string());
        assert_eq!(m("10.1.2.3").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(m("10.2.3.4").as_deref(), Some("10.0.0.0/8"));
        // 10/8 and 11/8 are one merged range but stay two networks.
        assert_eq!(m("11.255.0.1").as_deref(), Some("11.0.0.0/8"));
        assert_eq!(m("198.51.100.7").as_deref(), Some("198.51.100.7/32"));
        assert_eq!(m("198.51.100.8"), None);
        assert_eq!(m("2001:db8::5").as_deref(), Some("2001:db8::/32"));
        assert_eq!(m("12.0.0.0"), None);
        assert_eq!(s.range_count(), 3);
        assert_eq!(s.len(), 6);
    }

    #[test]
    fn empty_set_matches_nothing() {
        let s = IpSet::default();
        assert!(s.is_empty());
        assert!(!s.contains(ip("1.2.3.4")));
        assert!(!s.contains(ip("::")));
        assert_eq!(s.matching(ip("1.2.3.4")), None);
    }

    /// SplitMix64, so the property test is the same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Networks clustered in a small part of the space (so they overlap, nest and touch):
    /// mostly narrow, rarely one wide enough to swallow the cluster.
    fn random_network(rng: &mut Rng) -> Network {
        let wide = rng.below(400) == 0;
        if rng.below(4) == 0 {
            let addr = (u128::from(0x2001_0db8_u32) << 96)
                | (u128::from(rng.next() & 0xffff) << 64)
                | u128::from(rng.next());
            let prefix = if wide {
                [0, 16, 32][rng.below(3) as usize]
            } else {
                [52, 56, 60, 63, 64, 96, 120, 127, 128][rng.below(9) as usize]
            };
            Network::new(IpAddr::V6(Ipv6Addr::from(addr)), prefix).unwrap()
        } else {
            let addr = 0x0a00_0000 | (rng.next() as u32 & 0x000f_ffff);
            let prefix = if wide {
                [0, 8, 12][rng.below(3) as usize]
            } else {
                [16, 20, 22, 24, 25, 26, 28, 30, 31, 32][rng.below(10) as usize]
            };
            Network::new(IpAddr::V4(Ipv4Addr::from(addr)), prefix).unwrap()
        }
    }

    fn probes(rng: &mut Rng, networks: &[Network]) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for n in networks {
            match *n {
                Network(Repr::V4 { start, prefix }) => {
                    let end = start.last(prefix);
                    for a in [start, end, start.wrapping_sub(1), end.wrapping_add(1)] {
                        out.push(IpAddr::V4(Ipv4Addr::from(a)));
                        out.push(IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped()));
                    }
                }
                Network(Repr::V6 { start, prefix }) => {
                    let end = start.last(prefix);
                    for a in [start, end, start.wrapping_sub(1), end.wrapping_add(1)] {
                        out.push(IpAddr::V6(Ipv6Addr::from(a)));
                    }
                }
            }
        }
        for _ in 0..2000 {
            let v4 = 0x0a00_0000 | (rng.next() as u32 & 0x001f_ffff);
            out.push(IpAddr::V4(Ipv4Addr::from(v4)));
            let v6 = (u128::from(0x2001_0db8_u32) << 96)
                | (u128::from(rng.next() & 0xffff) << 64)
                | u128::from(rng.next());
            out.push(IpAddr::V6(Ipv6Addr::from(v6)));
        }
        out
    }

    #[test]
    fn agrees_with_a_linear_scan() {
        let mut rng = Rng(7);
        let (mut hits, mut misses) = (0usize, 0usize);
        let mut merged = 0usize;
        for round in 0..20 {
            let count = [0, 1, 2, 5, 50, 500, 3000][round % 7];
            let networks: Vec<Network> = (0..count).map(|_| random_network(&mut rng)).collect();
            let s = IpSet::from_networks(networks.iter().copied());
            let mut distinct = networks.clone();
            distinct.sort();
            distinct.dedup();
            assert_eq!(s.len(), distinct.len());
            assert!(s.range_count() <= s.len());
            merged += s.len() - s.range_count();
            for addr in probes(&mut rng, &networks) {
                let naive = networks.iter().any(|n| n.contains(addr));
                if naive {
                    hits += 1;
                } else {
                    misses += 1;
                }
                assert_eq!(s.contains(addr), naive, "round {round}: {addr}");
                let matched = s.matching(addr);
                assert_eq!(matched.is_some(), naive, "round {round}: {addr}");
                if let Some(m) = matched {
                    assert!(m.contains(addr), "{m} does not contain {addr}");
                    assert!(networks.contains(&m), "{m} was not listed");
                    // Outermost: no listed network strictly contains it.
                    assert!(
                        !networks
                            .iter()
                            .any(|n| n.prefix_len() < m.prefix_len() && n.contains(m.addr())),
                        "{m} is nested in a listed network"
                    );
                }
            }
        }
        // The networks overlapped and touched, and the probes fell on both sides.
        assert!(merged > 1000, "merged {merged}");
        assert!(
            hits > 10_000 && misses > 10_000,
            "hits {hits}, misses {misses}"
        );
    }
}
