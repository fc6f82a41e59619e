//! `x-fapi-interaction-id` (FAPI 1.0 Part 1 §6.2.1 11-13): echoed when the client sent a
//! UUID, otherwise a fresh UUID v4; present on every response.
//!
//! Fresh ids come from CSPRNG bytes drawn [`POOL_BYTES`] at a time: in Envoy every draw is a
//! WASI `random_get` host call (~0.6 µs, as much as 64 ids' worth of bytes), so one draw serves
//! 64 requests. Every byte is used once; ids are correlation ids, not secrets.

use std::cell::RefCell;

pub const HEADER: &str = "x-fapi-interaction-id";

/// Random bytes fetched per draw: 64 ids.
const POOL_BYTES: usize = 1024;
const ID_BYTES: usize = 16;

struct Pool {
    bytes: [u8; POOL_BYTES],
    /// Bytes before `next` are used up.
    next: usize,
}

impl Pool {
    fn take(&mut self) -> Option<[u8; ID_BYTES]> {
        if self.next + ID_BYTES > POOL_BYTES {
            getrandom::fill(&mut self.bytes).ok()?;
            self.next = 0;
        }
        let id = self
            .bytes
            .get(self.next..self.next + ID_BYTES)?
            .try_into()
            .ok()?;
        self.next += ID_BYTES;
        Some(id)
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_BYTES], next: POOL_BYTES })
    };
}

/// A UUID v4 from the pool (straight from the CSPRNG should the pool be unavailable).
fn fresh() -> uuid::Uuid {
    POOL.with(|pool| pool.try_borrow_mut().ok().and_then(|mut p| p.take()))
        .map_or_else(uuid::Uuid::new_v4, |bytes| {
            uuid::Builder::from_random_bytes(bytes).into_uuid()
        })
}

pub fn resolve(incoming: Option<&str>) -> String {
    match incoming {
        // Only the canonical hyphenated form is echoed, so nothing else ever reaches logs or
        // headers from this field.
        Some(id) if id.len() == 36 && uuid::Uuid::try_parse(id).is_ok() => id.to_owned(),
        _ => fresh().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_valid_uuids_only() {
        let id = "0b6f5c7e-3d52-4b1e-9a43-1c2d3e4f5a6b";
        assert_eq!(resolve(Some(id)), id);
        for bad in [
            "",
            "not-a-uuid",
            "0b6f5c7e3d524b1e9a431c2d3e4f5a6b",
            "{0b6f5c7e-3d52-4b1e-9a43-1c2d3e4f5a6b}",
        ] {
            let generated = resolve(Some(bad));
            assert_ne!(generated, bad);
            assert!(uuid::Uuid::try_parse(&generated).is_ok());
        }
        assert_ne!(resolve(None), resolve(None));
    }

    #[test]
    fn fresh_ids_are_distinct_v4_across_pool_refills() {
        let count = 3 * POOL_BYTES / ID_BYTES + 5;
        let ids: std::collections::HashSet<String> = (0..count).map(|_| resolve(None)).collect();
        assert_eq!(ids.len(), count);
        for id in &ids {
            let uuid = uuid::Uuid::try_parse(id).expect("valid uuid");
            assert_eq!(uuid.get_version(), Some(uuid::Version::Random));
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(id.len(), 36);
        }
    }
}
