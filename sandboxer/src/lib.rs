//! # crius-sandboxer
//!
//! Owns each pod from RunPodSandbox to RemovePodSandbox: its network namespace,
//! its CNI network, its pause container (run by containerd with the crius shim)
//! and its record on disk. It knows nothing of gRPC: criusd (or a future
//! containerd Sandbox API server) turns CRI requests into the plain types here.
//!
//! ## Face
//! ```ignore
//! let sb = Sandboxer::new(SandboxerConfig { .. }).await?;   // dirs, pause rootfs, CNI config, containerd
//! let report = sb.recover().await?;                          // once at start-up
//! let pod: PodStatus = sb.run(pod_config).await?;            // netns + CNI ADD side by side with pause start
//! sb.status(&pod.id).await?; sb.list().await?;               // PodState Ready / NotReady (no RPC: pid + start time)
//! sb.netns_view(&pod.id).await?;                             // rtnetlink view of the pod's netns
//! sb.check_network(&pod.id).await?;                          // CNI CHECK
//! sb.stop(&pod.id).await?;                                   // pod containers' tasks, pause, CNI DEL (idempotent)
//! sb.remove(&pod.id).await?;                                 // stop + containerd containers, netns, files (idempotent)
//! sb.network_status();  sb.update_pod_cidr("10.1.0.0/24")?;  // CRI NetworkReady; ipRanges capability arg
//! sb.oom_score_adj(requested);                               // the clamp policy, for containers too
//! ```
//! `run` fails with nothing left behind (or, if teardown itself failed, the
//! pod kept as NotReady for the next `recover`/`remove`). `stop` is
//! NotFound for an unknown id; `remove` of an unknown id is Ok. Pods being
//! created show in `list` as NotReady. `PodStatus::timings` has the phase
//! breakdown of `run`.
//! Errors carry an [`ErrorKind`] that criusd maps to gRPC codes
//! (NotFound, AlreadyExists{existing_id}, InvalidArgument, FailedPrecondition,
//! Unavailable, Unimplemented, Internal); messages name the pod and the step.
//!
//! ## What other crates rely on
//! - Pod id = containerd container id of the pause, in containerd namespace
//!   `config.containerd_namespace` (`crius`). Labels on it: `io.crius.kind=sandbox`,
//!   `io.crius.sandbox-id=<id>`. Spec annotations: `io.kubernetes.cri.container-type=sandbox`,
//!   `io.kubernetes.cri.sandbox-id=<id>` and the twins `io.crius.container-type`,
//!   `io.crius.sandbox-id`. criusd labels the pod's containers `io.crius.sandbox-id=<id>`,
//!   `io.crius.kind=container`; `stop` kills all tasks carrying that label.
//! - Files per pod: `<state_dir>/<id>/pod.json` (record), `resolv.conf`, `hostname`,
//!   `hosts`; `<run_dir>/netns/<id>` (netns bind mount), `<run_dir>/sandboxes/<id>/shm`
//!   (tmpfs /dev/shm), `<run_dir>/pause/rootfs` (read-only pause rootfs, shared).
//!   Paths are in [`PodStatus`].
//! - CNI: `CNI_IFNAME=eth0`, `CNI_ARGS` with `K8S_POD_NAMESPACE/NAME/INFRA_CONTAINER_ID/UID`;
//!   capability args `portMappings` (host_port > 0), `bandwidth` (from the
//!   `kubernetes.io/{ingress,egress}-bandwidth` annotations), `ipRanges` (pod CIDR).
//!   The config in force is the first `*.conflist|*.conf|*.json` of `cni_conf_dir`
//!   (re-read when the dir changes). Each pod's config, args and ADD result are
//!   cached in `cni_cache_dir/<id>-eth0.json` (written before ADD starts), so DEL
//!   runs with ADD's exact config after a restart; DEL with the netns gone passes
//!   an empty `CNI_NETNS`.
//! - [`PauseSource::Image`]: the image must already be pulled and unpacked
//!   (snapshotter `config.snapshotter`) in the containerd namespace; it is
//!   resolved at the first pod, and each pause runs on a view snapshot
//!   `crius-pause-<id>` removed with the pod.
//! - A user-namespaced pod ([`LinuxPodConfig::userns`]): the pause starts in a new user
//!   namespace with the mapping and makes the pod's netns inside it (pinned at the usual path
//!   once the pause runs, then CNI ADD: one after the other); the pod's files and /dev/shm
//!   belong to the mapped root. Containers join `/proc/<pause>/ns/user`.
//! - Not applied to the pause: seccomp/AppArmor (it only waits for signals).
//!   Pod-level resources plus overhead go on the pod's own cgroup parent
//!   (cpu.max/weight, memory.max; a slice's unit properties under systemd) at
//!   `run` and `update_resources`: see `pod_cgroup`.
//!
//! ## The pause binary
//! `src/bin/crius-pause.rs` (std + libc). It must be static, since the pause
//! rootfs holds nothing else. Build it with
//! ```text
//! cargo rustc -p crius-sandboxer --bin crius-pause --release -- -C target-feature=+crt-static
//! ```
//! giving `target/release/crius-pause`; install it at
//! [`DEFAULT_PAUSE_BINARY`] (`/usr/local/lib/crius/crius-pause`) or name it in
//! [`PauseSource::Binary`]. `Sandboxer::new` refuses a dynamically linked one.
//!
//! ## OOM score
//! The pause asks for `oom_score_adj` -998. Without CAP_SYS_RESOURCE (the
//! default policy detects it) the score is clamped to this process's own
//! current score, with one log line; [`OomScorePolicy`] forces either way.
//! [`oom::effective_score`] is public so criusd clamps containers' scores the same way.
//!
//! Design notes, test and benchmark commands (`hack/bench/pods`) and figures:
//! `sandboxer/README.md`.

mod atomic;
pub mod cgroup;
mod cni;
mod config;
mod ctrd;
mod error;
mod files;
mod netns;
pub mod oom;
mod pause;
mod pod;
mod pod_cgroup;
mod recover;
mod sandboxer;
mod status;
mod store;
mod sys;
mod teardown;
pub mod util;

pub use config::{OomScorePolicy, PauseSource, SandboxerConfig, DEFAULT_PAUSE_BINARY};
pub use error::{Error, ErrorKind, Result};
pub use pod::{
    DnsConfig, IdMapping, LinuxPodConfig, NamespaceMode, NamespaceOptions, PodConfig, PodMetadata,
    PodResources, PortMapping, Protocol, SecurityProfile, UserNamespace,
};
pub use sandboxer::Sandboxer;
pub use status::{
    LinkView, NetnsView, NetworkStatus, PodState, PodStatus, RecoverReport, RouteView, RunTimings,
};

/// containerd label naming the pod a container belongs to.
pub const LABEL_SANDBOX_ID: &str = "io.crius.sandbox-id";
/// containerd label: `sandbox` (the pause) or `container`.
pub const LABEL_KIND: &str = "io.crius.kind";
/// CRI spec annotations (the crius shim reads these, and its own twins).
pub const ANN_CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
pub const ANN_CRI_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
pub const ANN_CRIUS_CONTAINER_TYPE: &str = "io.crius.container-type";
pub const ANN_CRIUS_SANDBOX_ID: &str = "io.crius.sandbox-id";
