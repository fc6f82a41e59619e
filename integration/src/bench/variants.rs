//! The macro benchmark's Envoy: one process, one listener per variant, so every variant is
//! measured against the same Envoy in the same run. Every listener answers with a
//! `direct_response`, so no upstream sits in the measurement; the HTTP filters still run.
//! Each variant is a named set of HTTP filters; [`variants`] lists them, [`bootstrap`] turns
//! a list into Envoy's bootstrap.

use serde_json::{Value, json};

use obguard_testkit::{self as kit, Key};

use super::request::TokenKind;

/// One listener of the benchmark Envoy.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: &'static str,
    pub description: &'static str,
    /// The token its requests carry (every other byte of the request is the same on every
    /// listener: see [`super::request`]).
    pub token: TokenKind,
    /// The floor variant its throughput is also given as a fraction of (same run, same round).
    pub floor: Option<&'static str>,
    /// Whether its filters refuse a request without the token (the smoke test checks it).
    pub checks_token: bool,
    /// When it calls the rate-limit service.
    pub ratelimit: RateLimitCalls,
    /// HTTP filters before the router.
    filters: Vec<Value>,
    pub answer: Answer,
}

/// Who answers a variant's requests.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The route is a `direct_response` (every variant but two).
    DirectResponse,
    /// The route names a cluster (never connected to) and carries these `rate_limits`; Envoy's
    /// fault filter, after the variant's filters, answers 200 with a local reply. Envoy's
    /// ratelimit filter does nothing on direct-response routes, so `jwt_authn_ratelimit` needs
    /// this; `bare_fault_answer` measures what it costs against `bare`.
    FaultFilter { rate_limits: Value },
}

impl Variant {
    fn new(name: &'static str, description: &'static str, filters: Vec<Value>) -> Variant {
        Variant {
            name,
            description,
            token: TokenKind::Rs256,
            floor: None,
            checks_token: true,
            ratelimit: RateLimitCalls::Never,
            filters,
            answer: Answer::DirectResponse,
        }
    }

    fn token(mut self, token: TokenKind) -> Variant {
        self.token = token;
        self
    }

    fn floor(mut self, floor: &'static str) -> Variant {
        self.floor = Some(floor);
        self
    }

    fn no_token_check(mut self) -> Variant {
        self.checks_token = false;
        self
    }

    fn ratelimit(mut self, calls: RateLimitCalls) -> Variant {
        self.ratelimit = calls;
        self
    }

    /// Answered by the fault filter on a cluster route carrying `rate_limits`.
    fn fault_answer(mut self, rate_limits: Value) -> Variant {
        self.answer = Answer::FaultFilter { rate_limits };
        self
    }
}

/// When a variant calls the rate-limit service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitCalls {
    Never,
    /// Configured to, on non-allow verdicts only (the benchmark's requests are all allowed).
    NonAllowOnly,
    EveryRequest,
}

/// The warm floor (the probe with the host calls of obguard's warm path with the model).
pub const FLOOR: &str = "floor";
/// The floor plus one RS256 `verify_signature` call (no shared data).
pub const FLOOR_VERIFY_RS256: &str = "floor_verify_rs256";
/// The floor plus one ES256 `verify_signature` call (no shared data).
pub const FLOOR_VERIFY_ES256: &str = "floor_verify_es256";
/// A proxy-wasm filter running `wasm` with `config` as its plugin configuration string.
fn wasm_filter(name: &str, vm_id: &str, wasm: &str, config: Option<String>) -> Value {
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
            "value": config
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

/// The model's client slots: sized for the memory run's 100 000 clients (4x: ~2% without a
/// slot).
pub const MAX_CLIENTS: u32 = 400_000;

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
        "max_clients": MAX_CLIENTS,
    });
    config
}

