//! The `rules` section of the plugin configuration: as written (`Raw*`, part of the public
//! schema documented in README.md and docs/rules.md) and compiled.
//!
//! The section is optional; without it no rule runs. With it, each rule is on with its
//! defaults unless it says `"enabled": false`.
//!
//! The section is read from a `serde_json::Value` by hand rather than with a derived
//! `Deserialize`: every derived struct adds kilobytes of parser code to the wasm module
//! (serde_json and serde_path_to_error are generic over each visitor) and the module has a
//! size budget. The rules are the derived ones': unknown fields are errors, types are exact,
//! every error names its field.

use obguard_models::rules::{PaymentVelocityRule, Psd2Rule, RuleConfig};
use serde_json::{Map, Value};

use crate::assess::Verdict;
use crate::authorise::routes::RouteTable;
use crate::config::ConfigError;

/// `rules`, as written.
#[derive(Debug)]
pub struct RawRules {
    /// PSD2 RTS Art. 36(5): unattended accesses per account and client per 24 h.
    pub psd2_unattended_access: RawPsd2,
    /// Payment submissions per customer (`sub`) and client, per hour and per day.
    pub payment_velocity: RawPaymentVelocity,
    /// Slots for (client, account) state in shared data (default 100000).
    pub max_accounts: u64,
    /// Slots for (client, customer) state in shared data (default 100000).
    pub max_customers: u64,
    /// An account's or customer's state keeps its slot against newcomers while it was used
    /// within this many seconds (default 90000). At least a day (86400), so a slot cannot be
    /// reclaimed while its accesses or payments still count.
    pub state_ttl_s: u64,
}

/// `rules.psd2_unattended_access`, as written.
#[derive(Debug)]
pub struct RawPsd2 {
    /// Default true.
    pub enabled: bool,
    /// Unattended accesses allowed per account in a rolling 24 h; the next one is a hit
    /// (default 4).
    pub per_day: u64,
    /// Reads less than this many seconds after the previous one are the same access
    /// (default 300).
    pub access_gap_s: u64,
    /// Default `throttle`.
    pub verdict: Verdict,
    /// Route names (from `routes`) whose `GET`/`HEAD` requests read one account, the id in
    /// path parameter `account_param`. Absent: the path classifier decides.
    pub routes: Option<Vec<String>>,
    /// Default `AccountId`.
    pub account_param: String,
}

/// `rules.payment_velocity`, as written.
#[derive(Debug)]
pub struct RawPaymentVelocity {
    /// Default true.
    pub enabled: bool,
    /// Default 15.
    pub max_per_hour: u64,
    /// Default 40.
    pub max_per_day: u64,
    /// Default `throttle`.
    pub verdict: Verdict,
    /// Route names whose `POST` requests submit a payment. Absent: the path classifier.
    pub routes: Option<Vec<String>>,
}

fn object<'v>(
    path: &str,
    value: &'v Value,
    fields: &[&str],
) -> Result<&'v Map<String, Value>, ConfigError> {
    let Value::Object(map) = value else {
        return Err(ConfigError::new(path, "invalid type: expected an object"));
    };
    if let Some(unknown) = map.keys().find(|k| !fields.contains(&k.as_str())) {
        let expected: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
        return Err(ConfigError::new(
            format!("{path}.{unknown}"),
            format!(
                "unknown field `{unknown}`, expected one of {}",
                expected.join(", ")
            ),
        ));
    }
    Ok(map)
}

fn uint(
    path: &str,
    map: &Map<String, Value>,
    name: &str,
    default: u64,
) -> Result<u64, ConfigError> {
    match map.get(name) {
        None => Ok(default),
        Some(value) => value.as_u64().ok_or_else(|| {
            ConfigError::new(
                format!("{path}.{name}"),
                "invalid type: expected a non-negative integer",
            )
        }),
    }
}

fn boolean(path: &str, map: &Map<String, Value>, name: &str) -> Result<bool, ConfigError> {
    match map.get(name) {
        None => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ConfigError::new(
            format!("{path}.{name}"),
            "invalid type: expected true or false",
        )),
    }
}

fn verdict(path: &str, map: &Map<String, Value>) -> Result<Verdict, ConfigError> {
    let here = format!("{path}.verdict");
    match map.get("verdict") {
        None => Ok(Verdict::Throttle),
        Some(Value::String(s)) => match s.as_str() {
            "allow" => Ok(Verdict::Allow),
            "step_up" => Ok(Verdict::StepUp),
            "throttle" => Ok(Verdict::Throttle),
            "block" => Ok(Verdict::Block),
            other => Err(ConfigError::new(
                here,
                format!(
                    "unknown variant `{other}`, expected one of `allow`, `step_up`, `throttle`, `block`"
                ),
            )),
        },
        Some(_) => Err(ConfigError::new(here, "invalid type: expected a string")),
    }
}

