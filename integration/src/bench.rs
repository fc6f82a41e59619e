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

/// The benchmark bootstrap: a listener per variant on `127.0.0.1:0`, admin on `127.0.0.1:0`.
pub fn bootstrap(variants: &[Variant]) -> Value {
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
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners}
    })
}