/// The host writes of the floor probe: one filter-state value (`access_log.format: json`) and,
/// with the interaction id, three request headers (client id and verdict; the other identity
/// headers and the claim headers off).
fn lean(mut config: Value) -> Value {
    config["access_log"] = json!({"format": "json"});
    for header in [
        "subject",
        "scopes",
        "route",
        "client_namespace",
        "risk_band",
    ] {
        config["headers"][header] = Value::Null;
    }
    config["headers"]["claims"] = json!([]);
    config
}

/// A `ratelimit` section asking the `ratelimit` cluster (the test service in the bench process).
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
    variants
        .iter()
        .any(|v| v.ratelimit != RateLimitCalls::Never)
}

/// The built wasm modules the variants load.
#[derive(Debug, Clone)]
pub struct Modules {
    pub obguard: String,
    pub noop: String,
    pub floor_probe: String,
}

/// Every variant, bare Envoy first (the baseline every ratio is taken against).
pub fn variants(wasm: &Modules) -> Vec<Variant> {
    let obguard = |name: &str, config: Value| {
        wasm_filter(name, "obguard", &wasm.obguard, Some(config.to_string()))
    };
    let probe = |name: &str, config: &str| {
        wasm_filter(name, "floor", &wasm.floor_probe, Some(config.to_owned()))
    };
    let warm_model = || with_shipped_model(obguard_config(10_000, true, false));
    vec![
        Variant::new("bare", "Envoy direct_response, no HTTP filter", vec![]).no_token_check(),
        Variant::new(
            "bare_fault_answer",
            "no HTTP filter but Envoy's fault filter answering 200 on a cluster route: how jwt_authn_ratelimit is answered (the ratelimit filter skips direct responses)",
            vec![],
        )
        .no_token_check()
        .fault_answer(json!([])),
        Variant::new(
            "noop_wasm",
            "a proxy-wasm filter that does nothing (the floor of any wasm filter)",
            vec![wasm_filter("noop", "noop", &wasm.noop, None)],
        )
        .no_token_check(),
        Variant::new(
            FLOOR,
            "floor probe: the host calls obguard's warm path with the model cannot avoid, no logic (1 header-map read, 1 clock read, shared-data get + CAS set of 200 bytes, 3 request headers, 1 filter-state field, 1 counter, 1 response header)",
            vec![probe("floor", "")],
        )
        .no_token_check(),
        Variant::new(
            FLOOR_VERIFY_RS256,
            "floor probe without shared data, plus Envoy's verify_signature on the RS256 token (the floor of a cold RS256 request)",
            vec![probe(
                "floor-rs",
                &format!("shared_data=off verify=rs256 spki={}", spki_b64(Key::Rsa1)),
            )],
        ),
        Variant::new(
            FLOOR_VERIFY_ES256,
            "floor probe without shared data, plus Envoy's verify_signature on the ES256 token (the floor of a cold ES256 request)",
            vec![probe(
                "floor-es",
                &format!("shared_data=off verify=es256 spki={}", spki_b64(Key::P256)),
            )],
        )
        .token(TokenKind::Es256),
        Variant::new(
            "jwt_authn_cached",
            "Envoy's native jwt_authn, RS256, jwt_cache_config on, same token",
            vec![jwt_authn(true, false)],
        ),
        Variant::new(
            "jwt_authn_uncached",
            "Envoy's native jwt_authn, RS256, verifying every request",
            vec![jwt_authn(false, false)],
        ),
        Variant::new(
            "jwt_authn_ratelimit",
            "jwt_authn_cached + Envoy's ratelimit filter calling the same rate-limit service (gRPC) on every request, descriptor client = the token's client_id; answered by the fault filter (abort 200) on a cluster route, as the ratelimit filter skips direct responses",
            vec![jwt_authn_client_header(), native_ratelimit()],
        )
        .ratelimit(RateLimitCalls::EveryRequest)
        .fault_answer(native_rate_limits()),
        Variant::new(
            "obguard_warm",
            "obguard, repeated valid RS256 token (cache hit), route + scopes + headers",
            vec![obguard("warm", obguard_config(10_000, true, false))],
        )
        .floor(FLOOR),
        Variant::new(
            "obguard_warm_model",
            "obguard_warm + the shipped model (shadow mode): features, baseline in shared data, score, verdict",
            vec![obguard("warm-model", warm_model())],
        )
        .floor(FLOOR),
        Variant::new(
            "obguard_warm_model_lean",
            "obguard_warm_model writing what the floor writes: the access log as one JSON object (`access_log.format: json`) and the client id and verdict as identity headers (the others `null`, no claim headers)",
            vec![obguard("warm-model-lean", lean(warm_model()))],
        )
        .floor(FLOOR),
        Variant::new(
            "obguard_rls_every_request",
            "obguard_warm_model + a rate-limit service call (gRPC) on every request",
            vec![obguard("rls-always", with_ratelimit(warm_model(), "always"))],
        )
        .floor(FLOOR)
        .ratelimit(RateLimitCalls::EveryRequest),
        Variant::new(
            "obguard_rls_non_allow",
            "obguard_warm_model + rate-limit calls on non-allow verdicts only (none here)",
            vec![obguard(
                "rls-non-allow",
                with_ratelimit(warm_model(), "non_allow"),
            )],
        )
        .floor(FLOOR)
        .ratelimit(RateLimitCalls::NonAllowOnly),
        Variant::new(
            "obguard_cold_rs256",
            "obguard, RS256 verified every request (cache off) via Envoy's verify_signature",
            vec![obguard("cold-rs", obguard_config(0, true, false))],
        )
        .floor(FLOOR_VERIFY_RS256),
        Variant::new(
            "obguard_cold_es256",
            "obguard, ES256 verified every request (cache off) via Envoy's verify_signature",
            vec![obguard("cold-es", obguard_config(0, true, false))],
        )
        .token(TokenKind::Es256)
        .floor(FLOOR_VERIFY_ES256),
        Variant::new(
            "obguard_cold_rs256_jwt_simple",
            "obguard, RS256 verified every request inside the VM (jwt-simple, host_crypto off)",
            vec![obguard("cold-rs-wasm", obguard_config(0, false, false))],
        )
        .floor(FLOOR_VERIFY_RS256),
        Variant::new(
            "jwt_authn_plus_obguard_delegated",
            "jwt_authn (RS256, every request) then obguard reading its payload (delegation mode)",
            vec![
                jwt_authn(false, true),
                obguard("delegated", obguard_config(0, true, true)),
            ],
        )
        .floor(FLOOR_VERIFY_RS256),
    ]
}

