//! Every rule `obguard lint` knows: its id, name, default severity, what it means and how to
//! fix it. Reports (the SARIF rule table above all) and docs/lint.md are written from this.

use super::Severity;

/// A lint rule. The ids are stable: CI suppressions and code-scanning alerts refer to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    ConfigInvalid,
    OpenApiInvalid,
    RefUnresolved,
    ProxyFileInvalid,
    OperationUnprotected,
    RouteWithoutOperation,
    MethodMismatch,
    PathParamsDiffer,
    ScopeMissing,
    ScopeExtra,
    ScopeCombination,
    ScopeInexpressible,
    AnonymousRouteSecuredOperation,
    PublicOperationNeedsToken,
    UnmatchedNotDeny,
    PaymentWithoutLimits,
    PaymentLimitFailsOpen,
    PaymentWithoutIdempotencyKey,
    AccountRouteNotConsentBound,
    IssuerWithoutTyp,
    IssuerHmac,
    ProxyFailOpen,
    ProxyPathNormalisation,
    ProxyFilterOrder,
    ProxyObguardMissing,
}

/// What a rule is, for reports and docs.
pub struct RuleInfo {
    pub id: &'static str,
    /// kebab-case, unique.
    pub name: &'static str,
    pub severity: Severity,
    /// One line: what the finding says.
    pub summary: &'static str,
    /// Why it matters and how to fix it.
    pub help: &'static str,
}

impl Rule {
    pub const ALL: [Rule; 25] = [
        Rule::ConfigInvalid,
        Rule::OpenApiInvalid,
        Rule::RefUnresolved,
        Rule::ProxyFileInvalid,
        Rule::OperationUnprotected,
        Rule::RouteWithoutOperation,
        Rule::MethodMismatch,
        Rule::PathParamsDiffer,
        Rule::ScopeMissing,
        Rule::ScopeExtra,
        Rule::ScopeCombination,
        Rule::ScopeInexpressible,
        Rule::AnonymousRouteSecuredOperation,
        Rule::PublicOperationNeedsToken,
        Rule::UnmatchedNotDeny,
        Rule::PaymentWithoutLimits,
        Rule::PaymentLimitFailsOpen,
        Rule::PaymentWithoutIdempotencyKey,
        Rule::AccountRouteNotConsentBound,
        Rule::IssuerWithoutTyp,
        Rule::IssuerHmac,
        Rule::ProxyFailOpen,
        Rule::ProxyPathNormalisation,
        Rule::ProxyFilterOrder,
        Rule::ProxyObguardMissing,
    ];

