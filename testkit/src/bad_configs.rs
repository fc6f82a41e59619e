//! The table of plugin configurations the filter's loader refuses, with the message it gives:
//! `fixtures/bad-configs.json`, one file read by both the loader's tests
//! (filter/tests/config_errors.rs) and `obguard check-config`'s (cli/tests/check_config.rs),
//! so the two cannot drift apart.

use serde_json::Value;

use crate::plugin_config;

const TABLE: &str = include_str!("../fixtures/bad-configs.json");

/// One refused configuration.
#[derive(Debug, Clone)]
pub struct BadConfig {
    /// [`plugin_config`] with the case's edits applied.
    pub config: Value,
    /// How the loader's message starts (or, with `contains`, a part of it).
    pub error: String,
    pub contains: bool,
}

impl BadConfig {
    /// Whether `message` (a loader error, possibly with a prefix such as the CLI's) is the
    /// expected one.
    pub fn matches(&self, message: &str) -> bool {
        if self.contains {
            message.contains(&self.error)
        } else {
            message.starts_with(&self.error)
        }
    }
}

/// Every case of the table, edits applied. Panics on a malformed table (a test fixture).
pub fn bad_configs() -> Vec<BadConfig> {
    let table: Value = match serde_json::from_str(TABLE) {
        Ok(table) => table,
        Err(err) => panic!("testkit: fixtures/bad-configs.json: {err}"),
    };
    let Some(cases) = table["cases"].as_array() else {
        panic!("testkit: fixtures/bad-configs.json has no `cases` array");
    };
    cases.iter().map(case).collect()
}

fn case(case: &Value) -> BadConfig {
    let mut config = plugin_config();
    if let Some(sets) = case["set"].as_object() {
        for (pointer, value) in sets {
            set(&mut config, pointer, value.clone());
        }
    }
    for pointer in case["remove"].as_array().into_iter().flatten() {
        let pointer = pointer.as_str().unwrap_or_default();
        let (parent, last) = split(pointer);
        match config.pointer_mut(parent).and_then(Value::as_object_mut) {
            Some(object) => {
                object.remove(last);
            }
            None => panic!("testkit: bad config: nothing to remove at {pointer}"),
        }
    }
    BadConfig {
        config,
        error: case["error"].as_str().unwrap_or_default().to_owned(),
        contains: case["match"].as_str() == Some("contains"),
    }
}

/// Sets the member or element at `pointer`; the last token may name a member not there yet.
fn set(config: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = split(pointer);
    match config.pointer_mut(parent) {
        Some(Value::Object(object)) => {
            object.insert(last.to_owned(), value);
        }
        Some(Value::Array(items)) => {
            match last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(item) => *item = value,
                None => panic!("testkit: bad config: no element at {pointer}"),
            }
        }
        _ => panic!("testkit: bad config: no object or array above {pointer}"),
    }
}

/// `/a/b/c` → (`/a/b`, `c`). Tokens in the table need no `~` escapes.
fn split(pointer: &str) -> (&str, &str) {
    pointer.rsplit_once('/').unwrap_or(("", pointer))
}