/// Pairs compared directly, per round: `(variant, reference)`.
pub const PAIRS: [(&str, &str); 6] = [
    ("obguard_warm", "jwt_authn_cached"),
    ("jwt_authn_ratelimit", "jwt_authn_cached"),
    ("obguard_cold_rs256", "jwt_authn_uncached"),
    ("obguard_rls_every_request", "jwt_authn_ratelimit"),
    ("jwt_authn_plus_obguard_delegated", "jwt_authn_uncached"),
    ("floor", "noop_wasm"),
];

/// Base64 SubjectPublicKeyInfo DER of a test key, for the floor probe's `spki=`.
fn spki_b64(key: Key) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let der = match key {
        Key::P256 => {
            use p256::pkcs8::EncodePublicKey as _;
            let jwk = kit::jwk(key);
            let coordinate = |name: &str| {
                URL_SAFE_NO_PAD
                    .decode(jwk[name].as_str().unwrap_or_default())
                    .unwrap_or_default()
            };
            let point = [vec![4u8], coordinate("x"), coordinate("y")].concat();
            p256::PublicKey::from_sec1_bytes(&point)
                .ok()
                .and_then(|k| k.to_public_key_der().ok())
                .map(|d| d.as_bytes().to_vec())
                .unwrap_or_default()
        }
        _ => {
            let pem = kit::rsa_public_pem(key);
            let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            STANDARD.decode(body).unwrap_or_default()
        }
    };
    STANDARD.encode(der)
}

