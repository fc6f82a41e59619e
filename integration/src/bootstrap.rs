//! The Envoy bootstrap used by the tests, generated as JSON.

use std::path::Path;

use serde_json::{Value, json};

use crate::EnvoyOptions;

/// Fields of the JSON access log line (`json_format`), name → Envoy command operator.
///
/// Values Envoy does not have (a header that was not sent, filter state the filter did not set)
/// come out as JSON `null`. `duration` is a number (ms), `status` a number.
///
/// The `outcome`/`reason`/`client_id`/`route` fields read filter state that the wasm filter sets
/// with proxy-wasm `set_property(vec!["obguard.outcome"], ...)`: Envoy stores a property set by
/// wasm under the filter-state key `wasm.<path>`, so the filter state key is
/// `wasm.obguard.outcome`. (A path of several segments such as `vec!["obguard", "outcome"]` is
/// joined with NUL bytes by the SDK and would *not* match.)
pub const ACCESS_LOG_FIELDS: &[(&str, &str)] = &[
    ("start_time", "%START_TIME%"),
    ("status", "%RESPONSE_CODE%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ(:PATH)%"),
    ("original_path", "%REQ(X-ENVOY-ORIGINAL-PATH)%"),
    ("interaction_id", "%REQ(X-FAPI-INTERACTION-ID)%"),
    ("resp_interaction_id", "%RESP(X-FAPI-INTERACTION-ID)%"),
    ("outcome", "%FILTER_STATE(wasm.obguard.outcome:PLAIN)%"),
    ("reason", "%FILTER_STATE(wasm.obguard.reason:PLAIN)%"),
    ("client_id", "%FILTER_STATE(wasm.obguard.client_id:PLAIN)%"),
    ("route", "%FILTER_STATE(wasm.obguard.route:PLAIN)%"),
    ("ratelimit", "%FILTER_STATE(wasm.obguard.ratelimit:PLAIN)%"),
    ("verdict", "%FILTER_STATE(wasm.obguard.verdict:PLAIN)%"),
    ("score", "%FILTER_STATE(wasm.obguard.score:PLAIN)%"),
    ("reasons", "%FILTER_STATE(wasm.obguard.reasons:PLAIN)%"),
    ("model", "%FILTER_STATE(wasm.obguard.model:PLAIN)%"),
    ("consent", "%FILTER_STATE(wasm.obguard.consent:PLAIN)%"),
    ("intel", "%FILTER_STATE(wasm.obguard.intel:PLAIN)%"),
    (
        "sender_constraint",
        "%FILTER_STATE(wasm.obguard.sender_constraint:PLAIN)%",
    ),
    // `access_log.format: json`: every field in one object.
    ("log", "%FILTER_STATE(wasm.obguard.log:PLAIN)%"),
    (
        "shadow_verdict",
        "%FILTER_STATE(wasm.obguard.shadow_verdict:PLAIN)%",
    ),
    (
        "shadow_score",
        "%FILTER_STATE(wasm.obguard.shadow_score:PLAIN)%",
    ),
    (
        "shadow_model",
        "%FILTER_STATE(wasm.obguard.shadow_model:PLAIN)%",
    ),
    ("response_flags", "%RESPONSE_FLAGS%"),
    ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
    ("duration", "%DURATION%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
];

/// The HTTP filter entry `name` running obguard (`wasm`) with plugin configuration `plugin`
/// (VM id `obguard`, V8, `fail_open: false`), as the bootstrap inserts it. Several entries
/// with different names and configurations share one VM per worker.
pub fn obguard_filter(name: &str, plugin: &Value, wasm: &Path) -> Value {
    json!({
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "obguard",
                "root_id": "obguard",
                "vm_config": {
                    "vm_id": "obguard",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm.to_string_lossy()}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin.to_string(),
                },
                "fail_open": false,
            },
        },
    })
}

