//! `obguard check-config`: the filter's own loader (`obguard::config::load`) run on every
//! obguard configuration a file holds, before it reaches a proxy.
//!
//! A file is one of:
//! - a plugin configuration (JSON, or YAML as Istio's `pluginConfig` holds it);
//! - Istio `WasmPlugin`s (YAML, several documents allowed): each obguard one's
//!   `spec.pluginConfig`;
//! - an Envoy bootstrap or listener dump (YAML or JSON): the `configuration` (a
//!   `google.protobuf.StringValue`) of every obguard wasm filter, wherever it stands.
//!
//! The loader stops at the first problem of a configuration, so each configuration gives at
//! most one error: fix it and run again. Several configurations in one file are each checked.

use std::path::{Path, PathBuf};

use obguard::config::ConfigError;
use serde_json::Value;

use crate::lint::config_view::field_path_pointer;
use crate::lint::display_path;
use crate::lint::proxy::{WASM, is_obguard, obguard_wasmplugins, type_of};
use crate::lint::source::{Document, Pos, SourceError, Syntax, objects, push_token};

/// One configuration found in a file.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// What it is and where, for people: `WasmPlugin bank-api/obguard, spec.pluginConfig`.
    pub origin: String,
    /// The document it stands in.
    doc: Document,
    /// Its JSON pointer in `doc`.
    base: String,
    /// The JSON text of an Envoy `StringValue`, parsed for positions inside the string.
    embedded: Option<Document>,
    /// What the loader reads.
    bytes: Vec<u8>,
}

/// A refused configuration: the loader's error and where its field is.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub error: ConfigError,
    pub file: PathBuf,
    /// The field's JSON pointer in the file's document (for an Envoy `StringValue`, the
    /// string's), or of its nearest ancestor there.
    pub pointer: String,
    pub pos: Pos,
    /// For a configuration inside a string: the position in the string's JSON text.
    pub inner: Option<Pos>,
}

/// The verdict on one configuration.
#[derive(Debug, Clone)]
pub struct Checked {
    pub origin: String,
    pub result: Result<(), Box<Refusal>>,
}

/// Why a file could not be checked at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}:{}:{}: {source}", source.position().line, source.position().column)]
    Unreadable {
        path: String,
        #[source]
        source: SourceError,
    },
}

/// Every obguard configuration in `path`, checked. An empty list: none was found.
pub fn check_file(path: &Path) -> Result<Vec<Checked>, InputError> {
    Ok(find(path)?
        .into_iter()
        .map(|c| Checked {
            origin: c.origin.clone(),
            result: c.check(),
        })
        .collect())
}

/// Every obguard configuration in `path`, unchecked (e.g. to validate against the schema).
pub fn find(path: &Path) -> Result<Vec<Candidate>, InputError> {
    let unreadable = |source| InputError::Unreadable {
        path: display_path(path),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(|source| {
        unreadable(SourceError::Io {
            path: display_path(path),
            source,
        })
    })?;
    let syntax = Syntax::of(path);
    let docs = Document::parse_all(path, &text, syntax).map_err(unreadable)?;
    Ok(candidates(&docs, &text, syntax))
}

/// The configurations in `docs`: WasmPlugins' and Envoy wasm filters' if there are any, else
/// a lone document taken as a plugin configuration.
fn candidates(docs: &[Document], text: &str, syntax: Syntax) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = obguard_wasmplugins(docs)
        .into_iter()
        .map(wasmplugin)
        .collect();
    for doc in docs {
        out.extend(envoy_filters(doc));
    }
    if out.is_empty()
        && let [doc] = docs
        && doc.value.is_object()
        && doc.get("/kind").is_none()
    {
        out.push(Candidate {
            origin: "plugin configuration".to_owned(),
            doc: doc.clone(),
            base: String::new(),
            embedded: None,
            // JSON as written, so the loader's `at line L column C` is the file's.
            bytes: match syntax {
                Syntax::Json => text.as_bytes().to_vec(),
                Syntax::Yaml => doc.value.to_string().into_bytes(),
            },
        });
    }
    out
}

fn wasmplugin(doc: &Document) -> Candidate {
    let name = |p: &str| doc.get(p).and_then(Value::as_str).unwrap_or("?").to_owned();
    let base = "/spec/pluginConfig".to_owned();
    let value = doc.get(&base).cloned().unwrap_or(Value::Null);
    Candidate {
        origin: format!(
            "WasmPlugin {}/{} (document {}), spec.pluginConfig",
            name("/metadata/namespace"),
            name("/metadata/name"),
            doc.index + 1
        ),
        doc: doc.clone(),
        base,
        embedded: None,
        bytes: value.to_string().into_bytes(),
    }
}

