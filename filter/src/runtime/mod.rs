//! The filter's event handlers, written against [`crate::host::Host`] instead of the
//! proxy-wasm ABI: what obguard does when the plugin is configured, when its timer fires,
//! when a callout answers, and at each phase of a request. The adapter only turns ABI
//! exports into these calls, so everything here runs natively too, against the in-memory
//! host in `obguard-testkit`.
//!
//! * [`plugin`]  — the root context: configuration, timer, callout routing.
//! * [`stream`]  — one request: decide, apply, ask the rate-limit service, observe the response.
//! * [`jwks_fetch`], [`model_poll`] — the remote key and model-file callouts.
//! * [`ratelimit_call`] — the rate-limit service callout.
//! * [`consent_fetch`] — the consent-service callout of a consent-bound request.
//! * [`respond`] — playbooks and security events after a decision; the containment list's
//!   reload and the event POSTs on the timer.
//! * [`metrics`], [`shared_baselines`], [`host_crypto`], [`jwt_authn`] — host-backed
//!   counters, baseline storage, signature checks and delegated payloads.

pub mod consent_fetch;
pub mod host_crypto;
pub mod intel_feeds;
pub mod jwks_fetch;
pub mod jwt_authn;
pub mod list_poll;
mod log_fields;
pub mod metrics;
pub mod model_poll;
pub mod plugin;
pub mod ratelimit_call;
pub mod respond;
pub mod shared_baselines;
pub mod stream;

pub use plugin::Plugin;
pub use stream::Stream;

/// What a request phase tells the host: go on, or hold the request (a local reply was sent,
/// or a callout is in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}
