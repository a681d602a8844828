//! # crius-cri-front
//!
//! `criusd`, the CRI v1 server, and (issue 7) `criusctl`. criusd serves
//! `runtime.v1` RuntimeService and ImageService on a unix socket, keeps everything in
//! containerd namespace `crius`, hands pods to [`crius_sandboxer::Sandboxer`] and runs
//! containers with the crius shim (`io.containerd.crius.v2`, or whatever the
//! runtime handler map says).
//!
//! ## Face to the other crates
//! - containerd labels on containers criusd creates: `io.crius.sandbox-id=<pod id>`,
//!   `io.crius.kind=container`, plus `io.crius.container.name` (CRI metadata name).
//! - Spec annotations: `io.kubernetes.cri.container-type=container`,
//!   `io.kubernetes.cri.sandbox-id`, and the twins `io.crius.container-type`,
//!   `io.crius.sandbox-id` (the shim groups a pod's containers into one shim with them),
//!   plus `io.kubernetes.cri.container-name`, `io.kubernetes.cri.image-name`.
//! - Container stdout/stderr: the task's stdio is a `binary://<crius-logger>?...` URI;
//!   the shim starts `crius-logger` with the pipes on fds 3 and 4 and a ready pipe on
//!   fd 5 (containerd's logging-binary protocol); the logger writes the CRI log file.
//! - Image records: containerd images in namespace `crius`, named like containerd's
//!   CRI plugin names them, labelled `io.crius.image.{id,size,user}`.
//! - Container records: `<state_dir>/containers/<id>/container.json`.

pub mod config;
pub mod container;
pub mod ctrd;
pub mod daemon;
pub mod error;
pub mod image;
pub mod logfmt;
pub mod pod;
pub mod runtime;
pub mod server;
pub mod streaming;
pub mod streaming_hook;
pub mod sys;
