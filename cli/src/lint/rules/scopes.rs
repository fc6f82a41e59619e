//! Scopes and anonymity (OBG201–OBG206): the route that decides an operation must accept
//! exactly the tokens the operation's `security` accepts.
//!
//! OpenAPI's `security` is a list of alternatives (any one suffices), each a set of scopes
//! (all needed; several schemes in one requirement add up). A route accepts a token holding
//! every scope of `all_of` and, when `any_of` is not empty, one of `any_of`. The rules compare
//! the two as sets of accepted tokens:
//!
//! - *weaker*: some token the route accepts is refused by the description (a security hole,
//!   error);
//! - *stricter*: some token the description accepts is refused by the route (legitimate
//!   clients refused, warning).

use std::collections::BTreeSet;

use super::super::config_view::{ConfigView, RouteView};
use super::super::openapi::{Operation, Security, Spec};
use super::super::{Finding, Rule, Severity};
use super::coverage::Matching;
use super::{json_list, quoted};

type Scopes = BTreeSet<String>;

/// The route form (`all_of`, `any_of`) accepting exactly the tokens these alternatives
/// accept, when there is one: every alternative is a common part plus at most one scope.
pub fn route_form(alternatives: &[Scopes]) -> Option<(Scopes, Scopes)> {
    let mut iter = alternatives.iter();
    let first = iter.next()?;
    let common: Scopes = iter.fold(first.clone(), |acc, alt| {
        acc.intersection(alt).cloned().collect()
    });
    // An alternative equal to the common part makes the others redundant (supersets).
    if alternatives.contains(&common) {
        return Some((common, Scopes::new()));
    }
    let mut any_of = Scopes::new();
    for alt in alternatives {
        let rest: Vec<&String> = alt.difference(&common).collect();
        match rest.as_slice() {
            [one] => {
                any_of.insert((*one).clone());
            }
            _ => return None,
        }
    }
    Some((common, any_of))
}

/// The smallest tokens a route accepts: `all_of`, plus one of `any_of` when it has any.
fn minimal_tokens(route: &RouteView) -> Vec<Scopes> {
    if route.any_of.is_empty() {
        return vec![route.all_of.clone()];
    }
    route
        .any_of
        .iter()
        .map(|extra| {
            let mut token = route.all_of.clone();
            token.insert(extra.clone());
            token
        })
        .collect()
}

fn route_accepts(route: &RouteView, token: &Scopes) -> bool {
    route.all_of.is_subset(token)
        && (route.any_of.is_empty() || route.any_of.iter().any(|s| token.contains(s)))
}

fn spec_accepts(alternatives: &[Scopes], token: &Scopes) -> bool {
    alternatives.iter().any(|alt| alt.is_subset(token))
}

pub fn check(spec: &Spec, config: &ConfigView, matching: &Matching) -> Vec<Finding> {
    let mut out = Vec::new();
    for (op, route) in spec.operations.iter().zip(&matching.route_of) {
        let Some(route) = route.and_then(|r| config.routes.get(r)) else {
            continue;
        };
        match (&op.security, route.anonymous) {
            (Security::Public(_), true) => {}
            (Security::Public(reason), false) => out.push(
                Finding::new(
                    Rule::PublicOperationNeedsToken,
                    format!(
                        "{} has {}, but {} requires a token",
                        op.describe(),
                        reason.describe(),
                        route.describe()
                    ),
                    "Set `\"anonymous\": true` on the route (and remove its `scopes`), or give \
                     the operation a `security` requirement.",
                )
                .at(config.route_location(route, Some("anonymous")))
                .at(op.security_location.clone()),
            ),
            (Security::Scopes(alternatives), true) => out.push(
                Finding::new(
                    Rule::AnonymousRouteSecuredOperation,
                    format!(
                        "{} requires {}{}, but {} is anonymous: requests are forwarded without a token",
                        op.describe(),
                        describe_alternatives(alternatives),
                        inherited(op),
                        route.describe()
                    ),
                    format!("Remove `anonymous` and set {}.", scopes_hint(alternatives)),
                )
                .at(config.route_location(route, Some("anonymous")))
                .at(op.security_location.clone()),
            ),
            (Security::Scopes(alternatives), false) => {
                out.extend(compare(op, alternatives, route, config));
            }
        }
    }
    out
}

fn inherited(op: &Operation) -> &'static str {
    if op.security_inherited {
        " (the document's global `security`)"
    } else {
        ""
    }
}

