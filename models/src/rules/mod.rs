//! Hard rules: limits a behavioural model should not have to learn, because a regulation or a
//! product decision states them exactly. They are scored next to the model (the stricter
//! verdict wins) and named in the reasons.
//!
//! * **`psd2_unattended_limit`** — PSD2 RTS Art. 36(5)(b): without the customer (PSU)
//!   actively requesting it, an AISP may access an account at most four times in 24 hours.
//!   A read is *customer-present* when it carries `x-fapi-customer-ip-address`; those are
//!   not counted. One *access* is not one HTTP request: a refresh reads the account, its
//!   balances and several pages of transactions, so a read of the same account less than
//!   [`Psd2Rule::access_gap_s`] after the previous counted read of it belongs to the same
//!   access. The 5th unattended access of one account by one client whose start lies within
//!   a rolling 24 h is a hit.
//! * **`payment_velocity`** — payment submissions (a `POST` that creates a payment, e.g.
//!   `/open-banking/v3.1/pisp/domestic-payments`; never the `*-payment-consents` endpoints)
//!   per customer (the token's `sub`) and client above [`PaymentVelocityRule::max_per_hour`]
//!   or [`PaymentVelocityRule::max_per_day`] are a hit.
//!
//! Hits are **not recorded**: a refused 5th access is not an access, a refused payment is not
//! a payment. Every further request over the limit is a hit of its own until the window has
//! room again (the oldest access or payment ages out).
//!
//! # Using it
//!
//! ```
//! use obguard_models::rules::{
//!     AccountAccesses, RuleConfig, RuleSubject, check_account_read, classify,
//! };
//! let cfg = RuleConfig::default(); // both rules on, regulatory defaults
//! let psd2 = cfg.psd2.as_ref().expect("on by default");
//! let path = "/open-banking/v3.1/aisp/accounts/acc-7/transactions?page=2";
//! let RuleSubject::AccountRead { account_id, customer_present } =
//!     classify("GET", path, Some("psu-1"), false)
//! else {
//!     unreachable!()
//! };
//! assert_eq!(account_id, "acc-7");
//! // State per (client, account): from shared data, `AccountAccesses::decode`, or new.
//! let mut state = AccountAccesses::new();
//! let hour_ms = 3_600_000;
//! for access in 0..4u64 {
//!     assert!(check_account_read(psd2, &mut state, access * hour_ms, customer_present).is_none());
//! }
//! let hit = check_account_read(psd2, &mut state, 4 * hour_ms, false).expect("5th access");
//! assert_eq!(hit.reason, "psd2_unattended_limit(5th unattended access in 24h)");
//! let bytes = state.encode(); // store back (compare-and-swap in the filter)
//! assert!(bytes.len() <= obguard_models::rules::MAX_ACCOUNT_STATE_LEN);
//! ```
//!
//! The filter keeps [`AccountAccesses`] per (client, account) and [`CustomerPayments`] per
//! (client, customer) in proxy-wasm shared data; the CLI replays records through
//! [`RuleReplay`] (feature `train`), which holds the same state in a map.
//!
//! Time going backwards (a clock step, records out of order) never panics: a read earlier
//! than the previous one counts as part of the same access, a payment earlier than the
//! newest recorded one counts in the newest bucket.

use alloc::string::{String, ToString};

use crate::model::Verdict;

mod state;
pub use state::{
    AccountAccesses, CustomerPayments, MAX_ACCOUNT_STATE_LEN, MAX_PAYMENT_STATE_LEN,
    MAX_TRACKED_ACCESSES, RuleStateError,
};

#[cfg(feature = "train")]
mod replay;
#[cfg(feature = "train")]
pub use replay::RuleReplay;

/// Name of the PSD2 unattended-access rule (metric suffix, `reason` log field).
pub const PSD2_UNATTENDED_LIMIT: &str = "psd2_unattended_limit";
/// Name of the payment-velocity rule.
pub const PAYMENT_VELOCITY: &str = "payment_velocity";

/// Which rules run, and with what limits. `Default`: both on, with their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleConfig {
    /// `None`: the PSD2 rule is off.
    pub psd2: Option<Psd2Rule>,
    /// `None`: the payment-velocity rule is off.
    pub payments: Option<PaymentVelocityRule>,
}

impl Default for RuleConfig {
    fn default() -> Self {
        Self {
            psd2: Some(Psd2Rule::default()),
            payments: Some(PaymentVelocityRule::default()),
        }
    }
}

