//! Verified-token cache: a repeated token costs a hash and a lookup, not a signature check.
//!
//! Keyed by the BLAKE3 hash of the token, so the cache never holds bearer tokens themselves
//! and a forged token cannot collide with a cached one (256-bit output, the same collision
//! resistance as SHA-256). BLAKE3 rather than SHA-256 because the key is computed on every
//! request and, inside the wasm VM (no SHA extensions), BLAKE3 costs half as much: ~1.1 µs
//! against ~2.1 µs for a 700-byte RS256 token (docs/benchmarks-notes.md). Bounded (LRU) and each entry dies at the
//! token's `exp`. One cache per Envoy worker (wasm VMs do not share memory); a token verified
//! on one worker is verified once more on another, which is cheap enough for a bounded cost.
//!
//! Beside it, a **negative** cache: the hashes of tokens whose signature was checked and did
//! not verify, each kept for a TTL in its own LRU. Replaying a forged token with a valid
//! `kid` then costs a hash and a lookup instead of an RSA/ECDSA check. Keys changing clears
//! both (see [`TokenCache::clear`]).

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;

use super::Identity;

pub struct TokenCache {
    entries: Option<LruCache<[u8; 32], Arc<Identity>>>,
    /// Token hash → until when (Unix seconds) it is refused without a check.
    rejected: Option<LruCache<[u8; 32], u64>>,
    rejected_ttl_s: u64,
}

/// Whether a lookup avoided verification; feeds the cache hit/miss metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheLookup {
    Hit,
    Miss,
    #[default]
    Disabled,
}

impl TokenCache {
    /// `capacity` 0 disables caching. No negative cache.
    pub fn new(capacity: usize) -> Self {
        Self::with_negative(capacity, 0, 0)
    }

    /// `capacity` verified tokens and `rejected_capacity` bad signatures, each remembered for
    /// `rejected_ttl_s` seconds (0 capacity disables either).
    pub fn with_negative(capacity: usize, rejected_capacity: usize, rejected_ttl_s: u64) -> Self {
        Self {
            entries: NonZeroUsize::new(capacity).map(LruCache::new),
            rejected: NonZeroUsize::new(rejected_capacity)
                .filter(|_| rejected_ttl_s > 0)
                .map(LruCache::new),
            rejected_ttl_s,
        }
    }

    /// Whether the token with this hash failed its signature check within the TTL.
    pub fn is_rejected(&mut self, key: &[u8; 32], now: u64) -> bool {
        let Some(rejected) = &mut self.rejected else {
            return false;
        };
        match rejected.get(key) {
            Some(until) if now < *until => true,
            Some(_) => {
                rejected.pop(key);
                false
            }
            None => false,
        }
    }

    /// Remembers a token whose signature did not verify.
    pub fn reject(&mut self, key: [u8; 32], now: u64) {
        if let Some(rejected) = &mut self.rejected {
            rejected.put(key, now.saturating_add(self.rejected_ttl_s));
        }
    }

    /// Bad signatures remembered.
    pub fn rejected_len(&self) -> usize {
        self.rejected.as_ref().map_or(0, LruCache::len)
    }

    /// BLAKE3-256 of the token.
    pub fn key(token: &str) -> [u8; 32] {
        blake3::hash(token.as_bytes()).into()
    }

    pub fn get(&mut self, key: &[u8; 32], now: u64) -> (Option<Arc<Identity>>, CacheLookup) {
        let Some(entries) = &mut self.entries else {
            return (None, CacheLookup::Disabled);
        };
        match entries.get(key) {
            Some(identity) if now < identity.expires_at => {
                (Some(identity.clone()), CacheLookup::Hit)
            }
            Some(_) => {
                entries.pop(key);
                (None, CacheLookup::Miss)
            }
            None => (None, CacheLookup::Miss),
        }
    }

    pub fn insert(&mut self, key: [u8; 32], identity: Arc<Identity>, now: u64) {
        if let Some(entries) = &mut self.entries
            && now < identity.expires_at
        {
            entries.put(key, identity);
        }
    }

    /// Forgets every verified token and every remembered bad signature (keys changed: a
    /// token may now verify, or no longer).
    pub fn clear(&mut self) {
        if let Some(entries) = &mut self.entries {
            entries.clear();
        }
        if let Some(rejected) = &mut self.rejected {
            rejected.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, LruCache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(exp: u64) -> Arc<Identity> {
        Arc::new(Identity {
            issuer: 0,
            client_id: "c".into(),
            client_namespace: "ns".into(),
            subject: None,
            scopes: vec![],
            claim_headers: vec![],
            expires_at: exp,
            consent: None,
            confirmation: Default::default(),
            jti: None,
        })
    }

    #[test]
    fn hit_until_exp_then_gone() {
        let mut cache = TokenCache::new(4);
        let key = TokenCache::key("t");
        cache.insert(key, identity(100), 10);
        assert_eq!(cache.get(&key, 99).1, CacheLookup::Hit);
        assert_eq!(cache.get(&key, 100).1, CacheLookup::Miss);
        assert!(cache.is_empty(), "expired entry is dropped");
    }

    #[test]
    fn bounded() {
        let mut cache = TokenCache::new(2);
        for i in 0..10 {
            cache.insert(TokenCache::key(&i.to_string()), identity(100), 0);
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&TokenCache::key("9"), 1).1, CacheLookup::Hit);
        assert_eq!(cache.get(&TokenCache::key("0"), 1).1, CacheLookup::Miss);
    }

    #[test]
    fn rejected_tokens_are_bounded_expire_and_clear() {
        let mut cache = TokenCache::with_negative(4, 2, 60);
        let key = |i: u32| TokenCache::key(&i.to_string());
        for i in 0..10 {
            cache.reject(key(i), 100);
        }
        assert_eq!(cache.rejected_len(), 2, "LRU-bounded");
        assert!(cache.is_rejected(&key(9), 159));
        assert!(!cache.is_rejected(&key(0), 101), "evicted");
        assert!(!cache.is_rejected(&key(9), 160), "TTL over");
        assert_eq!(cache.rejected_len(), 1);
        cache.reject(key(1), 100);
        cache.clear();
        assert!(!cache.is_rejected(&key(1), 101), "keys changed");
        let mut off = TokenCache::with_negative(4, 0, 60);
        off.reject(key(1), 0);
        assert!(!off.is_rejected(&key(1), 1));
    }

    #[test]
    fn disabled() {
        let mut cache = TokenCache::new(0);
        let key = TokenCache::key("t");
        cache.insert(key, identity(100), 0);
        assert_eq!(cache.get(&key, 1).1, CacheLookup::Disabled);
    }
}
