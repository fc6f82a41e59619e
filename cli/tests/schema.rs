#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The plugin configuration's JSON Schema: the committed docs/schema/obguard-config.schema.json
//! is what `obguard schema` generates from the filter's types today; every plugin
//! configuration shipped in the repository validates against it; and the shape errors of the
//! shared bad-config table (unknown fields and variants, wrong types, missing fields) fail it.

mod common;
use common::repo;

use std::path::PathBuf;
use std::process::Command;

use obguard_cli::check;
use obguard_testkit as kit;
use serde_json::Value;

const COMMITTED: &str = "docs/schema/obguard-config.schema.json";

fn schema() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo().join(COMMITTED)).unwrap()).unwrap()
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let output = Command::new(env!("CARGO_BIN_EXE_obguard"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(output.status.success());
    let generated = String::from_utf8(output.stdout).unwrap();
    if std::env::var_os("OBGUARD_BLESS").is_some() {
        std::fs::write(repo().join(COMMITTED), &generated).unwrap();
    }
    let committed = std::fs::read_to_string(repo().join(COMMITTED)).unwrap();
    assert!(
        committed == generated,
        "{COMMITTED} is stale: regenerate it with \
         `cargo run -p obguard-cli --bin obguard -- schema > {COMMITTED}` \
         (or OBGUARD_BLESS=1 cargo test -p obguard-cli --test schema)"
    );
    // The schema is one a validator accepts, and it says something.
    let schema = schema();
    jsonschema::validator_for(&schema).unwrap();
    assert_eq!(schema["required"], serde_json::json!(["issuers"]));
    assert_eq!(schema["additionalProperties"], false);
}

/// Every file in the repository that holds obguard configurations: examples, the Envoy
/// configs, the Istio manifests, the CLI's fixtures.
fn config_files() -> Vec<PathBuf> {
    let root = repo();
    let mut files = vec![root.join("examples/openbanking/plugin.json")];
    for dir in ["envoy", "deploy/istio", "cli/tests/fixtures", "examples"] {
        let mut stack = vec![root.join(dir)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() && !path.ends_with("schemas") {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "json")
                    && !files.contains(&path)
                {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_shipped_configuration_validates() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let mut checked = 0;
    let mut configs: Vec<(String, Value)> =
        vec![("testkit plugin_config()".into(), kit::plugin_config())];
    for file in config_files() {
        // Files that are not obguard's (OpenAPI descriptions, model JSON, rate-limit service
        // configs) hold none; only what the loader accepts must validate.
        let Ok(found) = check::find(&file) else {
            continue;
        };
        for candidate in found {
            let Some(value) = candidate.json() else {
                continue;
            };
            if obguard::config::load(value.to_string().as_bytes()).is_ok() {
                configs.push((format!("{} ({})", candidate.origin, file.display()), value));
            }
        }
    }
    for (origin, value) in &configs {
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{origin}:\n{}", errors.join("\n"));
        checked += 1;
    }
    // examples/openbanking, the envoy/ configs, both WasmPlugins, the testkit's.
    assert!(
        checked >= 8,
        "only {checked} configurations found: {:?}",
        configs.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
}

#[test]
fn old_spellings_the_loader_accepts_validate() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let mut config = kit::plugin_config();
    config["routes"][0]["thresholds"] =
        serde_json::json!({"challenge": 0.3, "throttle": 0.6, "block": 0.9});
    let mut model = kit::config::shipped_model("enforce");
    model["challenge"] = serde_json::json!({"acr_values": "urn:x"});
    config["model"] = model;
    config["static_assessments"] =
        serde_json::json!({"tpp-1": {"verdict": "challenge", "risk_band": "low"}});
    assert!(obguard::config::load(config.to_string().as_bytes()).is_ok());
    let errors: Vec<String> = validator
        .iter_errors(&config)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // Both spellings at once: the loader refuses it (a duplicate field), and so does the schema.
    config["routes"][0]["thresholds"]["step_up"] = serde_json::json!(0.3);
    assert!(obguard::config::load(config.to_string().as_bytes()).is_err());
    assert!(!validator.is_valid(&config));
}

#[test]
fn shape_errors_of_the_shared_table_fail_the_schema() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let mut shape = 0;
    for case in kit::bad_configs::bad_configs() {
        let is_shape = [
            "unknown field",
            "unknown variant",
            "invalid type",
            "missing field",
        ]
        .iter()
        .any(|s| case.error.contains(s));
        if is_shape {
            assert!(
                !validator.is_valid(&case.config),
                "the schema accepts what the loader refuses with `{}`",
                case.error
            );
            shape += 1;
        }
    }
    assert!(shape >= 7, "{shape}");
}