/// The PSD2 RTS Art. 36(5) unattended access limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Psd2Rule {
    /// Unattended accesses allowed per account and client in a rolling 24 h (default 4, the
    /// RTS's number); the next one is a hit. 1 to [`MAX_TRACKED_ACCESSES`]
    /// ([`Psd2Rule::validate`]).
    pub unattended_accesses_per_day: u8,
    /// Reads of the same account less than this many seconds after the previous counted read
    /// of it are the same access (default 300).
    pub access_gap_s: u32,
    /// What a hit asks for (default [`Verdict::Throttle`]).
    pub verdict: Verdict,
}

impl Default for Psd2Rule {
    fn default() -> Self {
        Self {
            unattended_accesses_per_day: 4,
            access_gap_s: 300,
            verdict: Verdict::Throttle,
        }
    }
}

impl Psd2Rule {
    /// Largest `access_gap_s` accepted (one hour: a longer gap would merge separate refreshes).
    pub const MAX_ACCESS_GAP_S: u32 = 3_600;

    /// Checks the limits the state format relies on; the message names the problem.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.unattended_accesses_per_day == 0
            || usize::from(self.unattended_accesses_per_day) > MAX_TRACKED_ACCESSES
        {
            return Err("unattended_accesses_per_day must be 1 to 10");
        }
        if self.access_gap_s == 0 || self.access_gap_s > Self::MAX_ACCESS_GAP_S {
            return Err("access_gap_s must be 1 to 3600");
        }
        Ok(())
    }
}

/// Payment submissions per customer and client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentVelocityRule {
    /// Payments allowed in a rolling hour (default 15; legitimate payroll bursts are 4–14).
    /// 1 to [`PaymentVelocityRule::MAX_PER_HOUR`]. The hour is counted in 10-minute buckets:
    /// the window is the current bucket and the six before it, so it spans 60 to 70 minutes
    /// (never shorter than an hour).
    pub max_per_hour: u16,
    /// Payments allowed in a rolling day (default 40), counted in hour buckets: the current
    /// hour and the 24 before it (24 to 25 hours). At least `max_per_hour`, at most
    /// [`PaymentVelocityRule::MAX_PER_DAY`].
    pub max_per_day: u16,
    /// What a hit asks for (default [`Verdict::Throttle`]).
    pub verdict: Verdict,
}

impl Default for PaymentVelocityRule {
    fn default() -> Self {
        Self {
            max_per_hour: 15,
            max_per_day: 40,
            verdict: Verdict::Throttle,
        }
    }
}

impl PaymentVelocityRule {
    /// Largest `max_per_hour`: the state counts payments in one-byte buckets.
    pub const MAX_PER_HOUR: u16 = 250;
    /// Largest `max_per_day`.
    pub const MAX_PER_DAY: u16 = 5_000;

    /// Checks the limits the state format relies on; the message names the problem.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.max_per_hour == 0 || self.max_per_hour > Self::MAX_PER_HOUR {
            return Err("max_per_hour must be 1 to 250");
        }
        if self.max_per_day < self.max_per_hour || self.max_per_day > Self::MAX_PER_DAY {
            return Err("max_per_day must be at least max_per_hour and at most 5000");
        }
        Ok(())
    }
}

/// What a request is to the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSubject<'a> {
    /// A read (`GET`/`HEAD`) of one account's data: the account, its balances,
    /// transactions, ...
    AccountRead {
        account_id: &'a str,
        customer_present: bool,
    },
    /// A payment submission by this customer (the token's `sub`).
    Payment { customer: &'a str },
    /// Neither: no rule applies.
    Other,
}

