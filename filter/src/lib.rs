//! obguard: an Envoy proxy-wasm HTTP filter protecting Open Banking APIs.
//!
//! The crate is split so that every decision is plain Rust, testable natively:
//!
//! * [`config`]    — the plugin configuration: parsed, validated and compiled once at load.
//! * [`identify`]  — who is calling: bearer-token extraction, JOSE header checks, signature
//!   verification against the issuer's keys, claim checks and the verified-token cache.
//! * [`authorise`] — may they call this: path safety, route matching, required scopes.
//! * [`enforce`]   — what the caller and the upstream see: RFC 6750 error replies, the
//!   `x-fapi-interaction-id`, identity headers for the upstream.
//! * [`assess`]    — verdict and risk band of an authenticated request (a placeholder until
//!   the behavioural model lands).
//! * [`ratelimit`] — asking Envoy's rate-limit service and obeying its answer.
//! * [`pipeline`]  — the per-request decision tying the stages together.
//! * [`telemetry`] — outcome and reason names shared by metrics and access logs.
//! * `adapter`     — the only module that touches proxy-wasm (compiled for wasm32 only).

pub mod assess;
pub mod authorise;
pub mod config;
pub mod enforce;
pub mod identify;
pub mod pipeline;
pub mod ratelimit;
pub mod telemetry;

#[cfg(target_arch = "wasm32")]
mod adapter;
