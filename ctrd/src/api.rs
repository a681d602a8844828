//! The verbs, grouped as containerd's services are. [`crate::Containerd`] is all of them; the
//! real client ([`crate::Client`]) and the fake ([`crate::fake::Fake`]) implement each group.
//!
//! Conventions: ids are containerd ids in the client's namespace; snapshots are in the client's
//! snapshotter; `exec: None` names a task's init process. Removals and deletes are idempotent
//! (an absent object is Ok) where the doc says so; every other absence is
//! [`crate::Error::NotFound`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Result;
use crate::types::*;

#[async_trait::async_trait]
pub trait Containers: Send + Sync {
    /// ALREADY_EXISTS when the id is taken.
    async fn create_container(&self, c: NewContainer) -> Result<()>;
    async fn container(&self, id: &str) -> Result<ContainerInfo>;
    /// Containers carrying every one of `labels` (all containers for none).
    async fn containers(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>>;
    /// Replace the container's OCI spec (JSON).
    async fn update_container_spec(&self, id: &str, spec: Vec<u8>) -> Result<()>;
    /// Idempotent.
    async fn delete_container(&self, id: &str) -> Result<()>;
}

#[async_trait::async_trait]
pub trait Tasks: Send + Sync {
    /// Create the container's task (its process waits to be started); returns its pid.
    async fn create_task(&self, t: NewTask) -> Result<u32>;
    /// Start the init (`exec: None`) or an exec'd process; returns its pid.
    async fn start(&self, id: &str, exec: Option<&str>) -> Result<u32>;
    /// The task's init process; None when the container has no task.
    async fn task(&self, id: &str) -> Result<Option<TaskInfo>>;
    /// Every task of the namespace.
    async fn tasks(&self) -> Result<Vec<TaskInfo>>;
    /// Signal a process (with `all`, every process of the task). A process already gone (or
    /// finished) is Ok: waiting tells how it ended.
    async fn kill(&self, id: &str, exec: Option<&str>, signal: u32, all: bool) -> Result<()>;
    /// Until the process exits. NOT_FOUND when there is no such process.
    async fn wait(&self, id: &str, exec: Option<&str>) -> Result<Exit>;
    /// Delete an exited task; its exit, or None when there was no task (idempotent).
    async fn delete_task(&self, id: &str) -> Result<Option<Exit>>;
    /// Add a process to a running task (start it with [`Tasks::start`]).
    async fn exec(&self, e: NewExec) -> Result<()>;
    /// Forget an exec'd process. Idempotent.
    async fn delete_process(&self, id: &str, exec: &str) -> Result<()>;
    /// Close the process's stdin (its EOF).
    async fn close_stdin(&self, id: &str, exec: Option<&str>) -> Result<()>;
    async fn resize_pty(&self, id: &str, exec: Option<&str>, width: u32, height: u32)
        -> Result<()>;
    /// Change a running task's resources (OCI LinuxResources, JSON).
    async fn update_task_resources(&self, id: &str, resources: Vec<u8>) -> Result<()>;
}

#[async_trait::async_trait]
pub trait Snapshots: Send + Sync {
    /// An active (writable) snapshot `key` on `parent` ("" for none); its mounts.
    async fn prepare_snapshot(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>>;
    /// A read-only view `key` of `parent`; its mounts.
    async fn view_snapshot(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>>;
    async fn snapshot_mounts(&self, key: &str) -> Result<Vec<Mount>>;
    /// Commit active snapshot `key` as `name` (ALREADY_EXISTS when `name` is taken).
    async fn commit_snapshot(&self, name: &str, key: &str) -> Result<()>;
    /// None when there is no such snapshot.
    async fn snapshot(&self, key: &str) -> Result<Option<SnapshotInfo>>;
    /// Snapshots matching containerd filters (all for none).
    async fn snapshots(&self, filters: Vec<String>) -> Result<Vec<SnapshotInfo>>;
    async fn snapshot_usage(&self, key: &str) -> Result<Usage>;
    /// Idempotent.
    async fn remove_snapshot(&self, key: &str) -> Result<()>;
}

#[async_trait::async_trait]
pub trait Images: Send + Sync {
    /// None when there is no such record.
    async fn image(&self, name: &str) -> Result<Option<Image>>;
    async fn images(&self) -> Result<Vec<Image>>;
    /// Create the record, or replace it when the name exists.
    async fn put_image(&self, image: Image) -> Result<()>;
    /// Idempotent; `sync` waits for containerd's GC (content and snapshots go too).
    async fn delete_image(&self, name: &str, sync: bool) -> Result<()>;
}

#[async_trait::async_trait]
pub trait Content: Send + Sync {
    async fn content_exists(&self, digest: &str) -> Result<bool>;
    /// A whole blob (manifests, configs: small).
    async fn read_content(&self, digest: &str) -> Result<Vec<u8>>;
    /// Stream `data` into the store as `digest` (containerd checks digest and size). Returns the
    /// bytes written: 0 when the blob was there already (or a concurrent writer won).
    async fn write_content(
        &self,
        digest: &str,
        size: i64,
        labels: HashMap<String, String>,
        data: ByteStream,
    ) -> Result<u64>;
    /// Set (add or replace) labels on a blob. No labels: nothing is called.
    async fn set_content_labels(&self, digest: &str, labels: HashMap<String, String>)
        -> Result<()>;
    /// Unpack `layer` onto `mounts` (a prepared snapshot's); the uncompressed diff's descriptor.
    async fn apply_diff(&self, layer: Descriptor, mounts: Vec<Mount>) -> Result<Descriptor>;
}

#[async_trait::async_trait]
pub trait Service: Send + Sync {
    fn namespace(&self) -> &str;
    fn snapshotter(&self) -> &str;
    /// containerd's version string.
    async fn version(&self) -> Result<String>;
    /// What the client's snapshotter plugin exports (e.g. `root`).
    async fn snapshotter_exports(&self) -> Result<HashMap<String, String>>;
    /// Create lease `id` (the GC keeps what is made under it until it goes or expires).
    async fn create_lease(&self, id: &str, labels: HashMap<String, String>) -> Result<()>;
    async fn delete_lease(&self, id: &str) -> Result<()>;
    /// This client with every call made under lease `id`.
    fn leased(&self, id: &str) -> Arc<dyn Containerd>;
    /// Exit and OOM events of the namespace's tasks, and changes of its image records, from now on.
    async fn subscribe_task_events(&self) -> Result<EventStream>;
}

/// All of containerd that crius uses.
pub trait Containerd: Containers + Tasks + Snapshots + Images + Content + Service {}

impl<T: Containers + Tasks + Snapshots + Images + Content + Service> Containerd for T {}
