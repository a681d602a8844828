//! # crius-proto — the CRI v1 wire contract
//!
//! Kubelet speaks CRI `runtime.v1` over gRPC. This crate compiles the pinned, unmodified
//! `api.proto` (release and licence in `proto/runtime/v1/VERSION.md`) with tonic/prost and
//! re-exports what the other crates need:
//!
//! - [`runtime`]: every message plus `runtime_service_{client,server}` and
//!   `image_service_{client,server}`.
//! - [`tonic`], [`prost`], [`prost_types`]: the exact versions the generated code was built with,
//!   so callers never mix two tonic versions.
//! - [`FILE_DESCRIPTOR_SET`]: the compiled `api.proto` as an encoded `google.protobuf.FileDescriptorSet`,
//!   for reflection (e.g. `prost_reflect::DescriptorPool::decode`), which is how criusctl prints
//!   messages as protojson (`podSandboxId`, enum names) the way crictl does.

/// CRI v1 messages and services (`package runtime.v1`).
pub mod runtime {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("runtime.v1");
}

pub use prost;
pub use prost_types;
pub use tonic;

pub use runtime::image_service_client::ImageServiceClient;
pub use runtime::image_service_server::{ImageService, ImageServiceServer};
pub use runtime::runtime_service_client::RuntimeServiceClient;
pub use runtime::runtime_service_server::{RuntimeService, RuntimeServiceServer};

/// `api.proto` as an encoded `FileDescriptorSet` (package `runtime.v1`; no imports).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/cri_descriptors.bin"));

/// Version string of the CRI API this crate speaks, as `VersionResponse.runtime_api_version` wants.
pub const CRI_API_VERSION: &str = "v1";

/// The cri-api release `api.proto` was taken from.
pub const CRI_API_RELEASE: &str = "v0.36.3";

#[cfg(test)]
mod tests {
    use super::runtime::*;
    use prost::Message;

    #[test]
    fn reads_crictl_style_json() {
        // The shape of crictl's pod config files: snake_case names, absent fields default.
        let json = r#"{"metadata":{"name":"nginx","namespace":"default","uid":"u1","attempt":1},
                       "log_directory":"/tmp/logs","linux":{}}"#;
        let cfg: PodSandboxConfig = serde_json::from_str(json).expect("parse");
        assert_eq!(
            cfg.metadata.as_ref().map(|m| m.name.as_str()),
            Some("nginx")
        );
        assert_eq!(cfg.log_directory, "/tmp/logs");
        assert!(cfg.linux.is_some());
        assert!(cfg.dns_config.is_none());
    }

    #[test]
    fn pod_sandbox_config_round_trips() {
        let cfg = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "web".into(),
                uid: "u1".into(),
                namespace: "default".into(),
                attempt: 2,
            }),
            hostname: "web-0".into(),
            ..Default::default()
        };
        let bytes = cfg.encode_to_vec();
        let back = PodSandboxConfig::decode(bytes.as_slice()).expect("decode");
        assert_eq!(back, cfg);
    }

    #[test]
    fn descriptor_set_has_the_cri_messages() {
        let set =
            prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).expect("decode");
        let file = set
            .file
            .iter()
            .find(|f| f.package() == "runtime.v1")
            .expect("runtime.v1 file");
        assert!(file
            .message_type
            .iter()
            .any(|m| m.name() == "ListContainersResponse"));
    }
}
