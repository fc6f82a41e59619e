//! Containment: quarantined clients (or one subject of a client) and revoked tokens, shared
//! by every worker, from two sources:
//!
//! * the **playbooks** (`containment.playbooks`): a request's outcome, reason and verdict
//!   count towards a per-client counter in shared data (a bounded slot space, one per
//!   playbook); at `count` within `within_s` the playbook adds an entry for `duration_s` to
//!   the local list, one shared-data value (`obguard.containment.local`) updated with
//!   compare-and-swap;
//! * the **external list** (`containment.list`), polled like a feed (`crate::polled`): what a
//!   SOC decided, in JSON.
//!
//! Each worker keeps a map of both (loaded on its timer when the shared value's version
//! changes, and at once for the entries it adds itself), so a request's check costs no host
//! call: one hash per list kind in use. Entries are identified by 64 bits of a SHA-256 (a
//! client id, client and subject, a `jti`, or the token itself), and every entry expires.

use std::collections::HashMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::config::{ContainmentConfig, Playbook, PlaybookAction};
use crate::assess::Verdict;
use crate::assess::baselines::{
    BaselineStore, SlotSpace, SlotValue, encode_slot_value, resolve_in,
};
use crate::telemetry::Outcome;

/// What an entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Every request of a client (`<client id>@<namespace>`).
    Client,
    /// A client's requests for one subject.
    ClientSubject,
    /// A token by its `jti`.
    Jti,
    /// A token by its SHA-256 (tokens without `jti`, or lists that only know the token).
    TokenSha256,
}

impl EntryKind {
    fn tag(self) -> u8 {
        match self {
            EntryKind::Client => 1,
            EntryKind::ClientSubject => 2,
            EntryKind::Jti => 3,
            EntryKind::TokenSha256 => 4,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(EntryKind::Client),
            2 => Some(EntryKind::ClientSubject),
            3 => Some(EntryKind::Jti),
            4 => Some(EntryKind::TokenSha256),
            _ => None,
        }
    }

    pub fn is_revocation(self) -> bool {
        matches!(self, EntryKind::Jti | EntryKind::TokenSha256)
    }
}

/// One quarantine or revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    pub hash: u64,
    /// Unix seconds.
    pub expires_at: u64,
}

fn prefix64(digest: &[u8]) -> u64 {
    digest
        .first_chunk::<8>()
        .map_or(0, |b| u64::from_be_bytes(*b))
}

/// The 64-bit name of a client, a client's subject or a `jti`.
pub fn hash_of(kind: EntryKind, first: &str, second: Option<&str>) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update([kind.tag()]);
    hasher.update(first.as_bytes());
    if let Some(second) = second {
        hasher.update([0]);
        hasher.update(second.as_bytes());
    }
    prefix64(&hasher.finalize())
}

/// The 64-bit name of a token: the first 8 bytes of its SHA-256, so an external list can
/// give the hex SHA-256 of the token.
pub fn token_hash(token: &str) -> u64 {
    prefix64(&Sha256::digest(token.as_bytes()))
}

const RECORD_BYTES: usize = 17;
const LIST_VERSION: u8 = 1;

/// The local list's shared-data form: a version byte, then 17-byte records
/// (`kind || hash || expires_at`, big-endian).
pub fn encode_list(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + entries.len() * RECORD_BYTES);
    out.push(LIST_VERSION);
    for e in entries {
        out.push(e.kind.tag());
        out.extend_from_slice(&e.hash.to_be_bytes());
        out.extend_from_slice(&e.expires_at.to_be_bytes());
    }
    out
}

/// Decodes the local list; unknown versions and truncated records read as empty (a later
/// add rewrites the value).
pub fn decode_list(bytes: &[u8]) -> Vec<Entry> {
    let Some((&LIST_VERSION, rest)) = bytes.split_first() else {
        return Vec::new();
    };
    rest.chunks_exact(RECORD_BYTES)
        .filter_map(|record| {
            let (tag, rest) = record.split_first()?;
            let (hash, expires) = rest.split_first_chunk::<8>()?;
            let expires = expires.first_chunk::<8>()?;
            Some(Entry {
                kind: EntryKind::from_tag(*tag)?,
                hash: u64::from_be_bytes(*hash),
                expires_at: u64::from_be_bytes(*expires),
            })
        })
        .collect()
}

