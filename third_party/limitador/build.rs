use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    generate_protobuf()
}

// obguard: tonic-build is only a build-dependency with `distributed_storage` (see
// third_party/README.md), so the code that calls it is only compiled then.
#[cfg(not(feature = "distributed_storage"))]
fn generate_protobuf() -> Result<(), Box<dyn Error>> {
    Ok(())
}

#[cfg(feature = "distributed_storage")]
fn generate_protobuf() -> Result<(), Box<dyn Error>> {
    if cfg!(feature = "distributed_storage") {
        let proto_path: &std::path::Path = "proto/distributed.proto".as_ref();

        let proto_dir = proto_path
            .parent()
            .expect("proto file should reside in a directory");

        tonic_build::configure()
            .protoc_arg("--experimental_allow_proto3_optional")
            .compile_protos(&[proto_path], &[proto_dir])?;
    }

    Ok(())
}