fn route_names(path: &str, map: &Map<String, Value>) -> Result<Option<Vec<String>>, ConfigError> {
    let here = format!("{path}.routes");
    let Some(value) = map.get("routes") else {
        return Ok(None);
    };
    let Value::Array(items) = value else {
        return Err(ConfigError::new(
            here,
            "invalid type: expected an array of route names",
        ));
    };
    let mut names = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let Value::String(name) = item else {
            return Err(ConfigError::new(
                format!("{here}[{index}]"),
                "invalid type: expected a route name",
            ));
        };
        names.push(name.clone());
    }
    Ok(Some(names))
}

impl RawRules {
    /// Reads the section at `path` (`rules`).
    pub fn from_value(path: &str, value: &Value) -> Result<Self, ConfigError> {
        let map = object(
            path,
            value,
            &[
                "psd2_unattended_access",
                "payment_velocity",
                "max_accounts",
                "max_customers",
                "state_ttl_s",
            ],
        )?;
        let empty = Value::Object(Map::new());
        let p_path = format!("{path}.psd2_unattended_access");
        let p = object(
            &p_path,
            map.get("psd2_unattended_access").unwrap_or(&empty),
            &[
                "enabled",
                "per_day",
                "access_gap_s",
                "verdict",
                "routes",
                "account_param",
            ],
        )?;
        let account_param = match p.get("account_param") {
            None => "AccountId".to_owned(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(ConfigError::new(
                    format!("{p_path}.account_param"),
                    "invalid type: expected a string",
                ));
            }
        };
        let psd2 = RawPsd2 {
            enabled: boolean(&p_path, p, "enabled")?,
            per_day: uint(&p_path, p, "per_day", 4)?,
            access_gap_s: uint(&p_path, p, "access_gap_s", 300)?,
            verdict: verdict(&p_path, p)?,
            routes: route_names(&p_path, p)?,
            account_param,
        };
        let v_path = format!("{path}.payment_velocity");
        let v = object(
            &v_path,
            map.get("payment_velocity").unwrap_or(&empty),
            &[
                "enabled",
                "max_per_hour",
                "max_per_day",
                "verdict",
                "routes",
            ],
        )?;
        let payments = RawPaymentVelocity {
            enabled: boolean(&v_path, v, "enabled")?,
            max_per_hour: uint(&v_path, v, "max_per_hour", 15)?,
            max_per_day: uint(&v_path, v, "max_per_day", 40)?,
            verdict: verdict(&v_path, v)?,
            routes: route_names(&v_path, v)?,
        };
        Ok(Self {
            psd2_unattended_access: psd2,
            payment_velocity: payments,
            max_accounts: uint(path, map, "max_accounts", 100_000)?,
            max_customers: uint(path, map, "max_customers", 100_000)?,
            state_ttl_s: uint(path, map, "state_ttl_s", 90_000)?,
        })
    }
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
    /// Reads and validates the section at `path` against the compiled route table.
    pub fn load(path: &str, value: &Value, routes: &RouteTable) -> Result<Self, ConfigError> {
        Self::compile(path, &RawRules::from_value(path, value)?, routes)
    }

    pub fn compile(path: &str, raw: &RawRules, routes: &RouteTable) -> Result<Self, ConfigError> {
        let psd2_path = format!("{path}.psd2_unattended_access");
        let pay_path = format!("{path}.payment_velocity");
        let p = &raw.psd2_unattended_access;
        let per_day = u8::try_from(p.per_day).ok().filter(|n| {
            (1..=obguard_models::rules::MAX_TRACKED_ACCESSES).contains(&usize::from(*n))
        });
        let gap = u32::try_from(p.access_gap_s)
            .ok()
            .filter(|g| (1..=Psd2Rule::MAX_ACCESS_GAP_S).contains(g));
        let psd2 = Psd2Rule {
            unattended_accesses_per_day: per_day.unwrap_or(4),
            access_gap_s: gap.unwrap_or(300),
            verdict: to_model_verdict(p.verdict),
        };
        if p.enabled {
            if per_day.is_none() {
                return Err(ConfigError::new(
                    format!("{psd2_path}.per_day"),
                    "must be 1 to 10",
                ));
            }
            if gap.is_none() {
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
            max_per_hour: u16::try_from(v.max_per_hour).unwrap_or(u16::MAX),
            max_per_day: u16::try_from(v.max_per_day).unwrap_or(u16::MAX),
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
            if value == 0 || value > u64::from(MAX_KEYS) {
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
            max_accounts: u32::try_from(raw.max_accounts).unwrap_or(MAX_KEYS),
            max_customers: u32::try_from(raw.max_customers).unwrap_or(MAX_KEYS),
            state_ttl_s: raw.state_ttl_s,
        })
    }
}