/// The bootstrap for `opts`, with the file access log at `access_log` and, when
/// `opts.plugin_config` is set, the wasm module at `wasm`.
///
/// Layout: admin and one listener on `127.0.0.1:0`; the listener's HTTP connection manager runs
/// `opts.extra_http_filters`, then obguard (if configured), then the router; every path (`prefix:
/// "/"`) goes to cluster `upstream` = `127.0.0.1:opts.upstream_port` (HTTP/1.1, connect timeout
/// 1 s), plus `opts.extra_clusters`; with `opts.exact_balance` the listener balances connections
/// exactly over the workers. Finally `opts.customize` may edit the result.
pub fn bootstrap(opts: &EnvoyOptions, wasm: &Path, access_log: &Path) -> Value {
    let mut http_filters: Vec<Value> = opts.extra_http_filters.clone();
    if let Some(plugin) = &opts.plugin_config {
        http_filters.push(obguard_filter("envoy.filters.http.wasm", plugin, wasm));
    }
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }));

    let json_format: serde_json::Map<String, Value> = ACCESS_LOG_FIELDS
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::String((*v).to_string())))
        .collect();

    // Path handling. With `normalize_paths` Envoy resolves `.`/`..` segments (RFC 3986) and
    // merges slashes before any filter runs, so obguard's route matching sees the same path the
    // upstream will. Escaped slashes (`%2F`, `%5C`) are REJECTED (400) rather than unescaped
    // and redirected: UNESCAPE_AND_REDIRECT would hand the client a 307 to a path that filter
    // and upstream might still read differently, and REJECT_REQUEST gives tests a definite
    // outcome. Without `normalize_paths` everything is KEEP_UNCHANGED, so tests can check what
    // obguard itself does with a raw `..` or `%2F`.
    let (normalize, merge, escaped) = if opts.normalize_paths {
        (true, true, "REJECT_REQUEST")
    } else {
        (false, false, "KEEP_UNCHANGED")
    };

    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress_http",
        "codec_type": "AUTO",
        "normalize_path": normalize,
        "merge_slashes": merge,
        "path_with_escaped_slashes_action": escaped,
        "access_log": [{
            "name": "envoy.access_loggers.file",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "path": access_log.to_string_lossy(),
                "log_format": {"json_format": json_format},
            },
        }],
        "route_config": {
            "name": "local",
            "virtual_hosts": [{
                "name": "all",
                "domains": ["*"],
                "routes": [{
                    "match": {"prefix": "/"},
                    "route": {"cluster": "upstream", "timeout": "15s"},
                }],
            }],
        },
        "http_filters": http_filters,
    });
    if let (Some(hcm), Value::Object(extra)) = (hcm.as_object_mut(), &opts.hcm_overrides) {
        for (k, v) in extra {
            hcm.insert(k.clone(), v.clone());
        }
    }

    let mut clusters = vec![json!({
        "name": "upstream",
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": "upstream",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": "127.0.0.1",
                "port_value": opts.upstream_port,
            }}}}]}],
        },
    })];
    clusters.extend(opts.extra_clusters.iter().cloned());

    let mut listener = json!({
        "name": "obguard_listener",
        // Stats as `listener.obguard_listener.*` rather than under the configured address
        // (`127.0.0.1_0`, which other listeners on port 0 would share).
        "stat_prefix": "obguard_listener",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm,
        }]}],
    });
    if opts.exact_balance {
        listener["connection_balance_config"] = json!({"exact_balance": {}});
    }
    if let Some(tls) = &opts.downstream_tls {
        listener["filter_chains"][0]["transport_socket"] = tls.clone();
    }
    let mut listeners = vec![listener];
    listeners.extend(opts.extra_listeners.iter().cloned());
    let mut bootstrap = json!({
        "node": {"id": "obguard-test", "cluster": "obguard-test"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": listeners,
            "clusters": clusters,
        },
    });
    if let Some(customize) = opts.customize {
        customize(&mut bootstrap);
    }
    bootstrap
}
