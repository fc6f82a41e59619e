//! What happens to requests beyond identity and scopes: unrouted paths (OBG301), payment
//! routes without limits (OBG302), with a limit that fails open (OBG303) or without a required
//! idempotency key (OBG304), and account routes not bound to the consent (OBG305).

use std::collections::BTreeMap;

use super::super::config_view::{ConfigView, RouteView, Unmatched};
use super::super::openapi::{Operation, Spec};
use super::super::{Finding, Location, Rule, Severity};
use super::coverage::Matching;

pub fn unmatched(config: &ConfigView) -> Vec<Finding> {
    let severity = match config.unmatched {
        Unmatched::Deny => return Vec::new(),
        Unmatched::Authenticate => Severity::Warning,
        Unmatched::Allow => Severity::Error,
    };
    let what = match config.unmatched {
        Unmatched::Allow => "forwarded to the upstream without any check",
        _ => "forwarded with any valid token and no scope check",
    };
    vec![
        Finding::new(
            Rule::UnmatchedNotDeny,
            format!(
                "`unmatched` is `{}`: a request on a path no route lists is {what}",
                config.unmatched.as_str()
            ),
            "Set `\"unmatched\": \"deny\"` and add a route for every published operation.",
        )
        .severity(severity)
        .at(config.location("/unmatched")),
    ]
}

/// Whether a limit of the route applies to this operation's requests.
fn limited(route: &RouteView, op: &Operation) -> bool {
    route.limits.ratelimit.is_some()
        || route.limits.thresholds
        || (route.limits.payment_velocity && op.method == "POST")
}

