//! The rules' per-key state: small, fixed-shape, postcard-encoded, so the filter can keep one
//! value per (client, account) and per (client, customer) in proxy-wasm shared data.
//! Decoding never panics: corrupt, truncated, oversized or other-version bytes are a
//! [`RuleStateError`] (the filter then starts that key afresh).

use core::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Wire version of both state types (their first byte).
pub const RULE_STATE_VERSION: u8 = 1;

/// Most unattended accesses [`AccountAccesses`] remembers (so the largest
/// `unattended_accesses_per_day` it can enforce).
pub const MAX_TRACKED_ACCESSES: usize = 10;

/// Upper bound of [`AccountAccesses::encode`]: 42 bytes (a version byte, the clock in at
/// most 10, a length byte, ten 3-byte offsets). With today's clock: 19 bytes for four
/// accesses in a day, 37 for ten.
pub const MAX_ACCOUNT_STATE_LEN: usize = 42;

/// Upper bound of [`CustomerPayments::encode`]: 39 bytes (a version byte, the bucket index
/// in at most 5, a length byte, 7 + 25 one-byte counters); 38 with today's clock.
pub const MAX_PAYMENT_STATE_LEN: usize = 39;

const DAY_S: u64 = 86_400;
/// The PSD2 window: 24 h less an hour of scheduler jitter. Four refreshes every six hours
/// drift by minutes (00:22, 06:20, 12:14, 18:18, then 00:02), and a strictly rolling 24 h
/// would count the next day's first refresh as the fifth.
pub const PSD2_WINDOW_S: u64 = DAY_S - 3_600;
const TEN_MINUTES_MS: u64 = 600_000;
/// Ten-minute buckets in the hour window: the current one and six before it.
const HOUR_BUCKETS: usize = 7;
/// Hour buckets in the day window: the current one and 24 before it.
const DAY_BUCKETS: usize = 25;

/// Why rule state bytes were not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleStateError {
    #[error("rule state is {0} bytes, more than its limit")]
    TooLarge(usize),
    #[error("rule state bytes are corrupt: {0}")]
    Decode(postcard::Error),
    #[error("rule state has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("rule state version {0}, this build reads version 1")]
    Version(u8),
    #[error("rule state is inconsistent: {0}")]
    Corrupt(&'static str),
}

/// Bytes serialised as one postcard byte string (length + raw bytes): one small decoder for
/// both state types instead of an unrolled one per array element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed {
    buf: [u8; PACKED_MAX],
    len: u8,
}

const PACKED_MAX: usize = 32;

impl Packed {
    fn new() -> Self {
        Self {
            buf: [0; PACKED_MAX],
            len: 0,
        }
    }

    fn as_slice(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    fn push(&mut self, bytes: &[u8]) {
        let at = usize::from(self.len);
        if let Some(dst) = self.buf.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len = u8::try_from(at + bytes.len()).unwrap_or(0);
        }
    }
}

impl Serialize for Packed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.as_slice())
    }
}

struct PackedVisitor;

impl Visitor<'_> for PackedVisitor {
    type Value = Packed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("at most 32 bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Packed, E> {
        if v.len() > PACKED_MAX {
            return Err(E::invalid_length(v.len(), &self));
        }
        let mut packed = Packed::new();
        packed.push(v);
        Ok(packed)
    }
}

impl<'de> Deserialize<'de> for Packed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(PackedVisitor)
    }
}

