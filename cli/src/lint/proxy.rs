//! The file that loads obguard: an Envoy bootstrap (`--envoy`) or an Istio `WasmPlugin`
//! (`--wasmplugin`), checked for fail-open settings (OBG501), path normalisation (OBG502),
//! filter order (OBG503) and whether obguard is in it at all (OBG504).
//!
//! The Envoy walk looks at typed configs by their `@type` wherever they stand (static
//! listeners, filter chains, HTTP filters), so it reads bootstraps and dumped listener
//! resources alike; configuration delivered over xDS is not seen.

use std::path::Path;

use serde_json::{Map, Value};

use super::source::{Document, objects, push_token};
use super::{Finding, Location, Role, Rule, Severity};

const HCM: &str =
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
pub const WASM: &str = "envoy.extensions.filters.http.wasm.v3.Wasm";
const ROUTER: &str = "envoy.extensions.filters.http.router.v3.Router";
const EXT_AUTHZ: &str = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz";
const RATELIMIT: &str = "envoy.extensions.filters.http.ratelimit.v3.RateLimit";
const JWT_AUTHN: &str = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";

/// Reads and checks one proxy file.
pub fn check_file(path: &Path, role: Role) -> Vec<Finding> {
    match Document::read_all(path) {
        Ok(docs) => match role {
            Role::WasmPlugin => check_wasmplugin(&docs),
            _ => check_envoy(&docs),
        },
        Err(err) => vec![
            Finding::new(
                Rule::ProxyFileInvalid,
                format!("the {} file cannot be read: {err}", role.as_str()),
                "Fix the syntax of the file.",
            )
            .at(Location::at(role, path, 0, "", err.position())),
        ],
    }
}

/// The type name of a typed config (`type.googleapis.com/<name>`).
fn type_name(value: &Value) -> Option<&str> {
    value.as_object().and_then(type_of)
}

pub fn type_of(object: &Map<String, Value>) -> Option<&str> {
    let url = object.get("@type")?.as_str()?;
    Some(url.rsplit_once('/').map_or(url, |(_, name)| name))
}

/// Whether a Wasm filter's `config` (PluginConfig) is obguard's (also `obguard check-config`).
pub fn is_obguard(config: &Value) -> bool {
    let mentions = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|s| s.to_ascii_lowercase().contains("obguard"))
    };
    mentions(config.get("name"))
        || mentions(config.get("root_id"))
        || mentions(config.pointer("/vm_config/vm_id"))
        || mentions(config.pointer("/vm_config/code/local/filename"))
        || mentions(config.pointer("/vm_config/code/remote/http_uri/uri"))
}

