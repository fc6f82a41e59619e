//! Route templates (`/accounts/{AccountId}/transactions`) and first-match lookup.
//!
//! Matching is exact per segment: a literal matches itself, a `{Param}` matches any one
//! non-empty segment, and the segment counts must agree (so `/accounts` does not match
//! `/accounts/`). Routes are tried in configuration order.
//!
//! A matched parameter's value must then fit its [`ParamRule`]: by default RFC 3986
//! unreserved characters only (`A-Za-z0-9-._~`, at most 256 bytes). Anything else — a
//! percent-encoded byte (`%c0%ae` overlong dot, `%EF%BC%8E` fullwidth dot, `%3B`, `%3F`,
//! `%23`), raw non-ASCII — is refused rather than forwarded as an account id the upstream
//! may decode into something else.

use super::config::{RawParam, RawRoute};
use super::scopes::ScopeRule;
use crate::config::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String, ParamRule),
}

/// What a path parameter's value may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamRule {
    /// Bit `b` set: ASCII byte `b` is allowed.
    allowed: u128,
    max_length: usize,
}

/// RFC 3986 §2.3 unreserved characters.
pub const DEFAULT_CHARSET: &str = "A-Za-z0-9-._~";
pub const DEFAULT_MAX_LENGTH: usize = 256;
const MAX_MAX_LENGTH: usize = 4096;

/// Characters a charset may allow: a path segment's `pchar` (RFC 3986 §3.3) without `%`
/// (percent-encoded values are never accepted) and `;` (refused in every path).
fn allowable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@".contains(&b)
}

impl ParamRule {
    /// Compiles `charset`: characters listed one by one, or as a range `X-Y` between two
    /// digits, two lower-case or two upper-case letters. A `-` that is not between such a
    /// pair is the character `-` itself.
    pub fn compile(path: &str, raw: &RawParam) -> Result<Self, ConfigError> {
        let charset = raw.charset.as_deref().unwrap_or(DEFAULT_CHARSET);
        let field = format!("{path}.charset");
        if charset.is_empty() {
            return Err(ConfigError::new(field, "must not be empty"));
        }
        let bytes = charset.as_bytes();
        let same_class = |a: u8, b: u8| {
            (a.is_ascii_digit() && b.is_ascii_digit())
                || (a.is_ascii_lowercase() && b.is_ascii_lowercase())
                || (a.is_ascii_uppercase() && b.is_ascii_uppercase())
        };
        let mut allowed: u128 = 0;
        let mut i = 0;
        while let Some(&first) = bytes.get(i) {
            let range = match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(b'-'), Some(&last)) if same_class(first, last) => Some(last),
                _ => None,
            };
            let (from, to, step) = match range {
                Some(last) if last < first => {
                    return Err(ConfigError::new(
                        field,
                        format!(
                            "range `{}-{}` is backwards",
                            char::from(first),
                            char::from(last)
                        ),
                    ));
                }
                Some(last) => (first, last, 3),
                None => (first, first, 1),
            };
            if !first.is_ascii() {
                return Err(ConfigError::new(field, "must be ASCII"));
            }
            if first == b'%' {
                return Err(ConfigError::new(
                    field,
                    "`%` cannot be allowed: percent-encoded parameter values are never accepted",
                ));
            }
            if !allowable(first) {
                return Err(ConfigError::new(
                    field,
                    format!(
                        "`{}` cannot be allowed: only unreserved characters, `!$&'()*+,=:@` (RFC 3986 pchar without `%` and `;`)",
                        char::from(first).escape_default()
                    ),
                ));
            }
            for b in from..=to {
                allowed |= 1u128 << b;
            }
            i += step;
        }
        let max_length = raw.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
        if max_length == 0 || max_length > MAX_MAX_LENGTH {
            return Err(ConfigError::new(
                format!("{path}.max_length"),
                format!("must be between 1 and {MAX_MAX_LENGTH}"),
            ));
        }
        Ok(Self {
            allowed,
            max_length,
        })
    }

    /// Whether `value` (one raw path segment) fits.
    pub fn accepts(&self, value: &str) -> bool {
        value.len() <= self.max_length
            && value
                .bytes()
                .all(|b| b < 128 && self.allowed & (1u128 << b) != 0)
    }
}

