//! Small, stable, non-cryptographic hashes for baseline sketches.
//!
//! Baselines remember "have I seen this prefix / country / ASN / user agent / route" as a
//! few 32-bit hashes, not strings, to stay under the 256 byte budget. FNV-1a is used because it
//! is stable across builds and targets (the filter on wasm32 and the trainer on the host must
//! agree bit for bit) and costs a few nanoseconds. It is not a security boundary: a collision
//! only makes one request look slightly more familiar than it is.

use core::net::IpAddr;

const OFFSET: u32 = 0x811c_9dc5;
const PRIME: u32 = 0x0100_0193;

/// FNV-1a over `bytes`, with a domain tag so equal strings of different kinds differ.
pub fn fnv1a(tag: u8, bytes: &[u8]) -> u32 {
    let mut h = (OFFSET ^ u32::from(tag)).wrapping_mul(PRIME);
    for b in bytes {
        h = (h ^ u32::from(*b)).wrapping_mul(PRIME);
    }
    // 0 marks an empty slot in baselines.
    if h == 0 { 1 } else { h }
}

pub const TAG_PREFIX: u8 = 1;
pub const TAG_COUNTRY: u8 = 2;
pub const TAG_ASN: u8 = 3;
pub const TAG_UA: u8 = 4;
pub const TAG_ROUTE: u8 = 5;
pub const TAG_ID: u8 = 6;

/// Hash of the caller's network: IPv4 /24 or IPv6 /48.
pub fn prefix_hash(ip: &IpAddr) -> u32 {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            fnv1a(TAG_PREFIX, &[4, a, b, c])
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let mut key = [6u8; 7];
            for (k, b) in key.iter_mut().skip(1).zip(o.iter()) {
                *k = *b;
            }
            fnv1a(TAG_PREFIX, &key)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_group_by_network() {
        let a: IpAddr = "192.0.2.10".parse().unwrap();
        let b: IpAddr = "192.0.2.200".parse().unwrap();
        let c: IpAddr = "192.0.3.10".parse().unwrap();
        assert_eq!(prefix_hash(&a), prefix_hash(&b));
        assert_ne!(prefix_hash(&a), prefix_hash(&c));
        let d: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let e: IpAddr = "2001:db8:1:ffff::1".parse().unwrap();
        assert_eq!(prefix_hash(&d), prefix_hash(&e));
        assert_ne!(fnv1a(TAG_COUNTRY, b"GB"), fnv1a(TAG_ASN, b"GB"));
    }
}
