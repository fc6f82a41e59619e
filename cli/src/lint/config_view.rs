//! The plugin configuration as the rules see it: first loaded by the filter's own loader
//! (`obguard::config::load`), so a configuration the filter refuses is a finding with the
//! loader's field path, then read through `obguard::config::raw::RawConfig` for the route,
//! scope, limit and issuer details.
//!
//! This is the only module that touches the filter's configuration types, and it names none
//! but `RawConfig`: fields are reached by access and inference, and enum fields are compared
//! with [`is`], in the schema's own JSON spelling.

use std::collections::BTreeSet;
use std::path::Path;

use obguard::config::raw::RawConfig;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::source::{Document, Pos, Syntax, pointer, push_token};
use super::template::Template;
use super::{Finding, Location, Role, Rule};

/// `unmatched`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmatched {
    Deny,
    Authenticate,
    Allow,
}

impl Unmatched {
    pub fn as_str(self) -> &'static str {
        match self {
            Unmatched::Deny => "deny",
            Unmatched::Authenticate => "authenticate",
            Unmatched::Allow => "allow",
        }
    }
}

/// A rate-limit call made for a route's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitCall {
    /// A failed check forwards the request (`failure_mode: fail_open`, the default).
    pub fail_open: bool,
    /// Where the route's effective `failure_mode` is (or would be) written.
    pub failure_mode_pointer: String,
}

/// What limits a route's requests beyond identity and scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// `Some` when the rate-limit service is asked about the route's requests.
    pub ratelimit: Option<RateLimitCall>,
    /// Why a configured rate-limit call does not count (e.g. `call: non_allow` without a model).
    pub ratelimit_note: Option<String>,
    /// Per-route model thresholds below 1.0, enforced by a model.
    pub thresholds: bool,
    /// The model is polled over HTTP and requests are allowed unscored until its first file
    /// arrives (`when_unavailable: allow`, the default).
    pub thresholds_fail_open: bool,
    /// Why configured thresholds do not count (no model, shadow mode, all 1.0).
    pub thresholds_note: Option<String>,
    /// `rules.payment_velocity` is on and lists this route (its `POST`s are limited).
    pub payment_velocity: bool,
}

#[derive(Debug, Clone)]
pub struct RouteView {
    pub index: usize,
    pub name: String,
    /// Upper case; empty: any method.
    pub methods: Vec<String>,
    pub path: String,
    pub template: Template,
    pub all_of: BTreeSet<String>,
    pub any_of: BTreeSet<String>,
    pub anonymous: bool,
    pub limits: Limits,
    /// `consent_params`: path parameters bound to the token's consent.
    pub consent_params: Vec<String>,
    /// `idempotency_key`: the route requires `x-idempotency-key`.
    pub idempotency_key: bool,
}

impl RouteView {
    pub fn admits(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }

    /// `routes[2] "accounts" (GET /accounts)`.
    pub fn describe(&self) -> String {
        let methods = if self.methods.is_empty() {
            "any method".to_owned()
        } else {
            self.methods.join(",")
        };
        format!("route `{}` ({methods} {})", self.name, self.path)
    }
}

#[derive(Debug, Clone)]
pub struct IssuerView {
    pub index: usize,
    pub issuer: String,
    pub algorithms: Vec<String>,
    pub require_typ: Option<String>,
    /// Verified by Envoy's `jwt_authn` only (no keys of its own).
    pub delegation_only: bool,
}

/// A configuration that loaded.
#[derive(Debug, Clone)]
pub struct ConfigView {
    pub doc: Document,
    pub routes: Vec<RouteView>,
    pub issuers: Vec<IssuerView>,
    pub unmatched: Unmatched,
}

impl ConfigView {
    pub fn location(&self, pointer: &str) -> Location {
        Location::in_doc(Role::Config, &self.doc, pointer)
    }

    /// `/routes/<index>[/<field>]`.
    pub fn route_location(&self, route: &RouteView, field: Option<&str>) -> Location {
        let base = pointer(&["routes", &route.index.to_string()]);
        match field {
            Some(field) => self.location(&push_token(&base, field)),
            None => self.location(&base),
        }
    }