/// What a write to the local list dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// Entries past their expiry.
    pub expired: usize,
    /// Live entries that gave way because the list was full (those expiring first).
    pub evicted: usize,
}

/// `entries` with `new` added (an existing entry for the same name keeps the later
/// expiry), expired ones dropped, and at most `max` kept (those expiring first give way).
pub fn merge(mut entries: Vec<Entry>, new: Entry, max: usize, now: u64) -> (Vec<Entry>, Written) {
    let before = entries.len();
    entries.retain(|e| e.expires_at > now);
    let expired = before - entries.len();
    match entries
        .iter_mut()
        .find(|e| e.kind == new.kind && e.hash == new.hash)
    {
        Some(existing) => existing.expires_at = existing.expires_at.max(new.expires_at),
        None => entries.push(new),
    }
    let mut evicted = 0;
    if entries.len() > max {
        entries.sort_by_key(|e| std::cmp::Reverse(e.expires_at));
        evicted = entries.len() - max;
        entries.truncate(max);
    }
    (entries, Written { expired, evicted })
}

/// Where a hit's entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Playbook,
    External,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Playbook => "playbook",
            Source::External => "list",
        }
    }
}

/// A request that meets an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub kind: EntryKind,
    pub source: Source,
    pub expires_at: u64,
}

/// One worker's view of both lists.
#[derive(Debug, Default)]
pub struct Containment {
    local: HashMap<(EntryKind, u64), u64>,
    external: HashMap<(EntryKind, u64), u64>,
    /// Entry kinds present in either list (a request hashes only for these).
    kinds: [bool; 4],
}

/// What a request is checked with.
pub struct Subject<'a> {
    pub client: &'a str,
    pub subject: Option<&'a str>,
    pub jti: Option<&'a str>,
    pub token: Option<&'a str>,
}

fn kind_index(kind: EntryKind) -> usize {
    usize::from(kind.tag() - 1)
}

impl Containment {
    pub fn is_empty(&self) -> bool {
        self.local.is_empty() && self.external.is_empty()
    }

    fn reindex(&mut self) {
        self.kinds = [false; 4];
        for (kind, _) in self.local.keys().chain(self.external.keys()) {
            if let Some(flag) = self.kinds.get_mut(kind_index(*kind)) {
                *flag = true;
            }
        }
    }

    fn has(&self, kind: EntryKind) -> bool {
        self.kinds.get(kind_index(kind)).copied().unwrap_or(false)
    }

    /// Replaces the playbook entries with the shared list's.
    pub fn load_local(&mut self, entries: &[Entry]) {
        self.local = entries
            .iter()
            .map(|e| ((e.kind, e.hash), e.expires_at))
            .collect();
        self.reindex();
    }

    /// Adds one entry this worker just wrote (before its next load).
    pub fn add_local(&mut self, entry: Entry) {
        let expiry = self.local.entry((entry.kind, entry.hash)).or_insert(0);
        *expiry = (*expiry).max(entry.expires_at);
        self.reindex();
    }

    pub fn load_external(&mut self, entries: &[Entry]) {
        self.external = entries
            .iter()
            .map(|e| ((e.kind, e.hash), e.expires_at))
            .collect();
        self.reindex();
    }

    pub fn drop_external(&mut self) {
        self.external.clear();
        self.reindex();
    }

    /// Active entries per list, for the gauges: (quarantines, revocations).
    pub fn active(&self, now: u64) -> (usize, usize) {
        let mut counts = (0, 0);
        for ((kind, _), expires) in self.local.iter().chain(self.external.iter()) {
            if *expires > now {
                if kind.is_revocation() {
                    counts.1 += 1;
                } else {
                    counts.0 += 1;
                }
            }
        }
        counts
    }

