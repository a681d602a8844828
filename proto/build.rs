//! Compiles the pinned CRI v1 `api.proto` (see `proto/runtime/v1/VERSION.md`).
//!
//! protoc comes from the `protoc-bin-vendored` crate: the api.proto of current cri-api releases uses
//! the `debug_redact` field option, which Debian 12's protoc (3.21) rejects, and a crate keeps the
//! fresh-machine set-up to crates alone. `PROTOC` in the environment overrides it.

/// File name of the encoded `FileDescriptorSet` in OUT_DIR (`crius_proto::FILE_DESCRIPTOR_SET`).
const DESCRIPTORS: &str = "cri_descriptors.bin";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/runtime/v1/api.proto";
    println!("cargo:rerun-if-changed={proto}");
    println!("cargo:rerun-if-env-changed=PROTOC");
    if std::env::var_os("PROTOC").is_none() {
        // tonic-prost-build reads protoc's path from the PROTOC variable.
        std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // serde on every message, field names as in the proto (snake_case): the JSON of crictl's
        // config files (PodSandboxConfig, ContainerConfig). Missing fields take their protobuf
        // defaults. (criusctl's `-o json` is protojson, from the descriptors below.)
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .message_attribute(".", "#[serde(default)]")
        // The descriptors too, for reflection: criusctl prints messages as protojson from them.
        .file_descriptor_set_path(
            std::path::Path::new(&std::env::var("OUT_DIR")?).join(DESCRIPTORS),
        )
        .compile_protos(&[proto], &["proto"])?;
    Ok(())
}
