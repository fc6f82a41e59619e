//! Input documents (YAML or JSON) as a `serde_json::Value` plus where every node stands in the
//! file, so a finding can name a JSON pointer *and* a line and column.
//!
//! YAML is read with `saphyr` (YAML 1.2, marked nodes; duplicate keys are errors, aliases are
//! expanded), JSON with `serde_json` for the value and `jsonc-parser` (strict options) for the
//! node ranges. Nothing here interprets the document.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

/// A line and column, both 1-based; columns count Unicode code points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };
}

/// Why a file could not be read as a document.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{problem}")]
    Syntax { problem: String, at: Pos },
}

impl SourceError {
    /// Where the problem is, when the parser said.
    pub fn position(&self) -> Pos {
        match self {
            Self::Io { .. } => Pos::START,
            Self::Syntax { at, .. } => *at,
        }
    }
}

/// The syntax of a document, chosen by its file name (`.json`: JSON, else YAML, which also
/// reads most JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Json,
    Yaml,
}

impl Syntax {
    pub fn of(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Self::Json,
            _ => Self::Yaml,
        }
    }
}

/// One parsed document of a file (a YAML stream may hold several).
#[derive(Debug, Clone)]
pub struct Document {
    /// The file as named on the command line (also what reports print).
    pub path: PathBuf,
    /// The 0-based index of this document in a YAML stream.
    pub index: usize,
    pub value: Value,
    positions: HashMap<String, Pos>,
}

