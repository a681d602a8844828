//! Sandboxer configuration: where things live and how pods are run.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything the sandboxer needs to know about its host. `Default` gives the
/// production paths; tests point every path into a temp dir.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxerConfig {
    /// Persistent pod records: `<state_dir>/<pod id>/pod.json` plus the pod's
    /// resolv.conf, hostname and hosts files. Default `/var/lib/crius/sandboxes`.
    pub state_dir: PathBuf,
    /// Volatile state: netns bind mounts at `<run_dir>/netns/<pod id>`, the pod's
    /// /dev/shm tmpfs at `<run_dir>/sandboxes/<pod id>/shm`, the read-only pause
    /// rootfs at `<run_dir>/pause/rootfs`. Default `/run/crius`.
    pub run_dir: PathBuf,
    /// Directory holding `*.conflist` / `*.conf` / `*.json`; the first file in
    /// lexical order wins (as kubelet and containerd do). Default `/etc/cni/net.d`.
    pub cni_conf_dir: PathBuf,
    /// Where CNI plugin binaries are searched, in order (becomes CNI_PATH).
    pub cni_bin_dirs: Vec<PathBuf>,
    /// CNI results of ADD kept on disk so DEL works after a restart.
    /// Default `/var/lib/crius/cni/results`.
    pub cni_cache_dir: PathBuf,
    /// A plugin running longer than this is killed and the pod fails.
    pub cni_timeout: Duration,
    /// containerd's gRPC socket (plain path, no `unix://`).
    pub containerd_address: PathBuf,
    /// containerd namespace holding the pause containers.
    pub containerd_namespace: String,
    /// containerd runtime name for the pause container.
    pub runtime: String,
    /// What the pause container runs.
    pub pause: PauseSource,
    /// How the pause's `oom_score_adj` (-998) is treated.
    pub oom_score: OomScorePolicy,
    /// SIGTERM → SIGKILL grace period for the pause and the pod's containers on stop.
    pub stop_grace: Duration,
    /// cgroup parent used when the pod config names none (a slice with the systemd driver).
    pub default_cgroup_parent: String,
    /// How pod cgroup parents become the pause's `cgroupsPath` (see [`crate::cgroup`]).
    pub cgroup_driver: crate::cgroup::CgroupDriver,
    /// containerd snapshotter for a [`PauseSource::Image`] pause's rootfs.
    pub snapshotter: String,
}

impl Default for SandboxerConfig {
    fn default() -> Self {
        SandboxerConfig {
            state_dir: PathBuf::from("/var/lib/crius/sandboxes"),
            run_dir: PathBuf::from("/run/crius"),
            cni_conf_dir: PathBuf::from("/etc/cni/net.d"),
            cni_bin_dirs: vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")],
            cni_cache_dir: PathBuf::from("/var/lib/crius/cni/results"),
            cni_timeout: Duration::from_secs(30),
            containerd_address: PathBuf::from("/run/containerd/containerd.sock"),
            containerd_namespace: "crius".to_string(),
            runtime: "io.containerd.crius.v2".to_string(),
            pause: PauseSource::default(),
            oom_score: OomScorePolicy::Auto,
            stop_grace: Duration::from_secs(10),
            default_cgroup_parent: "/crius".to_string(),
            cgroup_driver: crate::cgroup::CgroupDriver::Cgroupfs,
            snapshotter: "overlayfs".to_string(),
        }
    }
}

/// The program the pause container runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseSource {
    /// A statically linked pause binary (crius's own `crius-pause`), copied into
    /// a read-only rootfs owned by the sandboxer. No image, no snapshot.
    Binary(PathBuf),
    /// An image reference already pulled and unpacked (with `snapshotter`) in
    /// the containerd namespace (criusd pulls it). Its entrypoint runs on a
    /// read-only view snapshot `crius-pause-<pod id>`.
    Image(String),
}

/// Where `crius-pause` is looked for when the config names none.
pub const DEFAULT_PAUSE_BINARY: &str = "/usr/local/lib/crius/crius-pause";

impl Default for PauseSource {
    fn default() -> Self {
        PauseSource::Binary(PathBuf::from(DEFAULT_PAUSE_BINARY))
    }
}

/// Lowering `oom_score_adj` needs CAP_SYS_RESOURCE; without it runc's init dies
/// (`can't get final child's PID from pipe: EOF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OomScorePolicy {
    /// Detect CAP_SYS_RESOURCE at start: with it allow, without it clamp.
    #[default]
    Auto,
    /// Never ask for a score below this process's own (containerd's
    /// `restrict_oom_score_adj`).
    Clamp,
    /// Pass requested scores through unchanged.
    Allow,
}