/// Classifies a request by its path, for UK Open Banking style paths (what the CLI uses on
/// records, and the filter when a rule names no routes):
///
/// * `GET`/`HEAD` of a path with an `accounts/<id>` segment pair (the id as
///   [`crate::split_path`] recognises ids: it has a digit, or is a long token) →
///   [`RuleSubject::AccountRead`]. `GET /accounts` (the list) is not an account read.
/// * `POST` whose last path segment ends in `-payments` or `-standing-orders`
///   (`domestic-payments`, `international-scheduled-payments`, `file-payments`,
///   `domestic-standing-orders`, ...) with a non-empty `sub` → [`RuleSubject::Payment`].
///   Consents (`*-payment-consents`, `*-standing-order-consents`) do not end that way.
/// * Anything else → [`RuleSubject::Other`].
///
/// The query string and fragment are ignored.
pub fn classify<'a>(
    method: &str,
    path: &'a str,
    sub: Option<&'a str>,
    customer_present: bool,
) -> RuleSubject<'a> {
    let path = path
        .find(['?', '#'])
        .map_or(path, |end| path.get(..end).unwrap_or(""));
    if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD") {
        // The first `accounts` segment and the one after it.
        let Some(at) = path.find("/accounts/") else {
            return RuleSubject::Other;
        };
        let after = path.get(at + "/accounts/".len()..).unwrap_or("");
        let id = after
            .find('/')
            .map_or(after, |end| after.get(..end).unwrap_or(""));
        return if crate::event::is_resource_id(id) {
            RuleSubject::AccountRead {
                account_id: id,
                customer_present,
            }
        } else {
            RuleSubject::Other
        };
    }
    if method.eq_ignore_ascii_case("POST") {
        let trimmed = path.trim_end_matches('/');
        let last = trimmed.rsplit_once('/').map_or(trimmed, |(_, last)| last);
        if last.ends_with("-payments") || last.ends_with("-standing-orders") {
            return match sub.filter(|s| !s.is_empty()) {
                Some(customer) => RuleSubject::Payment { customer },
                None => RuleSubject::Other,
            };
        }
    }
    RuleSubject::Other
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// [`PSD2_UNATTENDED_LIMIT`] or [`PAYMENT_VELOCITY`].
    pub rule: &'static str,
    /// For the reasons list, e.g. `psd2_unattended_limit(5th unattended access in 24h)` or
    /// `payment_velocity(16th payment in 1h)`.
    pub reason: String,
    /// The rule's configured verdict.
    pub verdict: Verdict,
}

/// `1st`, `2nd`, `3rd`, `4th`, ..., `11th`, `12th`, `13th`, `21st`.
fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    let mut out = n.to_string();
    out.push_str(suffix);
    out
}

/// `<rule>(<nth> <what>)`, e.g. `payment_velocity(16th payment in 1h)`.
fn hit_reason(rule: &str, nth: u64, what: &str) -> String {
    let mut out = String::with_capacity(rule.len() + what.len() + 8);
    out.push_str(rule);
    out.push('(');
    out.push_str(&ordinal(nth));
    out.push(' ');
    out.push_str(what);
    out.push(')');
    out
}

/// The PSD2 rule for one read of one account (`state`: that account's, for this client).
/// Customer-present reads are not counted and leave `state` alone. A read within
/// `access_gap_s` of the previous counted read is the same access (the state remembers the
/// later time). Otherwise it starts a new access: a hit when `unattended_accesses_per_day`
/// accesses already started in the last 24 h (state unchanged), else recorded.
pub fn check_account_read(
    rule: &Psd2Rule,
    state: &mut AccountAccesses,
    now_ms: u64,
    customer_present: bool,
) -> Option<RuleHit> {
    if customer_present {
        return None;
    }
    let now_s = now_ms / 1000;
    if state.continues_access(now_s, rule.access_gap_s) {
        state.extend_access(now_s);
        return None;
    }
    state.forget_before(now_s);
    let started = state.accesses_in_window();
    if started >= usize::from(rule.unattended_accesses_per_day) {
        let nth = u64::try_from(started).unwrap_or(u64::MAX).saturating_add(1);
        return Some(RuleHit {
            rule: PSD2_UNATTENDED_LIMIT,
            reason: hit_reason(PSD2_UNATTENDED_LIMIT, nth, "unattended access in 24h"),
            verdict: rule.verdict,
        });
    }
    state.start_access(now_s);
    None
}

/// The payment-velocity rule for one payment submission (`state`: the customer's, for this
/// client). Over `max_per_hour` in the hour window, or `max_per_day` in the day window, is a
/// hit (state unchanged); otherwise the payment is counted.
pub fn check_payment(
    rule: &PaymentVelocityRule,
    state: &mut CustomerPayments,
    now_ms: u64,
) -> Option<RuleHit> {
    state.advance(now_ms);
    let (hour, day) = state.counts();
    let over = if hour >= u32::from(rule.max_per_hour) {
        Some((hour, "payment in 1h"))
    } else if day >= u32::from(rule.max_per_day) {
        Some((day, "payment in 24h"))
    } else {
        None
    };
    if let Some((count, window)) = over {
        return Some(RuleHit {
            rule: PAYMENT_VELOCITY,
            reason: hit_reason(PAYMENT_VELOCITY, u64::from(count).saturating_add(1), window),
            verdict: rule.verdict,
        });
    }
    state.record();
    None
}

#[cfg(test)]
mod tests;