    /// Reads a configuration file (JSON, or YAML as Istio's `pluginConfig` holds it).
    pub fn load(path: &Path) -> Result<ConfigView, Box<Finding>> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            invalid(
                path,
                format!("the plugin configuration cannot be read: {err}"),
                "",
                Pos::START,
            )
        })?;
        Self::parse(path, &text)
    }

    /// Checks and reads configuration text (`path` names it and chooses the syntax).
    pub fn parse(path: &Path, text: &str) -> Result<ConfigView, Box<Finding>> {
        let syntax = Syntax::of(path);
        let doc = Document::parse(path, text, syntax).map_err(|err| {
            invalid(
                path,
                format!("the plugin configuration cannot be read: {err}"),
                "",
                err.position(),
            )
        })?;
        let bytes = match syntax {
            Syntax::Json => text.as_bytes().to_vec(),
            Syntax::Yaml => serde_json::to_vec(&doc.value).map_err(|err| {
                invalid(
                    path,
                    format!("the plugin configuration has no JSON form: {err}"),
                    "",
                    Pos::START,
                )
            })?,
        };
        if let Err(err) = obguard::config::load(&bytes) {
            let pointer = field_path_pointer(&err.path);
            let (_, pos) = doc.locate(&pointer);
            let mut message = format!("obguard: invalid plugin configuration: {err}");
            if syntax == Syntax::Yaml {
                // The loader's "at line L column C" counts in the JSON made from the YAML.
                if let Some(cut) = message.rfind(" at line ") {
                    message.truncate(cut);
                }
            }
            return Err(invalid(path, message, &pointer, pos));
        }
        let raw: RawConfig = serde_json::from_slice(&bytes).map_err(|err| {
            invalid(
                path,
                format!("the plugin configuration loads but does not parse again: {err}"),
                "",
                Pos::START,
            )
        })?;
        Ok(Self::from_raw(&raw, doc))
    }

    fn from_raw(raw: &RawConfig, doc: Document) -> ConfigView {
        let unmatched = if is(&raw.unmatched, "allow") {
            Unmatched::Allow
        } else if is(&raw.unmatched, "authenticate") {
            Unmatched::Authenticate
        } else {
            Unmatched::Deny
        };
        let model_enforcing = raw.model.as_ref().map(|m| is(&m.mode, "enforce"));
        let model_fails_open = raw
            .model
            .as_ref()
            .is_some_and(|m| m.http.is_some() && is(&m.when_unavailable, "allow"));
        let velocity_routes = payment_velocity_routes(raw.rules.as_ref());
        let routes = raw
            .routes
            .iter()
            .enumerate()
            .map(|(index, route)| {
                let mut limits = Limits::default();
                if let Some(rl) = &raw.ratelimit {
                    let overrides = rl.routes.get(&route.name);
                    let call = overrides.and_then(|o| o.call).unwrap_or(rl.call);
                    let (mode, mode_pointer) = match overrides.and_then(|o| o.failure_mode) {
                        Some(mode) => (mode, pointer(&["ratelimit", "routes", &route.name, "failure_mode"])),
                        None => (rl.failure_mode, "/ratelimit/failure_mode".to_owned()),
                    };
                    let counted = if is(&call, "never") {
                        Err("its rate-limit `call` is `never`")
                    } else if is(&call, "non_allow") && model_enforcing != Some(true) {
                        Err("`call: non_allow` calls only for non-`allow` verdicts, and no enforcing model gives any")
                    } else {
                        Ok(())
                    };
                    match counted {
                        Ok(()) => {
                            limits.ratelimit = Some(RateLimitCall {
                                fail_open: is(&mode, "fail_open"),
                                failure_mode_pointer: mode_pointer,
                            });
                        }
                        Err(note) => limits.ratelimit_note = Some(note.to_owned()),
                    }
                }
                if let Some(t) = &route.thresholds {
                    let lowest = lowest_threshold(t);
                    match model_enforcing {
                        _ if lowest >= 1.0 => {
                            limits.thresholds_note = Some("its thresholds are all 1.0 (no verdict)".to_owned());
                        }
                        None => limits.thresholds_note = Some("its thresholds have no `model` to apply them".to_owned()),
                        Some(false) => {
                            limits.thresholds_note = Some("the model is in `shadow` mode (verdicts are only logged)".to_owned());
                        }
                        Some(true) => {
                            limits.thresholds = true;
                            limits.thresholds_fail_open = model_fails_open;
                        }
                    }
                }
                limits.payment_velocity = velocity_routes.as_ref().is_some_and(|names| names.contains(&route.name));
                RouteView {
                    index,
                    name: route.name.clone(),
                    methods: route.methods.clone(),
                    path: route.path.clone(),
                    template: Template::parse(&route.path),
                    all_of: route.scopes.as_ref().map(|s| s.all_of.iter().cloned().collect()).unwrap_or_default(),
                    any_of: route.scopes.as_ref().map(|s| s.any_of.iter().cloned().collect()).unwrap_or_default(),
                    anonymous: route.anonymous,
                    limits,
                    consent_params: route.consent_params.clone(),
                    idempotency_key: route.idempotency_key,
                }
            })
            .collect();
        let issuers = raw
            .issuers
            .iter()
            .enumerate()
            .map(|(index, issuer)| IssuerView {
                index,
                issuer: issuer.issuer.clone(),
                algorithms: issuer.algorithms.clone(),
                require_typ: issuer.require_typ.clone(),
                delegation_only: issuer.jwt_authn.is_some()
                    && issuer.jwks.is_none()
                    && issuer.jwks_remote.is_none()
                    && issuer.shared_secret.is_none(),
            })
            .collect();
        ConfigView {
            doc,
            routes,
            issuers,
            unmatched,
        }
    }
}

