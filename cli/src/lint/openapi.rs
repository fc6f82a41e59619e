//! The parts of an OpenAPI 3.0 / 3.1 description the gateway cares about: every operation's
//! method, path template, effective `security` and whether it is a payment.
//!
//! A typed walk over the document (`serde_json::Value`) rather than a full OpenAPI object
//! model: one code path reads both 3.0 and 3.1, and every node keeps its JSON pointer (and so
//! its line and column) for the report. `$ref`s are followed wherever the walk meets them
//! (path items, parameters, security schemes), within the document and into relative files
//! (`common.yaml#/components/...`); URLs are not fetched.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::source::{Document, objects, push_token};
use super::template::Template;
use super::{Finding, Location, Options, Role, Rule, Severity};

/// HTTP methods of a path item, in the order OpenAPI lists them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The extension that marks (or, `false`, unmarks) a payment operation.
pub const PAYMENT_EXTENSION: &str = "x-obguard-payment";

/// What authentication an operation requires, per its `security`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    /// Callable without a token.
    Public(PublicReason),
    /// Alternatives (any one suffices), each a set of scopes all of which are needed. Duplicate
    /// alternatives (the same scopes under two schemes) are merged.
    Scopes(Vec<BTreeSet<String>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicReason {
    /// `security: []`.
    EmptyList,
    /// An empty requirement object `{}` among the alternatives: authentication is optional.
    EmptyRequirement,
    /// Neither the operation nor the document declares `security`.
    NoneDeclared,
}

impl PublicReason {
    pub fn describe(self) -> &'static str {
        match self {
            PublicReason::EmptyList => "`security: []` (public)",
            PublicReason::EmptyRequirement => {
                "an empty security requirement `{}` (authentication optional)"
            }
            PublicReason::NoneDeclared => {
                "no `security` (neither the operation nor the document declares one)"
            }
        }
    }
}

/// One operation of the description.
#[derive(Debug, Clone)]
pub struct Operation {
    /// Upper case (`GET`).
    pub method: String,
    /// The path the gateway sees (with `--base-path`).
    pub template: Template,
    pub operation_id: Option<String>,
    pub security: Security,
    /// Why it is a payment (`tag \`Domestic Payments\``), when it is one.
    pub payment: Option<String>,
    /// The operation object.
    pub location: Location,
    /// Where its effective `security` is written: the operation's, else the document's
    /// global one, else the operation itself.
    pub security_location: Location,
    /// Whether the effective `security` is the document's global default.
    pub security_inherited: bool,
}

impl Operation {
    /// `GET /accounts/{AccountId}` as the gateway sees it.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

/// A read description: its operations and the problems met while reading it.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `openapi` as written (`3.1.0`).
    pub version: String,
    pub operations: Vec<Operation>,
    /// Parts that could not be read (OBG002, OBG003).
    pub problems: Vec<Finding>,
    /// The `/paths` object (where a missing operation would go).
    pub paths_location: Location,
}

impl Spec {
    /// Reads a description. An unreadable file or an unsupported document is one finding.
    pub fn load(path: &Path, options: &Options) -> Result<Spec, Box<Finding>> {
        let doc = Document::read(path).map_err(|err| {
            let pos = err.position();
            Box::new(
                Finding::new(
                    Rule::OpenApiInvalid,
                    format!("the OpenAPI description cannot be read: {err}"),
                    "Give an OpenAPI 3.0 or 3.1 document in YAML or JSON.",
                )
                .at(Location::at(Role::OpenApi, path, 0, "", pos)),
            )
        })?;
        Self::from_document(doc, options)
    }

