//! The proxy-wasm adapter: the only code that touches the ABI. [`abi`] declares the host
//! functions obguard imports and implements [`crate::host::Host`] over them; [`exports`]
//! declares the functions Envoy calls and forwards each to [`crate::runtime`]. No policy
//! lives here, and nothing here can panic on what the host answers.

mod abi;
mod exports;
