//! Stage 2, authorise: may this caller make this call. Path safety, route matching against
//! the configured templates, and the route's required scopes.

pub mod config;
pub mod method_override;
pub mod path;
pub mod routes;
pub mod scopes;
