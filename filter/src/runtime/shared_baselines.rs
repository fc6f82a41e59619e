//! Per-client baselines in the host's shared data: one key per slot, compare-and-swap
//! updates, visible to every worker of the Envoy process.

use std::rc::Rc;

use crate::assess::baselines::{BaselineStore, Conflict, Slot};
use crate::host::Host;

pub struct SharedDataStore {
    host: Rc<dyn Host>,
}

impl SharedDataStore {
    pub fn new(host: Rc<dyn Host>) -> Self {
        Self { host }
    }
}

impl BaselineStore for SharedDataStore {
    fn load(&self, key: &str) -> Slot {
        match self.host.shared_data(key) {
            Ok((bytes, cas)) => Slot { bytes, cas },
            // Unreadable is treated as empty: the client starts a new baseline, which the
            // store then refuses to overwrite (its CAS will not match) or replaces.
            Err(_) => Slot {
                bytes: None,
                cas: None,
            },
        }
    }

    fn store(&mut self, key: &str, bytes: &[u8], cas: Option<u32>) -> Result<(), Conflict> {
        // A CAS mismatch is a conflict to retry; any other refusal is counted as `lost`
        // after the retries, the same way.
        self.host
            .set_shared_data(key, bytes, cas)
            .map_err(|_| Conflict)
    }
}
