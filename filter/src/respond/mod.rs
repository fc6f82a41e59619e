//! Automated response: what obguard does about a verdict besides answering the request.
//!
//! * [`events`] — security events (CloudEvents 1.0) to a webhook: what is sent, the bounded
//!   per-worker queue, batching and back-off;
//! * [`containment`] — quarantined clients and revoked tokens shared by every worker, added
//!   by playbooks or read from an external list, checked after the token is verified.
//!
//! Pure like the stages: the runtime calls these with shared data behind a
//! [`crate::assess::baselines::BaselineStore`] and sends what they build.

pub mod config;
pub mod containment;
pub mod events;