pub fn check_envoy(docs: &[Document]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut found_obguard = false;
    for doc in docs {
        let loc = |pointer: &str| Location::in_doc(Role::Envoy, doc, pointer);
        for (at, value) in objects(&doc.value, "") {
            let at = at.as_str();
            match type_of(value) {
                Some(WASM) => {
                    let Some(config) = value.get("config") else {
                        continue;
                    };
                    if !is_obguard(config) {
                        continue;
                    }
                    found_obguard = true;
                    let config_at = push_token(at, "config");
                    if config.get("fail_open") == Some(&Value::Bool(true)) {
                        out.push(fail_open(
                            "`fail_open: true`: when the obguard VM fails, Envoy forwards requests unchecked",
                            "Set `fail_open: false` (the default), or `failure_policy: FAIL_CLOSED`.",
                            Severity::Error,
                            loc(&push_token(&config_at, "fail_open")),
                        ));
                    }
                    if config.get("failure_policy").and_then(Value::as_str) == Some("FAIL_OPEN") {
                        out.push(fail_open(
                            "`failure_policy: FAIL_OPEN`: when the obguard VM fails, Envoy forwards requests unchecked",
                            "Set `failure_policy: FAIL_CLOSED` (or `FAIL_RELOAD`).",
                            Severity::Error,
                            loc(&push_token(&config_at, "failure_policy")),
                        ));
                    }
                }
                Some(HCM) => out.extend(check_hcm(value, at, &loc)),
                Some(EXT_AUTHZ) if value.get("failure_mode_allow") == Some(&Value::Bool(true)) => {
                    out.push(fail_open(
                        "ext_authz `failure_mode_allow: true`: when the authorisation service fails, requests pass",
                        "Remove `failure_mode_allow` (it defaults to false).",
                        Severity::Warning,
                        loc(&push_token(at, "failure_mode_allow")),
                    ));
                }
                Some(RATELIMIT) if value.get("failure_mode_deny") != Some(&Value::Bool(true)) => {
                    out.push(fail_open(
                        "the rate-limit filter lets requests through when the rate-limit service fails \
                         (`failure_mode_deny` defaults to false)",
                        "Set `failure_mode_deny: true`.",
                        Severity::Warning,
                        loc(&push_token(at, "failure_mode_deny")),
                    ));
                }
                Some(JWT_AUTHN) => {
                    for (p, object) in value
                        .iter()
                        .flat_map(|(k, v)| objects(v, &push_token(at, k)))
                    {
                        for key in ["allow_missing_or_failed", "allow_missing"] {
                            if object.get(key).is_some() {
                                out.push(fail_open(
                                    &format!("a jwt_authn requirement is `{key}`: requests without a valid token pass it"),
                                    "Use `provider_name` (or `requires_any` of providers) without `allow_missing*`, \
                                     so unverified tokens stop at jwt_authn.",
                                    Severity::Warning,
                                    loc(&push_token(&p, key)),
                                ));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if !found_obguard {
        out.push(missing(Role::Envoy, docs));
    }
    out
}

fn fail_open(message: &str, hint: &str, severity: Severity, at: Location) -> Finding {
    Finding::new(Rule::ProxyFailOpen, message, hint)
        .severity(severity)
        .at(at)
}

fn missing(role: Role, docs: &[Document]) -> Finding {
    let at = docs.first().map_or_else(
        || Location::at(role, Path::new("?"), 0, "", Default::default()),
        |doc| Location::in_doc(role, doc, ""),
    );
    Finding::new(
        Rule::ProxyObguardMissing,
        match role {
            Role::WasmPlugin => "no WasmPlugin in the file loads obguard".to_owned(),
            _ => "no Wasm HTTP filter in the file loads obguard".to_owned(),
        },
        "Pass the file that loads obguard (its name, root_id, vm_id or module mention `obguard`).",
    )
    .at(at)
}

/// One HTTP connection manager: path normalisation, and obguard before the router.
fn check_hcm(hcm: &Map<String, Value>, at: &str, loc: &dyn Fn(&str) -> Location) -> Vec<Finding> {
    let filters: Vec<&Value> = hcm
        .get("http_filters")
        .and_then(Value::as_array)
        .map(|f| f.iter().collect())
        .unwrap_or_default();
    let typed = |f: &Value| f.get("typed_config").and_then(type_name).map(str::to_owned);
    let obguard = filters.iter().position(|f| {
        typed(f).as_deref() == Some(WASM)
            && f.pointer("/typed_config/config").is_some_and(is_obguard)
    });
    let Some(obguard) = obguard else {
        return Vec::new(); // another listener
    };
    let mut out = Vec::new();
    let mut missing = Vec::new();
    if hcm.get("normalize_path") != Some(&Value::Bool(true)) {
        missing.push("`normalize_path: true`");
    }
    if hcm.get("merge_slashes") != Some(&Value::Bool(true)) {
        missing.push("`merge_slashes: true`");
    }
    let escaped = hcm
        .get("path_with_escaped_slashes_action")
        .and_then(Value::as_str);
    if !matches!(escaped, Some("REJECT_REQUEST" | "UNESCAPE_AND_REDIRECT")) {
        missing.push("`path_with_escaped_slashes_action: REJECT_REQUEST`");
    }
    if !missing.is_empty() {
        out.push(
            Finding::new(
                Rule::ProxyPathNormalisation,
                format!(
                    "the HTTP connection manager in front of obguard lacks {}: the router and the \
                     upstream may act on another path than the one obguard authorised",
                    missing.join(", ")
                ),
                "Set normalize_path: true, merge_slashes: true and \
                 path_with_escaped_slashes_action: REJECT_REQUEST on the HttpConnectionManager.",
            )
            .at(loc(at)),
        );
    }
    let router = filters.iter().position(|f| {
        typed(f).as_deref() == Some(ROUTER)
            || f.get("name").and_then(Value::as_str) == Some("envoy.filters.http.router")
    });
    if let Some(router) = router
        && router < obguard
    {
        out.push(
            Finding::new(
                Rule::ProxyFilterOrder,
                format!(
                    "obguard is http_filters[{obguard}], after the router (http_filters[{router}]): \
                     it never sees a request"
                ),
                "Move obguard before envoy.filters.http.router (and before any filter that \
                 should only see authenticated requests).",
            )
            .at(loc(&push_token(&push_token(at, "http_filters"), &obguard.to_string()))),
        );
    }
    out
}

/// The WasmPlugins of `docs` that load obguard: those whose name, url or plugin name say
/// so, else a lone WasmPlugin (also `obguard check-config`).
pub fn obguard_wasmplugins(docs: &[Document]) -> Vec<&Document> {
    let plugins: Vec<&Document> = docs
        .iter()
        .filter(|d| d.get("/kind").and_then(Value::as_str) == Some("WasmPlugin"))
        .collect();
    let mentions = |d: &Document| {
        ["/metadata/name", "/spec/url", "/spec/pluginName"]
            .iter()
            .any(|p| {
                d.get(p)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.to_ascii_lowercase().contains("obguard"))
            })
    };
    let chosen: Vec<&Document> = plugins.iter().copied().filter(|d| mentions(d)).collect();
    if chosen.is_empty() && plugins.len() == 1 {
        return plugins;
    }
    chosen
}

pub fn check_wasmplugin(docs: &[Document]) -> Vec<Finding> {
    let chosen = obguard_wasmplugins(docs);
    if chosen.is_empty() {
        return vec![missing(Role::WasmPlugin, docs)];
    }
    let mut out = Vec::new();
    for doc in chosen {
        let loc = |pointer: &str| Location::in_doc(Role::WasmPlugin, doc, pointer);
        if doc.get("/spec/failStrategy").and_then(Value::as_str) == Some("FAIL_OPEN") {
            out.push(fail_open(
                "`failStrategy: FAIL_OPEN`: when the obguard VM fails (or the module cannot be \
                 fetched), the proxy forwards requests unchecked",
                "Set `failStrategy: FAIL_CLOSE` (the default).",
                Severity::Error,
                loc("/spec/failStrategy"),
            ));
        }
        let phase = doc.get("/spec/phase").and_then(Value::as_str);
        // Delegation reads the payload of Istio's jwt_authn, which runs in the AUTHN phase:
        // obguard must come after it (AUTHZ). Otherwise obguard should run before it.
        let delegates = doc
            .get("/spec/pluginConfig/issuers")
            .and_then(Value::as_array)
            .is_some_and(|issuers| {
                issuers
                    .iter()
                    .any(|i| i.get("jwt_authn").is_some_and(|j| !j.is_null()))
            });
        let shown = phase.map_or_else(|| "not set".to_owned(), |p| format!("`{p}`"));
        if delegates && phase != Some("AUTHZ") {
            out.push(
                Finding::new(
                    Rule::ProxyFilterOrder,
                    format!(
                        "`phase` is {shown} but the plugin configuration delegates to jwt_authn: \
                         obguard must run after Istio's authentication (RequestAuthentication) \
                         to find the verified payload"
                    ),
                    "Set `phase: AUTHZ`.",
                )
                .severity(Severity::Warning)
                .at(loc("/spec/phase")),
            );
        } else if !delegates && phase != Some("AUTHN") {
            out.push(
                Finding::new(
                    Rule::ProxyFilterOrder,
                    format!(
                        "`phase` is {shown}: obguard runs after Istio's own authentication \
                         (and, with `STATS` or none, authorisation), not first"
                    ),
                    "Set `phase: AUTHN`.",
                )
                .severity(Severity::Warning)
                .at(loc("/spec/phase")),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::source::Syntax;

    fn envoy(text: &str) -> Vec<Finding> {
        check_envoy(&Document::parse_all(Path::new("envoy.yaml"), text, Syntax::Yaml).unwrap())
    }

    fn wasmplugin(text: &str) -> Vec<Finding> {
        check_wasmplugin(&Document::parse_all(Path::new("wp.yaml"), text, Syntax::Yaml).unwrap())
    }

    #[test]
    fn delegation_wants_the_authz_phase() {
        let plugin = |phase: &str, delegate: bool| {
            let issuer = if delegate {
                "{issuer: i, jwt_authn: {payload_in_metadata: payload}}"
            } else {
                "{issuer: i}"
            };
            format!(
                "kind: WasmPlugin\nmetadata: {{name: obguard}}\nspec:\n  phase: {phase}\n  \
                 pluginConfig: {{issuers: [{issuer}]}}\n"
            )
        };
        let order = |text: String| {
            wasmplugin(&text)
                .into_iter()
                .filter(|f| f.rule == Rule::ProxyFilterOrder)
                .count()
        };
        assert_eq!(order(plugin("AUTHN", false)), 0);
        assert_eq!(order(plugin("AUTHZ", false)), 1);
        assert_eq!(order(plugin("AUTHZ", true)), 0);
        assert_eq!(order(plugin("AUTHN", true)), 1);
    }

    fn rules(found: &[Finding]) -> Vec<(Rule, Severity)> {
        let mut out: Vec<(Rule, Severity)> = found.iter().map(|f| (f.rule, f.severity)).collect();
        out.sort();
        out
    }

    fn bootstrap(hcm_options: &str, fail_open: &str, filters_after: &str) -> String {
        format!(
            "static_resources:
  listeners:
    - name: l
      filter_chains:
        - filters:
            - name: hcm
              typed_config:
                '@type': type.googleapis.com/{HCM}
{hcm_options}
                http_filters:
                  - name: obguard
                    typed_config:
                      '@type': type.googleapis.com/{WASM}
                      config:
                        name: obguard
                        root_id: obguard
{fail_open}
                        vm_config: {{vm_id: obguard, code: {{local: {{filename: /etc/envoy/obguard.wasm}}}}}}
{filters_after}
"
        )
    }

    const GOOD_HCM: &str = "                normalize_path: true
                merge_slashes: true
                path_with_escaped_slashes_action: REJECT_REQUEST";
    const ROUTER_FILTER: &str = "                  - name: envoy.filters.http.router
                    typed_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}";

    #[test]
    fn a_good_bootstrap_is_clean() {
        let found = envoy(&bootstrap(
            GOOD_HCM,
            "                        fail_open: false",
            ROUTER_FILTER,
        ));
        assert_eq!(rules(&found), [], "{found:?}");
    }

    #[test]
    fn the_demo_bootstrap_is_clean() {
        let docs = Document::read_all(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../envoy/demo/envoy.yaml"
        )))
        .unwrap();
        let found = check_envoy(&docs);
        assert_eq!(rules(&found), [], "{found:?}");
    }

    #[test]
    fn proxy_fail_open() {
        let found = envoy(&bootstrap(
            GOOD_HCM,
            "                        fail_open: true",
            ROUTER_FILTER,
        ));
        assert_eq!(
            rules(&found),
            [(Rule::ProxyFailOpen, Severity::Error)],
            "{found:?}"
        );
        assert!(
            found[0].locations[0]
                .pointer
                .ends_with("/typed_config/config/fail_open")
        );
        assert_eq!(found[0].locations[0].line, 19);
        let found = envoy(&bootstrap(
            GOOD_HCM,
            "                        failure_policy: FAIL_OPEN",
            ROUTER_FILTER,
        ));
        assert_eq!(
            rules(&found),
            [(Rule::ProxyFailOpen, Severity::Error)],
            "{found:?}"
        );
        let others = "                  - name: authz
                    typed_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz, failure_mode_allow: true}
                  - name: rl
                    typed_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit, domain: d}
                  - name: jwt
                    typed_config:
                      '@type': type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
                      rules: [{match: {prefix: /}, requires: {allow_missing_or_failed: {}}}]
";
        let found = envoy(&bootstrap(
            GOOD_HCM,
            "",
            &format!("{others}{ROUTER_FILTER}"),
        ));
        assert!(
            found.iter().any(|f| f.locations[0]
                .pointer
                .ends_with("/rules/0/requires/allow_missing_or_failed")),
            "{found:?}"
        );
        assert_eq!(
            rules(&found),
            [
                (Rule::ProxyFailOpen, Severity::Warning),
                (Rule::ProxyFailOpen, Severity::Warning),
                (Rule::ProxyFailOpen, Severity::Warning)
            ],
            "{found:?}"
        );
        let strict = "                  - name: rl
                    typed_config: {'@type': type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit, domain: d, failure_mode_deny: true}
";
        let found = envoy(&bootstrap(
            GOOD_HCM,
            "",
            &format!("{strict}{ROUTER_FILTER}"),
        ));
        assert_eq!(rules(&found), [], "{found:?}");
    }

    #[test]
    fn proxy_path_normalisation() {
        let found = envoy(&bootstrap(
            "                normalize_path: true",
            "",
            ROUTER_FILTER,
        ));
        assert_eq!(
            rules(&found),
            [(Rule::ProxyPathNormalisation, Severity::Warning)],
            "{found:?}"
        );
        assert!(
            found[0].message.contains("merge_slashes")
                && !found[0].message.contains("normalize_path")
        );
    }

    #[test]
    fn proxy_filter_order() {
        let text = bootstrap(GOOD_HCM, "", "").replace(
            "                http_filters:\n",
            &format!("                http_filters:\n{ROUTER_FILTER}\n"),
        );
        let found = envoy(&text);
        assert_eq!(
            rules(&found),
            [(Rule::ProxyFilterOrder, Severity::Error)],
            "{found:?}"
        );
    }

    #[test]
    fn proxy_obguard_missing() {
        let found = envoy("static_resources: {listeners: []}\n");
        assert_eq!(
            rules(&found),
            [(Rule::ProxyObguardMissing, Severity::Warning)]
        );
        let found = wasmplugin("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
        assert_eq!(
            rules(&found),
            [(Rule::ProxyObguardMissing, Severity::Warning)]
        );
    }

    const PLUGIN: &str = "apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: obguard, namespace: bank}
spec:
  url: oci://registry.example.com/obguard:0.1.0
";

    #[test]
    fn wasmplugin_rules() {
        let good = format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: bank}}\n---\n{PLUGIN}  phase: AUTHN\n  failStrategy: FAIL_CLOSE\n"
        );
        assert_eq!(rules(&wasmplugin(&good)), []);
        let found = wasmplugin(&format!("{PLUGIN}  failStrategy: FAIL_OPEN\n"));
        assert_eq!(
            rules(&found),
            [
                (Rule::ProxyFailOpen, Severity::Error),
                (Rule::ProxyFilterOrder, Severity::Warning)
            ],
            "{found:?}"
        );
        let fail_open = found
            .iter()
            .find(|f| f.rule == Rule::ProxyFailOpen)
            .unwrap();
        assert_eq!(fail_open.locations[0].pointer, "/spec/failStrategy");
        assert_eq!(fail_open.locations[0].line, 5 + 1);
    }

    #[test]
    fn unreadable_files_are_findings() {
        let found = check_file(Path::new("/nonexistent/envoy.yaml"), Role::Envoy);
        assert_eq!(rules(&found), [(Rule::ProxyFileInvalid, Severity::Error)]);
    }
}
