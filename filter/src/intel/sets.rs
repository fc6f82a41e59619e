//! ASN and country lists: small keys, so a sorted array and a bitmap.

/// Autonomous system numbers, sorted and distinct: a lookup is a binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AsnSet {
    asns: Vec<u32>,
}

impl AsnSet {
    /// The set of `asns`, in any order, duplicates allowed.
    pub fn from_asns(asns: impl IntoIterator<Item = u32>) -> Self {
        let mut asns: Vec<u32> = asns.into_iter().collect();
        asns.sort_unstable();
        asns.dedup();
        asns.shrink_to_fit();
        AsnSet { asns }
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.asns.binary_search(&asn).is_ok()
    }

    /// Distinct ASNs listed.
    pub fn len(&self) -> usize {
        self.asns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.asns.is_empty()
    }
}

/// Why an ASN entry is refused, for [`super::FeedError::BadEntry`].
pub(super) const NOT_AN_ASN: &str = "is not an ASN (AS64500, as64500 or 64500; 1 to 4294967295)";

/// An ASN from `AS64500`, `as64500` or `64500` (the edge's ASN header, and feed entries):
/// decimal digits after an optional case-insensitive `AS`, 1 to 4294967295. Surrounding
/// whitespace is ignored; a sign, inner spaces and the asdot form (`AS1.10`) are not ASNs.
/// 0 is reserved (RFC 7607) and never a caller's ASN, so it is `None` too.
pub fn parse_asn(text: &str) -> Option<u32> {
    let text = text.trim_ascii();
    let digits = match text.get(..2) {
        Some(prefix) if prefix.eq_ignore_ascii_case("as") => text.get(2..)?,
        _ => text,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only, so a parse error is an overflow.
    digits.parse::<u32>().ok().filter(|&n| n != 0)
}

/// ISO 3166-1 alpha-2 codes as a 26×26 bitmap: any list fits in 88 bytes and a lookup is one
/// bit test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountrySet {
    bits: [u64; 11],
}

/// Why a country entry is refused, for [`super::FeedError::BadEntry`].
pub(super) const NOT_A_COUNTRY: &str = "is not a country code (two letters, ISO 3166-1 alpha-2)";

/// The bit of a code: exactly two ASCII letters, any case. Whether the code is assigned is
/// not checked: the list says which codes to match, and an unassigned one matches nothing.
fn country_bit(code: &str) -> Option<(usize, u64)> {
    let &[a, b] = code.as_bytes() else {
        return None;
    };
    if !a.is_ascii_alphabetic() || !b.is_ascii_alphabetic() {
        return None;
    }
    let index = usize::from(a.to_ascii_uppercase() - b'A') * 26
        + usize::from(b.to_ascii_uppercase() - b'A');
    Some((index / 64, 1u64 << (index % 64)))
}

impl CountrySet {
    /// The set of `codes`; `Err` names the first that is not two ASCII letters.
    pub fn from_codes<'a>(codes: impl IntoIterator<Item = &'a str>) -> Result<Self, &'a str> {
        let mut set = CountrySet::default();
        for code in codes {
            if !set.insert(code) {
                return Err(code);
            }
        }
        Ok(set)
    }

    /// Adds `code` (stored upper case); `false` when it is not two ASCII letters.
    pub(super) fn insert(&mut self, code: &str) -> bool {
        match country_bit(code).and_then(|(word, bit)| Some((self.bits.get_mut(word)?, bit))) {
            Some((word, bit)) => {
                *word |= bit;
                true
            }
            None => false,
        }
    }

    /// Whether `code` is listed, case-insensitively (`gb` is `GB`). Anything but two ASCII
    /// letters is not.
    pub fn contains(&self, code: &str) -> bool {
        country_bit(code)
            .and_then(|(word, bit)| Some(self.bits.get(word)? & bit != 0))
            .unwrap_or(false)
    }

    /// Distinct codes listed.
    pub fn len(&self) -> usize {
        self.bits
            .iter()
            .map(|w| w.count_ones() as usize)
            .sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    /// The listed codes, upper case, in alphabetical order.
    pub fn codes(&self) -> impl Iterator<Item = String> + '_ {
        (b'A'..=b'Z')
            .flat_map(|a| (b'A'..=b'Z').map(move |b| [char::from(a), char::from(b)]))
            .map(String::from_iter)
            .filter(|code| self.contains(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn_forms() {
        assert_eq!(parse_asn("AS64500"), Some(64500));
        assert_eq!(parse_asn("as64500"), Some(64500));
        assert_eq!(parse_asn("As64500"), Some(64500));
        assert_eq!(parse_asn("64500"), Some(64500));
        assert_eq!(parse_asn(" AS64500 "), Some(64500));
        assert_eq!(parse_asn("1"), Some(1));
        assert_eq!(parse_asn("AS4294967295"), Some(u32::MAX));
        assert_eq!(parse_asn("007"), Some(7));
        for bad in [
            "",
            "AS",
            "as",
            "0",
            "AS0",
            "AS4294967296",
            "99999999999999999999",
            "AS-1",
            "+64500",
            "AS+64500",
            "AS 64500",
            "64 500",
            "AS1.10",
            "ASN64500",
            "64500a",
            "a",
            "é",
            "AS١٢",
        ] {
            assert_eq!(parse_asn(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn asn_set() {
        let s = AsnSet::from_asns([64500, 13335, 64500, 1, u32::MAX]);
        assert_eq!(s.len(), 4);
        assert!(s.contains(64500));
        assert!(s.contains(1));
        assert!(s.contains(u32::MAX));
        assert!(!s.contains(64501));
        assert!(!s.contains(0));
        assert!(AsnSet::default().is_empty());
    }

    #[test]
    fn countries_are_case_insensitive() {
        let s = CountrySet::from_codes(["gb", "US", "kP", "GB", "ZZ", "AA"]).unwrap();
        assert_eq!(s.len(), 5);
        for yes in ["GB", "gb", "Gb", "us", "KP", "zz", "aa"] {
            assert!(s.contains(yes), "{yes}");
        }
        for no in ["FR", "", "G", "GBR", "G1", "12", "ÄB", "G\u{0}", " GB"] {
            assert!(!s.contains(no), "{no:?}");
        }
        assert_eq!(
            s.codes().collect::<Vec<_>>(),
            ["AA", "GB", "KP", "US", "ZZ"]
        );
        assert_eq!(CountrySet::from_codes(["GB", "G1"]), Err("G1"));
        assert_eq!(CountrySet::from_codes(["GBR"]), Err("GBR"));
        assert!(CountrySet::default().is_empty());
    }
}
