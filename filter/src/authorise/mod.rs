//! Authorise: may this caller make this call. Path safety (stage 1 of [`crate::pipeline`]),
//! route matching against the configured templates (stage 2), and the route's required
//! scopes (stage 4), the FAPI headers (stage 2) and the consent behind the call (stage 5).

pub mod config;
pub mod consent;
pub mod fapi;
pub mod method_override;
pub mod path;
pub mod routes;
pub mod scopes;