    fn lookup(&self, kind: EntryKind, hash: u64, now: u64) -> Option<Hit> {
        let found = |map: &HashMap<(EntryKind, u64), u64>, source| {
            map.get(&(kind, hash))
                .filter(|expires| **expires > now)
                .map(|expires| Hit {
                    kind,
                    source,
                    expires_at: *expires,
                })
        };
        found(&self.external, Source::External).or_else(|| found(&self.local, Source::Playbook))
    }

    /// The first entry the request meets: revocations, then quarantines. Nothing is hashed
    /// for a kind neither list holds.
    pub fn check(&self, who: &Subject<'_>, now: u64) -> Option<Hit> {
        if self.is_empty() {
            return None;
        }
        if let Some(jti) = who.jti
            && self.has(EntryKind::Jti)
            && let Some(hit) = self.lookup(EntryKind::Jti, hash_of(EntryKind::Jti, jti, None), now)
        {
            return Some(hit);
        }
        if let Some(token) = who.token
            && self.has(EntryKind::TokenSha256)
            && let Some(hit) = self.lookup(EntryKind::TokenSha256, token_hash(token), now)
        {
            return Some(hit);
        }
        if self.has(EntryKind::Client)
            && let Some(hit) = self.lookup(
                EntryKind::Client,
                hash_of(EntryKind::Client, who.client, None),
                now,
            )
        {
            return Some(hit);
        }
        if let Some(subject) = who.subject
            && self.has(EntryKind::ClientSubject)
        {
            return self.lookup(
                EntryKind::ClientSubject,
                hash_of(EntryKind::ClientSubject, who.client, Some(subject)),
                now,
            );
        }
        None
    }
}

/// The external list as a SOC writes it (docs/containment.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExternalList {
    #[serde(default)]
    quarantine: Vec<RawQuarantine>,
    #[serde(default)]
    revoked: Vec<RawRevoked>,
}

#[derive(Debug, Deserialize)]
struct RawQuarantine {
    client_id: String,
    #[serde(default)]
    subject: Option<String>,
    /// Unix seconds.
    expires_at: u64,
}

#[derive(Debug, Deserialize)]
struct RawRevoked {
    #[serde(default)]
    jti: Option<String>,
    /// Hex SHA-256 of the access token.
    #[serde(default)]
    token_sha256: Option<String>,
    expires_at: u64,
}

/// Why an external list was refused (the last good one stays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    NotJson(String),
    TooManyEntries { max: usize },
    BadEntry { index: usize, problem: &'static str },
}

impl std::fmt::Display for ListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListError::NotJson(err) => write!(f, "not a containment list: {err}"),
            ListError::TooManyEntries { max } => write!(f, "more than {max} entries"),
            ListError::BadEntry { index, problem } => write!(f, "revoked[{index}]: {problem}"),
        }
    }
}

/// Parses the external list; entries already expired at `now` are left out.
pub fn parse_external(body: &[u8], max: usize, now: u64) -> Result<Vec<Entry>, ListError> {
    // An object only (serde would read a struct from an array too).
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ListError::NotJson("not a JSON object".to_owned()));
    }
    let raw: RawExternalList =
        serde_json::from_slice(body).map_err(|e| ListError::NotJson(e.to_string()))?;
    if raw.quarantine.len().saturating_add(raw.revoked.len()) > max {
        return Err(ListError::TooManyEntries { max });
    }
    let mut out = Vec::with_capacity(raw.quarantine.len() + raw.revoked.len());
    for q in &raw.quarantine {
        let (kind, hash) = match &q.subject {
            Some(subject) => (
                EntryKind::ClientSubject,
                hash_of(EntryKind::ClientSubject, &q.client_id, Some(subject)),
            ),
            None => (
                EntryKind::Client,
                hash_of(EntryKind::Client, &q.client_id, None),
            ),
        };
        out.push(Entry {
            kind,
            hash,
            expires_at: q.expires_at,
        });
    }
    for (index, r) in raw.revoked.iter().enumerate() {
        let (kind, hash) = match (&r.jti, &r.token_sha256) {
            (Some(jti), None) => (EntryKind::Jti, hash_of(EntryKind::Jti, jti, None)),
            (None, Some(hex_digest)) => {
                let bytes = hex::decode(hex_digest).map_err(|_| ListError::BadEntry {
                    index,
                    problem: "token_sha256 is not hex",
                })?;
                if bytes.len() != 32 {
                    return Err(ListError::BadEntry {
                        index,
                        problem: "token_sha256 must be 32 bytes",
                    });
                }
                (EntryKind::TokenSha256, prefix64(&bytes))
            }
            _ => {
                return Err(ListError::BadEntry {
                    index,
                    problem: "give exactly one of jti, token_sha256",
                });
            }
        };
        out.push(Entry {
            kind,
            hash,
            expires_at: r.expires_at,
        });
    }
    out.retain(|e| e.expires_at > now);
    Ok(out)
}