/// jwt_authn (RS256, cache on) copying the token's `client_id` into a request header for the
/// ratelimit filter's descriptor.
fn jwt_authn_client_header() -> Value {
    let mut filter = jwt_authn(true, false);
    filter["typed_config"]["providers"]["bank"]["claim_to_headers"] =
        json!([{"header_name": NATIVE_CLIENT_HEADER, "claim_name": "client_id"}]);
    filter
}

/// The header [`jwt_authn_client_header`] writes and [`native_ratelimit`] reads.
const NATIVE_CLIENT_HEADER: &str = "x-jwt-client-id";

/// Envoy's `envoy.filters.http.ratelimit` asking the `ratelimit` cluster on every request with
/// the descriptor obguard's `*_rls_*` variants send (domain `bench`, `client` = client id, from
/// the route's [`native_rate_limits`]). Failures deny, so a request the service did not answer
/// shows as non-2xx.
fn native_ratelimit() -> Value {
    json!({
        "name": "envoy.filters.http.ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            "domain": "bench",
            "timeout": "0.1s",
            "failure_mode_deny": true,
            "rate_limit_service": {
                "transport_api_version": "V3",
                "grpc_service": {"envoy_grpc": {"cluster_name": RATELIMIT_CLUSTER}}
            }
        }
    })
}

/// The route's rate limits for [`native_ratelimit`]: one descriptor, `client` = the header
/// jwt_authn copied the client id into.
fn native_rate_limits() -> Value {
    json!([{"actions": [{"request_headers": {
        "header_name": NATIVE_CLIENT_HEADER,
        "descriptor_key": "client"
    }}]}])
}

/// The benchmark bootstrap: a listener per variant on `127.0.0.1:0`, admin on `127.0.0.1:0`,
/// and the `ratelimit` cluster when a rate-limit service listens on `ratelimit_port`.
pub fn bootstrap(variants: &[Variant], ratelimit_port: Option<u16>) -> Value {
    let listeners: Vec<Value> = variants
        .iter()
        .map(|variant| {
            let mut filters = variant.filters.clone();
            let route = match &variant.answer {
                Answer::DirectResponse => json!({
                    "match": {"prefix": "/"},
                    "direct_response": {"status": 200, "body": {"inline_string": "ok"}}
                }),
                Answer::FaultFilter { rate_limits } => {
                    filters.push(fault_abort_200());
                    json!({
                        "match": {"prefix": "/"},
                        "route": {"cluster": NEVER_CALLED_CLUSTER, "rate_limits": rate_limits}
                    })
                }
            };
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
                            "routes": [route]
                        }]},
                        "http_filters": filters
                    }
                }]}]
            })
        })
        .collect();
    let mut clusters: Vec<Value> = ratelimit_port
        .map(|port| crate::grpc_cluster(RATELIMIT_CLUSTER, port))
        .into_iter()
        .collect();
    if variants
        .iter()
        .any(|v| matches!(v.answer, Answer::FaultFilter { .. }))
    {
        // Port 9 (discard): nothing listens; the fault filter answers before the router.
        clusters.push(json!({
            "name": NEVER_CALLED_CLUSTER,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {"cluster_name": NEVER_CALLED_CLUSTER, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9}}}}
            ]}]}
        }));
    }
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners, "clusters": clusters}
    })
}

/// The cluster of the routes that carry rate limits; never connected to.
const NEVER_CALLED_CLUSTER: &str = "never_called";

/// Envoy's fault filter answering every request `200` itself (a local reply, like a
/// `direct_response`), for listeners whose route must name a cluster.
fn fault_abort_200() -> Value {
    json!({
        "name": "envoy.filters.http.fault",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
            "abort": {"http_status": 200, "percentage": {"numerator": 100, "denominator": "HUNDRED"}}
        }
    })
}
