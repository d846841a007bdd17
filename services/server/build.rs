//! Compiles the gRPC contract (`proto/treatment/protocol/v1/protocol.proto`) with protox, a
//! pure-Rust protobuf compiler, so that a fresh machine needs no system `protoc`. The generated
//! code (messages, server and client) lands in `OUT_DIR`, together with the encoded file
//! descriptor set that the reflection service serves (so `grpcurl` works without the proto file),
//! and the descriptor set of google.rpc's error details (`proto/google/rpc/error_details.proto`,
//! vendored), so reflection clients decode the details of every error status too.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let file = root.join("treatment/protocol/v1/protocol.proto");
    println!("cargo:rerun-if-changed={}", root.display());

    let fds = protox::compile([&file], [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("protocol_descriptor.bin"), fds.encode_to_vec())?;

    // google.rpc's error details (a copy of googleapis' file, as tonic-types ships it), with the
    // files it imports, for the reflection service only: the messages themselves are
    // tonic-types'. So grpcurl and buf curl print a status's details decoded.
    let vendored = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    println!("cargo:rerun-if-changed={}", vendored.display());
    let details = protox::compile(["google/rpc/error_details.proto"], [&vendored])?;
    std::fs::write(
        out.join("error_details_descriptor.bin"),
        details.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // prost's codec, but a malformed request is INVALID_ARGUMENT (src/grpc/codec.rs).
        .codec_path("crate::grpc::codec::StrictCodec")
        .compile_fds_with_config(fds, prost_config())?;
    Ok(())
}

/// prost's settings: `prost::Name` for every message, so the codec finds a request's descriptor
/// by its name (src/grpc/singular_fields.rs).
fn prost_config() -> tonic_prost_build::Config {
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    config
}
