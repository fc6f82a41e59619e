//! Which route decides each operation, and the rules about that: operations without a route
//! (OBG101), routes without an operation (OBG102), methods (OBG103) and path parameters
//! (OBG104).
//!
//! An operation's route is found as obguard finds a request's: the first route in
//! configuration order whose template covers the operation's path (a route parameter takes any
//! segment, a route literal only the same literal) and whose methods admit its method.

use super::super::config_view::{ConfigView, RouteView, Unmatched};
use super::super::openapi::{Operation, Security, Spec};
use super::super::template::{Segment, Template};
use super::super::{Finding, Rule, Severity};
use super::scopes::route_form;
use super::{json_list, quoted};

/// The route of every operation.
#[derive(Debug, Clone)]
pub struct Matching {
    /// Per operation: the index of the route that decides its requests.
    pub route_of: Vec<Option<usize>>,
    /// Per operation without a route: routes that cover its path but not its method.
    pub other_methods: Vec<Vec<usize>>,
    /// Per operation without a route: a route with the same literals and parameters in other
    /// positions.
    pub moved_params: Vec<Option<usize>>,
}

impl Matching {
    pub fn new(spec: &Spec, config: &ConfigView) -> Matching {
        let mut route_of = Vec::with_capacity(spec.operations.len());
        let mut other_methods = Vec::with_capacity(spec.operations.len());
        let mut moved_params = Vec::with_capacity(spec.operations.len());
        for op in &spec.operations {
            let mut found = None;
            let mut others = Vec::new();
            for route in &config.routes {
                if Template::route_covers(&route.template, &op.template) {
                    if route.admits(&op.method) {
                        found = Some(route.index);
                        break;
                    }
                    others.push(route.index);
                }
            }
            let moved = if found.is_none() && others.is_empty() {
                config
                    .routes
                    .iter()
                    .find(|r| r.admits(&op.method) && params_moved(&r.template, &op.template))
                    .map(|r| r.index)
            } else {
                None
            };
            route_of.push(found);
            other_methods.push(if found.is_none() { others } else { Vec::new() });
            moved_params.push(moved);
        }
        Matching {
            route_of,
            other_methods,
            moved_params,
        }
    }

    /// The operations a route decides.
    pub fn served_by(&self, route: usize) -> impl Iterator<Item = usize> + '_ {
        self.route_of
            .iter()
            .enumerate()
            .filter(move |(_, r)| **r == Some(route))
            .map(|(op, _)| op)
    }
}

/// Same segment count, same literals in order, same parameter names, but parameters in other
/// positions (`/accounts/{Id}/x` vs `/accounts/x/{Id}`).
fn params_moved(route: &Template, op: &Template) -> bool {
    if route.segments.len() != op.segments.len() || Template::route_covers(route, op) {
        return false;
    }
    let mut route_params = route.params();
    let mut op_params = op.params();
    route_params.sort_unstable();
    op_params.sort_unstable();
    let mut route_literals = route.literals();
    let mut op_literals = op.literals();
    route_literals.sort_unstable();
    op_literals.sort_unstable();
    !op_params.is_empty() && route_params == op_params && route_literals == op_literals
}

pub fn check(spec: &Spec, config: &ConfigView, matching: &Matching) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, op) in spec.operations.iter().enumerate() {
        let route = matching.route_of.get(i).copied().flatten();
        let others = matching
            .other_methods
            .get(i)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let moved = matching.moved_params.get(i).copied().flatten();
        match (
            route.and_then(|r| config.routes.get(r)),
            moved.and_then(|r| config.routes.get(r)),
        ) {
            (Some(route), _) => out.extend(param_names(op, route, config)),
            (None, Some(moved)) => out.push(params_positions(op, moved, config)),
            (None, None) if !others.is_empty() => out.push(missing_method(op, others, config)),
            (None, None) => out.push(unprotected(op, config)),
        }
    }
    for route in &config.routes {
        out.extend(route_side(route, spec, config, matching));
    }
    out
}

fn unmatched_consequence(unmatched: Unmatched) -> &'static str {
    match unmatched {
        Unmatched::Deny => {
            "refused with 403 (`unmatched: deny`): the published operation does not work"
        }
        Unmatched::Authenticate => {
            "forwarded with any valid token and no scope check (`unmatched: authenticate`)"
        }
        Unmatched::Allow => "forwarded to the upstream unchecked (`unmatched: allow`)",
    }
}

fn unprotected(op: &Operation, config: &ConfigView) -> Finding {
    let severity = Severity::Error;
    Finding::new(
        Rule::OperationUnprotected,
        format!(
            "{} has no route: its requests are {}",
            op.describe(),
            unmatched_consequence(config.unmatched)
        ),
        format!(
            "Add this route to `routes`, before any broader route: {}",
            suggested_route(op)
        ),
    )
    .severity(severity)
    .at(op.location.clone())
    .at(config.location("/routes"))
}

