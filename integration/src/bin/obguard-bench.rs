//! `make bench`, macro level: obguard inside Envoy against bare Envoy, a no-op wasm filter, the
//! floor probe and Envoy's own filters, every listener sent the same request. The measuring,
//! the report and the chart live in `obguard_integration::bench`.

use clap::Parser as _;

fn main() {
    obguard_integration::bench::main(&obguard_integration::bench::Options::parse());
}
