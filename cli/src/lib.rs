//! obguard's operator CLI as a library: the `obguard` binary (`src/main.rs`) parses the
//! command line and calls into these modules, which the tests use directly too.
//!
//! - [`lint`]: `obguard lint`, an OpenAPI description checked against the plugin
//!   configuration (docs/lint.md).

pub mod lint;