fn invalid(path: &Path, message: String, pointer: &str, pos: Pos) -> Box<Finding> {
    Box::new(
        Finding::new(
            Rule::ConfigInvalid,
            message,
            "Fix the configuration at this field; the README's \"Configuration reference\" \
             describes every field.",
        )
        .at(Location::at(Role::Config, path, 0, pointer, pos)),
    )
}

/// Whether `value` is the variant the schema spells `name` (`is(&raw.unmatched, "deny")`): the
/// name is deserialized into the field's own type, so no filter type is named here.
pub fn is<T: DeserializeOwned + PartialEq>(value: &T, name: &str) -> bool {
    serde_json::from_value::<T>(Value::String(name.to_owned())).is_ok_and(|v| v == *value)
}

/// The lowest of a route's verdict thresholds, read through their JSON form so the lint does
/// not depend on the field names (`step_up` was `challenge`); 1.0 when none can be read.
fn lowest_threshold<T: serde::Serialize>(thresholds: &T) -> f64 {
    match serde_json::to_value(thresholds) {
        Ok(Value::Object(map)) => map.values().filter_map(Value::as_f64).fold(1.0, f64::min),
        _ => 1.0,
    }
}

/// The routes `rules.payment_velocity` limits, when it is on with a verdict other than
/// `allow` and lists them (`routes` absent means the filter's path classifier, which the lint
/// does not evaluate: `None`).
fn payment_velocity_routes(rules: Option<&Value>) -> Option<Vec<String>> {
    let velocity = rules?.get("payment_velocity");
    let on = velocity
        .and_then(|v| v.get("enabled"))
        .and_then(Value::as_bool)
        != Some(false);
    let verdict = velocity
        .and_then(|v| v.get("verdict"))
        .and_then(Value::as_str);
    if !on || verdict == Some("allow") {
        return None;
    }
    let names = velocity?.get("routes")?.as_array()?;
    Some(
        names
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
    )
}

/// The loader's field path (`issuers[0].jwks.keys[1].n`) as a JSON pointer
/// (`/issuers/0/jwks/keys/1/n`). Map keys containing `.` or `[` are ambiguous in that syntax:
/// the pointer is then wrong below them, and [`Document::locate`] falls back to an ancestor.
pub fn field_path_pointer(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = part
            .split_once('[')
            .map_or((part, ""), |(n, rest)| (n, rest));
        if !name.is_empty() {
            out = push_token(&out, name);
        }
        for index in indexes.split('[') {
            let index = index.trim_end_matches(']');
            if !index.is_empty() {
                out = push_token(&out, index);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_become_pointers() {
        assert_eq!(
            field_path_pointer("issuers[0].jwks.keys[1].n"),
            "/issuers/0/jwks/keys/1/n"
        );
        assert_eq!(
            field_path_pointer("routes[0].methods[0]"),
            "/routes/0/methods/0"
        );
        assert_eq!(field_path_pointer("foo"), "/foo");
        assert_eq!(field_path_pointer(""), "");
        assert_eq!(field_path_pointer("a[0][1]"), "/a/0/1");
    }

    #[test]
    fn yaml_configs_load_like_istio_plugin_config() {
        let yaml = "issuers:
  - issuer: https://idp.example
    audiences: [a]
    algorithms: [ES256]
    require_typ: at+jwt
    jwks:
      keys:
        - {kty: EC, crv: P-256, x: lNSkDCnonWraL2dHZsxj2tjt5D0tgrJDjRI_SHZ_H0I, y: 3IV2ft3O-36kXq6NQcAeRZpC2bwaYfNRIZYEhNj_1Gg}
routes:
  - {name: accounts, methods: [GET], path: /accounts}
";
        let view = ConfigView::parse(Path::new("plugin.yaml"), yaml).unwrap();
        assert_eq!(view.routes[0].name, "accounts");
        assert_eq!(view.route_location(&view.routes[0], Some("path")).line, 10);
        let broken = yaml.replace("path: /accounts", "path: /accounts, foo: 1");
        let err = ConfigView::parse(Path::new("plugin.yaml"), &broken).unwrap_err();
        assert!(
            err.message.contains("routes[0].foo: unknown field `foo`"),
            "{}",
            err.message
        );
        assert!(!err.message.contains(" at line "), "{}", err.message);
        assert_eq!(err.locations[0].pointer, "/routes/0/foo");
        assert_eq!(err.locations[0].line, 10);
    }

    #[test]
    fn variant_names_are_the_schema_spelling() {
        let raw: RawConfig = serde_json::from_value(serde_json::json!({
            "issuers": [], "unmatched": "authenticate"
        }))
        .unwrap();
        assert!(is(&raw.unmatched, "authenticate"));
        assert!(!is(&raw.unmatched, "deny"));
        assert!(!is(&raw.unmatched, "no-such-variant"));
    }
}
