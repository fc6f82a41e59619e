//! Host-side replay of the rules over records (CLI `eval` / `explain`): the filter's
//! per-key state, kept in maps instead of shared data (unbounded: a replay's keys are known).

use std::collections::HashMap;

use super::{
    AccountAccesses, CustomerPayments, RuleConfig, RuleHit, RuleSubject, check_account_read,
    check_payment, classify,
};

/// The rules' state for a replay, keyed (client, account) and (client, customer).
/// Feed it every record in time order with [`RuleReplay::check`].
#[derive(Debug, Default)]
pub struct RuleReplay {
    accounts: HashMap<(String, String), AccountAccesses>,
    customers: HashMap<(String, String), CustomerPayments>,
}

impl RuleReplay {
    pub fn new() -> Self {
        Self::default()
    }

    /// Classifies the request with [`classify`] and runs the rule that applies (if it is on
    /// in `cfg`), updating the replay's state as the filter would. `sub`: the token's subject
    /// (the customer); `customer_present`: the record carried `x-fapi-customer-ip-address`.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &mut self,
        cfg: &RuleConfig,
        client_id: &str,
        method: &str,
        path: &str,
        sub: Option<&str>,
        customer_present: bool,
        ts_ms: u64,
    ) -> Option<RuleHit> {
        match classify(method, path, sub, customer_present) {
            RuleSubject::AccountRead {
                account_id,
                customer_present,
            } => {
                let rule = cfg.psd2.as_ref()?;
                if customer_present {
                    return None;
                }
                let state = self
                    .accounts
                    .entry((client_id.to_owned(), account_id.to_owned()))
                    .or_default();
                check_account_read(rule, state, ts_ms, false)
            }
            RuleSubject::Payment { customer } => {
                let rule = cfg.payments.as_ref()?;
                let state = self
                    .customers
                    .entry((client_id.to_owned(), customer.to_owned()))
                    .or_default();
                check_payment(rule, state, ts_ms)
            }
            RuleSubject::Other => None,
        }
    }

    /// (client, account) and (client, customer) keys with state.
    pub fn len(&self) -> (usize, usize) {
        (self.accounts.len(), self.customers.len())
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.customers.is_empty()
    }
}