impl Route {
    /// Whether the route's template has the path parameter `{name}`.
    pub fn has_param(&self, name: &str) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Param(p, _) if p == name))
    }
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    /// Empty means any method.
    pub methods: Vec<String>,
    segments: Vec<Segment>,
    pub scopes: ScopeRule,
    pub anonymous: bool,
    /// Model verdict thresholds for this route, overriding the model's.
    pub thresholds: Option<obguard_models::Thresholds>,
    /// Path parameters that must be within the token's consent.
    pub consent_params: Vec<String>,
    /// `x-idempotency-key` is required.
    pub idempotency_key: bool,
    /// Sender-constraint modes replacing the issuer's.
    pub sender: Option<crate::identify::binding::RouteSenderModes>,
}

/// A matched route with the values of its path parameters, in template order.
#[derive(Debug)]
pub struct RouteMatch<'r, 'p> {
    pub route: &'r Route,
    pub params: Vec<(&'r str, &'p str)>,
}

#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

const HTTP_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

impl RouteTable {
    pub fn compile(path: &str, raw: &[RawRoute]) -> Result<Self, ConfigError> {
        let mut routes: Vec<Route> = Vec::with_capacity(raw.len());
        for (index, route) in raw.iter().enumerate() {
            let here = format!("{path}[{index}]");
            if route.name.is_empty() || !route.name.bytes().all(is_name_byte) {
                return Err(ConfigError::new(
                    format!("{here}.name"),
                    "must be non-empty and use only letters, digits, `-`, `_`, `.`",
                ));
            }
            if routes.iter().any(|r| r.name == route.name) {
                return Err(ConfigError::new(
                    format!("{here}.name"),
                    format!("duplicate route name `{}`", route.name),
                ));
            }
            for (m, method) in route.methods.iter().enumerate() {
                if !HTTP_METHODS.contains(&method.as_str()) {
                    return Err(ConfigError::new(
                        format!("{here}.methods[{m}]"),
                        format!("`{method}` is not an upper-case HTTP method"),
                    ));
                }
            }
            let segments = parse_template(&format!("{here}.path"), &route.path, &route.params)?;
            if let Some(name) = route.params.keys().find(|name| {
                !segments
                    .iter()
                    .any(|s| matches!(s, Segment::Param(p, _) if p == *name))
            }) {
                return Err(ConfigError::new(
                    format!("{here}.params.{name}"),
                    format!("the path template has no parameter `{{{name}}}`"),
                ));
            }
            let scopes = match &route.scopes {
                Some(rule) => {
                    for (list, name) in [(&rule.all_of, "all_of"), (&rule.any_of, "any_of")] {
                        for (s, scope) in list.iter().enumerate() {
                            if scope.is_empty()
                                || scope
                                    .bytes()
                                    .any(|b| b <= 0x20 || b == b'"' || b == b'\\' || b >= 0x7f)
                            {
                                return Err(ConfigError::new(
                                    format!("{here}.scopes.{name}[{s}]"),
                                    "not a valid scope token (RFC 6749 §3.3)",
                                ));
                            }
                        }
                    }
                    ScopeRule {
                        all_of: rule.all_of.clone(),
                        any_of: rule.any_of.clone(),
                    }
                }
                None => ScopeRule::default(),
            };
            if let Some(thresholds) = &route.thresholds
                && let Err(err) = thresholds.validate()
            {
                return Err(ConfigError::new(
                    format!("{here}.thresholds"),
                    err.to_string(),
                ));
            }
            for (c, name) in route.consent_params.iter().enumerate() {
                if !segments
                    .iter()
                    .any(|s| matches!(s, Segment::Param(p, _) if p == name))
                {
                    return Err(ConfigError::new(
                        format!("{here}.consent_params[{c}]"),
                        format!("the path template has no parameter `{{{name}}}`"),
                    ));
                }
            }
            if route.anonymous
                && (!route.consent_params.is_empty()
                    || route.idempotency_key
                    || route.sender_constraint.is_some())
            {
                return Err(ConfigError::new(
                    here.clone(),
                    "an anonymous route cannot have `consent_params`, `idempotency_key` or `sender_constraint`",
                ));
            }
            if route.anonymous && !scopes.is_empty() {
                return Err(ConfigError::new(
                    format!("{here}.scopes"),
                    "an anonymous route cannot require scopes",
                ));
            }
            routes.push(Route {
                name: route.name.clone(),
                methods: route.methods.clone(),
                segments,
                scopes,
                anonymous: route.anonymous,
                thresholds: route.thresholds,
                consent_params: route.consent_params.clone(),
                idempotency_key: route.idempotency_key,
                sender: route.sender_constraint.as_ref().map(Into::into),
            });
        }
        Ok(Self { routes })
    }

