//! The proxy-wasm adapter: the only code that talks to Envoy. It reads what the core needs,
//! calls [`crate::pipeline::decide`], and applies the decision. No policy lives here.

mod baselines;
mod host;
mod host_crypto;
mod http;
mod jwks;
mod jwt_authn;
mod metrics;
mod models;
mod ratelimit;
mod root;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::ObguardRoot::default())
    });
}}