    pub fn from_document(doc: Document, options: &Options) -> Result<Spec, Box<Finding>> {
        let version = match doc.get("/openapi") {
            Some(Value::String(v)) if v.starts_with("3.0.") || v.starts_with("3.1.") => v.clone(),
            other => {
                let (message, pointer) = match (other, doc.get("/swagger")) {
                    (_, Some(_)) => ("Swagger 2.0 is not supported".to_owned(), "/swagger"),
                    (Some(v), _) => (
                        format!("`openapi: {v}` is not OpenAPI 3.0 or 3.1"),
                        "/openapi",
                    ),
                    (None, _) => ("the document has no `openapi` version".to_owned(), ""),
                };
                return Err(Box::new(
                    Finding::new(
                        Rule::OpenApiInvalid,
                        message,
                        "Give an OpenAPI 3.0 or 3.1 document (convert Swagger 2.0 first).",
                    )
                    .at(Location::in_doc(Role::OpenApi, &doc, pointer)),
                ));
            }
        };
        let mut walker = Walker {
            docs: Docs::new(doc),
            options,
            problems: Vec::new(),
            operations: Vec::new(),
        };
        walker.walk();
        walker.check_all_refs();
        let paths_location = walker.docs.location(&At::root("/paths"));
        Ok(Spec {
            version,
            operations: walker.operations,
            problems: walker.problems,
            paths_location,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Documents and references

/// A node: which document, which pointer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct At {
    doc: usize,
    pointer: String,
}

impl At {
    fn root(pointer: &str) -> At {
        At {
            doc: 0,
            pointer: pointer.to_owned(),
        }
    }

    fn child(&self, token: &str) -> At {
        At {
            doc: self.doc,
            pointer: push_token(&self.pointer, token),
        }
    }
}

/// The description and the files its references reach (index 0 is the description).
struct Docs {
    docs: Vec<Document>,
    by_path: HashMap<PathBuf, usize>,
}

/// Follows at most this many `$ref`s in a row.
const MAX_REF_HOPS: usize = 32;

impl Docs {
    fn new(root: Document) -> Docs {
        let key = canonical(&root.path);
        Docs {
            docs: vec![root],
            by_path: HashMap::from([(key, 0)]),
        }
    }

    fn value(&self, at: &At) -> Option<&Value> {
        self.docs.get(at.doc)?.get(&at.pointer)
    }

    fn location(&self, at: &At) -> Location {
        match self.docs.get(at.doc) {
            Some(doc) => Location::in_doc(Role::OpenApi, doc, &at.pointer),
            None => Location::at(
                Role::OpenApi,
                Path::new("?"),
                0,
                &at.pointer,
                Default::default(),
            ),
        }
    }

    /// The node `at` stands for once its `$ref` chain is followed.
    fn follow(&mut self, at: At) -> Result<At, Box<Finding>> {
        let mut current = at;
        let mut seen = HashSet::new();
        for _ in 0..MAX_REF_HOPS {
            let reference = match self.value(&current) {
                Some(Value::Object(map)) => match map.get("$ref") {
                    Some(Value::String(r)) => r.clone(),
                    Some(_) => {
                        return Err(self.ref_problem(&current, "`$ref` is not a string".to_owned()));
                    }
                    None => return Ok(current),
                },
                _ => return Ok(current),
            };
            if !seen.insert(current.clone()) {
                return Err(self.ref_problem(
                    &current,
                    format!("`{reference}` is part of a reference cycle"),
                ));
            }
            current = self.target(&current, &reference)?;
        }
        Err(self.ref_problem(
            &current,
            format!("more than {MAX_REF_HOPS} references in a row"),
        ))
    }

    fn ref_problem(&self, at: &At, problem: String) -> Box<Finding> {
        Box::new(
            Finding::new(
                Rule::RefUnresolved,
                problem,
                "Point the reference at an existing node (`#/components/...` or a relative file), \
                 or bundle the description into one file.",
            )
            .at(self.docs.get(at.doc).map_or_else(
                || self.location(at),
                |doc| Location::in_doc(Role::OpenApi, doc, &push_token(&at.pointer, "$ref")),
            )),
        )
    }

    fn target(&mut self, from: &At, reference: &str) -> Result<At, Box<Finding>> {
        let (file, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let doc = if file.is_empty() {
            from.doc
        } else if file.contains("://") || file.starts_with("//") {
            return Err(self.ref_problem(
                from,
                format!("`{reference}`: references to URLs are not followed"),
            ));
        } else {
            let base = self
                .docs
                .get(from.doc)
                .and_then(|d| d.path.parent().map(Path::to_path_buf))
                .unwrap_or_default();
            let path = base.join(percent_decode(file));
            self.load(&path)
                .map_err(|problem| self.ref_problem(from, format!("`{reference}`: {problem}")))?
        };
        let pointer = percent_decode(fragment);
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(self.ref_problem(
                from,
                format!("`{reference}`: only JSON-pointer fragments are supported"),
            ));
        }
        let target = At { doc, pointer };
        if self.value(&target).is_none() {
            return Err(self.ref_problem(from, format!("`{reference}` points at nothing")));
        }
        Ok(target)
    }

    fn load(&mut self, path: &Path) -> Result<usize, String> {
        let key = canonical(path);
        if let Some(index) = self.by_path.get(&key) {
            return Ok(*index);
        }
        let doc = Document::read(path).map_err(|err| err.to_string())?;
        let index = self.docs.len();
        self.docs.push(doc);
        self.by_path.insert(key, index);
        Ok(index)
    }
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `%7B` → `{` (URI fragments and relative references are percent-encoded).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The walk

struct Walker<'o> {
    docs: Docs,
    options: &'o Options,
    problems: Vec<Finding>,
    operations: Vec<Operation>,
}

impl Walker<'_> {
    fn problem(&mut self, at: &At, severity: Severity, message: String) {
        let hint = match severity {
            Severity::Error => {
                "Fix the description at this place; the lint skipped the part it is in."
            }
            _ => "Fix the description at this place.",
        };
        let finding = Finding::new(Rule::OpenApiInvalid, message, hint)
            .severity(severity)
            .at(self.docs.location(at));
        self.problems.push(finding);
    }

    /// Every `$ref` of every document read must point at something, whether the walk needs
    /// it or not (a broken reference is a broken description). Each is checked one hop; the
    /// walk follows whole chains where it needs them.
    fn check_all_refs(&mut self) {
        let reported: HashSet<String> = self
            .problems
            .iter()
            .filter(|p| p.rule == Rule::RefUnresolved)
            .filter_map(|p| p.locations.first())
            .map(|l| format!("{}#{}", l.file, l.pointer))
            .collect();
        let mut doc = 0;
        while doc < self.docs.docs.len() {
            let refs: Vec<(String, String)> = self.docs.docs.get(doc).map_or_else(Vec::new, |d| {
                objects(&d.value, "")
                    .into_iter()
                    .filter_map(|(pointer, map)| match map.get("$ref") {
                        Some(Value::String(reference)) => Some((pointer, reference.clone())),
                        _ => None,
                    })
                    .collect()
            });
            for (pointer, reference) in refs {
                let from = At { doc, pointer };
                if let Err(finding) = self.docs.target(&from, &reference) {
                    let key = finding
                        .locations
                        .first()
                        .map(|l| format!("{}#{}", l.file, l.pointer))
                        .unwrap_or_default();
                    if !reported.contains(&key) {
                        self.problems.push(*finding);
                    }
                }
            }
            doc += 1;
        }
    }

    fn walk(&mut self) {
        let paths = At::root("/paths");
        let keys: Vec<String> = match self.docs.value(&paths) {
            None => return, // 3.1 allows a description of webhooks or components only
            Some(Value::Object(map)) => map.keys().cloned().collect(),
            Some(_) => {
                self.problem(
                    &paths,
                    Severity::Error,
                    "`paths` is not an object".to_owned(),
                );
                return;
            }
        };
        for key in keys {
            if key.starts_with("x-") {
                continue;
            }
            let written = paths.child(&key);
            if !key.starts_with('/') {
                self.problem(
                    &written,
                    Severity::Error,
                    format!("path `{key}` does not start with `/`"),
                );
                continue;
            }
            let item = match self.docs.follow(written) {
                Ok(item) => item,
                Err(finding) => {
                    self.problems.push(*finding);
                    continue;
                }
            };
            self.path_item(&key, &item);
        }
    }

    fn path_item(&mut self, path: &str, item: &At) {
        let Some(Value::Object(map)) = self.docs.value(item) else {
            self.problem(
                item,
                Severity::Error,
                format!("path item `{path}` is not an object"),
            );
            return;
        };
        let methods: Vec<&str> = METHODS
            .into_iter()
            .filter(|m| map.contains_key(*m))
            .collect();
        let path_payment = self.payment_mark(item);
        for method in methods {
            self.operation(path, method, &item.child(method), path_payment);
        }
    }

    /// `x-obguard-payment` on a node, when it is a boolean (otherwise a problem).
    fn payment_mark(&mut self, at: &At) -> Option<bool> {
        match self.docs.value(at).and_then(|v| v.get(PAYMENT_EXTENSION)) {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.problem(
                    &at.child(PAYMENT_EXTENSION),
                    Severity::Warning,
                    format!("`{PAYMENT_EXTENSION}` is not a boolean; ignored"),
                );
                None
            }
        }
    }

    fn operation(&mut self, path: &str, method: &str, at: &At, path_payment: Option<bool>) {
        let Some(Value::Object(op)) = self.docs.value(at) else {
            self.problem(
                at,
                Severity::Error,
                format!("operation `{method} {path}` is not an object"),
            );
            return;
        };
        let operation_id = op
            .get("operationId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let tags: Vec<String> = op
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let has_own_security = op.contains_key("security");
        let payment = match self.payment_mark(at).or(path_payment) {
            Some(true) => Some(format!("`{PAYMENT_EXTENSION}: true`")),
            Some(false) => None,
            None => tags
                .iter()
                .find(|t| {
                    self.options
                        .payment_tags
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case(t))
                })
                .map(|t| format!("tag `{t}`")),
        };
        let (security_at, inherited) = if has_own_security {
            (Some(at.child("security")), false)
        } else if self.docs.value(&At::root("/security")).is_some() {
            (Some(At::root("/security")), true)
        } else {
            (None, false)
        };
        let security = match &security_at {
            Some(sec) => match self.security(sec) {
                Some(security) => security,
                None => return,
            },
            None => Security::Public(PublicReason::NoneDeclared),
        };
        let location = self.docs.location(at);
        let security_location =
            security_at.map_or_else(|| location.clone(), |s| self.docs.location(&s));
        self.operations.push(Operation {
            method: method.to_ascii_uppercase(),
            template: Template::parse(&join(&self.options.base_path, path)),
            operation_id,
            security,
            payment,
            location,
            security_location,
            security_inherited: inherited,
        });
    }

    /// Reads a `security` array (`None`: malformed, reported).
    fn security(&mut self, at: &At) -> Option<Security> {
        let Some(Value::Array(requirements)) = self.docs.value(at).cloned() else {
            self.problem(at, Severity::Error, "`security` is not an array".to_owned());
            return None;
        };
        if requirements.is_empty() {
            return Some(Security::Public(PublicReason::EmptyList));
        }
        let schemes = self.scheme_names();
        let mut alternatives: Vec<BTreeSet<String>> = Vec::new();
        let mut optional = false;
        for (i, requirement) in requirements.iter().enumerate() {
            let here = at.child(&i.to_string());
            let Value::Object(map) = requirement else {
                self.problem(
                    &here,
                    Severity::Error,
                    "a security requirement is not an object".to_owned(),
                );
                return None;
            };
            if map.is_empty() {
                optional = true;
                continue;
            }
            let mut scopes = BTreeSet::new();
            for (scheme, list) in map {
                if !schemes.contains(scheme) {
                    self.problem(
                        &here.child(scheme),
                        Severity::Warning,
                        format!(
                            "security scheme `{scheme}` is not defined in `components.securitySchemes` \
                             (its scopes are still compared)"
                        ),
                    );
                }
                let Value::Array(list) = list else {
                    self.problem(
                        &here.child(scheme),
                        Severity::Error,
                        format!("the scopes of `{scheme}` are not an array"),
                    );
                    return None;
                };
                for scope in list {
                    match scope.as_str() {
                        Some(s) => {
                            scopes.insert(s.to_owned());
                        }
                        None => {
                            self.problem(
                                &here.child(scheme),
                                Severity::Error,
                                format!("a scope of `{scheme}` is not a string"),
                            );
                            return None;
                        }
                    }
                }
            }
            if !alternatives.contains(&scopes) {
                alternatives.push(scopes);
            }
        }
        Some(if optional {
            Security::Public(PublicReason::EmptyRequirement)
        } else {
            Security::Scopes(alternatives)
        })
    }

    /// The names in `components.securitySchemes`.
    fn scheme_names(&self) -> HashSet<String> {
        self.docs
            .value(&At::root("/components/securitySchemes"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// `/base` + `/accounts` → `/base/accounts`.
fn join(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        path.to_owned()
    } else if base.starts_with('/') {
        format!("{base}{path}")
    } else {
        format!("/{base}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::source::Syntax;

    fn spec(text: &str) -> Spec {
        let doc = Document::parse(Path::new("spec.yaml"), text, Syntax::Yaml).unwrap();
        Spec::from_document(doc, &Options::default()).unwrap()
    }

    fn scopes(alternatives: &[&[&str]]) -> Security {
        Security::Scopes(
            alternatives
                .iter()
                .map(|a| a.iter().map(|s| (*s).to_owned()).collect())
                .collect(),
        )
    }

    #[test]
    fn reads_operations_security_and_payments() {
        let s = spec(
            "openapi: 3.0.3
security:
  - oauth: [accounts]
components:
  securitySchemes:
    oauth: {type: oauth2}
    psu: {type: oauth2}
  parameters:
    Id: {name: AccountId, in: path, required: true}
paths:
  /accounts/{AccountId}:
    get:
      operationId: getAccount
  /health:
    get:
      security: []
  /maybe:
    get:
      security: [{}, {oauth: [x]}]
  /domestic-payments:
    post:
      tags: [Domestic Payments]
      security:
        - oauth: [payments]
        - psu: [payments]
    get:
      tags: [domestic payments]
      x-obguard-payment: false
      security: [{oauth: [payments]}]
  x-ignored: {}
",
        );
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let mut ops: Vec<String> = s.operations.iter().map(Operation::describe).collect();
        ops.sort();
        assert_eq!(
            ops,
            [
                "GET /accounts/{AccountId}",
                "GET /domestic-payments",
                "GET /health",
                "GET /maybe",
                "POST /domestic-payments"
            ]
        );
        let by = |d: &str| s.operations.iter().find(|o| o.describe() == d).unwrap();
        assert_eq!(
            by("GET /accounts/{AccountId}").security,
            scopes(&[&["accounts"]])
        );
        assert!(by("GET /accounts/{AccountId}").security_inherited);
        assert_eq!(
            by("GET /accounts/{AccountId}").security_location.pointer,
            "/security"
        );
        assert_eq!(
            by("GET /health").security,
            Security::Public(PublicReason::EmptyList)
        );
        assert_eq!(
            by("GET /maybe").security,
            Security::Public(PublicReason::EmptyRequirement)
        );
        assert_eq!(
            by("POST /domestic-payments").security,
            scopes(&[&["payments"]])
        );
        assert_eq!(
            by("POST /domestic-payments").payment.as_deref(),
            Some("tag `Domestic Payments`")
        );
        assert_eq!(by("GET /domestic-payments").payment, None);
        assert_eq!(by("GET /health").payment, None);
        assert_eq!(by("GET /health").location.pointer, "/paths/~1health/get");
        assert_eq!(by("GET /health").location.line, 15);
    }

    #[test]
    fn payment_tags_are_configurable() {
        let text = "openapi: 3.1.0\npaths:\n  /pay:\n    post: {tags: [Payments]}\n  /x:\n    post: {tags: [Domestic Payments]}\n";
        let doc = Document::parse(Path::new("s.yaml"), text, Syntax::Yaml).unwrap();
        let options = Options {
            payment_tags: vec!["payments".into()],
            ..Options::default()
        };
        let s = Spec::from_document(doc, &options).unwrap();
        let pay = |path: &str| {
            s.operations
                .iter()
                .find(|o| o.template.to_string() == path)
                .unwrap()
                .payment
                .clone()
        };
        assert_eq!(pay("/pay").as_deref(), Some("tag `Payments`"));
        assert_eq!(pay("/x"), None);
    }

    #[test]
    fn no_security_anywhere_is_public() {
        let s = spec("openapi: 3.1.0\npaths:\n  /a:\n    get: {}\n");
        assert_eq!(
            s.operations[0].security,
            Security::Public(PublicReason::NoneDeclared)
        );
    }

    #[test]
    fn path_item_refs_are_followed_with_their_locations() {
        let s = spec(
            "openapi: 3.1.0
paths:
  /a:
    $ref: '#/components/pathItems/A'
  /b:
    $ref: '#/components/pathItems/Missing'
components:
  pathItems:
    A:
      x-obguard-payment: true
      post:
        security: [{s: [x]}]
  securitySchemes:
    s: {type: http, scheme: bearer}
",
        );
        assert_eq!(s.operations.len(), 1);
        assert_eq!(
            s.operations[0].payment.as_deref(),
            Some("`x-obguard-payment: true`")
        );
        assert_eq!(
            s.operations[0].location.pointer,
            "/components/pathItems/A/post"
        );
        assert_eq!(s.problems.len(), 1);
        assert_eq!(s.problems[0].rule, Rule::RefUnresolved);
        assert_eq!(s.problems[0].locations[0].pointer, "/paths/~1b/$ref");
    }

    #[test]
    fn every_broken_ref_is_reported_once() {
        let doc = Document::parse(
            Path::new("s.yaml"),
            "openapi: 3.0.0
paths:
  /a:
    $ref: '#/nowhere'
  /b:
    get:
      responses:
        '404': {$ref: '#/components/responses/Missing'}
        '200': {$ref: '#/components/responses/Ok'}
components:
  responses:
    Ok: {description: ok}
",
            Syntax::Yaml,
        )
        .unwrap();
        let s = Spec::from_document(doc, &Options::default()).unwrap();
        let pointers: Vec<&str> = s
            .problems
            .iter()
            .map(|p| p.locations[0].pointer.as_str())
            .collect();
        assert_eq!(
            pointers,
            ["/paths/~1a/$ref", "/paths/~1b/get/responses/404/$ref"]
        );
        assert_eq!(s.operations.len(), 1);
    }

    #[test]
    fn reference_cycles_and_urls_are_reported() {
        let s = spec(
            "openapi: 3.0.0
paths:
  /a: {$ref: '#/paths/~1b'}
  /b: {$ref: '#/paths/~1a'}
  /c: {$ref: 'https://example.com/x.yaml#/A'}
",
        );
        assert_eq!(s.operations.len(), 0);
        let messages: Vec<&str> = s.problems.iter().map(|p| p.message.as_str()).collect();
        assert!(
            messages.iter().filter(|m| m.contains("cycle")).count() == 2,
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("URLs are not followed")),
            "{messages:?}"
        );
    }

    #[test]
    fn relative_file_refs_are_followed() {
        let dir = std::env::temp_dir().join(format!("obguard-lint-ref-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("items.yaml"), "A:\n  get:\n    security: []\n").unwrap();
        let main = dir.join("spec.yaml");
        std::fs::write(
            &main,
            "openapi: 3.1.0\npaths:\n  /a:\n    $ref: 'items.yaml#/A'\n",
        )
        .unwrap();
        let s = Spec::load(&main, &Options::default()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.operations.len(), 1);
        assert!(s.operations[0].location.file.ends_with("items.yaml"));
        assert_eq!(s.operations[0].location.line, 2);
    }

    #[test]
    fn unknown_schemes_and_bad_versions_are_problems() {
        let s = spec("openapi: 3.0.0\npaths:\n  /a:\n    get:\n      security: [{nope: []}]\n");
        assert_eq!(s.problems.len(), 1);
        assert_eq!(s.problems[0].severity, Severity::Warning);
        let doc = Document::parse(Path::new("s.yaml"), "swagger: '2.0'\n", Syntax::Yaml).unwrap();
        let err = Spec::from_document(doc, &Options::default()).unwrap_err();
        assert!(err.message.contains("Swagger 2.0"));
    }

    #[test]
    fn base_path_prefixes_templates() {
        let doc = Document::parse(
            Path::new("s.yaml"),
            "openapi: 3.0.0\npaths:\n  /a:\n    get: {}\n",
            Syntax::Yaml,
        )
        .unwrap();
        let options = Options {
            base_path: "/open-banking/v4.0/".into(),
            ..Options::default()
        };
        let s = Spec::from_document(doc, &options).unwrap();
        assert_eq!(s.operations[0].describe(), "GET /open-banking/v4.0/a");
        assert_eq!(percent_decode("/paths/~1a%7Bb%7D"), "/paths/~1a{b}");
    }
}