pub fn payments(spec: &Spec, config: &ConfigView, matching: &Matching) -> Vec<Finding> {
    // Per route, its payment operations without a limit, and those only limited by a
    // rate-limit call that fails open.
    let mut unlimited: BTreeMap<usize, Vec<&Operation>> = BTreeMap::new();
    let mut fail_open: BTreeMap<usize, Vec<&Operation>> = BTreeMap::new();
    for (op, route) in spec.operations.iter().zip(&matching.route_of) {
        let Some(route) = route.and_then(|r| config.routes.get(r)) else {
            continue; // OBG101 already
        };
        if op.payment.is_none() {
            continue;
        }
        if !limited(route, op) {
            unlimited.entry(route.index).or_default().push(op);
            continue;
        }
        // Every limit that applies fails open: rate limiting with `fail_open`, thresholds of a
        // model that allows unscored requests until its first file arrives.
        let velocity = route.limits.payment_velocity && op.method == "POST";
        let ratelimit_open = route.limits.ratelimit.as_ref().is_none_or(|c| c.fail_open);
        let thresholds_open = !route.limits.thresholds || route.limits.thresholds_fail_open;
        if !velocity && ratelimit_open && thresholds_open {
            fail_open.entry(route.index).or_default().push(op);
        }
    }
    let mut out = Vec::new();
    for (index, ops) in unlimited {
        let Some(route) = config.routes.get(index) else {
            continue;
        };
        let notes: Vec<String> = [
            route.limits.ratelimit_note.clone(),
            route.limits.thresholds_note.clone(),
            (route.limits.payment_velocity && ops.iter().all(|o| o.method != "POST"))
                .then(|| "`rules.payment_velocity` counts `POST`s only".to_owned()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let note = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        out.push(payment_finding(
            Rule::PaymentWithoutLimits,
            route,
            &ops,
            format!("has neither rate limiting nor model thresholds{note}"),
            format!(
                "Give the route a limit: a `ratelimit` section (it calls for every route unless \
                 `call` is `never`; add `\"routes\": {{\"{name}\": {{\"failure_mode\": \"fail_closed\"}}}}`), \
                 per-route `\"thresholds\": {{\"challenge\": 0.3, \"throttle\": 0.6, \"block\": 0.8}}` \
                 with an enforcing `model`, or list \"{name}\" in `rules.payment_velocity.routes`.",
                name = route.name
            ),
            config.route_location(route, None),
        ));
    }
    for (index, ops) in fail_open {
        let Some(route) = config.routes.get(index) else {
            continue;
        };
        let mut open = Vec::new();
        let mut hints = Vec::new();
        let mut at = config.route_location(route, None);
        if let Some(call) = &route.limits.ratelimit {
            open.push("the rate-limit call forwards requests when the rate-limit service fails (`failure_mode: fail_open`)");
            hints.push(format!(
                "add `\"routes\": {{\"{}\": {{\"failure_mode\": \"fail_closed\"}}}}` to `ratelimit`",
                route.name
            ));
            at = config.location(&call.failure_mode_pointer);
        }
        if route.limits.thresholds {
            open.push("the model thresholds score nothing until the polled model's first file arrives (`model.when_unavailable: allow`)");
            hints.push("set `\"when_unavailable\": \"refuse\"` in `model`".to_owned());
            if route.limits.ratelimit.is_none() {
                at = config.location("/model/when_unavailable");
            }
        }
        out.push(payment_finding(
            Rule::PaymentLimitFailsOpen,
            route,
            &ops,
            format!("and every limit it has fails open: {}", open.join("; ")),
            format!("{}.", capitalise(&hints.join(", and "))),
            at,
        ));
    }
    out
}

/// `<route> serves the payment operation(s) <ops> <problem>`, at `at` and every operation.
/// Payment initiations (`POST` payment operations) whose route does not require
/// `x-idempotency-key` (OBG304).
pub fn idempotency(spec: &Spec, config: &ConfigView, matching: &Matching) -> Vec<Finding> {
    let mut without: BTreeMap<usize, Vec<&Operation>> = BTreeMap::new();
    for (op, route) in spec.operations.iter().zip(&matching.route_of) {
        let Some(route) = route.and_then(|r| config.routes.get(r)) else {
            continue;
        };
        if op.payment.is_some() && op.method == "POST" && !route.idempotency_key {
            without.entry(route.index).or_default().push(op);
        }
    }
    without
        .into_iter()
        .filter_map(|(index, ops)| {
            let route = config.routes.get(index)?;
            Some(payment_finding(
                Rule::PaymentWithoutIdempotencyKey,
                route,
                &ops,
                "without requiring `x-idempotency-key`".to_owned(),
                format!("Add `\"idempotency_key\": true` to route `{}`.", route.name),
                config.route_location(route, None),
            ))
        })
        .collect()
}

/// Routes with an account-id path parameter that is not in `consent_params` (OBG305).
pub fn consent(config: &ConfigView) -> Vec<Finding> {
    config
        .routes
        .iter()
        .filter(|route| !route.anonymous)
        .flat_map(|route| {
            route
                .template
                .params()
                .into_iter()
                .filter(|name| name.ends_with("AccountId"))
                .filter(|name| !route.consent_params.iter().any(|p| p == name))
                .map(|name| {
                    Finding::new(
                        Rule::AccountRouteNotConsentBound,
                        format!(
                            "{} takes `{{{name}}}` from the path without binding it to the token's consent: any token with the route's scopes reaches every account",
                            route.describe()
                        ),
                        format!(
                            "Add `\"consent_params\": [\"{name}\"]` to the route and `consent` to each issuer (docs/open-banking.md)."
                        ),
                    )
                    .at(config.route_location(route, None))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn payment_finding(
    rule: Rule,
    route: &RouteView,
    ops: &[&Operation],
    problem: String,
    hint: String,
    at: Location,
) -> Finding {
    let listed: Vec<String> = ops
        .iter()
        .map(|o| {
            format!(
                "{} ({})",
                o.describe(),
                o.payment.as_deref().unwrap_or("payment")
            )
        })
        .collect();
    let message = format!(
        "{} serves the payment operation{} {} {problem}",
        route.describe(),
        if ops.len() == 1 { "" } else { "s" },
        listed.join(", ")
    );
    let mut finding = Finding::new(rule, message, hint).at(at);
    for op in ops {
        finding = finding.at(op.location.clone());
    }
    finding
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::testing::{lint, of};
    use super::*;

    const SPEC: &str = "openapi: 3.0.3
components: {securitySchemes: {oauth: {type: oauth2, flows: {}}}}
security: [{oauth: [payments]}]
paths:
  /domestic-payments:
    post: {tags: [Domestic Payments]}
  /domestic-payments/{DomesticPaymentId}:
    get: {x-obguard-payment: true}
  /accounts:
    get: {security: [{oauth: [accounts]}]}
";

    fn routes() -> Value {
        json!([
            {"name": "payments", "methods": ["POST"], "path": "/domestic-payments", "scopes": {"all_of": ["payments"]}},
            {"name": "payment", "methods": ["GET"], "path": "/domestic-payments/{DomesticPaymentId}", "scopes": {"all_of": ["payments"]}},
            {"name": "accounts", "methods": ["GET"], "path": "/accounts", "scopes": {"all_of": ["accounts"]}},
        ])
    }

    fn ratelimit(extra: Value) -> Value {
        let mut rl = json!({"cluster": "rls", "domain": "bank", "descriptors": [{"entries": [{"key": "client", "from": "client_id"}]}]});
        if let Value::Object(extra) = extra {
            rl.as_object_mut().unwrap().extend(extra);
        }
        rl
    }

    fn model(mode: &str) -> Value {
        json!({"http": {"cluster": "models", "path": "/m"}, "allow_unsigned": true, "mode": mode})
    }

    #[test]
    fn unmatched_not_deny() {
        for (policy, severity) in [
            ("allow", Severity::Error),
            ("authenticate", Severity::Warning),
        ] {
            let found = lint(SPEC, json!({"unmatched": policy}));
            let hits = of(&found, Rule::UnmatchedNotDeny);
            assert_eq!(hits.len(), 1, "{found:?}");
            assert_eq!(hits[0].severity, severity);
            assert_eq!(hits[0].locations[0].pointer, "/unmatched");
        }
        for extra in [json!({"unmatched": "deny"}), json!({})] {
            assert!(of(&lint(SPEC, extra), Rule::UnmatchedNotDeny).is_empty());
        }
    }

    #[test]
    fn payment_initiation_without_idempotency_key() {
        let hits_for = |routes: Value| {
            let found = lint(SPEC, json!({"routes": routes}));
            of(&found, Rule::PaymentWithoutIdempotencyKey)
                .into_iter()
                .map(|f| f.locations[0].pointer.clone())
                .collect::<Vec<_>>()
        };
        // Only the POST payment: the GET of a payment initiates nothing.
        assert_eq!(hits_for(routes()), ["/routes/0"]);
        let mut keyed = routes();
        keyed[0]["idempotency_key"] = json!(true);
        assert!(hits_for(keyed).is_empty());
    }

    #[test]
    fn account_parameter_not_bound_to_the_consent() {
        let account = json!({"name": "balances", "methods": ["GET"],
            "path": "/accounts/{AccountId}/balances", "scopes": {"all_of": ["accounts"]}});
        let found = lint(SPEC, json!({"routes": [account.clone()]}));
        let hits = of(&found, Rule::AccountRouteNotConsentBound);
        assert_eq!(hits.len(), 1, "{found:?}");
        assert!(
            hits[0].message.contains("`{AccountId}`"),
            "{}",
            hits[0].message
        );
        let mut bound = account;
        bound["consent_params"] = json!(["AccountId"]);
        let mut issuer = super::super::testing::issuer();
        issuer["consent"] = json!({"resources_claim": "accounts"});
        let found = lint(SPEC, json!({"routes": [bound], "issuers": [issuer]}));
        assert!(
            of(&found, Rule::AccountRouteNotConsentBound).is_empty(),
            "{found:?}"
        );
    }

    #[test]
    fn payment_without_limits() {
        let found = lint(SPEC, json!({"routes": routes()}));
        let hits = of(&found, Rule::PaymentWithoutLimits);
        assert_eq!(hits.len(), 2, "{found:?}");
        assert!(hits.iter().all(|h| !h.message.contains("`accounts`")));
        // Inactive limits say why.
        let mut r = routes();
        r[0]["thresholds"] = json!({"challenge": 0.3, "throttle": 0.6, "block": 0.8});
        let found = lint(
            SPEC,
            json!({"routes": r.clone(), "model": model("shadow"), "ratelimit": ratelimit(json!({"call": "never"}))}),
        );
        let hit = of(&found, Rule::PaymentWithoutLimits)
            .into_iter()
            .find(|h| h.message.contains("`payments`"))
            .unwrap();
        assert!(
            hit.message.contains("shadow") && hit.message.contains("never"),
            "{}",
            hit.message
        );
        // Thresholds that give no verdict do not count.
        let mut r = routes();
        r[0]["thresholds"] = json!({"challenge": 1.0, "throttle": 1.0, "block": 1.0});
        let found = lint(SPEC, json!({"routes": r, "model": model("enforce")}));
        let hit = of(&found, Rule::PaymentWithoutLimits)
            .into_iter()
            .find(|h| h.message.contains("`payments`"))
            .unwrap();
        assert!(hit.message.contains("all 1.0"), "{}", hit.message);
        // payment_velocity limits POSTs only.
        let found = lint(
            SPEC,
            json!({"routes": routes(), "rules": {"payment_velocity": {"routes": ["payments", "payment"]}}}),
        );
        let hits = of(&found, Rule::PaymentWithoutLimits);
        assert_eq!(hits.len(), 1, "{found:?}");
        assert!(
            hits[0].message.contains("`payment`") && hits[0].message.contains("POST"),
            "{}",
            hits[0].message
        );
    }

    #[test]
    fn payment_limits_that_count() {
        let mut r = routes();
        r[0]["thresholds"] = json!({"challenge": 0.3, "throttle": 0.6, "block": 0.8});
        r[1]["thresholds"] = json!({"challenge": 0.5, "throttle": 0.9, "block": 1.0});
        let found = lint(SPEC, json!({"routes": r, "model": model("enforce")}));
        assert!(
            of(&found, Rule::PaymentWithoutLimits).is_empty(),
            "{found:?}"
        );
        let found = lint(
            SPEC,
            json!({"routes": routes(), "rules": {"payment_velocity": {"routes": ["payments"]}}}),
        );
        assert_eq!(of(&found, Rule::PaymentWithoutLimits).len(), 1, "{found:?}");
        let found = lint(
            SPEC,
            json!({"routes": routes(), "ratelimit": ratelimit(json!({"failure_mode": "fail_closed"}))}),
        );
        assert!(
            of(&found, Rule::PaymentWithoutLimits).is_empty(),
            "{found:?}"
        );
        assert!(
            of(&found, Rule::PaymentLimitFailsOpen).is_empty(),
            "{found:?}"
        );
    }

    #[test]
    fn payment_limit_fails_open() {
        let found = lint(
            SPEC,
            json!({"routes": routes(), "ratelimit": ratelimit(json!({}))}),
        );
        let hits = of(&found, Rule::PaymentLimitFailsOpen);
        assert_eq!(hits.len(), 2, "{found:?}");
        assert_eq!(hits[0].locations[0].pointer, "/ratelimit/failure_mode");
        // A per-route override closes it for that route only.
        let rl = ratelimit(json!({"routes": {"payments": {"failure_mode": "fail_closed"}}}));
        let found = lint(SPEC, json!({"routes": routes(), "ratelimit": rl}));
        let hits = of(&found, Rule::PaymentLimitFailsOpen);
        assert_eq!(hits.len(), 1, "{found:?}");
        assert!(hits[0].message.contains("`payment`"));
        // Thresholds of a polled model beside the call: both fail open by default...
        let mut r = routes();
        r[0]["thresholds"] = json!({"challenge": 0.3, "throttle": 0.6, "block": 0.8});
        r[1]["thresholds"] = json!({"challenge": 0.3, "throttle": 0.6, "block": 0.8});
        let found = lint(
            SPEC,
            json!({"routes": r.clone(), "ratelimit": ratelimit(json!({})), "model": model("enforce")}),
        );
        let hits = of(&found, Rule::PaymentLimitFailsOpen);
        assert_eq!(hits.len(), 2, "{found:?}");
        assert!(
            hits[0].message.contains("when_unavailable") && hits[0].hint.contains("refuse"),
            "{:?}",
            hits[0]
        );
        let found = lint(
            SPEC,
            json!({"routes": r.clone(), "model": model("enforce")}),
        );
        let hits = of(&found, Rule::PaymentLimitFailsOpen);
        assert_eq!(hits[0].locations[0].pointer, "/model/when_unavailable");
        // ... and one that refuses closes them.
        let mut refusing = model("enforce");
        refusing["when_unavailable"] = json!("refuse");
        let found = lint(
            SPEC,
            json!({"routes": r, "ratelimit": ratelimit(json!({})), "model": refusing}),
        );
        assert!(
            of(&found, Rule::PaymentLimitFailsOpen).is_empty(),
            "{found:?}"
        );
    }
}
