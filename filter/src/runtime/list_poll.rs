//! Polling the lists of `crate::polled` (threat-intelligence feeds, the external
//! containment list): claim the attempt so one worker fetches, ask with `If-None-Match`,
//! validate before storing, and tell each worker when the shared content changed. What a
//! list means, and the metrics and log lines of each kind, are the caller's.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::host::{Buffer, HeaderMap, Host, HostExt};
use crate::polled::{self, PollError, PolledSource};

/// Per-worker polling state, over sources numbered by the caller.
#[derive(Default)]
pub struct PollState {
    /// Call token → source index.
    in_flight: HashMap<u32, usize>,
    /// Version of each source's content this worker last loaded.
    loaded_cas: HashMap<usize, u32>,
    /// Sources whose list this worker dropped as stale (reported once).
    stale: HashSet<usize>,
}

/// What a worker should do with a source's list on this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    Unchanged,
    /// Parse and use this body: a newer version, or the list is fresh again after being
    /// dropped as stale.
    Load(Vec<u8>),
    /// The list is older than `max_stale_s` now (once per staleness): drop it.
    BecameStale,
}

/// What a fetch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// A new list, validated and stored (`entries` as the validator counted them).
    Stored { entries: usize },
    /// `304`: the stored list is confirmed as current.
    NotModified,
}

fn time_at(host: &dyn Host, key: &str) -> (Option<u64>, Option<u32>) {
    match host.shared_data(key) {
        Ok((bytes, cas)) => (bytes.as_deref().and_then(polled::decode_time), cas),
        Err(_) => (None, None),
    }
}

impl PollState {
    /// The source index of a call this state started.
    pub fn owns(&self, token: u32) -> Option<usize> {
        self.in_flight.get(&token).copied()
    }

    /// Whether this worker must load, drop or keep the source's list.
    pub fn refresh(
        &mut self,
        host: &dyn Host,
        index: usize,
        source: &PolledSource,
        now: u64,
    ) -> Refresh {
        if Self::fetched_at(host, source).is_some_and(|t| source.is_stale(now, t)) {
            return if self.stale.insert(index) {
                Refresh::BecameStale
            } else {
                Refresh::Unchanged
            };
        }
        // Confirmed again (a `304` does not change the content's version): load it anew.
        if self.stale.remove(&index) {
            self.loaded_cas.remove(&index);
        }
        match self.changed(host, index, source) {
            Some(body) => Refresh::Load(body),
            None => Refresh::Unchanged,
        }
    }

    /// The stored body, when its version differs from the one this worker last loaded.
    fn changed(&mut self, host: &dyn Host, index: usize, source: &PolledSource) -> Option<Vec<u8>> {
        let (Some(bytes), Some(cas)) = host.shared_data(&source.shared_key).ok()? else {
            return None;
        };
        if self.loaded_cas.get(&index) == Some(&cas) {
            return None;
        }
        self.loaded_cas.insert(index, cas);
        let (_, body) = polled::decode_content(&bytes)?;
        Some(body.to_vec())
    }

    /// Unix seconds of the last good answer (any worker's).
    pub fn fetched_at(host: &dyn Host, source: &PolledSource) -> Option<u64> {
        time_at(host, &source.fetched_key()).0
    }

    /// Starts a fetch when one is due and this worker wins the claim. `Err` when Envoy
    /// refused to dispatch it.
    pub fn start_if_due(
        &mut self,
        host: &dyn Host,
        index: usize,
        source: &PolledSource,
        now: u64,
    ) -> Result<(), PollError> {
        if self.in_flight.values().any(|i| *i == index) {
            return Ok(());
        }
        let fetched_at = Self::fetched_at(host, source);
        let (last_attempt, attempt_cas) = time_at(host, &source.attempt_key());
        if !source.fetch_due(now, fetched_at, last_attempt) {
            return Ok(());
        }
        // Compare-and-swap: one worker fetches, not all of them.
        if host
            .set_shared_data(&source.attempt_key(), &now.to_be_bytes(), attempt_cas)
            .is_err()
        {
            return Ok(());
        }
        let stored = host
            .shared_data(&source.shared_key)
            .ok()
            .and_then(|(b, _)| b);
        let etag = stored
            .as_deref()
            .and_then(polled::decode_content)
            .and_then(|(etag, _)| etag.map(str::to_owned));
        let mut headers = vec![
            (":method", "GET"),
            (":path", source.path.as_str()),
            (":authority", source.authority.as_str()),
        ];
        if let Some(etag) = etag.as_deref() {
            headers.push(("if-none-match", etag));
        }
        let token = host
            .http_call(
                &source.cluster,
                &headers,
                None,
                Duration::from_millis(source.timeout_ms),
            )
            .map_err(|_| PollError::Dispatch)?;
        self.in_flight.insert(token, index);
        Ok(())
    }

    /// Reads an answer to a call of [`PollState::owns`]; `validate` parses the body (entry
    /// count, or why it is refused, for the log). A refused body is not stored.
    pub fn on_response(
        &mut self,
        host: &dyn Host,
        token: u32,
        source: &PolledSource,
        body_size: usize,
        now: u64,
        validate: &dyn Fn(&[u8]) -> Result<usize, String>,
    ) -> Result<Fetched, (PollError, Option<String>)> {
        self.in_flight.remove(&token);
        let status = host
            .header_str(HeaderMap::HttpCallResponseHeaders, ":status")
            .and_then(|s| s.parse::<u16>().ok());
        let fresh = || {
            host.set_shared_data(&source.fetched_key(), &now.to_be_bytes(), None)
                .map_err(|_| (PollError::Store, None))
        };
        match status {
            None => Err((PollError::Unreachable, None)),
            Some(304) => {
                fresh()?;
                Ok(Fetched::NotModified)
            }
            Some(200) if body_size > source.max_bytes => Err((PollError::TooLarge, None)),
            Some(200) => {
                let body = host
                    .buffer(Buffer::HttpCallResponseBody, 0, body_size)
                    .map_err(|_| (PollError::Unreachable, None))?;
                let entries = validate(&body).map_err(|why| (PollError::Invalid, Some(why)))?;
                let etag = host.header_str(HeaderMap::HttpCallResponseHeaders, "etag");
                let content = polled::encode_content(etag.as_deref(), &body);
                host.set_shared_data(&source.shared_key, &content, None)
                    .map_err(|_| (PollError::Store, None))?;
                fresh()?;
                Ok(Fetched::Stored { entries })
            }
            Some(other) => Err((PollError::Status, Some(format!("status {other}")))),
        }
    }
}
