//! Compiles the contracts in `proto/` with protox (pure Rust, so no `protoc` is needed)
//! and writes the descriptor set that gRPC server reflection serves.

use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = ["identity/auth/v1/auth.proto", "identity/user/v1/user.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let fds = protox::compile(files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("identity_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Unimplemented RPCs answer UNIMPLEMENTED, so a test double (the bench's
        // echo server) implements only what it needs.
        .generate_default_stubs(true)
        .compile_fds(fds)?;
    Ok(())
}