impl Document {
    /// Reads and parses every document of a file.
    pub fn read_all(path: &Path) -> Result<Vec<Document>, SourceError> {
        let text = std::fs::read_to_string(path).map_err(|source| SourceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse_all(path, &text, Syntax::of(path))
    }

    /// Reads a file that must hold exactly one document (an empty one is `null`).
    pub fn read(path: &Path) -> Result<Document, SourceError> {
        let mut docs = Self::read_all(path)?;
        if docs.len() > 1 {
            return Err(SourceError::Syntax {
                problem: format!(
                    "{} holds {} YAML documents, expected one",
                    path.display(),
                    docs.len()
                ),
                at: Pos::START,
            });
        }
        Ok(docs.pop().unwrap_or_else(|| Document::empty(path)))
    }

    pub fn parse_all(
        path: &Path,
        text: &str,
        syntax: Syntax,
    ) -> Result<Vec<Document>, SourceError> {
        match syntax {
            Syntax::Json => Ok(vec![parse_json(path, text)?]),
            Syntax::Yaml => parse_yaml(path, text),
        }
    }

    pub fn parse(path: &Path, text: &str, syntax: Syntax) -> Result<Document, SourceError> {
        let mut docs = Self::parse_all(path, text, syntax)?;
        Ok(docs.pop().unwrap_or_else(|| Document::empty(path)))
    }

    fn empty(path: &Path) -> Document {
        Document {
            path: path.to_path_buf(),
            index: 0,
            value: Value::Null,
            positions: HashMap::from([(String::new(), Pos::START)]),
        }
    }

    /// The node at a JSON pointer (RFC 6901).
    pub fn get(&self, pointer: &str) -> Option<&Value> {
        self.value.pointer(pointer)
    }

    /// The position of the node at `pointer` (a mapping member's position is its key's), or of
    /// its nearest existing ancestor, with the pointer actually found.
    pub fn locate(&self, pointer: &str) -> (String, Pos) {
        let mut current = pointer;
        loop {
            if let Some(pos) = self.positions.get(current) {
                return (current.to_owned(), *pos);
            }
            match current.rfind('/') {
                Some(cut) => current = current.get(..cut).unwrap_or(""),
                None => return (String::new(), Pos::START),
            }
        }
    }
}

/// Appends one reference token to a JSON pointer, escaped (`~` → `~0`, `/` → `~1`).
pub fn push_token(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// Every object below (and including) `value`, depth first, with its pointer relative to
/// `here`.
pub fn objects<'v>(value: &'v Value, here: &str) -> Vec<(String, &'v Map<String, Value>)> {
    fn walk<'v>(value: &'v Value, here: &str, out: &mut Vec<(String, &'v Map<String, Value>)>) {
        match value {
            Value::Object(map) => {
                out.push((here.to_owned(), map));
                for (key, child) in map {
                    walk(child, &push_token(here, key), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &push_token(here, &i.to_string()), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, here, &mut out);
    out
}

/// A pointer from reference tokens.
pub fn pointer(tokens: &[&str]) -> String {
    tokens
        .iter()
        .fold(String::new(), |acc, t| push_token(&acc, t))
}

// ---------------------------------------------------------------------------------------------
// YAML

fn parse_yaml(path: &Path, text: &str) -> Result<Vec<Document>, SourceError> {
    let docs = MarkedYaml::load_from_str(text).map_err(|err| SourceError::Syntax {
        problem: err.info().to_owned(),
        at: Pos {
            line: err.marker().line(),
            column: err.marker().col() + 1,
        },
    })?;
    let mut out = Vec::with_capacity(docs.len());
    for (index, node) in docs.iter().enumerate() {
        let mut positions = HashMap::new();
        let start = yaml_pos(node);
        positions.insert(String::new(), start);
        let value = yaml_value(node, "", &mut positions)?;
        out.push(Document {
            path: path.to_path_buf(),
            index,
            value,
            positions,
        });
    }
    Ok(out)
}

fn yaml_pos(node: &MarkedYaml<'_>) -> Pos {
    Pos {
        line: node.span.start.line().max(1),
        column: node.span.start.col() + 1,
    }
}

fn yaml_error(node: &MarkedYaml<'_>, problem: impl Into<String>) -> SourceError {
    SourceError::Syntax {
        problem: problem.into(),
        at: yaml_pos(node),
    }
}

fn yaml_value(
    node: &MarkedYaml<'_>,
    here: &str,
    positions: &mut HashMap<String, Pos>,
) -> Result<Value, SourceError> {
    match &node.data {
        YamlData::Value(scalar) => yaml_scalar(node, scalar),
        YamlData::Representation(text, style, tag) => {
            let scalar = Scalar::parse_from_cow_and_metadata(text.clone(), *style, tag.as_ref())
                .ok_or_else(|| yaml_error(node, format!("`{text}` is not a value of its tag")))?;
            yaml_scalar(node, &scalar)
        }
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let at = push_token(here, &i.to_string());
                positions.insert(at.clone(), yaml_pos(item));
                out.push(yaml_value(item, &at, positions)?);
            }
            Ok(Value::Array(out))
        }
        YamlData::Mapping(entries) => {
            let mut out = Map::new();
            for (key, value) in entries {
                let name = yaml_key(key)?;
                let at = push_token(here, &name);
                positions.insert(at.clone(), yaml_pos(key));
                let converted = yaml_value(value, &at, positions)?;
                out.insert(name, converted);
            }
            Ok(Value::Object(out))
        }
        YamlData::Tagged(_, inner) => yaml_value(inner, here, positions),
        YamlData::Alias(_) => Err(yaml_error(node, "unresolved YAML alias")),
        YamlData::BadValue => Err(yaml_error(node, "invalid YAML value")),
    }
}

fn yaml_scalar(node: &MarkedYaml<'_>, scalar: &Scalar<'_>) -> Result<Value, SourceError> {
    Ok(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Number(Number::from(*i)),
        Scalar::FloatingPoint(f) => Number::from_f64(f.into_inner())
            .map(Value::Number)
            .ok_or_else(|| yaml_error(node, "a non-finite number has no JSON form"))?,
        Scalar::String(s) => Value::String(s.to_string()),
    })
}

/// A mapping key as the JSON member name it becomes (`200:` → `"200"`).
fn yaml_key(key: &MarkedYaml<'_>) -> Result<String, SourceError> {
    let scalar = match &key.data {
        YamlData::Value(s) => s.clone(),
        YamlData::Representation(text, style, tag) => {
            Scalar::parse_from_cow_and_metadata(text.clone(), *style, tag.as_ref())
                .ok_or_else(|| yaml_error(key, "invalid mapping key"))?
        }
        YamlData::Tagged(_, inner) => return yaml_key(inner),
        _ => return Err(yaml_error(key, "only scalar mapping keys have a JSON form")),
    };
    Ok(match scalar {
        Scalar::Null => "null".to_owned(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::Integer(i) => i.to_string(),
        Scalar::FloatingPoint(f) => f.into_inner().to_string(),
        Scalar::String(s) => s.into_owned(),
    })
}

// ---------------------------------------------------------------------------------------------
// JSON

fn parse_json(path: &Path, text: &str) -> Result<Document, SourceError> {
    let value: Value = serde_json::from_str(text).map_err(|err| SourceError::Syntax {
        problem: err.to_string(),
        at: Pos {
            line: err.line().max(1),
            column: err.column().max(1),
        },
    })?;
    let strict = jsonc_parser::ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let ast = jsonc_parser::parse_to_ast(text, &jsonc_parser::CollectOptions::default(), &strict)
        .map_err(|err| SourceError::Syntax {
        problem: err.to_string(),
        at: Pos::START,
    })?;
    let lines = LineIndex::new(text);
    let mut positions = HashMap::new();
    if let Some(root) = &ast.value {
        positions.insert(String::new(), lines.pos(range_of(root).start));
        json_positions(root, "", &lines, &mut positions);
    } else {
        positions.insert(String::new(), Pos::START);
    }
    Ok(Document {
        path: path.to_path_buf(),
        index: 0,
        value,
        positions,
    })
}

fn range_of(value: &jsonc_parser::ast::Value<'_>) -> jsonc_parser::common::Range {
    use jsonc_parser::ast::Value as V;
    match value {
        V::StringLit(v) => v.range,
        V::NumberLit(v) => v.range,
        V::BooleanLit(v) => v.range,
        V::Object(v) => v.range,
        V::Array(v) => v.range,
        V::NullKeyword(v) => v.range,
    }
}

fn json_positions(
    value: &jsonc_parser::ast::Value<'_>,
    here: &str,
    lines: &LineIndex,
    positions: &mut HashMap<String, Pos>,
) {
    use jsonc_parser::ast::{ObjectPropName, Value as V};
    match value {
        V::Object(object) => {
            for prop in &object.properties {
                let (name, range) = match &prop.name {
                    ObjectPropName::String(s) => (s.value.to_string(), s.range),
                    ObjectPropName::Word(w) => (w.value.to_owned(), w.range),
                };
                let at = push_token(here, &name);
                // A duplicate member: serde_json keeps the last one, so does this.
                positions.insert(at.clone(), lines.pos(range.start));
                json_positions(&prop.value, &at, lines, positions);
            }
        }
        V::Array(array) => {
            for (i, element) in array.elements.iter().enumerate() {
                let at = push_token(here, &i.to_string());
                positions.insert(at.clone(), lines.pos(range_of(element).start));
                json_positions(element, &at, lines, positions);
            }
        }
        _ => {}
    }
}

/// Byte offset → line and column.
struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, starts }
    }

