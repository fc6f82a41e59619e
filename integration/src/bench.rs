//! The macro benchmark's Envoy: one process, one listener per variant, so every variant is
//! measured against the same Envoy in the same run. Every listener answers with a
//! `direct_response`, so no upstream sits in the measurement; the HTTP filters still run.

use serde_json::{Value, json};

use obguard_testkit::{self as kit, Key};

/// What a variant's requests carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    None,
    Rs256,
    Es256,
}

/// One listener of the benchmark Envoy.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: &'static str,
    pub description: &'static str,
    pub token: TokenKind,
    /// HTTP filters before the router.
    filters: Vec<Value>,
}

/// Claims valid for the whole benchmark run (under the test issuer's 3600 s lifetime cap).
pub fn bench_claims() -> Value {
    let now = kit::now();
    let mut claims = kit::claims("tpp-bench", "accounts");
    claims["iat"] = json!(now);
    claims["nbf"] = json!(now);
    claims["exp"] = json!(now + 3500);
    claims
}

pub fn token(kind: TokenKind) -> Option<String> {
    match kind {
        TokenKind::None => None,
        TokenKind::Rs256 => Some(kit::token("RS256", Key::Rsa1, &bench_claims())),
        TokenKind::Es256 => Some(kit::token("ES256", Key::P256, &bench_claims())),
    }
}

fn wasm_filter(name: &str, vm_id: &str, wasm: &str, config: Option<Value>) -> Value {
    let mut plugin = json!({
        "name": name,
        "root_id": vm_id,
        "fail_open": false,
        "vm_config": {
            "vm_id": vm_id,
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": wasm}}
        }
    });
    if let Some(config) = config {
        plugin["configuration"] = json!({
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": config.to_string()
        });
    }
    json!({
        "name": format!("wasm-{name}"),
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": plugin
        }
    })
}

fn jwt_authn(cache: bool, payload_in_metadata: bool) -> Value {
    let mut provider = json!({
        "issuer": kit::ISSUER,
        "audiences": [kit::AUDIENCE],
        "local_jwks": {"inline_string": kit::jwks().to_string()},
        "forward": true
    });
    if cache {
        provider["jwt_cache_config"] = json!({"jwt_cache_size": 1000});
    }
    if payload_in_metadata {
        provider["payload_in_metadata"] = json!("jwt_payload");
    }
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"bank": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bank"}}]
        }
    })
}

fn obguard_config(cache_entries: usize, host_crypto: bool, delegated: bool) -> Value {
    let mut config = kit::plugin_config();
    config["cache"]["max_entries"] = json!(cache_entries);
    config["issuers"][0]["host_crypto"] = json!(host_crypto);
    if delegated {
        let issuer = &mut config["issuers"][0];
        if let Some(issuer) = issuer.as_object_mut() {
            issuer.remove("jwks");
            issuer.remove("require_typ");
            issuer.insert("algorithms".into(), json!([]));
            issuer.insert(
                "jwt_authn".into(),
                json!({"payload_in_metadata": "jwt_payload"}),
            );
        }
    }
    config
}

/// The shipped model (signed with the demo key) as the `model` section: scores every request.
/// `mode: shadow` does all the work (features, baseline in shared data, score, verdict, log
/// fields) but allows: one client at thousands of requests per second is, rightly, not
/// something the enforcing model lets through.
fn with_shipped_model(mut config: Value) -> Value {
    let root = crate::workspace_root();
    let model =
        std::fs::read(root.join("models/shipped/obguard-default.model")).unwrap_or_default();
    let key = std::fs::read_to_string(root.join("envoy/demo/keys/DEMO-ONLY-model-signing.pub"))
        .unwrap_or_default();
    use base64::Engine as _;
    config["model"] = json!({
        "inline_base64": base64::engine::general_purpose::STANDARD.encode(model),
        "trusted_keys": [key.trim()],
        "mode": "shadow",
        // Sized for the memory run's 100 000 clients (4x: ~2% without a slot).
        "max_clients": 400_000,
    });
    config
}

/// A `ratelimit` section asking the `ratelimit` cluster (the in-process test service).
fn with_ratelimit(mut config: Value, call: &str) -> Value {
    config["ratelimit"] = json!({
        "cluster": RATELIMIT_CLUSTER,
        "domain": "bench",
        "call": call,
        "timeout_ms": 100,
        "descriptors": [{"entries": [{"key": "client", "from": "client_id"}]}],
    });
    config
}

/// Cluster name of the rate-limit service the `*_rls_*` variants call.
pub const RATELIMIT_CLUSTER: &str = "ratelimit";

/// Whether any variant needs the rate-limit service (see [`bootstrap`]).
pub fn needs_ratelimit(variants: &[Variant]) -> bool {
    variants.iter().any(|v| v.name.contains("_rls_"))
}

