//! A bad plugin configuration makes Envoy refuse the filter, naming the field; the shipped
//! demo configuration is accepted.

use obguard_integration::{EchoUpstream, Envoy, EnvoyOptions, workspace_root};
use obguard_testkit as kit;
use serde_json::json;

#[test]
fn bad_config_is_refused_with_the_field_named() {
    let cases = [
        (
            json!({"issuers": []}),
            "obguard: invalid plugin configuration: issuers: at least one issuer is required",
        ),
        (
            {
                let mut c = kit::plugin_config();
                c["issuers"][0]["jwks"]["keys"][1]["n"] = json!("***");
                c
            },
            "obguard: invalid plugin configuration: issuers[0].jwks.keys[1].n: not base64url",
        ),
        (
            {
                let mut c = kit::plugin_config();
                c["routes"][0]["scope"] = json!("accounts");
                c
            },
            "obguard: invalid plugin configuration: routes[0].scope: unknown field `scope`",
        ),
    ];
    for (config, expected) in cases {
        let upstream = EchoUpstream::start();
        let opts = EnvoyOptions::new(upstream.port()).plugin(config);
        // Envoy 1.40 with a static listener and `fail_open: false` exits: "Plugin configured
        // to fail closed failed to load".
        match Envoy::try_start(opts) {
            Ok(_) => panic!("Envoy started with a bad plugin config ({expected})"),
            Err(log) => {
                assert!(log.contains(expected), "expected `{expected}` in:\n{log}");
                assert!(
                    log.contains("Unable to create Wasm plugin obguard"),
                    "{log}"
                );
            }
        }
    }
}

#[test]
fn the_shipped_bootstraps_are_valid() {
    for config in [
        "envoy/demo/envoy.yaml",
        "envoy/delegation/envoy.yaml",
        "envoy/model-lifecycle/envoy.yaml",
    ] {
        validate(config);
    }
}

/// `envoy --mode validate` also loads the wasm and runs the plugin's `on_configure`.
fn validate(config: &str) {
    let demo = workspace_root().join(config);
    let out = std::process::Command::new(obguard_integration::envoy_bin())
        .args(["--mode", "validate", "-c"])
        .arg(&demo)
        .current_dir(workspace_root())
        .output()
        .expect("run envoy --mode validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{config}: {text}");
    assert!(text.contains("OK"), "{config}: {text}");
}