fn take<'de, T: Deserialize<'de>>(bytes: &'de [u8], max: usize) -> Result<T, RuleStateError> {
    if bytes.len() > max {
        return Err(RuleStateError::TooLarge(bytes.len()));
    }
    let (value, rest): (T, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(RuleStateError::Decode)?;
    if !rest.is_empty() {
        return Err(RuleStateError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

/// Unattended accesses of one account by one client: when the last counted read was, and
/// when the accesses of the last 24 h started (at most [`MAX_TRACKED_ACCESSES`]).
/// Start with [`AccountAccesses::new`]; [`crate::rules::check_account_read`] updates it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountAccesses {
    /// Unix seconds of the last counted (unattended, not refused) read; 0: none yet.
    last_read_s: u64,
    /// Unix seconds each remembered access started, oldest first.
    starts: [u64; MAX_TRACKED_ACCESSES],
    len: u8,
}

/// Both state types on the wire (one encoder and one decoder in the module): a version, a
/// clock value and a byte string.
///
/// * [`AccountAccesses`]: the last counted read (Unix seconds), then each access start as
///   seconds before it (≤ 1 day), 3 bytes little-endian each, oldest first.
/// * [`CustomerPayments`]: the newest bucket's index, then the 7 ten-minute and 25 hour
///   counters.
#[derive(Serialize, Deserialize)]
struct Wire {
    version: u8,
    clock: u64,
    packed: Packed,
}

fn encode_wire(clock: u64, packed: Packed) -> alloc::vec::Vec<u8> {
    let wire = Wire {
        version: RULE_STATE_VERSION,
        clock,
        packed,
    };
    // Integers and a bounded byte string: serialisation cannot fail.
    postcard::to_allocvec(&wire).unwrap_or_default()
}

fn decode_wire(bytes: &[u8], max: usize) -> Result<Wire, RuleStateError> {
    let wire: Wire = take(bytes, max)?;
    if wire.version != RULE_STATE_VERSION {
        return Err(RuleStateError::Version(wire.version));
    }
    Ok(wire)
}

impl AccountAccesses {
    pub fn new() -> Self {
        Self::default()
    }

    fn used(&self) -> &[u64] {
        let len = usize::from(self.len).min(MAX_TRACKED_ACCESSES);
        self.starts.get(..len).unwrap_or(&[])
    }

    /// Unix ms of the last counted read (0: none): the filter's TTL clock for the slot.
    pub fn last_seen_ms(&self) -> u64 {
        self.last_read_s.saturating_mul(1000)
    }

    /// Accesses remembered (started in the 24 h before the last check that counted).
    pub fn accesses_in_window(&self) -> usize {
        self.used().len()
    }

    /// Whether a read at `now_s` continues the last access (also when the clock went back).
    pub(crate) fn continues_access(&self, now_s: u64, gap_s: u32) -> bool {
        self.last_read_s != 0 && now_s.saturating_sub(self.last_read_s) < u64::from(gap_s)
    }

    pub(crate) fn extend_access(&mut self, now_s: u64) {
        self.last_read_s = self.last_read_s.max(now_s);
    }

    /// Drops accesses that started [`PSD2_WINDOW_S`] or more before `now_s`.
    pub(crate) fn forget_before(&mut self, now_s: u64) {
        let kept: ([u64; MAX_TRACKED_ACCESSES], usize) = self
            .used()
            .iter()
            .filter(|start| start.saturating_add(PSD2_WINDOW_S) > now_s)
            .fold(([0; MAX_TRACKED_ACCESSES], 0), |(mut out, n), start| {
                if let Some(slot) = out.get_mut(n) {
                    *slot = *start;
                }
                (out, n + 1)
            });
        self.starts = kept.0;
        self.len = u8::try_from(kept.1.min(MAX_TRACKED_ACCESSES)).unwrap_or(0);
    }

    /// Records a new access starting at `now_s` (the oldest is dropped when full).
    pub(crate) fn start_access(&mut self, now_s: u64) {
        let len = usize::from(self.len).min(MAX_TRACKED_ACCESSES);
        if len == MAX_TRACKED_ACCESSES {
            self.starts.rotate_left(1);
            if let Some(last) = self.starts.last_mut() {
                *last = now_s;
            }
        } else if let Some(slot) = self.starts.get_mut(len) {
            *slot = now_s;
            self.len = u8::try_from(len + 1).unwrap_or(0);
        }
        self.last_read_s = self.last_read_s.max(now_s);
    }

    /// Postcard bytes, at most [`MAX_ACCOUNT_STATE_LEN`]. Accesses that started more than a
    /// day before the last read are left out: no later count can include them.
    pub fn encode(&self) -> alloc::vec::Vec<u8> {
        let mut ago = Packed::new();
        for start in self.used() {
            let before = self.last_read_s.saturating_sub(*start);
            if before <= DAY_S {
                let [a, b, c, ..] = before.to_le_bytes();
                ago.push(&[a, b, c]);
            }
        }
        encode_wire(self.last_read_s, ago)
    }

    /// Decodes bytes written by [`Self::encode`]; anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, RuleStateError> {
        let wire = decode_wire(bytes, MAX_ACCOUNT_STATE_LEN)?;
        let last_read_s = wire.clock;
        let bytes = wire.packed.as_slice();
        if !bytes.len().is_multiple_of(3) || bytes.len() / 3 > MAX_TRACKED_ACCESSES {
            return Err(RuleStateError::Corrupt("access list length"));
        }
        if last_read_s == 0 && !bytes.is_empty() {
            return Err(RuleStateError::Corrupt("accesses without a last read"));
        }
        let mut state = Self {
            last_read_s,
            ..Self::default()
        };
        let mut previous = u64::MAX;
        for entry in bytes.chunks_exact(3) {
            let ago = entry
                .iter()
                .rev()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            if ago > DAY_S || ago > previous {
                return Err(RuleStateError::Corrupt("access offsets"));
            }
            previous = ago;
            if let Some(slot) = state.starts.get_mut(usize::from(state.len)) {
                *slot = last_read_s.saturating_sub(ago);
                state.len += 1;
            }
        }
        Ok(state)
    }
}

/// Payments of one customer through one client, counted in buckets: seven 10-minute buckets
/// (the hour window, 60 to 70 min) and 25 hour buckets (the day window, 24 to 25 h), each a
/// saturating one-byte counter. Start with [`CustomerPayments::new`];
/// [`crate::rules::check_payment`] updates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerPayments {
    /// Index (Unix ms / 600 000) of the newest 10-minute bucket; 0: nothing recorded.
    slot: u32,
    tens: [u8; HOUR_BUCKETS],
    hours: [u8; DAY_BUCKETS],
}

fn ring_index(i: u32, n: usize) -> usize {
    usize::try_from(i).unwrap_or(0) % n
}

impl Default for CustomerPayments {
    fn default() -> Self {
        Self::new()
    }
}

impl CustomerPayments {
    pub fn new() -> Self {
        Self {
            slot: 0,
            tens: [0; HOUR_BUCKETS],
            hours: [0; DAY_BUCKETS],
        }
    }

    /// Unix ms of the newest bucket's start (0: none): the filter's TTL clock for the slot.
    pub fn last_seen_ms(&self) -> u64 {
        u64::from(self.slot).saturating_mul(TEN_MINUTES_MS)
    }

    /// Moves the window to `now_ms`, clearing buckets it passed. Earlier than the newest
    /// bucket (the clock went back): nothing moves, the payment counts in the newest bucket.
    pub(crate) fn advance(&mut self, now_ms: u64) {
        let now = u32::try_from(now_ms / TEN_MINUTES_MS).unwrap_or(u32::MAX);
        if now <= self.slot {
            return;
        }
        let passed = now - self.slot;
        if passed as usize >= HOUR_BUCKETS {
            self.tens = [0; HOUR_BUCKETS];
        } else {
            for i in 1..=passed {
                let at = ring_index(self.slot.saturating_add(i), HOUR_BUCKETS);
                if let Some(b) = self.tens.get_mut(at) {
                    *b = 0;
                }
            }
        }
        let (old_hour, new_hour) = (self.slot / 6, now / 6);
        let passed = new_hour - old_hour;
        if passed as usize >= DAY_BUCKETS {
            self.hours = [0; DAY_BUCKETS];
        } else {
            for i in 1..=passed {
                let at = ring_index(old_hour.saturating_add(i), DAY_BUCKETS);
                if let Some(b) = self.hours.get_mut(at) {
                    *b = 0;
                }
            }
        }
        self.slot = now;
    }

    /// Payments in the hour window and in the day window.
    pub fn counts(&self) -> (u32, u32) {
        let sum = |b: &[u8]| b.iter().map(|c| u32::from(*c)).sum::<u32>();
        (sum(&self.tens), sum(&self.hours))
    }

    pub(crate) fn record(&mut self) {
        if let Some(b) = self.tens.get_mut(ring_index(self.slot, HOUR_BUCKETS)) {
            *b = b.saturating_add(1);
        }
        if let Some(b) = self.hours.get_mut(ring_index(self.slot / 6, DAY_BUCKETS)) {
            *b = b.saturating_add(1);
        }
    }

    /// Postcard bytes, at most [`MAX_PAYMENT_STATE_LEN`].
    pub fn encode(&self) -> alloc::vec::Vec<u8> {
        let mut buckets = Packed::new();
        buckets.push(&self.tens);
        buckets.push(&self.hours);
        encode_wire(u64::from(self.slot), buckets)
    }

    /// Decodes bytes written by [`Self::encode`]; anything else is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, RuleStateError> {
        let wire = decode_wire(bytes, MAX_PAYMENT_STATE_LEN)?;
        let slot =
            u32::try_from(wire.clock).map_err(|_| RuleStateError::Corrupt("bucket index"))?;
        let (tens, hours) = wire
            .packed
            .as_slice()
            .split_first_chunk::<HOUR_BUCKETS>()
            .ok_or(RuleStateError::Corrupt("bucket count"))?;
        let hours: [u8; DAY_BUCKETS] = hours
            .try_into()
            .map_err(|_| RuleStateError::Corrupt("bucket count"))?;
        Ok(Self {
            slot,
            tens: *tens,
            hours,
        })
    }
}