/// A playbook's count for one client in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WindowCount {
    window_start_ms: u64,
    count: u32,
    last_ms: u64,
}

impl SlotValue for WindowCount {
    fn decode_value(bytes: &[u8]) -> Option<Self> {
        let (start, rest) = bytes.split_first_chunk::<8>()?;
        let (count, rest) = rest.split_first_chunk::<4>()?;
        let last = rest.first_chunk::<8>()?;
        Some(Self {
            window_start_ms: u64::from_be_bytes(*start),
            count: u32::from_be_bytes(*count),
            last_ms: u64::from_be_bytes(*last),
        })
    }
    fn encode_value(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(20);
        out.extend_from_slice(&self.window_start_ms.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.last_ms.to_be_bytes());
        Some(out)
    }
    fn last_seen_ms(&self) -> u64 {
        self.last_ms
    }
}

/// Compare-and-swap attempts per shared update.
const CAS_ATTEMPTS: usize = 3;

/// What a request did to the playbooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaybookFate {
    /// Counted; not yet at `count`.
    Counted,
    /// At `count`: this entry is to be added.
    Triggered(Entry),
    /// No counter slot (all taken by other clients) or every write lost: not counted.
    NotCounted,
    /// The action needs what the request lacks (a subject, a token).
    NotApplicable,
}

/// A request, as the playbooks see it.
pub struct Facts<'a> {
    pub outcome: Outcome,
    pub reason: Option<&'a str>,
    pub verdict: Option<Verdict>,
    pub who: Subject<'a>,
    /// The token's [`token_hash`], for `revoke_token` when it has no `jti` (`who.token` is
    /// not needed).
    pub token_hash: Option<u64>,
    pub now_ms: u64,
}

/// The playbooks this request matches, with what each did. Counters live in `store`
/// (shared data in Envoy): `obguard.playbook.<name>.<slot>`.
pub fn run_playbooks<'c>(
    config: &'c ContainmentConfig,
    store: &mut dyn BaselineStore,
    facts: &Facts<'_>,
) -> Vec<(&'c Playbook, PlaybookFate)> {
    let mut out = Vec::new();
    for playbook in &config.playbooks {
        if !playbook.matches(facts.outcome, facts.reason, facts.verdict) {
            continue;
        }
        let Some(target) = target_of(playbook, facts) else {
            out.push((playbook, PlaybookFate::NotApplicable));
            continue;
        };
        let fate = if playbook.count <= 1 {
            PlaybookFate::Triggered(target)
        } else {
            count(config, playbook, store, facts, target)
        };
        out.push((playbook, fate));
    }
    out
}

/// The entry a playbook adds for this request.
fn target_of(playbook: &Playbook, facts: &Facts<'_>) -> Option<Entry> {
    let who = &facts.who;
    let (kind, hash) = match playbook.action {
        PlaybookAction::QuarantineClient => (
            EntryKind::Client,
            hash_of(EntryKind::Client, who.client, None),
        ),
        PlaybookAction::QuarantineSubject => (
            EntryKind::ClientSubject,
            hash_of(EntryKind::ClientSubject, who.client, Some(who.subject?)),
        ),
        PlaybookAction::RevokeToken => match (who.jti, facts.token_hash) {
            (Some(jti), _) => (EntryKind::Jti, hash_of(EntryKind::Jti, jti, None)),
            (None, Some(hash)) => (EntryKind::TokenSha256, hash),
            (None, None) => return None,
        },
    };
    Some(Entry {
        kind,
        hash,
        expires_at: (facts.now_ms / 1000).saturating_add(playbook.duration_s),
    })
}

