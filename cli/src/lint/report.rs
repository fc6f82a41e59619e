//! Findings as human text, JSON, or SARIF 2.1.0 (for GitHub code scanning).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use serde_sarif::sarif;

use super::{Finding, Location, Report, Rule, Severity};

/// `obguard lint`'s tool name in JSON and SARIF.
pub const TOOL: &str = "obguard lint";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The JSON pointer as a URI fragment, for reading: `#/paths/~1accounts/get`.
fn fragment(pointer: &str) -> String {
    format!("#{pointer}")
}

fn location_text(l: &Location) -> String {
    let document = if l.document > 0 {
        format!(" (document {})", l.document + 1)
    } else {
        String::new()
    };
    format!(
        "{}:{}:{}{document} {}",
        l.file,
        l.line,
        l.column,
        fragment(&l.pointer)
    )
}

/// One block a finding, then a summary line.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    for f in &report.findings {
        let info = f.rule.info();
        out.push_str(&format!(
            "{}[{}] {}: {}\n",
            f.severity.as_str(),
            info.id,
            info.name,
            f.message
        ));
        for l in &f.locations {
            out.push_str(&format!("  --> {}\n", location_text(l)));
        }
        out.push_str(&format!("  fix: {}\n\n", f.hint));
    }
    out.push_str(&summary(report));
    out.push('\n');
    out
}

fn summary(report: &Report) -> String {
    let version = report
        .openapi_version
        .as_ref()
        .map_or_else(String::new, |v| format!("OpenAPI {v}, "));
    let counted = format!(
        "{version}{} operations, {} routes",
        report.operations, report.routes
    );
    if report.findings.is_empty() {
        return format!("{TOOL}: clean ({counted})");
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{TOOL}: {}, {}, {} ({counted})",
        plural(report.count(Severity::Error), "error"),
        plural(report.count(Severity::Warning), "warning"),
        plural(report.count(Severity::Note), "note"),
    )
}

/// `{"tool", "version", "summary", "findings": [{rule, name, severity, message, hint, locations}]}`.
pub fn json(report: &Report) -> Value {
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule.id(),
                "name": f.rule.info().name,
                "severity": f.severity,
                "message": f.message,
                "hint": f.hint,
                "locations": f.locations,
            })
        })
        .collect();
    json!({
        "tool": TOOL,
        "version": VERSION,
        "summary": {
            "errors": report.count(Severity::Error),
            "warnings": report.count(Severity::Warning),
            "notes": report.count(Severity::Note),
            "operations": report.operations,
            "routes": report.routes,
        },
        "findings": findings,
    })
}

fn level(severity: Severity) -> sarif::ResultLevel {
    match severity {
        Severity::Note => sarif::ResultLevel::Note,
        Severity::Warning => sarif::ResultLevel::Warning,
        Severity::Error => sarif::ResultLevel::Error,
    }
}

/// GitHub code scanning ranks security alerts by this (high, medium, low).
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "8.0",
        Severity::Warning => "5.0",
        Severity::Note => "2.0",
    }
}