    fn pos(&self, offset: usize) -> Pos {
        let line = self.starts.partition_point(|&start| start <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |prefix| prefix.chars().count() + 1);
        Pos { line, column }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_positions_name_keys_and_items() {
        let text = "openapi: 3.1.0\npaths:\n  /a/{b}:\n    get:\n      security: []\n  200: x\nlist:\n  - one\n  - two\n";
        let doc = Document::parse(Path::new("s.yaml"), text, Syntax::Yaml).unwrap();
        assert_eq!(
            doc.locate("/paths/~1a~1{b}/get").1,
            Pos { line: 4, column: 5 }
        );
        assert_eq!(doc.locate("/paths/200").1, Pos { line: 6, column: 3 });
        assert_eq!(doc.locate("/list/1").1, Pos { line: 9, column: 5 });
        assert_eq!(doc.get("/paths/200"), Some(&Value::String("x".into())));
        // A missing node: its nearest ancestor.
        assert_eq!(
            doc.locate("/paths/~1a~1{b}/post"),
            ("/paths/~1a~1{b}".into(), Pos { line: 3, column: 3 })
        );
    }

    #[test]
    fn yaml_duplicate_keys_are_errors() {
        let err = Document::parse(Path::new("s.yaml"), "a: 1\na: 2\n", Syntax::Yaml).unwrap_err();
        assert!(err.to_string().contains("duplicated key"), "{err}");
        assert_eq!(err.position().line, 2);
    }

    #[test]
    fn yaml_aliases_are_expanded() {
        let doc = Document::parse(Path::new("s.yaml"), "a: &x [1]\nb: *x\n", Syntax::Yaml).unwrap();
        assert_eq!(doc.get("/b/0"), Some(&Value::from(1)));
    }

    #[test]
    fn json_positions_count_code_points() {
        let text = "{\n  \"é\": {\"a/b\": [1, {\"c\": true}]}\n}";
        let doc = Document::parse(Path::new("c.json"), text, Syntax::Json).unwrap();
        assert_eq!(doc.locate("/é").1, Pos { line: 2, column: 3 });
        assert_eq!(
            doc.locate("/é/a~1b/1/c").1,
            Pos {
                line: 2,
                column: 21
            }
        );
        assert_eq!(doc.get("/é/a~1b/0"), Some(&Value::from(1)));
    }

    #[test]
    fn json_errors_carry_the_position() {
        let err =
            Document::parse(Path::new("c.json"), "{\n  \"a\": ,\n}", Syntax::Json).unwrap_err();
        assert_eq!(err.position().line, 2);
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(pointer(&["paths", "/a/{b}", "x~y"]), "/paths/~1a~1{b}/x~0y");
    }
}
