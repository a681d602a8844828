//! The values the verbs take and give: containerd's messages reduced to what crius reads.

use std::collections::HashMap;
use std::pin::Pin;

pub use containerd_client::types::{Descriptor, Mount};
use futures::Stream;

use crate::error::Result;

/// `Any` type URL of an OCI runtime spec, as containerd registers it.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// `Any` type URL of an OCI process (an exec's spec).
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/// `Any` type URL of OCI Linux resources (a task update).
pub const RESOURCES_TYPE_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// A container record to create. The snapshot (if `snapshot_key` is set) is in the client's
/// snapshotter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewContainer {
    pub id: String,
    /// Runtime (shim) name, e.g. `io.containerd.crius.v2`.
    pub runtime: String,
    /// The OCI spec, JSON.
    pub spec: Vec<u8>,
    pub labels: HashMap<String, String>,
    /// Image name recorded on the container ("" for none).
    pub image: String,
    /// Snapshot holding the rootfs ("" when the spec names its rootfs directory).
    pub snapshot_key: String,
    /// The OCI runtime binary the shim runs instead of its default (runc): containerd's runc
    /// option `BinaryName`, e.g. `crun`; "" for the default.
    pub runtime_binary: String,
}

/// A container record as containerd holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    pub labels: HashMap<String, String>,
    pub image: String,
    pub runtime: String,
    /// The OCI spec, JSON (empty if the record has none).
    pub spec: Vec<u8>,
    pub snapshot_key: String,
    /// The runc option `BinaryName` the record carries ("" for none).
    pub runtime_binary: String,
}

/// A process's state, as containerd's `types.v1.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskStatus {
    #[default]
    Unknown,
    Created,
    Running,
    Stopped,
    Paused,
    Pausing,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: u32,
    /// When, in ns since the epoch; None when containerd gave no (or a zero) time.
    pub at_ns: Option<i64>,
}

/// A task (a container's init process) as containerd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub id: String,
    pub pid: u32,
    pub status: TaskStatus,
    /// Set once the process has exited.
    pub exit: Option<Exit>,
}

impl TaskInfo {
    /// Created, running or paused: has a process.
    pub fn is_live(&self) -> bool {
        matches!(
            self.status,
            TaskStatus::Created | TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing
        )
    }

    /// Created but never started (its process waits in the runtime's init).
    pub fn created_only(&self) -> bool {
        self.status == TaskStatus::Created
    }
}

/// A process's stdio: paths (fifos or `binary://` URIs) the shim opens; "" for none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stdio {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    /// With a terminal the shim keeps the pty master and all output is on stdout.
    pub terminal: bool,
}

/// A task to create for a container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewTask {
    pub container_id: String,
    /// The rootfs mounts (a snapshot's), or none when the spec names its rootfs.
    pub rootfs: Vec<Mount>,
    pub io: Stdio,
}

/// An extra process in a running task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewExec {
    pub container_id: String,
    pub exec_id: String,
    /// The OCI process, JSON.
    pub process: Vec<u8>,
    pub io: Stdio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotKind {
    #[default]
    Unknown,
    View,
    Active,
    Committed,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: String,
    pub parent: String,
    pub kind: SnapshotKind,
    pub labels: HashMap<String, String>,
}

/// Disk used by a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

/// An image record: a name pointing at a manifest (or index), with labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Image {
    pub name: String,
    pub labels: HashMap<String, String>,
    pub target: Descriptor,
}

/// A task event of the client's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEvent {
    /// A process ended: the init (`id == container_id`) or an exec (`id` is the exec id).
    Exit {
        container_id: String,
        id: String,
        exit: Exit,
    },
    /// The container's cgroup hit its memory limit.
    Oom { container_id: String },
    /// An image record of the namespace was created, updated or deleted (by anyone).
    ImagesChanged,
}

/// Task events as they come; the stream ends (or yields an error) when the subscription breaks.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<TaskEvent>> + Send>>;

/// Bytes to write into the content store.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<bytes::Bytes>> + Send>>;

/// ns since the epoch of a protobuf timestamp; None for none or zero.
pub(crate) fn ts_ns(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds * 1_000_000_000 + t.nanos as i64)
        .filter(|n| *n > 0)
}
