//! Route templates (`/accounts/{AccountId}/transactions`) and first-match lookup.
//!
//! Matching is exact per segment: a literal matches itself, a `{Param}` matches any one
//! non-empty segment, and the segment counts must agree (so `/accounts` does not match
//! `/accounts/`). Routes are tried in configuration order.

use super::scopes::ScopeRule;
use crate::config::ConfigError;
use crate::config::raw::RawRoute;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
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
            let segments = parse_template(&format!("{here}.path"), &route.path)?;
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
                    Segment::Param(name) if !part.is_empty() => params.push((name.as_str(), *part)),
                    _ => return None,
                }
            }
            Some(RouteMatch { route, params })
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().map(|r| r.name.as_str())
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

fn parse_template(path: &str, template: &str) -> Result<Vec<Segment>, ConfigError> {
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
                Ok(Segment::Param(name.to_owned()))
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
