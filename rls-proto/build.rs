//! Generates the rate-limit service messages from the pinned Envoy protos in `proto/` with
//! protox (a pure-Rust protobuf compiler, so no `protoc` is needed) and prost-build.

use std::error::Error;

const ROOTS: [&str; 2] = [
    "envoy/service/ratelimit/v3/rls.proto",
    // `GrpcService` names the cluster in `proxy_grpc_call` unambiguously (a bare cluster name
    // is first tried as a serialized GrpcService by Envoy).
    "envoy/config/core/v3/grpc_service.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    let files = protox::compile(ROOTS, ["proto"])?;
    prost_build::Config::new()
        .include_file("envoy_protos.rs")
        .compile_fds(files)?;
    Ok(())
}
