//! JSON objects with duplicate members, refused. RFC 7515 §5.2 and RFC 7519 §4 let a parser
//! either refuse duplicate member names or keep the last one; serde_json keeps the last (and
//! serde's derive refuses only the fields a struct names). Two `client_id` members mean
//! different things to different parsers (a WAF, an IdP, an upstream that re-reads the
//! token), so obguard refuses the token instead of picking one.
//!
//! The check is a serde [`Visitor`] run by serde_json's own parser over the decoded segment:
//! every object, at any depth, keeps the names it has seen (after JSON unescaping, so
//! `"client\u005fid"` is `client_id`) and fails on a repeat. No hand-written scanning.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Why [`check`] refused a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictJsonError {
    /// Valid JSON with a repeated member name in some object.
    Duplicate,
    /// Not JSON (or nested deeper than serde_json's recursion limit).
    Invalid,
}

/// `Ok` when `bytes` is one JSON value with no object repeating a member name.
pub fn check(bytes: &[u8]) -> Result<(), StrictJsonError> {
    match serde_json::from_slice::<NoDuplicates>(bytes) {
        Ok(NoDuplicates) => Ok(()),
        // The visitor's own error is a data error; syntax, EOF and I/O are not JSON.
        Err(err) if err.is_data() => Err(StrictJsonError::Duplicate),
        Err(_) => Err(StrictJsonError::Invalid),
    }
}

/// Any JSON value that contains no object with a repeated member name.
struct NoDuplicates;

impl<'de> Deserialize<'de> for NoDuplicates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoDuplicatesVisitor)
    }
}

struct NoDuplicatesVisitor;

impl<'de> Visitor<'de> for NoDuplicatesVisitor {
    type Value = NoDuplicates;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value without duplicate object members")
    }

    fn visit_bool<E>(self, _: bool) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_i64<E>(self, _: i64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_u64<E>(self, _: u64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_f64<E>(self, _: f64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_str<E>(self, _: &str) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_unit<E>(self) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NoDuplicates, A::Error> {
        while seq.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoDuplicates, A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name) {
                return Err(de::Error::custom("duplicate member"));
            }
            map.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_at_any_depth_are_refused() {
        for ok in [
            r#"{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}"#,
            r#"[]"#,
            r#""s""#,
            r#"{"a":null,"A":1}"#,
        ] {
            assert_eq!(check(ok.as_bytes()), Ok(()), "{ok}");
        }
        for dup in [
            r#"{"client_id":"a","client_id":"b"}"#,
            r#"{"client_id":"a","client\u005fid":"b"}"#,
            r#"{"cnf":{"x5t#S256":"a","x5t#S256":"b"}}"#,
            r#"{"l":[1,{"k":1,"k":1}]}"#,
        ] {
            assert_eq!(
                check(dup.as_bytes()),
                Err(StrictJsonError::Duplicate),
                "{dup}"
            );
        }
        for bad in ["{", "not json", r#"{"a":1}x"#, ""] {
            assert_eq!(
                check(bad.as_bytes()),
                Err(StrictJsonError::Invalid),
                "{bad}"
            );
        }
    }
}
