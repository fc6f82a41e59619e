//! Responses waiting to be folded into their client's baseline.
//!
//! Folding a response (status, size) into the baseline in the response phase costs a
//! shared-data read, decode, encode and compare-and-swap write per request. Instead the worker
//! remembers it and folds it into the same write as the client's next request, in the order
//! it happened, so the baseline ends up exactly as if it had been folded at once (tested). A
//! client that does not come back to this worker is folded by the timer after
//! [`FLUSH_AFTER_MS`]. Memory is bounded: when full, the caller folds at once, as before.

use std::collections::HashMap;

/// One response, as the baseline needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservedResponse {
    pub status: u16,
    pub bytes: u64,
    pub at_ms: u64,
}

/// Pending responses older than this are folded by the timer.
pub const FLUSH_AFTER_MS: u64 = 1_000;
/// Clients with pending responses, per worker.
pub const MAX_CLIENTS: usize = 4_096;
/// Pending responses per client (more in flight: fold at once).
pub const MAX_PER_CLIENT: usize = 16;

#[derive(Debug, Default)]
pub struct PendingResponses {
    by_client: HashMap<String, Vec<ObservedResponse>>,
}

impl PendingResponses {
    /// Remembers `response` for `client`; `false` when full (fold it now instead).
    pub fn defer(&mut self, client: &str, response: ObservedResponse) -> bool {
        if let Some(list) = self.by_client.get_mut(client) {
            if list.len() >= MAX_PER_CLIENT {
                return false;
            }
            list.push(response);
            return true;
        }
        if self.by_client.len() >= MAX_CLIENTS {
            return false;
        }
        self.by_client.insert(client.to_owned(), vec![response]);
        true
    }

    /// The client's pending responses, oldest first (removed).
    pub fn take(&mut self, client: &str) -> Vec<ObservedResponse> {
        self.by_client.remove(client).unwrap_or_default()
    }

    /// Clients whose oldest pending response is at least [`FLUSH_AFTER_MS`] old (removed).
    pub fn due(&mut self, now_ms: u64) -> Vec<(String, Vec<ObservedResponse>)> {
        let due: Vec<String> = self
            .by_client
            .iter()
            .filter(|(_, list)| {
                list.first()
                    .is_some_and(|r| now_ms.saturating_sub(r.at_ms) >= FLUSH_AFTER_MS)
            })
            .map(|(client, _)| client.clone())
            .collect();
        due.into_iter()
            .filter_map(|client| {
                let list = self.by_client.remove(&client)?;
                Some((client, list))
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(at_ms: u64) -> ObservedResponse {
        ObservedResponse {
            status: 200,
            bytes: 10,
            at_ms,
        }
    }

    #[test]
    fn bounded_per_client_and_in_total() {
        let mut pending = PendingResponses::default();
        for i in 0..MAX_PER_CLIENT {
            assert!(pending.defer("a", response(i as u64)));
        }
        assert!(!pending.defer("a", response(99)), "per-client bound");
        for i in 1..MAX_CLIENTS {
            assert!(pending.defer(&format!("c{i}"), response(0)));
        }
        assert!(!pending.defer("one-too-many", response(0)), "client bound");
        assert_eq!(pending.take("a").len(), MAX_PER_CLIENT);
        assert!(pending.defer("one-too-many", response(0)));
    }

    #[test]
    fn due_after_the_flush_delay_oldest_first() {
        let mut pending = PendingResponses::default();
        pending.defer("old", response(1_000));
        pending.defer("old", response(1_500));
        pending.defer("new", response(1_900));
        let due = pending.due(2_000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, "old");
        assert_eq!(due[0].1, vec![response(1_000), response(1_500)]);
        assert_eq!(pending.len(), 1);
    }
}
