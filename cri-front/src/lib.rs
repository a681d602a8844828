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
//! - Container stdout/stderr: `crius-logger` writes the CRI log file. Default (`log_mode =
//!   "fifo"`): the task's stdio are fifos under `<run_dir>/io/<id>/` that criusd's detached
//!   logger reads (any shim works). `log_mode = "binary"`: the task's stdio is a
//!   `binary://<crius-logger>?path=..&pidfile=..&max-line=..` URI and the shim starts the
//!   logger (containerd's logging-binary protocol: fds 3, 4, ready pipe on 5).
//! - Containers created with `stdin`: `<run_dir>/io/<id>/stdin`, held open by criusd and
//!   the logger.
//! - Streaming: [`streaming_hook::Streaming`] is what the RuntimeService calls for
//!   Exec/Attach/PortForward; criusd installs the [`streaming`] server there, with
//!   [`container::stream_rt::ContainerStreams`] as its runtime.
//! - Image records: containerd images in namespace `crius`, named like containerd's
//!   CRI plugin names them, labelled `io.crius.image.{id,size,user}`.
//! - Container records: `<state_dir>/containers/<id>/container.json`.

pub mod cdi;
pub mod config;
pub mod container;
pub mod daemon;
pub mod error;
pub mod handler;
pub mod host_devices;
pub mod image;
pub mod logfmt;
pub mod metrics;
pub mod pod;
pub mod rpc;
pub mod runc_features;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod streaming;
pub mod streaming_hook;
pub mod sys;
pub mod uds_authority;
pub mod util;
pub mod validate;