/// Every variant, bare Envoy first (the baseline every ratio is taken against).
pub fn variants(obguard_wasm: &str, noop_wasm: &str) -> Vec<Variant> {
    let obguard =
        |name: &str, config: Value| wasm_filter(name, "obguard", obguard_wasm, Some(config));
    vec![
        Variant {
            name: "bare",
            description: "Envoy direct_response, no HTTP filter",
            token: TokenKind::None,
            filters: vec![],
        },
        Variant {
            name: "noop_wasm",
            description: "a proxy-wasm filter that does nothing (the floor of any wasm filter)",
            token: TokenKind::None,
            filters: vec![wasm_filter("noop", "noop", noop_wasm, None)],
        },
        Variant {
            name: "jwt_authn_cached",
            description: "Envoy's native jwt_authn, RS256, jwt_cache_config on, same token",
            token: TokenKind::Rs256,
            filters: vec![jwt_authn(true, false)],
        },
        Variant {
            name: "jwt_authn_uncached",
            description: "Envoy's native jwt_authn, RS256, verifying every request",
            token: TokenKind::Rs256,
            filters: vec![jwt_authn(false, false)],
        },
        Variant {
            name: "obguard_warm",
            description: "obguard, repeated valid RS256 token (cache hit), route + scopes + headers",
            token: TokenKind::Rs256,
            filters: vec![obguard("warm", obguard_config(10_000, true, false))],
        },
        Variant {
            name: "obguard_warm_model",
            description: "obguard_warm + the shipped model (shadow mode): features, baseline in shared data, score, verdict",
            token: TokenKind::Rs256,
            filters: vec![obguard(
                "warm-model",
                with_shipped_model(obguard_config(10_000, true, false)),
            )],
        },
        Variant {
            name: "obguard_rls_every_request",
            description: "obguard_warm_model + a rate-limit service call (gRPC) on every request",
            token: TokenKind::Rs256,
            filters: vec![obguard(
                "rls-always",
                with_ratelimit(
                    with_shipped_model(obguard_config(10_000, true, false)),
                    "always",
                ),
            )],
        },
        Variant {
            name: "obguard_rls_non_allow",
            description: "obguard_warm_model + rate-limit calls on non-allow verdicts only (none here)",
            token: TokenKind::Rs256,
            filters: vec![obguard(
                "rls-non-allow",
                with_ratelimit(
                    with_shipped_model(obguard_config(10_000, true, false)),
                    "non_allow",
                ),
            )],
        },
        Variant {
            name: "obguard_cold_rs256",
            description: "obguard, RS256 verified every request (cache off) via Envoy's verify_signature",
            token: TokenKind::Rs256,
            filters: vec![obguard("cold-rs", obguard_config(0, true, false))],
        },
        Variant {
            name: "obguard_cold_es256",
            description: "obguard, ES256 verified every request (cache off) via Envoy's verify_signature",
            token: TokenKind::Es256,
            filters: vec![obguard("cold-es", obguard_config(0, true, false))],
        },
        Variant {
            name: "obguard_cold_rs256_jwt_simple",
            description: "obguard, RS256 verified every request inside the VM (jwt-simple, host_crypto off)",
            token: TokenKind::Rs256,
            filters: vec![obguard("cold-rs-wasm", obguard_config(0, false, false))],
        },
        Variant {
            name: "jwt_authn_plus_obguard_delegated",
            description: "jwt_authn (RS256, every request) then obguard reading its payload (delegation mode)",
            token: TokenKind::Rs256,
            filters: vec![
                jwt_authn(false, true),
                obguard("delegated", obguard_config(0, true, true)),
            ],
        },
    ]
}

/// The benchmark bootstrap: a listener per variant on `127.0.0.1:0`, admin on `127.0.0.1:0`,
/// and the `ratelimit` cluster when a rate-limit service listens on `ratelimit_port`.
pub fn bootstrap(variants: &[Variant], ratelimit_port: Option<u16>) -> Value {
    let listeners: Vec<Value> = variants
        .iter()
        .map(|variant| {
            let mut filters = variant.filters.clone();
            filters.push(json!({
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
            }));
            json!({
                "name": variant.name,
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": variant.name,
                        "normalize_path": true,
                        "merge_slashes": true,
                        "path_with_escaped_slashes_action": "REJECT_REQUEST",
                        "route_config": {"virtual_hosts": [{
                            "name": "all",
                            "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]
                        }]},
                        "http_filters": filters
                    }
                }]}]
            })
        })
        .collect();
    let clusters: Vec<Value> = ratelimit_port
        .map(|port| crate::grpc_cluster(RATELIMIT_CLUSTER, port))
        .into_iter()
        .collect();
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners, "clusters": clusters}
    })
}