fn count(
    config: &ContainmentConfig,
    playbook: &Playbook,
    store: &mut dyn BaselineStore,
    facts: &Facts<'_>,
    target: Entry,
) -> PlaybookFate {
    let prefix = format!("obguard.playbook.{}", playbook.name);
    let space = SlotSpace {
        prefix: &prefix,
        slots: config.counter_slots,
        ttl_s: playbook.within_s,
    };
    // Counted per client (or client and subject for subject quarantines).
    let id = match (playbook.action, facts.who.subject) {
        (PlaybookAction::QuarantineSubject, Some(subject)) => {
            format!("{}\u{0}{subject}", facts.who.client)
        }
        _ => facts.who.client.to_owned(),
    };
    let window_ms = playbook.within_s.saturating_mul(1000);
    for _ in 0..CAS_ATTEMPTS {
        let (slot, owner) = resolve_in::<WindowCount>(store, space, &id, facts.now_ms);
        let Some(key) = slot.key else {
            return PlaybookFate::NotCounted;
        };
        let mut value = slot.value.unwrap_or(WindowCount {
            window_start_ms: facts.now_ms,
            count: 0,
            last_ms: facts.now_ms,
        });
        if facts.now_ms.saturating_sub(value.window_start_ms) > window_ms {
            value.window_start_ms = facts.now_ms;
            value.count = 0;
        }
        value.count = value.count.saturating_add(1);
        value.last_ms = facts.now_ms;
        let triggered = value.count >= playbook.count;
        if triggered {
            // Counting starts again: another `count` within the window re-triggers (and
            // extends the entry).
            value.count = 0;
            value.window_start_ms = facts.now_ms;
        }
        let Some(bytes) = encode_slot_value(owner, &value) else {
            return PlaybookFate::NotCounted;
        };
        if store.store(&key, &bytes, slot.cas.or(Some(0))).is_ok() {
            return if triggered {
                PlaybookFate::Triggered(target)
            } else {
                PlaybookFate::Counted
            };
        }
    }
    PlaybookFate::NotCounted
}

/// Adds `entry` to the shared local list (compare-and-swap, retried). Returns what the
/// write dropped, or `None` when every attempt lost.
pub fn add_entry(
    store: &mut dyn BaselineStore,
    entry: Entry,
    max_entries: usize,
    now: u64,
) -> Option<Written> {
    for _ in 0..CAS_ATTEMPTS {
        let slot = store.load(super::config::LOCAL_LIST_KEY);
        let current = slot.bytes.as_deref().map(decode_list).unwrap_or_default();
        let (merged, written) = merge(current, entry, max_entries, now);
        if store
            .store(
                super::config::LOCAL_LIST_KEY,
                &encode_list(&merged),
                slot.cas.or(Some(0)),
            )
            .is_ok()
        {
            return Some(written);
        }
    }
    None
}

/// Rewrites the shared local list without its expired entries, when it has any. Returns
/// how many were dropped (0 when none, or another worker wrote first: it will be seen on
/// the next load).
pub fn sweep(store: &mut dyn BaselineStore, now: u64) -> usize {
    let slot = store.load(super::config::LOCAL_LIST_KEY);
    let Some(bytes) = slot.bytes else {
        return 0;
    };
    let entries = decode_list(&bytes);
    let live: Vec<Entry> = entries
        .iter()
        .copied()
        .filter(|e| e.expires_at > now)
        .collect();
    let expired = entries.len() - live.len();
    if expired == 0 {
        return 0;
    }
    match store.store(
        super::config::LOCAL_LIST_KEY,
        &encode_list(&live),
        slot.cas.or(Some(0)),
    ) {
        Ok(()) => expired,
        Err(_) => 0,
    }
}

