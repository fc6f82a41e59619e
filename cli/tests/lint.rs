#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `obguard lint` as CI runs it: the real binary on the example (clean) and on the broken
//! copy in tests/fixtures/broken/ (every rule fires), its exit codes, and its SARIF validated
//! against the SARIF 2.1.0 schema.

mod common;
use common::{repo, stdout};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use obguard_cli::lint::Rule;
use serde_json::Value;

/// Runs `obguard lint <args>` from the repository root (paths in reports are as given).
fn lint(args: &[&str]) -> Output {
    common::obguard("lint", args)
}

const EXAMPLE: [&str; 8] = [
    "--openapi",
    "examples/openbanking/openapi.yaml",
    "--config",
    "examples/openbanking/plugin.json",
    "--envoy",
    "envoy/demo/envoy.yaml",
    "--wasmplugin",
    "examples/openbanking/wasmplugin.yaml",
];

const BROKEN: [&str; 8] = [
    "--openapi",
    "cli/tests/fixtures/broken/openapi.yaml",
    "--config",
    "cli/tests/fixtures/broken/plugin.json",
    "--envoy",
    "cli/tests/fixtures/broken/envoy.yaml",
    "--wasmplugin",
    "cli/tests/fixtures/broken/wasmplugin.yaml",
];

/// The inputs that fail to load (the rules they stop cannot fire beside them).
const INVALID: [&str; 6] = [
    "--openapi",
    "cli/tests/fixtures/broken/openapi.yaml",
    "--config",
    "cli/tests/fixtures/broken/plugin-invalid.json",
    "--envoy",
    "cli/tests/fixtures/broken/envoy-invalid.yaml",
];

fn json_findings(args: &[&str]) -> (Output, Value) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let output = lint(&all);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    (output, report)
}

fn rule_ids(report: &Value) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_example_is_clean() {
    let output = lint(&EXAMPLE);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(
        stdout(&output),
        "obguard lint: clean (OpenAPI 3.0.3, 13 operations, 12 routes)\n"
    );
    // Clean at the strictest threshold too.
    let mut strict = EXAMPLE.to_vec();
    strict.extend(["--fail-on", "note"]);
    assert_eq!(lint(&strict).status.code(), Some(0));
}

#[test]
fn every_rule_fires_on_the_broken_copy() {
    let (output, report) = json_findings(&BROKEN);
    assert_eq!(output.status.code(), Some(1));
    let mut fired = rule_ids(&report);
    let (output, invalid) = json_findings(&INVALID);
    assert_eq!(output.status.code(), Some(1));
    let invalid_ids = rule_ids(&invalid);
    assert!(
        invalid_ids.contains("OBG001") && invalid_ids.contains("OBG004"),
        "{invalid_ids:?}"
    );
    fired.extend(invalid_ids);
    let all: BTreeSet<String> = Rule::ALL.iter().map(|r| r.id().to_owned()).collect();
    let missing: Vec<&String> = all.difference(&fired).collect();
    assert!(missing.is_empty(), "rules that did not fire: {missing:?}");
}

#[test]
fn findings_locate_both_files() {
    let (_, report) = json_findings(&BROKEN);
    let findings = report["findings"].as_array().unwrap();
    let scope = findings.iter().find(|f| f["rule"] == "OBG201").unwrap();
    let locations = scope["locations"].as_array().unwrap();
    assert_eq!(locations.len(), 2);
    assert_eq!(locations[0]["role"], "config");
    assert_eq!(
        locations[0]["file"],
        "cli/tests/fixtures/broken/plugin.json"
    );
    assert_eq!(locations[0]["pointer"], "/routes/5/scopes");
    assert_eq!(locations[1]["role"], "openapi");
    assert_eq!(
        locations[1]["pointer"],
        "/paths/~1accounts~1{AccountId}~1transactions/get/security"
    );
    // The line and column are where the pointer is in the file.
    let spec =
        std::fs::read_to_string(repo().join("cli/tests/fixtures/broken/openapi.yaml")).unwrap();
    let line = spec
        .lines()
        .nth(locations[1]["line"].as_u64().unwrap() as usize - 1)
        .unwrap();
    let column = locations[1]["column"].as_u64().unwrap() as usize;
    assert_eq!(&line[column - 1..], "security:");
    let config =
        std::fs::read_to_string(repo().join("cli/tests/fixtures/broken/plugin.json")).unwrap();
    let line = config
        .lines()
        .nth(locations[0]["line"].as_u64().unwrap() as usize - 1)
        .unwrap();
    assert!(line.trim_start().starts_with("\"scopes\""), "{line}");
    // Every finding has a rule, a severity, a message, a hint and a location.
    for f in findings {
        assert!(["error", "warning", "note"].contains(&f["severity"].as_str().unwrap()));
        assert!(!f["message"].as_str().unwrap().is_empty());
        assert!(!f["hint"].as_str().unwrap().is_empty());
        assert!(!f["locations"].as_array().unwrap().is_empty(), "{f}");
    }
}

#[test]
fn the_config_must_load_in_the_filter() {
    let (_, report) = json_findings(&INVALID);
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "OBG001")
        .unwrap();
    assert_eq!(
        finding["message"],
        "obguard: invalid plugin configuration: routes[0].methods[0]: `post` is not an upper-case HTTP method"
    );
    assert_eq!(finding["locations"][0]["pointer"], "/routes/0/methods/0");
    // The config rules do not run on a configuration the filter refuses.
    assert!(!rule_ids(&report).contains("OBG101"));
}