/// A route for an operation, as JSON.
pub fn suggested_route(op: &Operation) -> String {
    let name = op
        .operation_id
        .as_deref()
        .map(|id| {
            id.chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            let mut name: Vec<String> = op
                .template
                .segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(l) | Segment::Mixed(l) => l.clone(),
                    Segment::Param(p) => p.clone(),
                })
                .collect();
            name.insert(0, op.method.to_ascii_lowercase());
            name.join("-")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect()
        });
    let mut route = format!(
        "{{\"name\": \"{name}\", \"methods\": [\"{}\"], \"path\": \"{}\"",
        op.method, op.template
    );
    match &op.security {
        Security::Public(_) => route.push_str(", \"anonymous\": true"),
        Security::Scopes(alternatives) => {
            let (all_of, any_of) = route_form(alternatives).unwrap_or_else(|| {
                // Not expressible: the first alternative (stricter than the description).
                (
                    alternatives.first().cloned().unwrap_or_default(),
                    Default::default(),
                )
            });
            let mut parts = Vec::new();
            if !all_of.is_empty() {
                parts.push(format!("\"all_of\": {}", json_list(&all_of)));
            }
            if !any_of.is_empty() {
                parts.push(format!("\"any_of\": {}", json_list(&any_of)));
            }
            if !parts.is_empty() {
                route.push_str(&format!(", \"scopes\": {{{}}}", parts.join(", ")));
            }
        }
    }
    route.push('}');
    route
}

fn missing_method(op: &Operation, others: &[usize], config: &ConfigView) -> Finding {
    let routes: Vec<&RouteView> = others
        .iter()
        .filter_map(|r| config.routes.get(*r))
        .collect();
    let first = routes.first();
    let mut finding = Finding::new(
        Rule::MethodMismatch,
        format!(
            "{} has no route for {}: {} cover{} the path for other methods, so its requests are {}",
            op.describe(),
            op.method,
            routes.iter().map(|r| r.describe()).collect::<Vec<_>>().join(", "),
            if routes.len() == 1 { "s" } else { "" },
            unmatched_consequence(config.unmatched)
        ),
        match first {
            Some(route) => format!(
                "Add \"{}\" to the `methods` of route `{}` if it has the same scopes, or add a route: {}",
                op.method,
                route.name,
                suggested_route(op)
            ),
            None => format!("Add a route: {}", suggested_route(op)),
        },
    )
    .severity(Severity::Error);
    if let Some(route) = first {
        finding = finding.at(config.route_location(route, Some("methods")));
    }
    finding.at(op.location.clone())
}

fn params_positions(op: &Operation, route: &RouteView, config: &ConfigView) -> Finding {
    Finding::new(
        Rule::PathParamsDiffer,
        format!(
            "{} has no route: {} has the same segments with the parameters in other positions, \
             so it matches other requests; the operation's are {}",
            op.describe(),
            route.describe(),
            unmatched_consequence(config.unmatched)
        ),
        format!("Set the route's `path` to \"{}\".", op.template),
    )
    .severity(Severity::Error)
    .at(config.route_location(route, Some("path")))
    .at(op.location.clone())
}

fn param_names(op: &Operation, route: &RouteView, config: &ConfigView) -> Option<Finding> {
    let renamed: Vec<String> = route
        .template
        .segments
        .iter()
        .zip(&op.template.segments)
        .filter_map(|(r, o)| match (r, o) {
            (Segment::Param(r), Segment::Param(o)) if r != o => {
                Some(format!("{{{r}}} for {{{o}}}"))
            }
            _ => None,
        })
        .collect();
    if renamed.is_empty() {
        return None;
    }
    Some(
        Finding::new(
            Rule::PathParamsDiffer,
            format!(
                "{} names its path parameters differently from {}: {}",
                route.describe(),
                op.describe(),
                renamed.join(", ")
            ),
            format!(
                "Rename them as the description does (`path`: \"{}\"), and the keys of the \
                 route's `params` with them.",
                op.template
            ),
        )
        .severity(Severity::Warning)
        .at(config.route_location(route, Some("path")))
        .at(op.location.clone()),
    )
}

