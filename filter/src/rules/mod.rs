//! Rules (stage 8 of [`crate::pipeline`]): hard limits scored next to the model ([`obguard_models::rules`]) —
//! `psd2_unattended_limit` (PSD2 RTS Art. 36(5): at most `per_day` unattended accesses of
//! one account per client in 24 h) and `payment_velocity` (payment submissions per customer
//! and client per hour and per day). See docs/rules.md.
//!
//! State lives in the same [`BaselineStore`] as the client baselines (proxy-wasm shared
//! data in Envoy), in slot spaces of its own: per (client, account) under
//! `obguard.rules.account.<n>` and per (client, customer) under `obguard.rules.customer.<n>`,
//! a fixed number of slots each, claimed and reclaimed like baseline slots
//! ([`crate::assess::baselines`]), updated with compare-and-swap and a few retries. A lost
//! write is counted (`obguard.rules.state.lost`), never a failed request.
//!
//! [`combine`] folds a hit into the assessment: the stricter verdict wins. A hit counts when
//! no model is configured, for clients pinned in `static_assessments`, and when the model
//! runs in `shadow` mode: the rules are not a model being evaluated but limits the operator
//! states, so shadowing the model does not shadow them (set a rule's `verdict` to `allow` to
//! only log and count its hits).

pub mod config;

use obguard_models::rules::{
    AccountAccesses, CustomerPayments, RuleHit, RuleSubject, check_account_read, check_payment,
    classify,
};

use crate::assess::baselines::{self, BaselineStore, SlotSpace, SlotValue};
use crate::assess::model::BaselineWrite;
use crate::assess::{Assessment, Verdict};
pub use config::RulesConfig;

/// Key prefix of per-(client, account) state.
pub const ACCOUNT_PREFIX: &str = "obguard.rules.account";
/// Key prefix of per-(client, customer) state.
pub const CUSTOMER_PREFIX: &str = "obguard.rules.customer";

/// Every rule name, for metrics defined up front.
pub const RULE_NAMES: [&str; 2] = [
    obguard_models::rules::PSD2_UNATTENDED_LIMIT,
    obguard_models::rules::PAYMENT_VELOCITY,
];

/// Attempts at a compare-and-swap update before the write is given up (the check stands).
const CAS_ATTEMPTS: usize = 3;

impl SlotValue for AccountAccesses {
    fn decode_value(bytes: &[u8]) -> Option<Self> {
        AccountAccesses::decode(bytes).ok()
    }
    fn encode_value(&self) -> Option<Vec<u8>> {
        Some(self.encode())
    }
    fn last_seen_ms(&self) -> u64 {
        AccountAccesses::last_seen_ms(self)
    }
}

impl SlotValue for CustomerPayments {
    fn decode_value(bytes: &[u8]) -> Option<Self> {
        CustomerPayments::decode(bytes).ok()
    }
    fn encode_value(&self) -> Option<Vec<u8>> {
        Some(self.encode())
    }
    fn last_seen_ms(&self) -> u64 {
        CustomerPayments::last_seen_ms(self)
    }
}

/// What the rules need to know about an authenticated request.
#[derive(Debug, Clone, Copy)]
pub struct RuleRequest<'a> {
    /// The issuer-qualified client id.
    pub client_id: &'a str,
    /// The token's `sub`: the customer.
    pub subject: Option<&'a str>,
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    /// The matched route's name and path parameters, if a route matched.
    pub route: Option<&'a str>,
    pub params: &'a [(&'a str, &'a str)],
    /// The request carried a non-empty `x-fapi-customer-ip-address`.
    pub customer_present: bool,
    pub now_ms: u64,
}

/// The rules' conclusion about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCheck {
    pub hit: Option<RuleHit>,
    /// What happened to the state update; `None` when nothing needed writing (no rule
    /// applied, a customer-present read, a hit).
    pub state: Option<BaselineWrite>,
}

impl RuleCheck {
    pub const NONE: RuleCheck = RuleCheck {
        hit: None,
        state: None,
    };
}

/// `x-fapi-customer-ip-address` is present and not empty.
pub fn customer_present(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(n, v)| n == "x-fapi-customer-ip-address" && !v.trim().is_empty())
}

fn is_read(method: &str) -> bool {
    method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD")
}