    pub fn id(self) -> &'static str {
        self.info().id
    }

    /// The rule with this id (`OBG101`) or name (`operation-unprotected`).
    pub fn find(text: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| {
            let info = r.info();
            info.id.eq_ignore_ascii_case(text) || info.name.eq_ignore_ascii_case(text)
        })
    }

    pub fn info(self) -> RuleInfo {
        use Severity::{Error, Warning};
        let (id, name, severity, summary, help) = match self {
            Rule::ConfigInvalid => (
                "OBG001",
                "config-invalid",
                Error,
                "The plugin configuration does not load in the filter.",
                "The filter refuses a configuration it cannot load, and Envoy then does not run \
                 obguard (with `fail_open: false` the listener does not start). The message is \
                 the filter's own loader error with its field path. Fix that field.",
            ),
            Rule::OpenApiInvalid => (
                "OBG002",
                "openapi-invalid",
                Error,
                "The OpenAPI description cannot be read, or a part the lint needs is malformed.",
                "Only OpenAPI 3.0 and 3.1 descriptions (YAML or JSON) are checked. A part that \
                 cannot be read (a path item, an operation, a `security` requirement naming an \
                 undefined scheme) is skipped, so its operations are not checked. Fix the \
                 description; a validator such as the OpenAPI CLI shows the same place.",
            ),
            Rule::RefUnresolved => (
                "OBG003",
                "ref-unresolved",
                Error,
                "A `$ref` the lint follows cannot be resolved.",
                "Local references (`#/components/...`) and relative file references \
                 (`common.yaml#/components/...`) are resolved; URLs are not fetched. The node \
                 behind the reference is not checked. Fix the reference, or bundle the \
                 description into one file first.",
            ),
            Rule::ProxyFileInvalid => (
                "OBG004",
                "proxy-file-invalid",
                Error,
                "The Envoy bootstrap or Istio WasmPlugin file cannot be read.",
                "`--envoy` takes an Envoy bootstrap (YAML or JSON), `--wasmplugin` a YAML stream \
                 holding an Istio `WasmPlugin`. Fix the syntax.",
            ),
            Rule::OperationUnprotected => (
                "OBG101",
                "operation-unprotected",
                Error,
                "An operation of the API description has no route.",
                "A request for it matches no route, so the `unmatched` policy decides: `deny` \
                 refuses the published operation (403), `authenticate` forwards it with any \
                 valid token and no scope check, `allow` forwards it unchecked. Add a route \
                 with the operation's method, path and scopes (the hint gives one), before any \
                 broader route.",
            ),
            Rule::RouteWithoutOperation => (
                "OBG102",
                "route-without-operation",
                Warning,
                "A route matches no operation of the API description (a shadow or stale route).",
                "The gateway lets requests through to the upstream on a path the bank does not \
                 publish: an undocumented (shadow) endpoint, or a route left behind when an \
                 operation was removed (stale). Remove the route, or add the operation to the \
                 description. A route that every matching request reaches only after an earlier \
                 route is reported here too: it never decides anything.",
            ),
            Rule::MethodMismatch => (
                "OBG103",
                "method-mismatch",
                Error,
                "A route's methods differ from the operations the description defines on its path.",
                "An operation whose path has a route, but not for its method, has no route \
                 (error). A route that admits a method the description does not define on that \
                 path, or any method (`methods` empty), forwards requests the bank does not \
                 publish (warning). List exactly the described methods in `methods`.",
            ),
            Rule::PathParamsDiffer => (
                "OBG104",
                "path-params-differ",
                Warning,
                "A route's path parameters have other names or positions than the operation's.",
                "Other names (warning): `params` charsets, `rules.psd2_unattended_access.account_param` \
                 and the documentation all name the route's parameter, so a rename silently drops \
                 the charset or the rule. Other positions (error): the route matches other \
                 requests than the operation, which then has no route. Use the description's \
                 template, parameter for parameter.",
            ),
            Rule::ScopeMissing => (
                "OBG201",
                "scope-missing",
                Error,
                "The route does not require a scope the operation's `security` requires.",
                "The route accepts tokens the API description refuses (error); or, where the \
                 scope is only one alternative of the description's, it refuses tokens the \
                 description accepts (warning). The description's requirement is the \
                 operation's `security`, or the document's global `security` when the \
                 operation has none. Put the scope in the route's `scopes` as the hint shows.",
            ),
            Rule::ScopeExtra => (
                "OBG202",
                "scope-extra",
                Warning,
                "The route requires a scope the operation's `security` does not mention.",
                "Clients holding exactly what the description asks for are refused with 403 \
                 `insufficient_scope` (warning); an extra scope in `any_of` instead widens the \
                 route, which then accepts tokens the description refuses (error). Remove the \
                 scope, or add it to the description.",
            ),
            Rule::ScopeCombination => (
                "OBG203",
                "scope-combination",
                Error,
                "The route combines the right scopes the wrong way (`all_of` vs `any_of`).",
                "The description's alternatives (a list of requirement objects) are `any_of`, \
                 the scopes of one requirement are `all_of`. A scope in `any_of` that the \
                 description requires always lets a token without it through (error); a scope in \
                 `all_of` that is one alternative refuses legitimate tokens (warning). Move the \
                 scope to the list the hint names.",
            ),
            Rule::ScopeInexpressible => (
                "OBG204",
                "scope-inexpressible",
                Warning,
                "The operation's `security` alternatives cannot be written as `all_of` + `any_of`.",
                "A route requires all of `all_of` and one of `any_of`: alternatives that differ \
                 by more than one scope each (`[{a, b}, {c, d}]`) have no exact equivalent. The \
                 lint still checks the route is not weaker than the description. Split the \
                 operation, or accept a route that is stricter than the description.",
            ),
            Rule::AnonymousRouteSecuredOperation => (
                "OBG205",
                "anonymous-route-secured-operation",
                Error,
                "An `anonymous` route serves an operation whose `security` requires a token.",
                "obguard forwards every request of an anonymous route without looking at a \
                 token, so the operation is public at the gateway although its description \
                 requires authentication. Remove `anonymous` and set the scopes.",
            ),
            Rule::PublicOperationNeedsToken => (
                "OBG206",
                "public-operation-needs-token",
                Warning,
                "A public operation (`security: []`, an empty requirement, or none declared) \
                 is served by a route that requires a token.",
                "Clients that follow the description call it without a token and get 401. Make \
                 the route `anonymous: true`, or give the operation a `security` requirement \
                 (an operation without one inherits nothing when the document declares none).",
            ),
            Rule::UnmatchedNotDeny => (
                "OBG301",
                "unmatched-not-deny",
                Error,
                "`unmatched` is not `deny`.",
                "Every path the routes do not list reaches the upstream: with `allow` unchecked \
                 (error), with `authenticate` with any valid token and no scope (warning). \
                 Shadow endpoints of the upstream become reachable. Set `\"unmatched\": \"deny\"` \
                 and route every published operation.",
            ),
            Rule::PaymentWithoutLimits => (
                "OBG302",
                "payment-without-limits",
                Error,
                "A route serving a payment operation has neither rate limiting nor model thresholds.",
                "Payments are what an attacker with a stolen token repeats. A payment route \
                 needs at least one of: a rate-limit call (`ratelimit` with `call` other than \
                 `never` for the route), per-route model `thresholds` below 1.0 with an \
                 enforcing `model`, or `rules.payment_velocity` listing the route. An \
                 operation is a payment when it has `x-obguard-payment: true` (on the operation \
                 or its path item), or one of the `--payment-tag` tags (by default the UK Open \
                 Banking payment tags, such as `Domestic Payments`); `x-obguard-payment: false` \
                 opts out.",
            ),
            Rule::PaymentLimitFailsOpen => (
                "OBG303",
                "payment-limit-fails-open",
                Warning,
                "Every limit of a payment route fails open.",
                "`ratelimit.failure_mode` defaults to `fail_open`: when the rate-limit service \
                 is slow or down, payments are forwarded unlimited. A model polled over `http` \
                 with `when_unavailable: allow` (the default) scores nothing until its first \
                 file arrives, so its thresholds limit nothing either. Set `failure_mode: \
                 fail_closed` for the route (`ratelimit.routes.<name>`), `when_unavailable: \
                 refuse`, or list the route in `rules.payment_velocity.routes`.",
            ),
            Rule::PaymentWithoutIdempotencyKey => (
                "OBG304",
                "payment-without-idempotency-key",
                Warning,
                "A route serving a payment initiation (`POST`) does not require `x-idempotency-key`.",
                "A payment retried after a timeout must not be paid twice; UK Open Banking \
                 requires `x-idempotency-key` on payment initiation. Set `\"idempotency_key\": \
                 true` on the route: obguard then refuses a payment without a valid key (400) \
                 before it reaches the bank, and `from: idempotency_key` can feed a rate-limit \
                 descriptor.",
            ),
            Rule::AccountRouteNotConsentBound => (
                "OBG305",
                "account-route-not-consent-bound",
                Warning,
                "A route with an account parameter does not bind it to the token's consent.",
                "A route whose path has an account id parameter (`{AccountId}`, or any name \
                 ending in `AccountId`) answers for whichever account the path names: any valid \
                 token with the scope reads every account (broken object-level authorisation). \
                 List the parameter in `consent_params` and say in `issuers[].consent` where \
                 tokens state their consent (docs/open-banking.md).",
            ),
            Rule::IssuerWithoutTyp => (
                "OBG401",
                "issuer-without-typ",
                Warning,
                "An issuer does not set `require_typ`.",
                "Without it, any JWT the identity provider signs with the same key (an ID token, \
                 a logout token) passes as an access token. Set `\"require_typ\": \"at+jwt\"` \
                 (RFC 9068) when the provider issues such tokens. Delegation-only issuers \
                 (`jwt_authn` without own keys) cannot check it and are not reported.",
            ),
            Rule::IssuerHmac => (
                "OBG402",
                "issuer-hmac",
                Error,
                "An issuer allows HS256/HS384/HS512.",
                "With a shared secret every party that can verify tokens can also mint them, \
                 and FAPI forbids it. Use an asymmetric algorithm (PS256, ES256) with the \
                 provider's JWKS.",
            ),
            Rule::ProxyFailOpen => (
                "OBG501",
                "proxy-fail-open",
                Error,
                "The proxy lets requests through when obguard (or another check) fails.",
                "`fail_open: true` or `failure_policy: FAIL_OPEN` (Envoy) and `failStrategy: \
                 FAIL_OPEN` (Istio) forward requests unchecked when the obguard VM fails \
                 (error). Envoy's `ext_authz` with `failure_mode_allow: true`, the rate-limit \
                 filter without `failure_mode_deny: true`, and `jwt_authn` requirements that \
                 allow missing or failed tokens pass requests on failure too (warning). Fail \
                 closed.",
            ),
            Rule::ProxyPathNormalisation => (
                "OBG502",
                "proxy-path-normalisation",
                Warning,
                "The HTTP connection manager does not normalise paths as obguard expects.",
                "obguard matches routes on the path Envoy hands it; the router and the upstream \
                 must act on the same path. Set `normalize_path: true`, `merge_slashes: true` \
                 and `path_with_escaped_slashes_action: REJECT_REQUEST` (or \
                 `UNESCAPE_AND_REDIRECT`). Without them obguard refuses such paths with 400 \
                 rather than serving them.",
            ),
            Rule::ProxyFilterOrder => (
                "OBG503",
                "proxy-filter-order",
                Error,
                "obguard does not run before the requests it guards are routed.",
                "In Envoy, obguard must come before `envoy.filters.http.router` in \
                 `http_filters` (error): a filter after the router never sees the request. In \
                 Istio, `phase: AUTHN` puts it before Istio's own authentication and \
                 authorisation (warning when it is missing or another phase).",
            ),
            Rule::ProxyObguardMissing => (
                "OBG504",
                "proxy-obguard-missing",
                Warning,
                "The Envoy or WasmPlugin file given holds no obguard filter.",
                "The file was given to be checked, but no Wasm filter or WasmPlugin in it \
                 looks like obguard (name, root id, VM id or module file containing \
                 `obguard`), so nothing about how obguard is loaded was checked. Pass the file \
                 that loads obguard.",
            ),
        };
        RuleInfo {
            id,
            name,
            severity,
            summary,
            help,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_are_unique_and_found() {
        let mut ids = std::collections::BTreeSet::new();
        let mut names = std::collections::BTreeSet::new();
        for rule in Rule::ALL {
            let info = rule.info();
            assert!(ids.insert(info.id), "{}", info.id);
            assert!(names.insert(info.name), "{}", info.name);
            assert_eq!(Rule::find(info.id), Some(rule));
            assert_eq!(Rule::find(info.name), Some(rule));
        }
        assert_eq!(Rule::find("OBG999"), None);
    }

    #[test]
    fn docs_describe_every_rule() {
        let docs = include_str!("../../../docs/lint.md");
        for rule in Rule::ALL {
            let info = rule.info();
            assert!(
                docs.contains(&format!("`{}`", info.id)) && docs.contains(info.name),
                "docs/lint.md does not describe {} {}",
                info.id,
                info.name
            );
        }
    }
}
