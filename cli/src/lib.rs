//! obguard's operator CLI as a library: the `obguard` binary (`src/main.rs`) parses the
//! command line and calls into these modules, which the tests use directly too.
//!
//! - [`lint`]: `obguard lint`, an OpenAPI description checked against the plugin
//!   configuration (docs/lint.md).
//! - [`check`]: `obguard check-config`, the filter's loader run on every obguard configuration
//!   in a plugin config, WasmPlugin or Envoy file.
//! - [`schema`]: `obguard schema`, the plugin configuration's JSON Schema.
//! - [`oci`]: `obguard oci`, the module as an OCI image for Istio's `WasmPlugin`.

pub mod check;
pub mod lint;
pub mod oci;
pub mod schema;
