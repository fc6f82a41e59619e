//! The `rules` section of the plugin configuration: as written (`Raw*`, part of the public
//! schema documented in README.md and docs/rules.md) and compiled.
//!
//! The section is optional; without it no rule runs. With it, each rule is on with its
//! defaults unless it says `"enabled": false`.

use obguard_models::rules::{PaymentVelocityRule, Psd2Rule, RuleConfig};
use serde::Deserialize;

use crate::assess::Verdict;
use crate::authorise::routes::RouteTable;
use crate::config::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRules {
    /// PSD2 RTS Art. 36(5): unattended accesses per account and client per 24 h.
    #[serde(default)]
    pub psd2_unattended_access: RawPsd2,
    /// Payment submissions per customer (`sub`) and client, per hour and per day.
    #[serde(default)]
    pub payment_velocity: RawPaymentVelocity,
    /// Slots for (client, account) state in shared data.
    #[serde(default = "default_max_keys")]
    pub max_accounts: u32,
    /// Slots for (client, customer) state in shared data.
    #[serde(default = "default_max_keys")]
    pub max_customers: u32,
    /// An account's or customer's state keeps its slot against newcomers while it was used
    /// within this many seconds. At least a day (86400), so a slot cannot be reclaimed while
    /// its accesses or payments still count.
    #[serde(default = "default_state_ttl_s")]
    pub state_ttl_s: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPsd2 {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Unattended accesses allowed per account in a rolling 24 h; the next one is a hit.
    #[serde(default = "default_per_day")]
    pub per_day: u8,
    /// Reads less than this many seconds after the previous one are the same access.
    #[serde(default = "default_access_gap_s")]
    pub access_gap_s: u32,
    #[serde(default = "throttle")]
    pub verdict: Verdict,
    /// Route names (from `routes`) whose `GET`/`HEAD` requests read one account, the id in
    /// path parameter `account_param`. Absent: the path classifier decides.
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    #[serde(default = "default_account_param")]
    pub account_param: String,
}

impl Default for RawPsd2 {
    fn default() -> Self {
        Self {
            enabled: true,
            per_day: default_per_day(),
            access_gap_s: default_access_gap_s(),
            verdict: Verdict::Throttle,
            routes: None,
            account_param: default_account_param(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPaymentVelocity {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_max_per_hour")]
    pub max_per_hour: u16,
    #[serde(default = "default_max_per_day")]
    pub max_per_day: u16,
    #[serde(default = "throttle")]
    pub verdict: Verdict,
    /// Route names whose `POST` requests submit a payment. Absent: the path classifier.
    #[serde(default)]
    pub routes: Option<Vec<String>>,
}

impl Default for RawPaymentVelocity {
    fn default() -> Self {
        Self {
            enabled: true,
            max_per_hour: default_max_per_hour(),
            max_per_day: default_max_per_day(),
            verdict: Verdict::Throttle,
            routes: None,
        }
    }
}

fn yes() -> bool {
    true
}
fn throttle() -> Verdict {
    Verdict::Throttle
}
fn default_per_day() -> u8 {
    4
}
fn default_access_gap_s() -> u32 {
    300
}
fn default_account_param() -> String {
    "AccountId".to_owned()
}
fn default_max_per_hour() -> u16 {
    15
}
fn default_max_per_day() -> u16 {
    40
}
fn default_max_keys() -> u32 {
    100_000
}
fn default_state_ttl_s() -> u64 {
    90_000
}

const MAX_KEYS: u32 = 10_000_000;
const MAX_STATE_TTL_S: u64 = 7 * 86_400;

/// The compiled `rules` section.
#[derive(Debug)]
pub struct RulesConfig {
    /// Which rules run, with their limits and verdicts (the models crate's types).
    pub rules: RuleConfig,
    /// `Some`: only these routes' reads count, the account id from `account_param`.
    pub psd2_routes: Option<Vec<String>>,
    pub account_param: String,
    /// `Some`: only these routes' `POST`s are payments.
    pub payment_routes: Option<Vec<String>>,
    pub max_accounts: u32,
    pub max_customers: u32,
    pub state_ttl_s: u64,
}

pub(crate) fn to_model_verdict(v: Verdict) -> obguard_models::Verdict {
    match v {
        Verdict::Allow => obguard_models::Verdict::Allow,
        Verdict::StepUp => obguard_models::Verdict::Challenge,
        Verdict::Throttle => obguard_models::Verdict::Throttle,
        Verdict::Block => obguard_models::Verdict::Block,
    }
}

fn compile_routes(
    path: &str,
    routes: Option<&Vec<String>>,
    table: &RouteTable,
    param: Option<&str>,
) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(routes) = routes else {
        return Ok(None);
    };
    if routes.is_empty() {
        return Err(ConfigError::new(
            path,
            "must name at least one route (omit it to use the path classifier)",
        ));
    }
    for (index, name) in routes.iter().enumerate() {
        let here = format!("{path}[{index}]");
        let Some(route) = table.by_name(name) else {
            return Err(ConfigError::new(here, format!("no route named `{name}`")));
        };
        if let Some(param) = param
            && !route.has_param(param)
        {
            return Err(ConfigError::new(
                here,
                format!("route `{name}` has no path parameter `{{{param}}}` (see account_param)"),
            ));
        }
    }
    Ok(Some(routes.clone()))
}

impl RulesConfig {
    pub fn compile(path: &str, raw: &RawRules, routes: &RouteTable) -> Result<Self, ConfigError> {
        let psd2_path = format!("{path}.psd2_unattended_access");
        let pay_path = format!("{path}.payment_velocity");
        let p = &raw.psd2_unattended_access;
        let psd2 = Psd2Rule {
            unattended_accesses_per_day: p.per_day,
            access_gap_s: p.access_gap_s,
            verdict: to_model_verdict(p.verdict),
        };
        if p.enabled {
            if psd2.unattended_accesses_per_day == 0
                || usize::from(psd2.unattended_accesses_per_day)
                    > obguard_models::rules::MAX_TRACKED_ACCESSES
            {
                return Err(ConfigError::new(
                    format!("{psd2_path}.per_day"),
                    "must be 1 to 10",
                ));
            }
            if psd2.access_gap_s == 0 || psd2.access_gap_s > Psd2Rule::MAX_ACCESS_GAP_S {
                return Err(ConfigError::new(
                    format!("{psd2_path}.access_gap_s"),
                    "must be 1 to 3600",
                ));
            }
            if p.account_param.is_empty() {
                return Err(ConfigError::new(
                    format!("{psd2_path}.account_param"),
                    "must not be empty",
                ));
            }
        }
        let psd2_routes = if p.enabled {
            compile_routes(
                &format!("{psd2_path}.routes"),
                p.routes.as_ref(),
                routes,
                Some(&p.account_param),
            )?
        } else {
            None
        };
        let v = &raw.payment_velocity;
        let payments = PaymentVelocityRule {
            max_per_hour: v.max_per_hour,
            max_per_day: v.max_per_day,
            verdict: to_model_verdict(v.verdict),
        };
        if v.enabled {
            if payments.max_per_hour == 0
                || payments.max_per_hour > PaymentVelocityRule::MAX_PER_HOUR
            {
                return Err(ConfigError::new(
                    format!("{pay_path}.max_per_hour"),
                    "must be 1 to 250",
                ));
            }
            if payments.max_per_day < payments.max_per_hour
                || payments.max_per_day > PaymentVelocityRule::MAX_PER_DAY
            {
                return Err(ConfigError::new(
                    format!("{pay_path}.max_per_day"),
                    "must be at least max_per_hour and at most 5000",
                ));
            }
        }
        let payment_routes = if v.enabled {
            compile_routes(
                &format!("{pay_path}.routes"),
                v.routes.as_ref(),
                routes,
                None,
            )?
        } else {
            None
        };
        for (field, value) in [
            ("max_accounts", raw.max_accounts),
            ("max_customers", raw.max_customers),
        ] {
            if value == 0 || value > MAX_KEYS {
                return Err(ConfigError::new(
                    format!("{path}.{field}"),
                    format!("must be 1 to {MAX_KEYS}"),
                ));
            }
        }
        if raw.state_ttl_s < 86_400 || raw.state_ttl_s > MAX_STATE_TTL_S {
            return Err(ConfigError::new(
                format!("{path}.state_ttl_s"),
                format!(
                    "must be 86400 to {MAX_STATE_TTL_S} (state younger than a day still counts)"
                ),
            ));
        }
        Ok(Self {
            rules: RuleConfig {
                psd2: p.enabled.then_some(psd2),
                payments: v.enabled.then_some(payments),
            },
            psd2_routes,
            account_param: p.account_param.clone(),
            payment_routes,
            max_accounts: raw.max_accounts,
            max_customers: raw.max_customers,
            state_ttl_s: raw.state_ttl_s,
        })
    }
}
