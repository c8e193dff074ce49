//! Compiles `proto/` with protox (pure Rust, no system protoc) and writes the
//! descriptor set used for gRPC reflection.

use std::path::PathBuf;

use prost::Message;

fn main() {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "quiver/common/v1/common.proto",
        "quiver/tracking/v1/tracking.proto",
        "quiver/artifacts/v1/artifacts.proto",
        "quiver/registry/v1/registry.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }
    let fds = protox::compile(files, [&proto_root]).expect("protos compile");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR set"));
    std::fs::write(out_dir.join("quiver_descriptor.bin"), fds.encode_to_vec())
        .expect("descriptor set written");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .bytes(".")
        .compile_fds(fds)
        .expect("code generated");
}
