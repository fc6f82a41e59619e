//! The `rules` section of the plugin configuration (part of the public schema documented in
//! README.md and docs/rules.md), read and compiled in one pass:
//!
//! ```text
//! rules:
//!   psd2_unattended_access:   enabled (true), per_day (4, 1–10), access_gap_s (300, 1–3600),
//!                             verdict ("throttle"), routes (none: path classifier),
//!                             account_param ("AccountId")
//!   payment_velocity:         enabled (true), max_per_hour (15, 1–250),
//!                             max_per_day (40, max_per_hour–5000), verdict ("throttle"),
//!                             routes (none: path classifier)
//!   max_accounts (100000), max_customers (100000): 1–10000000
//!   state_ttl_s (90000): 86400–604800
//! ```
//!
//! The section is optional; without it no rule runs. With it, each rule is on with its
//! defaults unless it says `"enabled": false` (its other fields are then not checked).
//!
//! It is read from a `serde_json::Value` by hand rather than with a derived `Deserialize`:
//! every derived struct adds kilobytes of parser code to the wasm module (serde_json and
//! serde_path_to_error are generic over each visitor), and the module has a size budget. The
//! rules are the derived ones': unknown fields are errors, types are exact, every error names
//! its field.

use obguard_models::rules::{MAX_TRACKED_ACCESSES, PaymentVelocityRule, Psd2Rule, RuleConfig};
use serde_json::{Map, Value};

use crate::assess::Verdict;
use crate::authorise::routes::RouteTable;
use crate::config::ConfigError;

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

/// One object of the section: its path and members.
struct Obj<'v> {
    path: String,
    map: &'v Map<String, Value>,
}

impl<'v> Obj<'v> {
    fn new(path: String, value: &'v Value, fields: &[&str]) -> Result<Self, ConfigError> {
        let Value::Object(map) = value else {
            return Err(ConfigError::new(path, "invalid type: expected an object"));
        };
        if let Some(unknown) = map.keys().find(|k| !fields.contains(&k.as_str())) {
            let mut problem = format!("unknown field `{unknown}`, expected one of ");
            for (i, field) in fields.iter().enumerate() {
                problem.push_str(if i == 0 { "`" } else { ", `" });
                problem.push_str(field);
                problem.push('`');
            }
            return Err(ConfigError::new(format!("{path}.{unknown}"), problem));
        }
        Ok(Self { path, map })
    }

    fn err(&self, name: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError::new(format!("{}.{name}", self.path), problem)
    }

    fn child(&self, name: &str, fields: &[&str]) -> Result<Obj<'v>, ConfigError> {
        let path = format!("{}.{name}", self.path);
        match self.map.get(name) {
            None => Ok(Obj {
                path,
                map: empty_map(),
            }),
            Some(value) => Obj::new(path, value, fields),
        }
    }

    /// An integer in `min..=max`, `default` when absent.
    fn int(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let value = match self.map.get(name) {
            None => default,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| self.err(name, "invalid type: expected a non-negative integer"))?,
        };
        if value < min || value > max {
            return Err(self.err(name, format!("must be {min} to {max}")));
        }
        Ok(value)
    }

    fn enabled(&self) -> Result<bool, ConfigError> {
        match self.map.get("enabled") {
            None => Ok(true),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.err("enabled", "invalid type: expected true or false")),
        }
    }

    fn string(&self, name: &str) -> Result<Option<&'v str>, ConfigError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(name, "invalid type: expected a string")),
        }
    }

    fn verdict(&self) -> Result<Verdict, ConfigError> {
        let verdict = match self.string("verdict")? {
            None | Some("throttle") => Verdict::Throttle,
            Some("allow") => Verdict::Allow,
            // `challenge`: the old name, still accepted (see `Verdict`).
            Some("step_up" | "challenge") => Verdict::StepUp,
            Some("block") => Verdict::Block,
            Some(other) => {
                return Err(self.err(
                    "verdict",
                    format!(
                        "unknown variant `{other}`, expected one of `allow`, `step_up`, `throttle`, `block`"
                    ),
                ));
            }
        };
        Ok(verdict)
    }

    /// `routes`: names of routes in `table`, each with path parameter `param` if given.
    fn routes(
        &self,
        table: &RouteTable,
        param: Option<&str>,
    ) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(value) = self.map.get("routes") else {
            return Ok(None);
        };
        let Value::Array(items) = value else {
            return Err(self.err("routes", "invalid type: expected an array of route names"));
        };
        if items.is_empty() {
            return Err(self.err(
                "routes",
                "must name at least one route (omit it to use the path classifier)",
            ));
        }
        let mut names = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            let name = item.as_str().unwrap_or("");
            let problem = match table.by_name(name) {
                None => "no route by this name",
                Some(route) if param.is_some_and(|p| !route.has_param(p)) => {
                    "the route's path has no parameter named by account_param"
                }
                Some(_) => {
                    names.push(name.to_owned());
                    continue;
                }
            };
            return Err(self.err(&format!("routes[{index}]"), problem));
        }
        Ok(Some(names))
    }
}

