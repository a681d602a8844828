//! What a pod asks for: the CRI PodSandboxConfig as plain Rust types.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A pod's configuration as criusd got it from kubelet (RunPodSandbox).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodConfig {
    pub metadata: PodMetadata,
    /// Empty: the pod name is used (for pod-network pods); host's for hostNetwork.
    pub hostname: String,
    pub log_directory: Option<PathBuf>,
    /// None: the host's /etc/resolv.conf is copied.
    pub dns: Option<DnsConfig>,
    pub port_mappings: Vec<PortMapping>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// CRI runtime handler; recorded, criusd maps it to a runtime.
    pub runtime_handler: String,
    pub linux: LinuxPodConfig,
}

/// Identity of a pod. (name, namespace, uid, attempt) is unique per sandboxer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct PodMetadata {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub attempt: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// Name as the CNI portmap plugin spells it.
    pub fn as_cni(&self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortMapping {
    pub protocol: Protocol,
    pub container_port: i32,
    /// 0: not mapped on the host (skipped, as containerd does).
    pub host_port: i32,
    pub host_ip: String,
}

/// Which namespace a pod (or container) uses for one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceMode {
    /// One namespace shared by the pod (held by the pause).
    #[default]
    Pod,
    /// The host's namespace.
    Node,
    /// Per container (only meaningful for PID); the pause gets its own.
    Container,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceOptions {
    pub network: NamespaceMode,
    pub pid: NamespaceMode,
    pub ipc: NamespaceMode,
}

/// Seccomp / AppArmor profile choice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProfile {
    #[default]
    Unconfined,
    RuntimeDefault,
    /// Path (seccomp) or profile name (AppArmor).
    Localhost(String),
}

/// Pod-level cgroup figures (CRI LinuxContainerResources subset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodResources {
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_shares: i64,
    pub memory_limit_in_bytes: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
}

/// One id range of a user namespace: `length` ids from `container_id` inside are `host_id`… on
/// the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub length: u32,
}

/// A pod's own user namespace (`hostUsers: false`): exactly one uid and one gid range, each
/// mapping container id 0 (criusd refuses other shapes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserNamespace {
    pub uids: IdMapping,
    pub gids: IdMapping,
}

impl UserNamespace {
    /// The host ids of the pod's root: owner of the files the pod's containers must write.
    pub fn host_root(&self) -> (u32, u32) {
        (self.uids.host_id, self.gids.host_id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinuxPodConfig {
    /// cgroupfs path (e.g. `/kubepods/burstable/pod<uid>`); empty: config default.
    pub cgroup_parent: String,
    pub sysctls: BTreeMap<String, String>,
    pub namespaces: NamespaceOptions,
    /// None: the host's user namespace.
    pub userns: Option<UserNamespace>,
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub supplemental_groups: Vec<i64>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub seccomp: Option<SecurityProfile>,
    pub apparmor: Option<SecurityProfile>,
    pub overhead: Option<PodResources>,
    pub resources: Option<PodResources>,
}

impl PodConfig {
    /// True when the pod uses the host's network namespace (no netns, no CNI).
    pub fn host_network(&self) -> bool {
        self.linux.namespaces.network == NamespaceMode::Node
    }
}
