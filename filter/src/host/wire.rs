//! The byte layouts of the proxy-wasm ABI that carry more than one value: header maps and
//! property paths. Pure functions, so they are tested (and fuzzed) natively; decoding checks
//! every length against the buffer and never trusts the host's counts.
//!
//! A header map is `count: u32`, then `count` pairs of `(name_len: u32, value_len: u32)`,
//! then each name and value followed by a NUL byte; integers little-endian.

/// Encodes a header map for `proxy_http_call` and `proxy_send_local_response`.
pub fn encode_map<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(n, v)| 8 + n.as_ref().len() + v.as_ref().len() + 2)
        .sum::<usize>();
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(&len_u32(pairs.len()).to_le_bytes());
    for (name, value) in pairs {
        bytes.extend_from_slice(&len_u32(name.as_ref().len()).to_le_bytes());
        bytes.extend_from_slice(&len_u32(value.as_ref().len()).to_le_bytes());
    }
    for (name, value) in pairs {
        bytes.extend_from_slice(name.as_ref());
        bytes.push(0);
        bytes.extend_from_slice(value.as_ref());
        bytes.push(0);
    }
    bytes
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(word)).ok()
}

/// Decodes a header map; `None` if any length points outside the buffer. An empty buffer is
/// an empty map (hosts answer an empty map that way).
pub fn decode_map(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)?;
    // Each pair needs at least 8 bytes of sizes and 2 NULs: a count that cannot fit is a lie,
    // and must not size an allocation.
    if count > bytes.len() / 10 {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    let mut data = 4usize.checked_add(count.checked_mul(8)?)?;
    for index in 0..count {
        let sizes = 4 + index * 8;
        let name_len = read_u32(bytes, sizes)?;
        let value_len = read_u32(bytes, sizes + 4)?;
        let name = bytes.get(data..data.checked_add(name_len)?)?;
        data = data.checked_add(name_len)?.checked_add(1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len)?.checked_add(1)?;
        pairs.push((name, value));
    }
    Some(pairs)
}

/// Header pairs as text: names and values that are not UTF-8 are replaced lossily.
pub fn decode_map_lossy(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    Some(
        decode_map(bytes)?
            .into_iter()
            .map(|(name, value)| (lossy(name), lossy(value)))
            .collect(),
    )
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A property path (`["metadata"]`, `["source", "address"]`): segments joined by NUL.
pub fn encode_path(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_round_trip() {
        let pairs = [(":status", "200"), ("etag", "\"v1\""), ("empty", "")];
        let bytes = encode_map(&pairs);
        let decoded = decode_map(&bytes).unwrap();
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded[1], (&b"etag"[..], &b"\"v1\""[..]));
        assert_eq!(decoded[2], (&b"empty"[..], &b""[..]));
    }

    #[test]
    fn truncated_or_lying_maps_are_refused() {
        let bytes = encode_map(&[("name", "value")]);
        for cut in 1..bytes.len() - 1 {
            assert!(decode_map(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_map(&huge).is_none());
        let mut long_name = bytes;
        long_name[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_map(&long_name).is_none());
        assert_eq!(decode_map(&[]).unwrap().len(), 0);
    }

    #[test]
    fn non_utf8_is_replaced_not_fatal() {
        let bytes = encode_map(&[(&b"etag"[..], &b"\xff\xfe"[..])]);
        let decoded = decode_map_lossy(&bytes).unwrap();
        assert_eq!(decoded[0].1, "\u{fffd}\u{fffd}");
    }

    #[test]
    fn paths_join_with_nul() {
        assert_eq!(encode_path(&["source", "address"]), b"source\0address");
        assert_eq!(encode_path(&["metadata"]), b"metadata");
    }
}
