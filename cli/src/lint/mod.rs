//! `obguard lint`: an OpenAPI description checked against the plugin configuration (and,
//! when given, the Envoy bootstrap or Istio WasmPlugin that loads obguard).
//!
//! Reading the inputs ([`openapi`], [`config_view`], [`source`]) is kept apart from judging
//! them: every rule in [`rules`] and [`proxy`] is a pure function of the parsed inputs that
//! returns [`Finding`]s, which [`report`] prints as text, JSON or SARIF.

pub mod catalogue;
pub mod config_view;
pub mod openapi;
pub mod proxy;
pub mod report;
pub mod rules;
pub mod source;
pub mod template;

use std::path::{Path, PathBuf};

pub use catalogue::Rule;
use config_view::ConfigView;
use openapi::Spec;
use source::{Document, Pos};

/// How bad a finding is. Ordered: `Note < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Which input a location is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    OpenApi,
    Config,
    Envoy,
    WasmPlugin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::OpenApi => "openapi",
            Role::Config => "config",
            Role::Envoy => "envoy",
            Role::WasmPlugin => "wasmplugin",
        }
    }
}

/// A place in one of the inputs: a JSON pointer into the document and where it stands in the
/// file. When the pointer names something absent (a field to add), the line and column are
/// those of its nearest existing ancestor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    pub role: Role,
    pub file: String,
    /// Index of the document in a YAML stream (0 for single-document files).
    #[serde(skip_serializing_if = "is_zero")]
    pub document: usize,
    pub pointer: String,
    pub line: usize,
    pub column: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Location {
    pub fn in_doc(role: Role, doc: &Document, pointer: &str) -> Location {
        let (_, pos) = doc.locate(pointer);
        Location::at(role, &doc.path, doc.index, pointer, pos)
    }

    pub fn at(role: Role, file: &Path, document: usize, pointer: &str, pos: Pos) -> Location {
        Location {
            role,
            file: display_path(file),
            document,
            pointer: pointer.to_owned(),
            line: pos.line,
            column: pos.column,
        }
    }
}

/// A path as reports print it: as given, with `/` separators.
pub fn display_path(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub message: String,
    /// How to fix it (may quote a JSON snippet).
    pub hint: String,
    /// The first is the primary location (where the fix most likely goes); the others are
    /// the matching places in the other inputs.
    pub locations: Vec<Location>,
}

impl Finding {
    /// A finding at the rule's default severity.
    pub fn new(rule: Rule, message: impl Into<String>, hint: impl Into<String>) -> Finding {
        Finding {
            rule,
            severity: rule.info().severity,
            message: message.into(),
            hint: hint.into(),
            locations: Vec::new(),
        }
    }

    pub fn severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }

    pub fn at(mut self, location: Location) -> Finding {
        self.locations.push(location);
        self
    }
}

/// The files to check.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub openapi: PathBuf,
    pub config: PathBuf,
    pub envoy: Option<PathBuf>,
    pub wasmplugin: Option<PathBuf>,
}

/// How to read the description.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tags that make an operation a payment (compared ignoring ASCII case).
    pub payment_tags: Vec<String>,
    /// Prefixed to every path of the description (the gateway sees `/base/accounts`).
    pub base_path: String,
}

/// The UK Open Banking Read/Write API tags of payment operations (PIS and VRP).
pub const DEFAULT_PAYMENT_TAGS: [&str; 8] = [
    "Domestic Payments",
    "Domestic Scheduled Payments",
    "Domestic Standing Orders",
    "International Payments",
    "International Scheduled Payments",
    "International Standing Orders",
    "File Payments",
    "Domestic VRPs",
];

impl Default for Options {
    fn default() -> Self {
        Options {
            payment_tags: DEFAULT_PAYMENT_TAGS
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            base_path: String::new(),
        }
    }
}

/// What was checked and what was found.
#[derive(Debug, Clone)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// `openapi` of the description, when it could be read.
    pub openapi_version: Option<String>,
    /// Operations read from the description (0 when it could not be read).
    pub operations: usize,
    /// Routes read from the configuration (0 when it did not load).
    pub routes: usize,
}

impl Report {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The most severe finding's severity.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Reads the inputs and runs every rule. Unreadable inputs are findings, not errors: CI should
/// show them where they are.
pub fn run(inputs: &Inputs, options: &Options) -> Report {
    let mut findings = Vec::new();
    let config = match ConfigView::load(&inputs.config) {
        Ok(view) => Some(view),
        Err(finding) => {
            findings.push(*finding);
            None
        }
    };
    let spec = match Spec::load(&inputs.openapi, options) {
        Ok(spec) => Some(spec),
        Err(finding) => {
            findings.push(*finding);
            None
        }
    };
    if let Some(spec) = &spec {
        findings.extend(spec.problems.iter().cloned());
    }
    if let Some(config) = &config {
        findings.extend(rules::check_config(config));
        if let Some(spec) = &spec {
            findings.extend(rules::check(spec, config));
        }
    }
    if let Some(path) = &inputs.envoy {
        findings.extend(proxy::check_file(path, Role::Envoy));
    }
    if let Some(path) = &inputs.wasmplugin {
        findings.extend(proxy::check_file(path, Role::WasmPlugin));
    }
    sort(&mut findings);
    Report {
        findings,
        openapi_version: spec.as_ref().map(|s| s.version.clone()),
        operations: spec.as_ref().map_or(0, |s| s.operations.len()),
        routes: config.as_ref().map_or(0, |c| c.routes.len()),
    }
}

/// Findings in a stable order: by primary file, position, then rule.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        let key = |f: &Finding| {
            f.locations
                .first()
                .map(|l| (l.role, l.file.clone(), l.document, l.line, l.column))
        };
        key(a)
            .cmp(&key(b))
            .then(a.rule.cmp(&b.rule))
            .then(a.message.cmp(&b.message))
    });
}