#[test]
fn exit_codes_follow_the_threshold() {
    // Warnings only: the broken WasmPlugin (OBG504) beside the clean example.
    let mut args = EXAMPLE[..4].to_vec();
    args.extend(["--wasmplugin", "cli/tests/fixtures/broken/wasmplugin.yaml"]);
    assert_eq!(lint(&args).status.code(), Some(0));
    let mut warning = args.clone();
    warning.extend(["--fail-on", "warning"]);
    let output = lint(&warning);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("warning[OBG504] proxy-obguard-missing"));
    let mut never = BROKEN.to_vec();
    never.extend(["--fail-on", "never"]);
    assert_eq!(lint(&never).status.code(), Some(0));
    // Disabled rules are not reported.
    let mut disabled = warning.clone();
    disabled.extend(["--disable", "proxy-obguard-missing"]);
    assert_eq!(lint(&disabled).status.code(), Some(0));
    // Usage errors: 2.
    let mut unknown = args.clone();
    unknown.extend(["--disable", "OBG999"]);
    let output = lint(&unknown);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no such rule"));
    assert_eq!(lint(&["--openapi", "x.yaml"]).status.code(), Some(2));
}

#[test]
fn unreadable_inputs_are_findings() {
    let output = lint(&["--openapi", "nope.yaml", "--config", "nope.json"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("error[OBG001]") && text.contains("error[OBG002]"),
        "{text}"
    );
}

#[test]
fn text_output_names_rule_location_and_fix() {
    let output = lint(&BROKEN);
    let text = stdout(&output);
    assert!(text.contains(
        "error[OBG301] unmatched-not-deny: `unmatched` is `allow`: a request on a path no route lists is forwarded to the upstream without any check\n  --> cli/tests/fixtures/broken/plugin.json:"
    ), "{text}");
    assert!(
        text.contains("  fix: Set `\"unmatched\": \"deny\"`"),
        "{text}"
    );
    assert!(text.ends_with("obguard lint: 12 errors, 19 warnings, 0 notes (OpenAPI 3.0.3, 17 operations, 16 routes)\n"), "{text}");
}

/// The SARIF 2.1.0 schema (draft-07 JSON Schema) as published by OASIS, from the package
/// of the `serde-sarif` crate that generates our SARIF types from it (`src/schema.json`),
/// found in the local cargo registry through `cargo metadata`. The graph is filtered to this
/// host's platform: unfiltered, `--offline` wants every platform's crates (Windows' too) in
/// the registry, and a machine that only ever built for Linux has not downloaded them.
fn sarif_schema() -> Value {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let version = Command::new(rustc).arg("-vV").output().unwrap();
    let version = String::from_utf8(version.stdout).unwrap();
    let host = version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
            host,
            "--manifest-path",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let package = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "serde-sarif")
        .expect("serde-sarif in the dependency graph");
    let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
    let schema_path = manifest.parent().unwrap().join("src/schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap()).unwrap();
    assert_eq!(
        schema["title"],
        "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema",
        "{}",
        schema_path.display()
    );
    schema
}

fn fix_language_patterns(value: &mut Value) -> usize {
    match value {
        Value::Object(map) => {
            let mut fixed = 0;
            if map.get("pattern").and_then(Value::as_str)
                == Some("^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$")
            {
                map.insert(
                    "pattern".to_owned(),
                    Value::from("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$"),
                );
                fixed += 1;
            }
            fixed + map.values_mut().map(fix_language_patterns).sum::<usize>()
        }
        Value::Array(items) => items.iter_mut().map(fix_language_patterns).sum(),
        _ => 0,
    }
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let mut schema = sarif_schema();
    // The published schema's `language` pattern is not a valid regular expression (a stray
    // `]`, tolerated only by legacy ECMAScript), which fails the meta-schema check that format
    // validation brings; those properties (obguard writes none) get the pattern they mean.
    assert_eq!(fix_language_patterns(&mut schema), 2);
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    for args in [&BROKEN[..], &INVALID[..], &EXAMPLE[..]] {
        let mut all = args.to_vec();
        all.extend(["--format", "sarif"]);
        let output = lint(&all);
        let sarif: Value = serde_json::from_slice(&output.stdout).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&sarif)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "SARIF is not valid: {errors:#?}");
        assert_eq!(sarif["version"], "2.1.0");
        // The validator does refuse what is not SARIF 2.1.0.
        let mut broken = sarif.clone();
        broken["runs"][0]["results"] = Value::from(vec![serde_json::json!({"level": "fatal"})]);
        assert!(!validator.is_valid(&broken));
    }
    // What code scanning reads.
    let mut all = BROKEN.to_vec();
    all.extend(["--format", "sarif"]);
    let sarif: Value = serde_json::from_slice(&lint(&all).stdout).unwrap();
    let run = &sarif["runs"][0];
    assert_eq!(
        run["tool"]["driver"]["rules"].as_array().unwrap().len(),
        Rule::ALL.len()
    );
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    let result = results.iter().find(|r| r["ruleId"] == "OBG201").unwrap();
    assert_eq!(result["level"], "error");
    let physical = &result["locations"][0]["physicalLocation"];
    assert_eq!(
        physical["artifactLocation"]["uri"],
        "cli/tests/fixtures/broken/plugin.json"
    );
    assert!(physical["region"]["startLine"].as_u64().unwrap() > 1);
    assert_eq!(
        result["relatedLocations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "cli/tests/fixtures/broken/openapi.yaml"
    );
    let index = result["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(run["tool"]["driver"]["rules"][index]["id"], "OBG201");
}

#[test]
fn output_goes_to_a_file() {
    let path = std::env::temp_dir().join(format!("obguard-lint-{}.sarif", std::process::id()));
    let mut args = BROKEN.to_vec();
    let path_text = path.to_str().unwrap().to_owned();
    args.extend(["--format", "sarif", "--output", &path_text]);
    let output = lint(&args);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let sarif: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
}
