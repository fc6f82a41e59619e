//! Envoy's rate-limit service API (`envoy.service.ratelimit.v3.RateLimitService`) as prost
//! messages, generated at build time from the protos in `proto/` (see `proto/README.md` for
//! where they come from). Used by the filter (client side, wasm32) and by the integration
//! tests' rate-limit service (server side, native).
//!
//! The module tree mirrors the protobuf packages, e.g.
//! [`envoy::service::ratelimit::v3::RateLimitRequest`].

#![allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]

include!(concat!(env!("OUT_DIR"), "/envoy_protos.rs"));

/// The gRPC service and method names of `ShouldRateLimit`.
pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
pub const METHOD: &str = "ShouldRateLimit";
