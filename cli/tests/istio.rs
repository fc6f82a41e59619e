#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The Istio manifests in deploy/istio/: each resource validates against Istio's CRD schema
//! (vendored in deploy/istio/schemas/, see its README), the fields that schema predates are
//! checked by hand, every WasmPlugin's pluginConfig loads in the filter's own loader, the
//! cluster names obguard is configured with are `outbound|PORT||host` of a declared
//! ServiceEntry host and port, and the stats tag rules are the Envoy demo's.

mod common;
use common::repo;

use std::collections::BTreeSet;
use std::path::PathBuf;

use obguard_cli::lint::source::Document;
use serde_json::Value;

/// Every document of every manifest in deploy/istio/ (the schemas folder aside).
fn manifests() -> Vec<Document> {
    let dir = repo().join("deploy/istio");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    files
        .iter()
        .flat_map(|f| Document::read_all(f).unwrap())
        .collect()
}

fn kind(doc: &Document) -> &str {
    doc.get("/kind").and_then(Value::as_str).unwrap_or("")
}

fn name(doc: &Document) -> String {
    format!(
        "{} {} ({})",
        kind(doc),
        doc.get("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        doc.path.display()
    )
}

/// Fields of `WasmPlugin.spec` newer than the vendored (Istio 1.18) schema.
const WASMPLUGIN_LATER_FIELDS: [&str; 3] = ["failStrategy", "targetRefs", "type"];

#[test]
fn every_resource_validates_against_istios_crd_schema() {
    let mut seen = BTreeSet::new();
    for doc in manifests() {
        let kind = kind(&doc).to_owned();
        if kind == "ConfigMap" {
            continue;
        }
        let schema_file = repo().join(format!("deploy/istio/schemas/{kind}.json"));
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(&schema_file)
                .unwrap_or_else(|e| panic!("{}: no schema for {kind}: {e}", name(&doc))),
        )
        .unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc.value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}:\n{}", name(&doc), errors.join("\n"));
        // Structural schemas allow unknown fields; a typo must not pass (where the schema
        // lists the fields at all: IstioOperator's `spec` is free-form in it).
        let known = &schema["properties"]["spec"]["properties"];
        let listed = known.as_object().is_some_and(|k| !k.is_empty());
        for field in doc.get("/spec").and_then(Value::as_object).unwrap().keys() {
            if !listed {
                break;
            }
            let later = kind == "WasmPlugin" && WASMPLUGIN_LATER_FIELDS.contains(&field.as_str());
            assert!(
                known.get(field).is_some() || later,
                "{}: unknown spec field `{field}`",
                name(&doc)
            );
        }
        let api = doc.get("/apiVersion").and_then(Value::as_str).unwrap();
        assert!(
            api.ends_with("istio.io/v1alpha1") || api.ends_with("istio.io/v1beta1"),
            "{api}"
        );
        seen.insert(kind);
    }
    for kind in [
        "WasmPlugin",
        "ServiceEntry",
        "DestinationRule",
        "RequestAuthentication",
        "AuthorizationPolicy",
        "IstioOperator",
    ] {
        assert!(seen.contains(kind), "no {kind} in deploy/istio/");
    }
}

