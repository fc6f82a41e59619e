//! Verified-token cache: a repeated token costs a hash and a lookup, not a signature check.
//!
//! Keyed by the BLAKE3 hash of the token, so the cache never holds bearer tokens themselves
//! and a forged token cannot collide with a cached one (256-bit output, the same collision
//! resistance as SHA-256). BLAKE3 rather than SHA-256 because the key is computed on every
//! request and, inside the wasm VM (no SHA extensions), BLAKE3 costs half as much: ~1.1 µs
//! against ~2.1 µs for a 700-byte RS256 token (docs/benchmarks-notes.md). Bounded (LRU) and each entry dies at the
//! token's `exp`. One cache per Envoy worker (wasm VMs do not share memory); a token verified
//! on one worker is verified once more on another, which is cheap enough for a bounded cost.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;

use super::Identity;

pub struct TokenCache {
    entries: Option<LruCache<[u8; 32], Arc<Identity>>>,
}

/// Whether a lookup avoided verification; feeds the cache hit/miss metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup {
    Hit,
    Miss,
    Disabled,
}

impl TokenCache {
    /// `capacity` 0 disables caching.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: NonZeroUsize::new(capacity).map(LruCache::new),
        }
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

    /// Forgets every verified token (keys changed).
    pub fn clear(&mut self) {
        if let Some(entries) = &mut self.entries {
            entries.clear();
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
            subject: None,
            scopes: vec![],
            claim_headers: vec![],
            expires_at: exp,
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
    fn disabled() {
        let mut cache = TokenCache::new(0);
        let key = TokenCache::key("t");
        cache.insert(key, identity(100), 0);
        assert_eq!(cache.get(&key, 1).1, CacheLookup::Disabled);
    }
}
