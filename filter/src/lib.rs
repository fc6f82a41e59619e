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
//! * [`intel`]     — threat-intelligence feeds (networks, ASNs, countries): deny before the
//!   token is read, watch to raise the score.
//! * [`assess`]    — the behavioural model stage: features against the caller's baseline,
//!   score, verdict and reasons.
//! * [`ratelimit`] — asking Envoy's rate-limit service and obeying its answer.
//! * [`pipeline`]  — the per-request decision tying the stages together.
//! * [`respond`]   — automated response: security events to a webhook, quarantines and
//!   token revocations (playbooks, external list).
//! * [`polled`]    — lists polled over an Envoy cluster and shared by every worker (feeds,
//!   the external containment list).
//! * [`telemetry`] — outcome and reason names shared by metrics and access logs.
//! * [`host`]      — what obguard needs from its proxy, as a trait whose answers are values.
//! * [`runtime`]   — the event handlers (configure, tick, callouts, request phases) over a
//!   [`host::Host`], natively testable.
//! * `adapter`     — the only module that touches the proxy-wasm ABI (wasm32 only).

pub mod assess;
pub mod authorise;
pub mod config;
pub mod enforce;
pub mod host;
pub mod identify;
pub mod intel;
pub mod pipeline;
pub mod polled;
pub mod ratelimit;
pub mod respond;
pub mod rules;
pub mod runtime;
pub mod telemetry;

#[cfg(target_arch = "wasm32")]
mod adapter;