fn empty_map() -> &'static Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Map::new)
}

impl RulesConfig {
    /// Reads and validates the section at `path` (`rules`) against the compiled route table.
    pub fn load(path: &str, value: &Value, table: &RouteTable) -> Result<Self, ConfigError> {
        let top = Obj::new(
            path.to_owned(),
            value,
            &[
                "psd2_unattended_access",
                "payment_velocity",
                "max_accounts",
                "max_customers",
                "state_ttl_s",
            ],
        )?;
        let p = top.child(
            "psd2_unattended_access",
            &[
                "enabled",
                "per_day",
                "access_gap_s",
                "verdict",
                "routes",
                "account_param",
            ],
        )?;
        let (psd2, psd2_routes, account_param) = if p.enabled()? {
            let per_day = p.int("per_day", 4, 1, MAX_TRACKED_ACCESSES as u64)?;
            let gap = p.int(
                "access_gap_s",
                300,
                1,
                u64::from(Psd2Rule::MAX_ACCESS_GAP_S),
            )?;
            let account_param = p.string("account_param")?.unwrap_or("AccountId");
            if account_param.is_empty() {
                return Err(p.err("account_param", "must not be empty"));
            }
            let rule = Psd2Rule {
                unattended_accesses_per_day: u8::try_from(per_day).unwrap_or(4),
                access_gap_s: u32::try_from(gap).unwrap_or(300),
                verdict: p.verdict()?,
            };
            let routes = p.routes(table, Some(account_param))?;
            (Some(rule), routes, account_param.to_owned())
        } else {
            (None, None, String::new())
        };
        let v = top.child(
            "payment_velocity",
            &[
                "enabled",
                "max_per_hour",
                "max_per_day",
                "verdict",
                "routes",
            ],
        )?;
        let (payments, payment_routes) = if v.enabled()? {
            let per_hour = v.int(
                "max_per_hour",
                15,
                1,
                u64::from(PaymentVelocityRule::MAX_PER_HOUR),
            )?;
            let per_day = v.int(
                "max_per_day",
                40,
                1,
                u64::from(PaymentVelocityRule::MAX_PER_DAY),
            )?;
            if per_day < per_hour {
                return Err(v.err("max_per_day", "must be at least max_per_hour"));
            }
            let rule = PaymentVelocityRule {
                max_per_hour: u16::try_from(per_hour).unwrap_or(15),
                max_per_day: u16::try_from(per_day).unwrap_or(40),
                verdict: v.verdict()?,
            };
            (Some(rule), v.routes(table, None)?)
        } else {
            (None, None)
        };
        let max_accounts = top.int("max_accounts", 100_000, 1, 10_000_000)?;
        let max_customers = top.int("max_customers", 100_000, 1, 10_000_000)?;
        Ok(Self {
            rules: RuleConfig { psd2, payments },
            psd2_routes,
            account_param,
            payment_routes,
            max_accounts: u32::try_from(max_accounts).unwrap_or(100_000),
            max_customers: u32::try_from(max_customers).unwrap_or(100_000),
            // At least a day: a slot is never reclaimed while its counts still matter.
            state_ttl_s: top.int("state_ttl_s", 90_000, 86_400, 7 * 86_400)?,
        })
    }
}
