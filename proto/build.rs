//! Compiles the pinned CRI v1 `api.proto` (see `proto/runtime/v1/VERSION.md`).
//!
//! protoc comes from the `protoc-bin-vendored` crate: the api.proto of current cri-api releases uses
//! the `debug_redact` field option, which Debian 12's protoc (3.21) rejects, and a crate keeps the
//! fresh-machine set-up to crates alone. `PROTOC` in the environment overrides it.

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
        // serde on every message, field names as in the proto (snake_case): the JSON that crictl's
        // config files (PodSandboxConfig, ContainerConfig) and `-o json` use, so criusctl reads and
        // writes the same files. Missing fields take their protobuf defaults.
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .message_attribute(".", "#[serde(default)]")
        .compile_protos(&[proto], &["proto"])?;
    Ok(())
}