/// Every obguard wasm filter in an Envoy document: its `config.configuration`.
fn envoy_filters(doc: &Document) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (at, object) in objects(&doc.value, "") {
        if type_of(object) != Some(WASM) {
            continue;
        }
        let Some(config) = object.get("config").filter(|c| is_obguard(c)) else {
            continue;
        };
        let name = config.get("name").and_then(Value::as_str).unwrap_or("?");
        let configuration = push_token(&push_token(&at, "config"), "configuration");
        let value_at = push_token(&configuration, "value");
        let origin = format!(
            "Envoy wasm filter `{name}` (document {}) at {at}, config.configuration",
            doc.index + 1
        );
        // A StringValue's JSON text; anything else (no `configuration`, another type) gives
        // the loader something it refuses, with the reason.
        let text = doc.get(&value_at).and_then(Value::as_str);
        let embedded = text.and_then(|t| {
            Document::parse(&doc.path, t, Syntax::Json)
                .ok()
                .map(|mut d| {
                    d.index = doc.index;
                    d
                })
        });
        let bytes = match text {
            Some(text) => text.as_bytes().to_vec(),
            None => Vec::new(),
        };
        out.push(Candidate {
            origin,
            doc: doc.clone(),
            base: value_at,
            embedded,
            bytes,
        });
    }
    out
}

impl Candidate {
    /// The configuration as JSON (`None`: not JSON at all, e.g. a broken StringValue).
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.bytes).ok()
    }

    fn check(&self) -> Result<(), Box<Refusal>> {
        let Err(mut error) = obguard::config::load(&self.bytes) else {
            return Ok(());
        };
        if self.bytes.is_empty() {
            error = ConfigError::new(
                "",
                "no configuration: expected `configuration` with \
                 `\"@type\": type.googleapis.com/google.protobuf.StringValue` and a `value`",
            );
        }
        let field = field_path_pointer(&error.path);
        let (pointer, pos, inner) = match &self.embedded {
            Some(inner_doc) => {
                let (_, pos) = self.doc.locate(&self.base);
                let (_, inner) = inner_doc.locate(&field);
                (self.base.clone(), pos, Some(inner))
            }
            None => {
                let (pointer, pos) = self.doc.locate(&format!("{}{field}", self.base));
                if self.base.is_empty() && self.doc.path.extension().is_some_and(|e| e == "json") {
                    // The loader read the file's own text: its line and column are right.
                } else if let Some(cut) = error.problem.rfind(" at line ") {
                    // The loader's line and column count in JSON made from YAML, not the file.
                    error.problem.truncate(cut);
                }
                (pointer, pos, None)
            }
        };
        Err(Box::new(Refusal {
            error,
            file: self.doc.path.clone(),
            pointer,
            pos,
            inner,
        }))
    }
}

/// The report for people: one block per refused configuration, one line per good one.
pub fn render(path: &Path, checked: &[Checked]) -> String {
    let mut out = String::new();
    if checked.is_empty() {
        out.push_str(&format!(
            "error: {}: no obguard configuration found (a plugin configuration, an obguard \
             WasmPlugin, or an Envoy config with an obguard wasm filter)\n",
            display_path(path)
        ));
    }
    for c in checked {
        match &c.result {
            Ok(()) => out.push_str(&format!("ok: {}: {}\n", display_path(path), c.origin)),
            Err(r) => {
                out.push_str(&format!("error: {}\n", r.error));
                out.push_str(&format!(
                    "  --> {}:{}:{} #{}\n",
                    display_path(&r.file),
                    r.pos.line,
                    r.pos.column,
                    r.pointer
                ));
                if let Some(inner) = r.inner {
                    out.push_str(&format!(
                        "  (line {} column {} of the JSON in that string)\n",
                        inner.line, inner.column
                    ));
                }
                out.push_str(&format!("  in {}\n", c.origin));
            }
        }
    }
    out
}

/// Whether every configuration loaded (and there was one).
pub fn all_ok(checked: &[Checked]) -> bool {
    !checked.is_empty() && checked.iter().all(|c| c.result.is_ok())
}
