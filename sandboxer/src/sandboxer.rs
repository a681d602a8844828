//! The `Sandboxer`: pod lifecycle orchestration over the netns, CNI, pause and
//! store modules.

use crate::config::SandboxerConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::pod::PodConfig;
use crate::status::{NetnsView, NetworkStatus, PodStatus, RecoverReport};

/// Owns all pods of one criusd. Cheap to share behind an `Arc`; every method
/// takes `&self` and is safe to call concurrently.
pub struct Sandboxer {
    cfg: SandboxerConfig,
}

fn todo_step(step: &str) -> Error {
    Error::new(ErrorKind::Unimplemented, step, "not implemented yet")
}

impl Sandboxer {
    /// Prepare directories, install the pause rootfs, read the CNI config and
    /// connect to containerd. Does not touch existing pods: call `recover()`.
    pub async fn new(cfg: SandboxerConfig) -> Result<Self> {
        Ok(Sandboxer { cfg })
    }

    pub fn config(&self) -> &SandboxerConfig {
        &self.cfg
    }

    /// Create and start a pod: netns, then CNI ADD and pause start side by side.
    /// On failure everything made so far is torn down.
    pub async fn run(&self, _config: PodConfig) -> Result<PodStatus> {
        Err(todo_step("run"))
    }

    /// Kill the pod's containers' tasks and the pause (SIGTERM, SIGKILL after
    /// `stop_grace`), CNI DEL. Idempotent; NotFound for an unknown id.
    pub async fn stop(&self, _id: &str) -> Result<()> {
        Err(todo_step("stop"))
    }

    /// Stop if needed, then delete the pod's containerd containers, netns and
    /// files. Idempotent: removing an unknown id is Ok.
    pub async fn remove(&self, _id: &str) -> Result<()> {
        Err(todo_step("remove"))
    }

    pub async fn status(&self, id: &str) -> Result<PodStatus> {
        Err(Error::not_found(id))
    }

    pub async fn list(&self) -> Result<Vec<PodStatus>> {
        Err(todo_step("list"))
    }

    /// Read the pod's netns back with rtnetlink (links, addresses, routes).
    pub async fn netns_view(&self, _id: &str) -> Result<NetnsView> {
        Err(todo_step("netns_view"))
    }

    /// Reconcile disk, containerd and netns mounts after a (re)start.
    pub async fn recover(&self) -> Result<RecoverReport> {
        Err(todo_step("recover"))
    }

    /// CRI NetworkReady: false with reason `NetworkPluginNotReady` when no CNI config loads.
    pub fn network_status(&self) -> NetworkStatus {
        NetworkStatus {
            ready: false,
            reason: "NetworkPluginNotReady".into(),
            message: "not implemented yet".into(),
        }
    }

    /// kubelet's UpdateRuntimeConfig: the pod CIDR, passed to CNI as the
    /// `ipRanges` capability arg for new pods.
    pub fn update_pod_cidr(&self, _cidr: &str) -> Result<()> {
        Err(todo_step("update_pod_cidr"))
    }
}
