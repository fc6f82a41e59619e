//! The rules over a description and a configuration. Each is a pure function of the parsed
//! inputs returning findings; [`coverage::Matching`] (which route decides each operation) is
//! computed once and shared.

pub mod coverage;
pub mod issuers;
pub mod limits;
pub mod scopes;

use super::Finding;
use super::config_view::ConfigView;
use super::openapi::Spec;

/// Rules that compare the description with the configuration.
pub fn check(spec: &Spec, config: &ConfigView) -> Vec<Finding> {
    let matching = coverage::Matching::new(spec, config);
    let mut out = coverage::check(spec, config, &matching);
    out.extend(scopes::check(spec, config, &matching));
    out.extend(limits::payments(spec, config, &matching));
    out.extend(limits::idempotency(spec, config, &matching));
    out
}

/// Rules about the configuration alone.
pub fn check_config(config: &ConfigView) -> Vec<Finding> {
    let mut out = limits::unmatched(config);
    out.extend(limits::consent(config));
    out.extend(issuers::check(config));
    out
}

/// `["a", "b"]` as `` `a`, `b` ``.
fn quoted<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    items
        .into_iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A JSON array of strings, for hints.
fn json_list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    serde_json::Value::from(items.into_iter().cloned().collect::<Vec<_>>()).to_string()
}

#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use serde_json::{Value, json};

    use super::super::source::{Document, Syntax};
    use super::super::{Finding, Options, Rule};
    use super::*;

    /// The demo EC issuer (public, worthless key) with `at+jwt`.
    pub fn issuer() -> Value {
        json!({
            "issuer": "https://idp.example",
            "audiences": ["https://api.example"],
            "algorithms": ["ES256"],
            "require_typ": "at+jwt",
            "jwks": {"keys": [{
                "kty": "EC", "crv": "P-256", "kid": "k1",
                "x": "lNSkDCnonWraL2dHZsxj2tjt5D0tgrJDjRI_SHZ_H0I",
                "y": "3IV2ft3O-36kXq6NQcAeRZpC2bwaYfNRIZYEhNj_1Gg"
            }]}
        })
    }

    /// A configuration that loads: the demo EC issuer (public, worthless key) with `at+jwt`,
    /// plus `extra` merged at the top level.
    pub fn config(extra: Value) -> ConfigView {
        let mut base = json!({"issuers": [issuer()]});
        if let (Value::Object(base), Value::Object(extra)) = (&mut base, extra) {
            base.extend(extra);
        }
        let text = serde_json::to_string_pretty(&base).unwrap();
        match ConfigView::parse(Path::new("plugin.json"), &text) {
            Ok(view) => view,
            Err(finding) => panic!("test config does not load: {}", finding.message),
        }
    }

    pub fn spec(yaml: &str) -> Spec {
        let doc = Document::parse(Path::new("openapi.yaml"), yaml, Syntax::Yaml).unwrap();
        let spec = Spec::from_document(doc, &Options::default()).unwrap();
        assert!(spec.problems.is_empty(), "{:?}", spec.problems);
        spec
    }

    /// The findings of `check` and `check_config`.
    pub fn lint(yaml: &str, extra: Value) -> Vec<Finding> {
        let config = config(extra);
        let mut out = check(&spec(yaml), &config);
        out.extend(check_config(&config));
        out
    }

    pub fn of(findings: &[Finding], rule: Rule) -> Vec<&Finding> {
        findings.iter().filter(|f| f.rule == rule).collect()
    }

    /// A description with one operation per (method, path, security YAML).
    pub fn ops(list: &[(&str, &str, &str)]) -> String {
        let mut out = String::from(
            "openapi: 3.0.3\ncomponents:\n  securitySchemes:\n    oauth: {type: oauth2, flows: {}}\n    psu: {type: oauth2, flows: {}}\npaths:\n",
        );
        let mut paths: Vec<&str> = list.iter().map(|(_, p, _)| *p).collect();
        paths.dedup();
        for path in paths {
            out.push_str(&format!("  '{path}':\n"));
            for (method, _, security) in list.iter().filter(|(_, p, _)| *p == path) {
                out.push_str(&format!("    {method}:\n      security: {security}\n"));
            }
        }
        out
    }
}
