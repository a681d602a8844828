//! What the sandboxer reports back about pods and the network.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::pod::PodConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PodState {
    /// Pause running, network set up.
    Ready,
    /// Stopped, pause dead, or half made.
    NotReady,
}

/// A pod as the sandboxer knows it. criusd bind-mounts `resolv_conf_path`,
/// `hostname_path`, `hosts_path` and `shm_path` into every container of the
/// pod and joins the namespaces of `pause_pid` (or `netns_path`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodStatus {
    /// Pod id, also the containerd container id of the pause.
    pub id: String,
    pub config: PodConfig,
    pub state: PodState,
    pub created_at_ns: i64,
    /// `<run_dir>/netns/<id>`; None for hostNetwork pods.
    pub netns_path: Option<PathBuf>,
    /// Pod IPs from the CNI result, first is the primary (v4 before v6).
    pub ips: Vec<IpAddr>,
    /// PID of the pause process (host PID namespace), while it runs.
    pub pause_pid: Option<u32>,
    /// Effective cgroup parent (config's or the default).
    pub cgroup_parent: String,
    pub resolv_conf_path: PathBuf,
    pub hostname_path: PathBuf,
    pub hosts_path: PathBuf,
    /// tmpfs for /dev/shm shared by the pod; None when the pod uses the host IPC
    /// namespace (containers then bind the host's /dev/shm).
    pub shm_path: Option<PathBuf>,
    /// Effective hostname of the pod.
    pub hostname: String,
    /// How long each phase of `run` took.
    pub timings: RunTimings,
}

/// Phase timings of `run`, in microseconds. CNI ADD and pause start run side
/// by side, so `total_us` is less than the sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunTimings {
    /// Validation and the first record write, before anything is made.
    pub prepare_us: u64,
    /// Netns creation with `lo` up (side by side with pod files and the pause's container record).
    pub netns_us: u64,
    /// The whole CNI plugin chain.
    pub cni_add_us: u64,
    /// From the pause's container record to its task started.
    pub pause_start_us: u64,
    pub total_us: u64,
}

/// CRI's NetworkReady condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStatus {
    pub ready: bool,
    /// `NetworkPluginNotReady` when not ready, empty when ready.
    pub reason: String,
    pub message: String,
}

/// What `recover()` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoverReport {
    /// Pods whose pause runs and whose network is in place.
    pub ready: Vec<String>,
    /// Pods kept, but NotReady (pause died or was stopped).
    pub not_ready: Vec<String>,
    /// Half-made pods (crash during run) that were torn down and forgotten.
    pub cleaned: Vec<String>,
    /// Leftovers (netns mounts, CNI cache entries, pause containers) with no pod record, removed.
    pub orphans_removed: Vec<String>,
    /// Problems met while recovering (recovery goes on past them).
    pub errors: Vec<String>,
}

/// One interface inside a pod's netns, as rtnetlink reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub mac: Option<String>,
    pub addrs: Vec<(IpAddr, u8)>,
}

/// A route inside a pod's netns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    /// None: default route.
    pub destination: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
}

/// A pod's network namespace read back with rtnetlink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsView {
    pub links: Vec<LinkView>,
    pub routes: Vec<RouteView>,
}

impl NetnsView {
    /// All global addresses (not loopback, not link-local) in the netns.
    pub fn global_ips(&self) -> Vec<IpAddr> {
        self.links
            .iter()
            .flat_map(|l| l.addrs.iter().map(|(a, _)| *a))
            .filter(|a| !a.is_loopback() && !is_link_local(a))
            .collect()
    }
}

fn is_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}
