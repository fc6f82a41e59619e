//! Where per-client baselines live: a fixed number of slots, so minting client ids cannot
//! grow memory. In Envoy the slots are proxy-wasm shared data (one key per slot, updated with
//! compare-and-swap, seen by every worker); natively an in-memory map stands in.
//!
//! A slot holds `client hash (8 bytes, big-endian) || postcard baseline`. A client owns the
//! slot its id hashes to; a different client's baseline there is replaced only once it has
//! been idle for `client_ttl_s`, so a flood of new ids cannot evict active clients (the
//! newcomer is scored from the population baseline and not remembered).

use std::collections::HashMap;

use obguard_models::ClientBaseline;
use sha2::{Digest, Sha256};

/// A read slot: its bytes and the version to write back against.
pub struct Slot {
    pub bytes: Option<Vec<u8>>,
    pub cas: Option<u32>,
}

/// Storage for baseline slots. `store` fails on a version conflict (another worker wrote
/// first); the caller then re-reads and re-applies.
pub trait BaselineStore {
    fn load(&self, key: &str) -> Slot;
    fn store(&mut self, key: &str, bytes: &[u8], cas: Option<u32>) -> Result<(), Conflict>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict;

/// Slot key and owner hash for a client.
pub fn slot_of(client_id: &str, max_clients: u32) -> (String, u64) {
    let digest = Sha256::digest(client_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    let hash = u64::from_be_bytes(first);
    let slot = hash % u64::from(max_clients.max(1));
    (format!("obguard.baseline.{slot}"), hash)
}

/// What a slot means for this client.
// A short-lived value on the stack; boxing the baseline would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Occupancy {
    /// The client's own baseline (or a fresh one when the slot is free or reclaimable).
    Mine(ClientBaseline),
    /// Another active client owns the slot: score from a fresh baseline, do not store.
    Taken,
}

pub fn occupancy(bytes: Option<&[u8]>, owner: u64, now_ms: u64, client_ttl_s: u64) -> Occupancy {
    let Some(bytes) = bytes else {
        return Occupancy::Mine(ClientBaseline::new());
    };
    let Some((head, rest)) = bytes.split_first_chunk::<8>() else {
        return Occupancy::Mine(ClientBaseline::new());
    };
    // Corrupt bytes: start afresh rather than fail the request.
    let Ok(baseline) = ClientBaseline::decode(rest) else {
        return Occupancy::Mine(ClientBaseline::new());
    };
    if u64::from_be_bytes(*head) == owner {
        return Occupancy::Mine(baseline);
    }
    let idle_ms = now_ms.saturating_sub(baseline.last_seen_ms());
    if idle_ms > client_ttl_s.saturating_mul(1000) {
        Occupancy::Mine(ClientBaseline::new())
    } else {
        Occupancy::Taken
    }
}

pub fn encode_slot(owner: u64, baseline: &ClientBaseline) -> Option<Vec<u8>> {
    let body = baseline.encode().ok()?;
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&owner.to_be_bytes());
    out.extend_from_slice(&body);
    Some(out)
}

/// In-memory [`BaselineStore`] for native use and tests, with versions like shared data.
#[derive(Default)]
pub struct MemoryStore {
    slots: HashMap<String, (Vec<u8>, u32)>,
}

impl MemoryStore {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl BaselineStore for MemoryStore {
    fn load(&self, key: &str) -> Slot {
        match self.slots.get(key) {
            Some((bytes, cas)) => Slot {
                bytes: Some(bytes.clone()),
                cas: Some(*cas),
            },
            None => Slot {
                bytes: None,
                cas: None,
            },
        }
    }

    fn store(&mut self, key: &str, bytes: &[u8], cas: Option<u32>) -> Result<(), Conflict> {
        let current = self.slots.get(key).map(|(_, c)| *c);
        // As in Envoy's shared data, CAS 0 (or none) writes unconditionally.
        if let Some(expected) = cas.filter(|c| *c != 0)
            && Some(expected) != current
        {
            return Err(Conflict);
        }
        let next = current.map_or(1, |c| c.wrapping_add(1));
        self.slots.insert(key.to_owned(), (bytes.to_vec(), next));
        Ok(())
    }
}