/// A playbook's current count for `id` (tests).
#[cfg(test)]
fn counter_of(store: &dyn BaselineStore, playbook: &str, id: &str, slots: u32) -> Option<u32> {
    let prefix = format!("obguard.playbook.{playbook}");
    let space = SlotSpace {
        prefix: &prefix,
        slots,
        ttl_s: 600,
    };
    let (slot, _) = resolve_in::<WindowCount>(store, space, id, 0);
    slot.value.map(|v| v.count)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::assess::baselines::MemoryStore;
    use crate::respond::config::{ContainmentConfig, RawContainment};

    fn config(playbooks: serde_json::Value) -> ContainmentConfig {
        let raw: RawContainment =
            serde_json::from_value(serde_json::json!({ "playbooks": playbooks })).unwrap();
        ContainmentConfig::compile("containment", &raw).unwrap()
    }

    fn who<'a>(client: &'a str, jti: Option<&'a str>) -> Subject<'a> {
        Subject {
            client,
            subject: Some("psu-1"),
            jti,
            token: Some("header.payload.sig"),
        }
    }

    fn blocked<'a>(client: &'a str, now_ms: u64) -> Facts<'a> {
        Facts {
            outcome: Outcome::Blocked,
            reason: Some("risk"),
            verdict: Some(Verdict::Block),
            who: who(client, Some("jti-1")),
            token_hash: None,
            now_ms,
        }
    }

    #[test]
    fn two_blocks_within_the_window_quarantine_the_client() {
        let config = config(serde_json::json!([{
            "name": "repeat-blocks", "when": {"outcomes": ["blocked"]},
            "count": 2, "within_s": 600, "action": "quarantine_client", "duration_s": 3600
        }]));
        let mut store = MemoryStore::default();
        let t0 = 1_000_000_000;
        let first = run_playbooks(&config, &mut store, &blocked("tpp@ns", t0));
        assert_eq!(first[0].1, PlaybookFate::Counted);
        // Past the window: counting starts again.
        let late = t0 + 601_000;
        assert_eq!(
            run_playbooks(&config, &mut store, &blocked("tpp@ns", late))[0].1,
            PlaybookFate::Counted
        );
        let second = run_playbooks(&config, &mut store, &blocked("tpp@ns", late + 5_000));
        let PlaybookFate::Triggered(entry) = second[0].1 else {
            panic!("expected a trigger, got {second:?}");
        };
        assert_eq!(entry.kind, EntryKind::Client);
        assert_eq!(entry.expires_at, (late + 5_000) / 1000 + 3600);
        assert_eq!(counter_of(&store, "repeat-blocks", "tpp@ns", 4096), Some(0));
        // Another client's blocks are counted apart.
        assert_eq!(
            run_playbooks(&config, &mut store, &blocked("other@ns", late))[0].1,
            PlaybookFate::Counted
        );

        let now = (late + 5_000) / 1000;
        add_entry(&mut store, entry, 10, now).unwrap();
        let mut view = Containment::default();
        view.load_local(&decode_list(
            &store
                .load(super::super::config::LOCAL_LIST_KEY)
                .bytes
                .unwrap(),
        ));
        let hit = view.check(&who("tpp@ns", None), now).unwrap();
        assert_eq!(
            (hit.kind, hit.source),
            (EntryKind::Client, Source::Playbook)
        );
        assert!(view.check(&who("other@ns", None), now).is_none());
        assert!(
            view.check(&who("tpp@ns", None), now + 3600).is_none(),
            "expired"
        );
    }

    #[test]
    fn a_replayed_proof_revokes_the_jti_and_tokens_without_one_by_hash() {
        let config = config(serde_json::json!([{
            "name": "replayed-proof", "when": {"reasons": ["dpop_proof_replayed"]},
            "action": "revoke_token", "duration_s": 86400
        }]));
        let mut store = MemoryStore::default();
        let facts = Facts {
            outcome: Outcome::InvalidToken,
            reason: Some("dpop_proof_replayed"),
            verdict: None,
            who: who("tpp@ns", Some("jti-9")),
            token_hash: Some(token_hash("header.payload.sig")),
            now_ms: 5_000,
        };
        let PlaybookFate::Triggered(entry) = run_playbooks(&config, &mut store, &facts)[0].1 else {
            panic!("one replay is enough");
        };
        let mut view = Containment::default();
        view.add_local(entry);
        assert_eq!(
            view.check(&who("someone-else@ns", Some("jti-9")), 6)
                .map(|h| h.kind),
            Some(EntryKind::Jti)
        );
        assert!(view.check(&who("tpp@ns", Some("jti-10")), 6).is_none());
        let no_jti = Facts {
            who: who("tpp@ns", None),
            ..facts
        };
        let PlaybookFate::Triggered(entry) = run_playbooks(&config, &mut store, &no_jti)[0].1
        else {
            panic!("revoked by hash");
        };
        assert_eq!(entry.kind, EntryKind::TokenSha256);
        // Other outcomes do not match.
        assert!(run_playbooks(&config, &mut store, &blocked("tpp@ns", 5_000)).is_empty());
    }

    #[test]
    fn the_local_list_is_bounded_and_drops_expired_entries() {
        let e = |hash, expires_at| Entry {
            kind: EntryKind::Client,
            hash,
            expires_at,
        };
        let (list, written) = merge(vec![e(1, 5), e(2, 50), e(3, 60)], e(4, 70), 2, 10);
        assert_eq!(
            written,
            Written {
                expired: 1,
                evicted: 1
            }
        );
        assert_eq!(list, vec![e(4, 70), e(3, 60)]);
        let (list, _) = merge(list, e(3, 100), 2, 10);
        assert!(list.contains(&e(3, 100)), "the later expiry wins");
        assert_eq!(decode_list(&encode_list(&list)), list);
        assert!(decode_list(&[9, 1, 2]).is_empty(), "unknown version");
        let mut store = MemoryStore::default();
        add_entry(&mut store, e(7, 20), 10, 10).unwrap();
        add_entry(&mut store, e(8, 40), 10, 10).unwrap();
        assert_eq!(sweep(&mut store, 30), 1);
        assert_eq!(sweep(&mut store, 30), 0);
    }

    #[test]
    fn the_external_list_parses_strictly() {
        let digest = hex::encode(Sha256::digest(b"the.token.itself"));
        let body = serde_json::json!({
            "quarantine": [
                {"client_id": "tpp@ns", "expires_at": 100},
                {"client_id": "tpp2@ns", "subject": "psu-1", "expires_at": 100},
                {"client_id": "old@ns", "expires_at": 5}
            ],
            "revoked": [{"jti": "j1", "expires_at": 100}, {"token_sha256": digest, "expires_at": 100}]
        });
        let entries = parse_external(body.to_string().as_bytes(), 10, 10).unwrap();
        assert_eq!(entries.len(), 4, "the expired one is left out");
        let mut view = Containment::default();
        view.load_external(&entries);
        assert_eq!(view.active(10), (2, 2));
        let token = Subject {
            client: "x@ns",
            subject: None,
            jti: None,
            token: Some("the.token.itself"),
        };
        assert_eq!(
            view.check(&token, 10).map(|h| (h.kind, h.source)),
            Some((EntryKind::TokenSha256, Source::External))
        );
        let subject = Subject {
            client: "tpp2@ns",
            subject: Some("psu-1"),
            jti: None,
            token: None,
        };
        assert_eq!(
            view.check(&subject, 10).map(|h| h.kind),
            Some(EntryKind::ClientSubject)
        );
        assert!(
            view.check(
                &Subject {
                    subject: Some("psu-2"),
                    ..subject
                },
                10
            )
            .is_none()
        );
        assert!(matches!(
            parse_external(b"[]", 10, 10),
            Err(ListError::NotJson(_))
        ));
        assert_eq!(
            parse_external(body.to_string().as_bytes(), 3, 10),
            Err(ListError::TooManyEntries { max: 3 })
        );
        let bad =
            serde_json::json!({"revoked": [{"jti": "a", "token_sha256": digest, "expires_at": 9}]});
        assert!(matches!(
            parse_external(bad.to_string().as_bytes(), 10, 0),
            Err(ListError::BadEntry { index: 0, .. })
        ));
        let unknown = serde_json::json!({"quarantined": []});
        assert!(parse_external(unknown.to_string().as_bytes(), 10, 0).is_err());
    }
}
