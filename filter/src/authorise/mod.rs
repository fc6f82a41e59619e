//! Authorise: may this caller make this call. Path safety (stage 1 of [`crate::pipeline`]),
//! route matching against the configured templates (stage 2), and the route's required
//! scopes (stage 4).

pub mod config;
pub mod method_override;
pub mod path;
pub mod routes;
pub mod scopes;
