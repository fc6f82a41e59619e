//! Per-client baselines in proxy-wasm shared data: one key per slot, compare-and-swap
//! updates, visible to every worker of the Envoy process.

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::assess::baselines::{BaselineStore, Conflict, Slot};

pub struct SharedDataStore;

impl BaselineStore for SharedDataStore {
    fn load(&self, key: &str) -> Slot {
        match hostcalls::get_shared_data(key) {
            Ok((bytes, cas)) => Slot { bytes, cas },
            Err(_) => Slot {
                bytes: None,
                cas: None,
            },
        }
    }

    fn store(&mut self, key: &str, bytes: &[u8], cas: Option<u32>) -> Result<(), Conflict> {
        match hostcalls::set_shared_data(key, Some(bytes), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(Conflict),
            // Anything else: not stored; after the retries it is counted as `lost`.
            Err(_) => Err(Conflict),
        }
    }
}