    /// First route matching `method` and `path` (no query string).
    pub fn find<'r, 'p>(&'r self, method: &str, path: &'p str) -> Option<RouteMatch<'r, 'p>> {
        let parts: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        self.routes.iter().find_map(|route| {
            if !route.methods.is_empty() && !route.methods.iter().any(|m| m == method) {
                return None;
            }
            if route.segments.len() != parts.len() {
                return None;
            }
            let mut params = Vec::new();
            for (segment, part) in route.segments.iter().zip(&parts) {
                match segment {
                    Segment::Literal(lit) if lit == part => {}
                    Segment::Param(name, _) if !part.is_empty() => {
                        params.push((name.as_str(), *part));
                    }
                    _ => return None,
                }
            }
            Some(RouteMatch { route, params })
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.name.as_str())
    }

    /// The route named `name`, if any.
    pub fn by_name(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Whether any route turns DPoP checks on.
    pub fn any_dpop_route(&self) -> bool {
        self.routes.iter().any(|r| {
            r.sender
                .and_then(|s| s.dpop)
                .is_some_and(|m| m != crate::identify::config::BindingMode::Off)
        })
    }

    /// Whether any route is consent-bound.
    pub fn any_consent_bound(&self) -> bool {
        self.routes.iter().any(|r| !r.consent_params.is_empty())
    }
}

impl Route {
    /// The first parameter of `matched` (from this route's [`RouteTable::find`]) whose value
    /// does not fit its rule.
    pub fn param_violation<'p>(&self, matched: &[(&str, &'p str)]) -> Option<&'p str> {
        matched.iter().find_map(|(name, value)| {
            let fits = self.segments.iter().any(|segment| {
                matches!(segment, Segment::Param(p, rule) if p == name && rule.accepts(value))
            });
            (!fits).then_some(*value)
        })
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

