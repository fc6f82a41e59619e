//! Small configuration objects read from a `serde_json::Value` instead of a derived
//! `Deserialize`: each derived struct adds several kilobytes of parser code to the module
//! (serde_json and serde_path_to_error are generic over every visitor), and these objects
//! have two or three fields. The rules are the derived ones: unknown fields are errors,
//! types are exact, and every error names the field.

use serde_json::{Map, Value};

use super::ConfigError;

/// `value` as an object whose members are all among `fields`.
pub fn object<'v>(
    path: &str,
    value: &'v Value,
    fields: &[&str],
) -> Result<&'v Map<String, Value>, ConfigError> {
    let Value::Object(map) = value else {
        return Err(ConfigError::new(path, "must be an object"));
    };
    if let Some(unknown) = map.keys().find(|k| !fields.contains(&k.as_str())) {
        let expected: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
        return Err(ConfigError::new(
            format!("{path}.{unknown}"),
            format!(
                "unknown field `{unknown}`, expected one of {}",
                expected.join(", ")
            ),
        ));
    }
    Ok(map)
}

/// Member `name` of `map` as a string, if present.
pub fn string<'v>(
    path: &str,
    map: &'v Map<String, Value>,
    name: &str,
) -> Result<Option<&'v str>, ConfigError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ConfigError::new(
            format!("{path}.{name}"),
            "must be a string",
        )),
    }
}

/// Member `name` of `map` as a non-negative integer, if present.
pub fn uint(path: &str, map: &Map<String, Value>, name: &str) -> Result<Option<u64>, ConfigError> {
    match map.get(name) {
        None => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| {
            ConfigError::new(format!("{path}.{name}"), "must be a non-negative integer")
        }),
    }
}
