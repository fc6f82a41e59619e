#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `obguard check-config`, the real binary: the shared table of refused configurations
//! (testkit/fixtures/bad-configs.json, also asserted against the loader in
//! filter/tests/config_errors.rs) gives the loader's messages; WasmPlugin and Envoy files are
//! searched for every obguard configuration, each named; exit codes 0, 1 and 2.

mod common;
use common::{repo, stdout};

use std::path::{Path, PathBuf};
use std::process::Output;

use obguard_testkit as kit;

fn check(files: &[&Path]) -> Output {
    common::obguard("check-config", files)
}

/// A fresh directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("obguard-check-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_shared_bad_configs_give_the_loaders_messages() {
    let dir = scratch("table");
    let cases = kit::bad_configs::bad_configs();
    assert!(cases.len() >= 26);
    for (i, case) in cases.iter().enumerate() {
        let file = dir.join(format!("case-{i}.json"));
        std::fs::write(&file, serde_json::to_string_pretty(&case.config).unwrap()).unwrap();
        let output = check(&[&file]);
        let out = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "case {i}: {out}");
        let message = out
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or_else(|| panic!("case {i}: no error line in {out}"));
        assert!(
            case.matches(message),
            "case {i}: expected `{}`, got `{message}`",
            case.error
        );
        // The field is located in the file (line > 1 for anything below the top level).
        let at = out.lines().find(|l| l.starts_with("  --> ")).unwrap();
        assert!(at.contains(&file.display().to_string()), "{at}");
    }
}

#[test]
fn a_good_json_config_passes_and_an_error_names_line_and_pointer() {
    let output = check(&[Path::new("examples/openbanking/plugin.json")]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(
        stdout(&output),
        "ok: examples/openbanking/plugin.json: plugin configuration\n"
    );

    let dir = scratch("json");
    let file = dir.join("plugin.json");
    let mut config = kit::plugin_config();
    config["routes"][2]["methods"] = serde_json::json!(["get"]);
    let text = serde_json::to_string_pretty(&config).unwrap();
    std::fs::write(&file, &text).unwrap();
    let out = stdout(&check(&[&file]));
    assert!(
        out.starts_with("error: routes[2].methods[0]: `get` is not an upper-case HTTP method\n"),
        "{out}"
    );
    // The line of `"get"` in the file.
    let line = text.lines().position(|l| l.contains("\"get\"")).unwrap() + 1;
    assert!(
        out.contains(&format!("plugin.json:{line}:")) && out.contains("#/routes/2/methods/0"),
        "{out}"
    );
}

#[test]
fn every_obguard_wasmplugin_of_a_stream_is_checked_and_named() {
    let dir = scratch("wasmplugin");
    let file = dir.join("plugins.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n---\n\
         apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n\
         metadata: {name: obguard, namespace: bank}\nspec:\n  url: oci://r/obguard:1\n  pluginConfig:\n    \
         issuers:\n      - issuer: https://idp\n        audiences: [a]\n        algorithms: [HS256]\n---\n\
         apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\n\
         metadata: {name: obguard-canary, namespace: bank}\nspec:\n  url: oci://r/obguard:2\n  pluginConfig:\n    \
         issuers:\n      - issuer: https://idp\n        audiences: [a]\n        shared_secret: MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE\n        algorithms: [HS256]\n",
    )
    .unwrap();
    let output = check(&[&file]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("error: issuers[0].algorithms[0]: `HS256` needs the issuer's `shared_secret`"),
        "{out}"
    );
    assert!(
        out.contains("plugins.yaml:15:") || out.contains("plugins.yaml:14:"),
        "{out}"
    );
    assert!(
        out.contains("#/spec/pluginConfig/issuers/0/algorithms/0"),
        "{out}"
    );
    assert!(
        out.contains("in WasmPlugin bank/obguard (document 2), spec.pluginConfig"),
        "{out}"
    );
    assert!(
        out.contains("ok: ") && out.contains("WasmPlugin bank/obguard-canary (document 3)"),
        "{out}"
    );
}

#[test]
fn every_obguard_filter_of_an_envoy_bootstrap_is_checked() {
    // The shipped bootstraps load.
    for file in [
        "envoy/demo/envoy.yaml",
        "envoy/delegation/envoy.yaml",
        "envoy/model-lifecycle/envoy.yaml",
        "envoy/ratelimit/test-service.yaml",
    ] {
        let output = check(&[Path::new(file)]);
        let out = stdout(&output);
        assert_eq!(output.status.code(), Some(0), "{file}: {out}");
        assert!(
            out.starts_with(&format!("ok: {file}: Envoy wasm filter `obguard`")),
            "{out}"
        );
    }
    // Two obguard filters, the second one broken: each is reported with where it is.
    let demo = std::fs::read_to_string(repo().join("envoy/demo/envoy.yaml")).unwrap();
    let broken = demo.replace(
        "\"realm\": \"demo-bank\"",
        "\"realm\": \"demo-bank\", \"unmatched\": \"maybe\"",
    );
    assert_ne!(broken, demo);
    let two = format!("{demo}\n---\n{broken}");
    let dir = scratch("envoy");
    let file = dir.join("envoy.yaml");
    std::fs::write(&file, two).unwrap();
    let out = stdout(&check(&[&file]));
    let oks = out.lines().filter(|l| l.starts_with("ok: ")).count();
    assert_eq!(oks, 1, "{out}");
    for expected in [
        "error: unmatched: unknown variant `maybe`",
        "(document 2) at /static_resources/listeners/0/",
        "of the JSON in that string",
    ] {
        assert!(out.contains(expected), "{out}");
    }
}

#[test]
fn unreadable_input_is_exit_2_and_nothing_found_is_exit_1() {
    let output = check(&[Path::new("no/such/file.json")]);
    assert_eq!(output.status.code(), Some(2));
    let dir = scratch("syntax");
    let file = dir.join("bad.yaml");
    std::fs::write(&file, "a: [1, 2\n").unwrap();
    assert_eq!(check(&[&file]).status.code(), Some(2));
    let file = dir.join("other.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: ConfigMap\n").unwrap();
    let output = check(&[&file]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("no obguard configuration found"));
}