#[test]
fn wasmplugins_are_fail_closed_pinned_and_ordered_for_their_mode() {
    let docs = manifests();
    let plugins: Vec<&Document> = docs.iter().filter(|d| kind(d) == "WasmPlugin").collect();
    assert_eq!(plugins.len(), 2);
    for plugin in plugins {
        let spec = plugin.get("/spec").unwrap();
        let s = |f: &str| {
            spec[f]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no {f}", name(plugin)))
        };
        // Fields the vendored schema predates, checked here: enums as Istio defines them.
        assert!(["FAIL_CLOSE", "FAIL_OPEN"].contains(&s("failStrategy")));
        assert_eq!(s("failStrategy"), "FAIL_CLOSE", "{}", name(plugin));
        assert!(s("url").starts_with("oci://"), "{}", name(plugin));
        assert!(
            s("sha256").len() == 64 && s("sha256").bytes().all(|b| b.is_ascii_hexdigit()),
            "{}",
            name(plugin)
        );
        assert!(spec["priority"].is_i64());
        assert!(
            spec.get("selector").is_some() != spec.get("targetRefs").is_some(),
            "{}: exactly one of selector and targetRefs",
            name(plugin)
        );
        // Delegation reads jwt_authn's payload, which exists only after Istio's AUTHN phase.
        let delegates = spec["pluginConfig"]["issuers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.get("jwt_authn").is_some());
        assert_eq!(
            s("phase"),
            if delegates { "AUTHZ" } else { "AUTHN" },
            "{}",
            name(plugin)
        );
        if delegates {
            let file = &plugin.path;
            let others = Document::read_all(file).unwrap();
            assert!(
                others.iter().any(|d| kind(d) == "RequestAuthentication"),
                "{}: delegation without a RequestAuthentication next to it",
                name(plugin)
            );
        }
    }
}

#[test]
fn plugin_configs_load_and_name_declared_clusters() {
    let docs = manifests();
    // `outbound|PORT||host` for every ServiceEntry host and port.
    let mut declared = BTreeSet::new();
    for entry in docs.iter().filter(|d| kind(d) == "ServiceEntry") {
        for host in entry.get("/spec/hosts").unwrap().as_array().unwrap() {
            for port in entry.get("/spec/ports").unwrap().as_array().unwrap() {
                declared.insert(format!(
                    "outbound|{}||{}",
                    port["number"].as_u64().unwrap(),
                    host.as_str().unwrap()
                ));
            }
        }
    }
    // Every ServiceEntry host has its DestinationRule (TLS origination, or ISTIO_MUTUAL).
    for entry in docs.iter().filter(|d| kind(d) == "ServiceEntry") {
        for host in entry.get("/spec/hosts").unwrap().as_array().unwrap() {
            assert!(
                docs.iter().any(|d| kind(d) == "DestinationRule"
                    && d.get("/spec/host") == Some(host)
                    && d.get("/spec/trafficPolicy/tls/mode").is_some()),
                "{}: no DestinationRule with tls for {host}",
                name(entry)
            );
        }
    }
    let mut used = BTreeSet::new();
    for plugin in docs.iter().filter(|d| kind(d) == "WasmPlugin") {
        let config = plugin.get("/spec/pluginConfig").unwrap();
        if let Err(err) = obguard::config::load(config.to_string().as_bytes()) {
            panic!("{}: pluginConfig refused: {err}", name(plugin));
        }
        for pointer in [
            "/ratelimit/cluster",
            "/model/http/cluster",
            "/model/shadow_model/http/cluster",
            "/consent_service/cluster",
            "/events/cluster",
            "/containment/list/cluster",
        ]
        .iter()
        .map(|p| (*p).to_owned())
        .chain(
            (0..config["issuers"].as_array().unwrap().len())
                .map(|i| format!("/issuers/{i}/jwks_remote/cluster")),
        )
        .chain(
            (0..config
                .pointer("/threat_intel/feeds")
                .and_then(Value::as_array)
                .map_or(0, Vec::len))
                .map(|i| format!("/threat_intel/feeds/{i}/fetch/cluster")),
        ) {
            if let Some(cluster) = config.pointer(&pointer).and_then(Value::as_str) {
                assert!(
                    declared.contains(cluster),
                    "{}: {pointer} `{cluster}` is not outbound|PORT||host of a ServiceEntry \
                     (declared: {declared:?})",
                    name(plugin)
                );
                used.insert(cluster.to_owned());
            }
        }
    }
    // JWKS, model registry, consent, rate-limit, SOC and feed clusters are all used.
    assert_eq!(used, declared, "declared clusters obguard does not use");
}

#[test]
fn the_stats_tag_rules_are_the_envoy_demos() {
    let demo = Document::read(&repo().join("envoy/demo/envoy.yaml")).unwrap();
    let docs = manifests();
    let config_map = docs
        .iter()
        .find(|d| d.get("/metadata/name").and_then(Value::as_str) == Some("obguard-stats-tags"))
        .unwrap();
    let bootstrap: Value = serde_json::from_str(
        config_map
            .get("/data/custom_bootstrap.json")
            .and_then(Value::as_str)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(bootstrap["stats_config"], demo.value["stats_config"]);
    // The stats matcher keeps obguard's stats mesh-wide.
    let mesh = docs.iter().find(|d| kind(d) == "IstioOperator").unwrap();
    let prefixes = mesh
        .get("/spec/meshConfig/defaultConfig/proxyStatsMatcher/inclusionPrefixes")
        .unwrap();
    assert!(
        prefixes
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "wasmcustom.obguard.")
    );
}