fn parse_template(
    path: &str,
    template: &str,
    rules: &std::collections::BTreeMap<String, RawParam>,
) -> Result<Vec<Segment>, ConfigError> {
    let Some(rest) = template.strip_prefix('/') else {
        return Err(ConfigError::new(path, "must start with `/`"));
    };
    if crate::authorise::path::check(template).is_err() {
        return Err(ConfigError::new(
            path,
            "must be a normalised path (no `..`, `//`, `;`, `\\` or percent-encoded separators)",
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    rest.split('/')
        .map(|segment| {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if name.is_empty() || !name.bytes().all(is_name_byte) {
                    return Err(ConfigError::new(
                        path,
                        format!("bad parameter `{segment}`: use `{{Name}}` with letters, digits, `-`, `_`, `.`"),
                    ));
                }
                if names.contains(&name) {
                    return Err(ConfigError::new(path, format!("parameter `{name}` used twice")));
                }
                names.push(name);
                let rule_path = format!("{}.params.{name}", path.strip_suffix(".path").unwrap_or(path));
                let rule = match rules.get(name) {
                    Some(raw) => ParamRule::compile(&rule_path, raw)?,
                    None => ParamRule::compile(&rule_path, &RawParam::default())?,
                };
                Ok(Segment::Param(name.to_owned(), rule))
            } else if segment.contains('{') || segment.contains('}') {
                Err(ConfigError::new(
                    path,
                    format!("`{segment}`: a parameter must be a whole segment"),
                ))
            } else if segment.contains('*') {
                Err(ConfigError::new(path, "wildcards are not supported; use `{Param}` segments"))
            } else {
                Ok(Segment::Literal(segment.to_owned()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, methods: &[&str], path: &str) -> RawRoute {
        RawRoute {
            name: name.into(),
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            path: path.into(),
            scopes: None,
            anonymous: false,
            thresholds: None,
            params: Default::default(),
            consent_params: Vec::new(),
            idempotency_key: false,
            sender_constraint: None,
        }
    }

    #[test]
    fn matches_templates_in_order() {
        let table = RouteTable::compile(
            "routes",
            &[
                route("txns", &["GET"], "/accounts/{AccountId}/transactions"),
                route("account", &["GET"], "/accounts/{AccountId}"),
                route("accounts", &[], "/accounts"),
            ],
        )
        .map_err(|e| e.to_string());
        let Ok(table) = table else {
            unreachable!("{table:?}");
        };
        let m = table.find("GET", "/accounts/acc-1/transactions");
        assert_eq!(m.as_ref().map(|m| m.route.name.as_str()), Some("txns"));
        assert_eq!(m.map(|m| m.params), Some(vec![("AccountId", "acc-1")]));
        assert_eq!(
            table
                .find("GET", "/accounts/acc-1")
                .map(|m| m.route.name.as_str()),
            Some("account")
        );
        assert_eq!(
            table
                .find("DELETE", "/accounts")
                .map(|m| m.route.name.as_str()),
            Some("accounts")
        );
        assert!(table.find("POST", "/accounts/acc-1").is_none());
        assert!(table.find("GET", "/accounts/").is_none());
        assert!(table.find("GET", "/accounts//transactions").is_none());
        assert!(table.find("GET", "/admin").is_none());
    }

    #[test]
    fn charsets_and_ranges() {
        let rule = |charset: &str| {
            ParamRule::compile(
                "p",
                &RawParam {
                    charset: Some(charset.to_owned()),
                    max_length: Some(8),
                },
            )
        };
        let default = ParamRule::compile("p", &RawParam::default()).unwrap();
        assert!(default.accepts("acc-1_~.X9"));
        for bad in ["%c0%ae", "a;b", "a b", "ü", "a:b", "a@b"] {
            assert!(!default.accepts(bad), "{bad}");
        }
        assert!(!default.accepts(&"a".repeat(257)));
        let digits = rule("0-9").unwrap();
        assert!(digits.accepts("12345678") && !digits.accepts("123456789"));
        assert!(!digits.accepts("1-2"));
        let dash = rule("a-c-").unwrap();
        assert!(dash.accepts("ab-c") && !dash.accepts("d"));
        let colon = rule("A-Z:").unwrap();
        assert!(colon.accepts("AB:C") && !colon.accepts("a"));
        assert!(rule("z-a").is_err());
        assert!(rule("a%").is_err());
        assert!(rule("a/").is_err());
        assert!(rule("a;").is_err());
        assert!(rule("").is_err());
    }

    #[test]
    fn template_errors_name_the_field() {
        let err = RouteTable::compile(
            "routes",
            &[route("a", &[], "/x/{id}"), route("b", &[], "/x/a{id}")],
        )
        .err();
        assert_eq!(err.map(|e| e.path), Some("routes[1].path".to_owned()));
        let err = RouteTable::compile("routes", &[route("a", &["get"], "/x")]).err();
        assert_eq!(err.map(|e| e.path), Some("routes[0].methods[0]".to_owned()));
        let err =
            RouteTable::compile("routes", &[route("a", &[], "/x"), route("a", &[], "/y")]).err();
        assert_eq!(err.map(|e| e.path), Some("routes[1].name".to_owned()));
        let err = RouteTable::compile("routes", &[route("a", &[], "x")]).err();
        assert_eq!(err.map(|e| e.path), Some("routes[0].path".to_owned()));
    }
}