fn describe_alternatives(alternatives: &[Scopes]) -> String {
    let described: Vec<String> = alternatives
        .iter()
        .map(|alt| {
            if alt.is_empty() {
                "a valid token".to_owned()
            } else {
                format!(
                    "all of [{}]",
                    alt.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        })
        .collect();
    match described.as_slice() {
        [] => "nothing".to_owned(),
        [one] => one.clone(),
        many => format!("one of: {}", many.join(" | ")),
    }
}

fn describe_route(route: &RouteView) -> String {
    let mut parts = Vec::new();
    if !route.all_of.is_empty() {
        parts.push(format!(
            "all_of [{}]",
            route.all_of.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if !route.any_of.is_empty() {
        parts.push(format!(
            "any_of [{}]",
            route.any_of.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if parts.is_empty() {
        "no scope".to_owned()
    } else {
        parts.join(" + ")
    }
}

/// `"scopes": {...}` matching the description, or the closest stricter one.
fn scopes_hint(alternatives: &[Scopes]) -> String {
    let (all_of, any_of, exact) = match route_form(alternatives) {
        Some((all_of, any_of)) => (all_of, any_of, true),
        None => (
            alternatives.first().cloned().unwrap_or_default(),
            Scopes::new(),
            false,
        ),
    };
    let mut parts = Vec::new();
    if !all_of.is_empty() {
        parts.push(format!("\"all_of\": {}", json_list(&all_of)));
    }
    if !any_of.is_empty() {
        parts.push(format!("\"any_of\": {}", json_list(&any_of)));
    }
    let scopes = if parts.is_empty() {
        "no `scopes` (any valid token)".to_owned()
    } else {
        format!("`\"scopes\": {{{}}}`", parts.join(", "))
    };
    if exact {
        scopes
    } else {
        format!("{scopes} (stricter than the description: no route form is exact)")
    }
}

fn compare(
    op: &Operation,
    alternatives: &[Scopes],
    route: &RouteView,
    config: &ConfigView,
) -> Vec<Finding> {
    let witness = minimal_tokens(route)
        .into_iter()
        .find(|token| !spec_accepts(alternatives, token));
    let refused = alternatives.iter().find(|alt| !route_accepts(route, alt));
    let exact = route_form(alternatives).is_some();
    let mut out = Vec::new();
    if !exact {
        out.push(
            Finding::new(
                Rule::ScopeInexpressible,
                format!(
                    "{} requires {}{}: no `all_of` + `any_of` accepts exactly that",
                    op.describe(),
                    describe_alternatives(alternatives),
                    inherited(op)
                ),
                format!(
                    "Use {}, or split the operation's alternatives.",
                    scopes_hint(alternatives)
                ),
            )
            .at(config.route_location(route, Some("scopes")))
            .at(op.security_location.clone()),
        );
    }
    // Only the weaker direction matters when no exact form exists.
    let stricter = exact && refused.is_some();
    if witness.is_none() && !stricter {
        return out;
    }
    let weaker = witness.is_some();
    let level = |weakens: bool| {
        if weakens {
            Severity::Error
        } else {
            Severity::Warning
        }
    };
    let mentioned_spec: Scopes = alternatives.iter().flatten().cloned().collect();
    let mentioned_route: Scopes = route.all_of.union(&route.any_of).cloned().collect();
    let missing: Vec<&String> = mentioned_spec.difference(&mentioned_route).collect();
    let extra: Vec<&String> = mentioned_route.difference(&mentioned_spec).collect();
    let consequence = match (&witness, refused) {
        (Some(token), _) => format!(
            "a token with only [{}] passes the route, the description refuses it",
            token.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        (None, Some(alt)) => format!(
            "a token with [{}] satisfies the description, the route refuses it",
            alt.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        (None, None) => String::new(),
    };
    let head = format!(
        "{} requires {}{}; {} requires {}",
        op.describe(),
        describe_alternatives(alternatives),
        inherited(op),
        route.describe(),
        describe_route(route)
    );
    let hint = format!("Set the route's {}.", scopes_hint(alternatives));
    let mut found: Vec<(Rule, Severity, String)> = Vec::new();
    if !missing.is_empty() {
        // A scope every alternative needs, missing from the route, weakens it.
        let weakens = weaker
            && missing
                .iter()
                .any(|s| alternatives.iter().all(|alt| alt.contains(*s)));
        found.push((
            Rule::ScopeMissing,
            level(weakens || (weaker && !stricter)),
            format!("the route lacks {}", quoted(missing.iter().copied())),
        ));
    }
    if !extra.is_empty() {
        let widens = weaker && extra.iter().any(|s| route.any_of.contains(*s));
        found.push((
            Rule::ScopeExtra,
            level(widens),
            format!(
                "the description does not mention {}",
                quoted(extra.iter().copied())
            ),
        ));
    }
    // Every direction of difference gets a finding of its severity.
    let explained = |severity| found.iter().any(|(_, s, _)| *s == severity);
    let unexplained_weaker = weaker && !explained(Severity::Error);
    let unexplained_stricter = stricter && !weaker && !explained(Severity::Warning);
    if unexplained_weaker || unexplained_stricter || found.is_empty() {
        found.push((
            Rule::ScopeCombination,
            level(weaker),
            "`all_of` and `any_of` are combined otherwise".to_owned(),
        ));
    }
    out.extend(found.into_iter().map(|(rule, severity, problem)| {
        Finding::new(
            rule,
            format!("{head}: {problem} ({consequence})"),
            hint.clone(),
        )
        .severity(severity)
        .at(config.route_location(route, Some("scopes")))
        .at(op.security_location.clone())
    }));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::testing::{lint, of, ops};
    use super::*;

    fn set(items: &[&str]) -> Scopes {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn routed(security: &str, scopes: Value) -> Vec<Finding> {
        let spec = ops(&[("get", "/accounts/{AccountId}/transactions", security)]);
        let mut route =
            json!({"name": "tx", "methods": ["GET"], "path": "/accounts/{AccountId}/transactions"});
        if let Value::Object(extra) = scopes {
            route.as_object_mut().unwrap().extend(extra);
        }
        lint(&spec, json!({"routes": [route]}))
    }

    fn scope_rules(found: &[Finding]) -> Vec<(Rule, Severity)> {
        let mut out: Vec<(Rule, Severity)> = found
            .iter()
            .filter(|f| {
                matches!(
                    f.rule,
                    Rule::ScopeMissing
                        | Rule::ScopeExtra
                        | Rule::ScopeCombination
                        | Rule::ScopeInexpressible
                        | Rule::AnonymousRouteSecuredOperation
                        | Rule::PublicOperationNeedsToken
                )
            })
            .map(|f| (f.rule, f.severity))
            .collect();
        out.sort();
        out
    }

    const TX: &str =
        "[{oauth: [accounts, transactions:read]}, {psu: [accounts, transactions:all]}]";

    #[test]
    fn route_form_of_alternatives() {
        assert_eq!(route_form(&[set(&["a"])]), Some((set(&["a"]), set(&[]))));
        assert_eq!(
            route_form(&[set(&["a", "x"]), set(&["a", "y"])]),
            Some((set(&["a"]), set(&["x", "y"])))
        );
        assert_eq!(
            route_form(&[set(&["a"]), set(&["a", "y"])]),
            Some((set(&["a"]), set(&[])))
        );
        assert_eq!(route_form(&[set(&["a", "b"]), set(&["c", "d"])]), None);
        assert_eq!(route_form(&[set(&[])]), Some((set(&[]), set(&[]))));
    }

    #[test]
    fn exact_scopes_are_clean() {
        let found = routed(
            TX,
            json!({"scopes": {"all_of": ["accounts"], "any_of": ["transactions:read", "transactions:all"]}}),
        );
        assert_eq!(scope_rules(&found), [], "{found:?}");
        let found = routed(
            "[{oauth: [accounts]}]",
            json!({"scopes": {"all_of": ["accounts"]}}),
        );
        assert_eq!(scope_rules(&found), [], "{found:?}");
    }

    #[test]
    fn scope_missing() {
        let found = routed(
            TX,
            json!({"scopes": {"any_of": ["transactions:read", "transactions:all"]}}),
        );
        assert_eq!(
            scope_rules(&found),
            [(Rule::ScopeMissing, Severity::Error)],
            "{found:?}"
        );
        let hit = of(&found, Rule::ScopeMissing)[0];
        assert!(hit.message.contains("`accounts`"), "{}", hit.message);
        assert!(hit.message.contains("passes the route"), "{}", hit.message);
        assert_eq!(hit.locations[0].pointer, "/routes/0/scopes");
        assert_eq!(
            hit.locations[1].pointer,
            "/paths/~1accounts~1{AccountId}~1transactions/get/security"
        );
        // Missing one alternative only: stricter, a warning.
        let found = routed(
            TX,
            json!({"scopes": {"all_of": ["accounts"], "any_of": ["transactions:read"]}}),
        );
        assert_eq!(
            scope_rules(&found),
            [(Rule::ScopeMissing, Severity::Warning)],
            "{found:?}"
        );
        // No scopes at all.
        let found = routed("[{oauth: [accounts]}]", json!({}));
        assert_eq!(
            scope_rules(&found),
            [(Rule::ScopeMissing, Severity::Error)],
            "{found:?}"
        );
    }

    #[test]
    fn scope_extra() {
        let found = routed(
            "[{oauth: [accounts]}]",
            json!({"scopes": {"all_of": ["accounts", "admin"]}}),
        );
        assert_eq!(
            scope_rules(&found),
            [(Rule::ScopeExtra, Severity::Warning)],
            "{found:?}"
        );
        // An extra alternative widens the route.
        let found = routed(
            TX,
            json!({"scopes": {"all_of": ["accounts"], "any_of": ["transactions:read", "transactions:all", "transactions:any"]}}),
        );
        assert_eq!(
            scope_rules(&found),
            [(Rule::ScopeExtra, Severity::Error)],
            "{found:?}"
        );
    }

    #[test]
    fn scope_combination() {
        // all_of where the description has alternatives: stricter.
        let found = routed(
            TX,
            json!({"scopes": {"all_of": ["accounts", "transactions:read", "transactions:all"]}}),
        );
        assert_eq!(
            scope_rules(&found),
            [(Rule::ScopeCombination, Severity::Warning)],
            "{found:?}"
        );
        // any_of where the description requires both: weaker.
        let found = routed(
            "[{oauth: [accounts, payments]}]",
            json!({"scopes": {"any_of": ["accounts", "payments"]}}),
        );
        assert_eq!(
            scope_rules(&found),
            [(Rule::ScopeCombination, Severity::Error)],
            "{found:?}"
        );
        let hit = of(&found, Rule::ScopeCombination)[0];
        assert!(
            hit.hint.contains(r#""all_of": ["accounts","payments"]"#),
            "{}",
            hit.hint
        );
    }

    #[test]
    fn scope_inexpressible() {
        let found = routed(
            "[{oauth: [a, b]}, {oauth: [c, d]}]",
            json!({"scopes": {"all_of": ["a", "b"]}}),
        );
        assert_eq!(
            scope_rules(&found),
            [(Rule::ScopeInexpressible, Severity::Warning)],
            "{found:?}"
        );
        // Still weaker-checked.
        let found = routed(
            "[{oauth: [a, b]}, {oauth: [c, d]}]",
            json!({"scopes": {"any_of": ["a", "c"]}}),
        );
        let rules = scope_rules(&found);
        assert!(
            rules.contains(&(Rule::ScopeInexpressible, Severity::Warning)),
            "{rules:?}"
        );
        assert!(
            rules.iter().any(|(_, s)| *s == Severity::Error),
            "{rules:?}"
        );
    }

    #[test]
    fn global_security_is_the_default() {
        let spec = "openapi: 3.1.0
security: [{oauth: [accounts]}]
components: {securitySchemes: {oauth: {type: oauth2, flows: {}}}}
paths:
  /accounts:
    get: {}
  /health:
    get: {security: []}
";
        let found = lint(
            spec,
            json!({"routes": [
                {"name": "accounts", "methods": ["GET"], "path": "/accounts"},
                {"name": "health", "methods": ["GET"], "path": "/health", "anonymous": true},
            ]}),
        );
        assert_eq!(
            scope_rules(&found),
            [(Rule::ScopeMissing, Severity::Error)],
            "{found:?}"
        );
        let hit = of(&found, Rule::ScopeMissing)[0];
        assert!(hit.message.contains("global `security`"), "{}", hit.message);
        assert_eq!(hit.locations[1].pointer, "/security");
    }

    #[test]
    fn anonymous_route_secured_operation() {
        let found = routed("[{oauth: [accounts]}]", json!({"anonymous": true}));
        assert_eq!(
            scope_rules(&found),
            [(Rule::AnonymousRouteSecuredOperation, Severity::Error)],
            "{found:?}"
        );
        let found = routed("[]", json!({"anonymous": true}));
        assert_eq!(scope_rules(&found), [], "{found:?}");
    }

    #[test]
    fn public_operation_needs_token() {
        for security in ["[]", "[{}, {oauth: [accounts]}]"] {
            let found = routed(security, json!({"scopes": {"all_of": ["accounts"]}}));
            assert_eq!(
                scope_rules(&found),
                [(Rule::PublicOperationNeedsToken, Severity::Warning)],
                "{found:?}"
            );
        }
        let found = routed("[{oauth: []}]", json!({}));
        assert_eq!(scope_rules(&found), [], "{found:?}");
    }
}