/// OBG102 and the route side of OBG103.
fn route_side(
    route: &RouteView,
    spec: &Spec,
    config: &ConfigView,
    matching: &Matching,
) -> Vec<Finding> {
    let served: Vec<&Operation> = matching
        .served_by(route.index)
        .filter_map(|op| spec.operations.get(op))
        .collect();
    let mentioned = |list: &[Vec<usize>]| list.iter().any(|rs| rs.contains(&route.index));
    let moved = matching.moved_params.contains(&Some(route.index));
    if served.is_empty() {
        if mentioned(&matching.other_methods) || moved {
            return Vec::new(); // reported from the operation's side
        }
        // Operations this route would cover, that an earlier route takes first.
        let taken: Vec<(&Operation, usize)> = spec
            .operations
            .iter()
            .zip(&matching.route_of)
            .filter_map(|(op, by)| {
                let by = (*by)?;
                (by != route.index
                    && route.admits(&op.method)
                    && Template::route_covers(&route.template, &op.template))
                .then_some((op, by))
            })
            .collect();
        let message = match taken.first() {
            Some((op, by)) => format!(
                "{} never decides a request: {} is taken first by {}",
                route.describe(),
                op.describe(),
                config
                    .routes
                    .get(*by)
                    .map_or_else(String::new, RouteView::describe)
            ),
            None => format!(
                "{} matches no operation of the API description: a shadow endpoint, or a stale route",
                route.describe()
            ),
        };
        let hint = if taken.is_empty() {
            "Remove the route, or add the operation to the description (`paths`)."
        } else {
            "Remove the route, or move it before the broader route."
        };
        return vec![
            Finding::new(Rule::RouteWithoutOperation, message, hint)
                .at(config.route_location(route, None))
                .at(spec.paths_location.clone()),
        ];
    }
    // Methods the description defines on the paths this route covers.
    let described: Vec<&Operation> = spec
        .operations
        .iter()
        .filter(|op| Template::route_covers(&route.template, &op.template))
        .collect();
    let mut methods: Vec<String> = described.iter().map(|op| op.method.clone()).collect();
    methods.sort();
    methods.dedup();
    let extra: Vec<String> = route
        .methods
        .iter()
        .filter(|m| !methods.contains(m))
        .cloned()
        .collect();
    let problem = if route.methods.is_empty() {
        format!(
            "admits any method; the description defines only {}",
            quoted(&methods)
        )
    } else if !extra.is_empty() {
        format!(
            "admits {}, which the description does not define on {}",
            quoted(&extra),
            served
                .first()
                .map_or_else(String::new, |op| op.template.to_string())
        )
    } else {
        return Vec::new();
    };
    let allowed: Vec<String> = if route.methods.is_empty() {
        methods.clone()
    } else {
        route
            .methods
            .iter()
            .filter(|m| methods.contains(m))
            .cloned()
            .collect()
    };
    vec![
        Finding::new(
            Rule::MethodMismatch,
            format!("{} {problem}", route.describe()),
            format!("Set `methods` to {}.", json_list(&allowed)),
        )
        .severity(Severity::Warning)
        .at(config.route_location(route, Some("methods")))
        .at(served
            .first()
            .map_or_else(|| spec.paths_location.clone(), |op| op.location.clone())),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{lint, of, ops};
    use super::*;

    const ACCOUNTS: &str = "[{oauth: [accounts]}]";

    fn route(name: &str, methods: &[&str], path: &str) -> serde_json::Value {
        json!({"name": name, "methods": methods, "path": path, "scopes": {"all_of": ["accounts"]}})
    }

    #[test]
    fn operation_unprotected() {
        let spec = ops(&[
            ("get", "/accounts", ACCOUNTS),
            ("get", "/accounts/{AccountId}/balances", ACCOUNTS),
        ]);
        let found = lint(
            &spec,
            json!({"routes": [route("accounts", &["GET"], "/accounts")]}),
        );
        let hits = of(&found, Rule::OperationUnprotected);
        assert_eq!(hits.len(), 1, "{found:?}");
        assert!(
            hits[0]
                .message
                .contains("GET /accounts/{AccountId}/balances")
        );
        assert!(hits[0].message.contains("403"));
        assert!(
            hits[0].hint.contains(
                r#""path": "/accounts/{AccountId}/balances", "scopes": {"all_of": ["accounts"]}"#
            ),
            "{}",
            hits[0].hint
        );
        assert_eq!(
            hits[0].locations[0].pointer,
            "/paths/~1accounts~1{AccountId}~1balances/get"
        );
        assert_eq!(hits[0].locations[1].pointer, "/routes");
        // Negative: every operation routed.
        let found = lint(
            &spec,
            json!({"routes": [route("accounts", &["GET"], "/accounts"), route("balances", &["GET"], "/accounts/{Id}/balances")]}),
        );
        assert!(
            of(&found, Rule::OperationUnprotected).is_empty(),
            "{found:?}"
        );
    }

    #[test]
    fn route_without_operation() {
        let spec = ops(&[("get", "/accounts", ACCOUNTS)]);
        let found = lint(
            &spec,
            json!({"routes": [
                route("accounts", &["GET"], "/accounts"),
                route("admin", &["GET"], "/admin/export"),
                route("all", &["GET"], "/{x}"),
            ]}),
        );
        let hits = of(&found, Rule::RouteWithoutOperation);
        assert_eq!(hits.len(), 2, "{found:?}");
        assert!(
            hits.iter()
                .any(|h| h.message.contains("`admin`") && h.message.contains("shadow"))
        );
        assert!(
            hits.iter()
                .any(|h| h.message.contains("`all`") && h.message.contains("taken first"))
        );
        let found = lint(
            &spec,
            json!({"routes": [route("accounts", &["GET"], "/accounts")]}),
        );
        assert!(
            of(&found, Rule::RouteWithoutOperation).is_empty(),
            "{found:?}"
        );
    }

    #[test]
    fn method_mismatch() {
        let spec = ops(&[
            ("get", "/accounts", ACCOUNTS),
            ("get", "/accounts/{AccountId}", ACCOUNTS),
        ]);
        let found = lint(
            &spec,
            json!({"routes": [route("accounts", &["POST"], "/accounts"), route("account", &["GET", "DELETE"], "/accounts/{AccountId}")]}),
        );
        let hits = of(&found, Rule::MethodMismatch);
        assert_eq!(hits.len(), 2, "{found:?}");
        let missing = hits.iter().find(|h| h.severity == Severity::Error).unwrap();
        assert!(
            missing
                .message
                .contains("GET /accounts has no route for GET"),
            "{}",
            missing.message
        );
        assert_eq!(missing.locations[0].pointer, "/routes/0/methods");
        let extra = hits
            .iter()
            .find(|h| h.severity == Severity::Warning)
            .unwrap();
        assert!(extra.message.contains("`DELETE`"), "{}", extra.message);
        assert!(extra.hint.contains(r#"["GET"]"#));
        // Any method.
        let found = lint(
            &spec,
            json!({"routes": [route("accounts", &[], "/accounts"), route("account", &["GET"], "/accounts/{AccountId}")]}),
        );
        let hits = of(&found, Rule::MethodMismatch);
        assert_eq!(hits.len(), 1, "{found:?}");
        assert!(hits[0].message.contains("any method"));
        // Negative.
        let found = lint(
            &spec,
            json!({"routes": [route("accounts", &["GET"], "/accounts"), route("account", &["GET"], "/accounts/{AccountId}")]}),
        );
        assert!(of(&found, Rule::MethodMismatch).is_empty(), "{found:?}");
        assert!(
            of(&found, Rule::OperationUnprotected).is_empty(),
            "{found:?}"
        );
    }

    #[test]
    fn path_params_differ() {
        let spec = ops(&[
            ("get", "/accounts/{AccountId}", ACCOUNTS),
            (
                "get",
                "/accounts/{AccountId}/statements/{StatementId}",
                ACCOUNTS,
            ),
        ]);
        let found = lint(
            &spec,
            json!({"routes": [
                route("account", &["GET"], "/accounts/{accountId}"),
                route("statement", &["GET"], "/accounts/{AccountId}/{StatementId}/statements"),
            ]}),
        );
        let hits = of(&found, Rule::PathParamsDiffer);
        assert_eq!(hits.len(), 2, "{found:?}");
        let renamed = hits
            .iter()
            .find(|h| h.severity == Severity::Warning)
            .unwrap();
        assert!(
            renamed.message.contains("{accountId} for {AccountId}"),
            "{}",
            renamed.message
        );
        let moved = hits.iter().find(|h| h.severity == Severity::Error).unwrap();
        assert!(
            moved.message.contains("other positions"),
            "{}",
            moved.message
        );
        // The moved route is not also a shadow route, nor the operation unprotected.
        assert!(
            of(&found, Rule::RouteWithoutOperation).is_empty(),
            "{found:?}"
        );
        assert!(
            of(&found, Rule::OperationUnprotected).is_empty(),
            "{found:?}"
        );
        let found = lint(
            &spec,
            json!({"routes": [
                route("account", &["GET"], "/accounts/{AccountId}"),
                route("statement", &["GET"], "/accounts/{AccountId}/statements/{StatementId}"),
            ]}),
        );
        assert!(of(&found, Rule::PathParamsDiffer).is_empty(), "{found:?}");
    }

    #[test]
    fn first_match_decides() {
        // The broad route first takes the literal operation too.
        let spec = ops(&[
            ("get", "/accounts/{AccountId}", ACCOUNTS),
            ("get", "/accounts/summary", "[]"),
        ]);
        let config = super::super::testing::config(json!({"routes": [
            route("account", &["GET"], "/accounts/{AccountId}"),
            {"name": "summary", "methods": ["GET"], "path": "/accounts/summary", "anonymous": true},
        ]}));
        let spec = super::super::testing::spec(&spec);
        let m = Matching::new(&spec, &config);
        let summary = spec
            .operations
            .iter()
            .position(|o| o.template.to_string() == "/accounts/summary")
            .unwrap();
        assert_eq!(m.route_of[summary], Some(0));
    }
}