/// A relative file path as a URI reference (percent-encoding what a URI may not hold); an
/// absolute one as a `file:` URI.
fn uri(path: &str) -> String {
    let mut out = String::new();
    if path.starts_with('/') {
        out.push_str("file://");
    }
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sarif_location(l: &Location, id: Option<i64>, message: Option<String>) -> sarif::Location {
    sarif::Location {
        id,
        message: message.map(|text| sarif::Message {
            text: Some(text),
            ..Default::default()
        }),
        physical_location: Some(sarif::PhysicalLocation {
            artifact_location: Some(sarif::ArtifactLocation {
                uri: Some(uri(&l.file)),
                ..Default::default()
            }),
            region: Some(sarif::Region {
                start_line: i64::try_from(l.line).ok(),
                start_column: i64::try_from(l.column).ok(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        logical_locations: Some(vec![sarif::LogicalLocation {
            fully_qualified_name: Some(fragment(&l.pointer)),
            kind: Some("member".to_owned()),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

fn mms(text: impl Into<String>) -> sarif::MultiformatMessageString {
    sarif::MultiformatMessageString::builder()
        .text(text)
        .build()
}

fn descriptor(rule: Rule) -> sarif::ReportingDescriptor {
    let info = rule.info();
    let mut properties = BTreeMap::new();
    properties.insert(
        "security-severity".to_owned(),
        Value::from(security_severity(info.severity)),
    );
    sarif::ReportingDescriptor::builder()
        .id(info.id)
        .name(info.name)
        .short_description(mms(info.summary))
        .full_description(mms(info.help))
        .help(mms(format!(
            "{} {} See docs/lint.md#{}.",
            info.summary,
            info.help,
            info.id.to_ascii_lowercase()
        )))
        .default_configuration(sarif::ReportingConfiguration {
            level: Some(Value::from(info.severity.as_str())),
            ..Default::default()
        })
        .properties(sarif::PropertyBag {
            tags: Some(vec!["security".to_owned(), "openbanking".to_owned()]),
            additional_properties: properties,
        })
        .build()
}

fn role_note(l: &Location) -> String {
    match l.role {
        super::Role::OpenApi => "in the OpenAPI description".to_owned(),
        super::Role::Config => "in the plugin configuration".to_owned(),
        super::Role::Envoy => "in the Envoy bootstrap".to_owned(),
        super::Role::WasmPlugin => "in the WasmPlugin".to_owned(),
    }
}

fn sarif_result(f: &Finding) -> sarif::Result {
    let mut fingerprint = f.rule.id().to_owned();
    for l in &f.locations {
        fingerprint.push('|');
        fingerprint.push_str(&l.file);
        fingerprint.push_str(&fragment(&l.pointer));
    }
    let related: Vec<sarif::Location> = f
        .locations
        .iter()
        .skip(1)
        .zip(1..)
        .map(|(l, id)| sarif_location(l, Some(id), Some(role_note(l))))
        .collect();
    let message = if related.is_empty() {
        f.message.clone()
    } else {
        let links: Vec<String> = f
            .locations
            .iter()
            .skip(1)
            .zip(1..)
            .map(|(l, id)| format!("[{}]({id})", role_note(l)))
            .collect();
        format!("{} (see {}). Fix: {}", f.message, links.join(", "), f.hint)
    };
    let message = if related.is_empty() {
        format!("{message}. Fix: {}", f.hint)
    } else {
        message
    };
    let mut result = sarif::Result::builder()
        .rule_id(f.rule.id())
        .level(level(f.severity))
        .message(sarif::Message {
            text: Some(message),
            ..Default::default()
        })
        .partial_fingerprints(BTreeMap::from([(
            "obguardFinding/v1".to_owned(),
            fingerprint,
        )]))
        .build();
    result.rule_index = Rule::ALL
        .iter()
        .position(|r| *r == f.rule)
        .and_then(|i| i64::try_from(i).ok());
    result.locations = f
        .locations
        .first()
        .map(|l| vec![sarif_location(l, None, None)]);
    result.related_locations = (!related.is_empty()).then_some(related);
    result
}

/// A SARIF 2.1.0 log with one run: every rule in the driver, every finding a result.
pub fn sarif(report: &Report) -> Result<Value, serde_json::Error> {
    let driver = sarif::ToolComponent::builder()
        .name(TOOL)
        .semantic_version(VERSION)
        .version(VERSION)
        .rules(Rule::ALL.into_iter().map(descriptor).collect::<Vec<_>>())
        .build();
    let run = sarif::Run::builder()
        .tool(sarif::Tool::builder().driver(driver).build())
        .column_kind(Value::from("unicodeCodePoints"))
        .results(report.findings.iter().map(sarif_result).collect::<Vec<_>>())
        .build();
    let log = sarif::Sarif::builder()
        .schema("https://json.schemastore.org/sarif-2.1.0.json")
        .version(Value::from("2.1.0"))
        .runs(vec![run])
        .build();
    serde_json::to_value(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_encoded() {
        assert_eq!(
            uri("examples/open banking/a.yaml"),
            "examples/open%20banking/a.yaml"
        );
        assert_eq!(uri("/abs/x.json"), "file:///abs/x.json");
    }
}