impl RulesConfig {
    /// What the request is to the rules: by the configured routes where a rule names
    /// them, else by [`classify`].
    pub fn subject<'a>(&self, req: &RuleRequest<'a>) -> RuleSubject<'a> {
        let classified = classify(req.method, req.path, req.subject, req.customer_present);
        let in_list = |list: &[String]| req.route.is_some_and(|r| list.iter().any(|n| n == r));
        if self.rules.psd2.is_some() {
            match &self.psd2_routes {
                Some(list) => {
                    if is_read(req.method) && in_list(list) {
                        let id = req
                            .params
                            .iter()
                            .find(|(name, _)| *name == self.account_param)
                            .map(|(_, value)| *value);
                        if let Some(account_id) = id.filter(|v| !v.is_empty()) {
                            return RuleSubject::AccountRead {
                                account_id,
                                customer_present: req.customer_present,
                            };
                        }
                    }
                }
                None => {
                    if let RuleSubject::AccountRead { .. } = classified {
                        return classified;
                    }
                }
            }
        }
        if self.rules.payments.is_some() {
            match &self.payment_routes {
                Some(list) => {
                    if req.method.eq_ignore_ascii_case("POST")
                        && in_list(list)
                        && let Some(customer) = req.subject.filter(|s| !s.is_empty())
                    {
                        return RuleSubject::Payment { customer };
                    }
                }
                None => {
                    if let RuleSubject::Payment { .. } = classified {
                        return classified;
                    }
                }
            }
        }
        RuleSubject::Other
    }

    /// Runs the rule that applies to the request against its stored state, and stores the
    /// state back (compare-and-swap, a few attempts).
    pub fn check(&self, store: &mut dyn BaselineStore, req: &RuleRequest<'_>) -> RuleCheck {
        match self.subject(req) {
            RuleSubject::AccountRead {
                account_id,
                customer_present,
            } => {
                let Some(rule) = &self.rules.psd2 else {
                    return RuleCheck::NONE;
                };
                // Customer-present reads are not counted: no state is read or written.
                if customer_present {
                    return RuleCheck::NONE;
                }
                let space = SlotSpace {
                    prefix: ACCOUNT_PREFIX,
                    slots: self.max_accounts,
                    ttl_s: self.state_ttl_s,
                };
                update(
                    store,
                    space,
                    &key(req.client_id, account_id),
                    req.now_ms,
                    |state| check_account_read(rule, state, req.now_ms, false),
                )
            }
            RuleSubject::Payment { customer } => {
                let Some(rule) = &self.rules.payments else {
                    return RuleCheck::NONE;
                };
                let space = SlotSpace {
                    prefix: CUSTOMER_PREFIX,
                    slots: self.max_customers,
                    ttl_s: self.state_ttl_s,
                };
                update(
                    store,
                    space,
                    &key(req.client_id, customer),
                    req.now_ms,
                    |state| check_payment(rule, state, req.now_ms),
                )
            }
            RuleSubject::Other => RuleCheck::NONE,
        }
    }
}

/// The slot id of (client, account) or (client, customer), hashed into the slot space (the
/// stored key is the slot number, so its size does not depend on the ids).
fn key(client_id: &str, id: &str) -> String {
    let mut key = String::with_capacity(client_id.len() + 1 + id.len());
    key.push_str(client_id);
    key.push('\u{1f}');
    key.push_str(id);
    key
}

fn update<V: SlotValue + Default + Clone + PartialEq>(
    store: &mut dyn BaselineStore,
    space: SlotSpace<'_>,
    id: &str,
    now_ms: u64,
    check: impl Fn(&mut V) -> Option<RuleHit>,
) -> RuleCheck {
    let mut hit = None;
    for _ in 0..CAS_ATTEMPTS {
        let (slot, owner) = baselines::resolve_in::<V>(store, space, id, now_ms);
        let before = slot.value.unwrap_or_default();
        let mut state = before.clone();
        hit = check(&mut state);
        let Some(key) = slot.key else {
            // Every candidate slot is held by another active key: decided from a fresh
            // state, not remembered.
            return RuleCheck {
                hit,
                state: Some(BaselineWrite::SlotTaken),
            };
        };
        if state == before {
            return RuleCheck { hit, state: None };
        }
        let stored = baselines::encode_slot_value(owner, &state)
            .is_some_and(|bytes| store.store(&key, &bytes, slot.cas.or(Some(0))).is_ok());
        if stored {
            return RuleCheck {
                hit,
                state: Some(BaselineWrite::Stored),
            };
        }
    }
    RuleCheck {
        hit,
        state: Some(BaselineWrite::Lost),
    }
}

/// Folds a rule hit into the enforced assessment: the stricter verdict wins. Returns the
/// assessment and, when the hit decides the verdict (its verdict is not `allow` and at
/// least as strict as the model's), the rule's name as the request's reason.
pub fn combine(
    assessment: Assessment,
    hit: Option<&RuleHit>,
) -> (Assessment, Option<&'static str>) {
    let Some(hit) = hit else {
        return (assessment, None);
    };
    let verdict = hit.verdict;
    if verdict == Verdict::Allow || verdict < assessment.verdict {
        return (assessment, None);
    }
    (
        Assessment {
            verdict,
            risk_band: assessment.risk_band,
        },
        Some(hit.rule),
    )
}
