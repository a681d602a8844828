//! The container service: records, spec building, lifecycle, exec, events. One module per
//! RPC (`create`, `start`, `stop`, `remove`, `status`, `list`, `update`, `reopen_log`,
//! `exec`), the task verbs they share in `task`, the state machine and per-container guard
//! in `state`, name reservations in `names`, the rest in modules named after what they hold.

use std::collections::HashMap;
use std::sync::Arc;

use crius_proto::runtime as cri;
use crius_sandboxer::oom;
use tokio::sync::{broadcast, Mutex};

use crate::daemon::Shared;
use crate::error::Result;
use record::Store;

pub mod config_volumes;
pub mod create;
pub mod events;
pub mod exec;
pub mod guard;
pub mod image_volume;
pub mod known;
pub mod leftovers;
pub mod list;
pub mod logger;
pub mod merge;
pub mod names;
pub mod node_cgroups;
pub mod propagation;
pub mod record;
pub mod recover;
pub mod removal;
pub mod remove;
pub mod reopen_log;
pub mod seccomp;
pub mod spec;
pub mod start;
pub mod start_truth;
pub mod state;
pub mod status;
pub mod stop;
pub mod stream_rt;
pub mod task;
pub mod update;
pub mod user;
pub mod user_files;
pub mod view;

#[cfg(test)]
pub(crate) mod tests;

/// Write end of a container's stdin fifo, kept open so the process never sees EOF between
/// attaches; None once closed (stdin_once).
pub type StdinPipe = Arc<Mutex<Option<tokio::net::unix::pipe::Sender>>>;

/// What the container RPCs own: the records, the CRI event stream, stdin pipes.
pub struct Containers {
    pub shared: Arc<Shared>,
    pub store: Store,
    /// CRI container events (GetContainerEvents); lagging receivers lose old events.
    pub events: broadcast::Sender<cri::ContainerEventResponse>,
    /// Each container's transition guard and in-flight state ([`state`]).
    pub transitions: state::Transitions,
    /// Clamp containers' oom_score_adj to `own_oom_score` (no CAP_SYS_RESOURCE).
    pub oom_clamp: bool,
    pub own_oom_score: i32,
    /// Containers' stdin fifos (config.stdin), by container id.
    pub stdin_pipes: Mutex<HashMap<String, StdinPipe>>,
    /// What each runtime handler's OCI runtime (runc, crun) offers beyond the basics
    /// (recursive read-only mounts), by handler name.
    pub oci_features: std::collections::BTreeMap<String, crate::runc_features::RuncFeatures>,
    /// What criusd knows first-hand of the tasks (no containerd round-trip for status and
    /// start; [`known`]).
    pub known: known::Known,
    /// Removals answered and still finishing ([`removal`]).
    pub removals: removal::Removals,
    /// Images' /etc/passwd and /etc/group, by top chain id ([`user_files`]).
    pub user_files: user_files::UserFilesCache,
}

impl Containers {
    pub async fn new(shared: Arc<Shared>) -> Result<Containers> {
        let store = Store::open(&shared.cfg.containers_dir()).await?;
        let (events, _) = broadcast::channel(1024);
        let has_cap = oom::has_cap_sys_resource();
        let oom_clamp = oom::should_clamp(shared.cfg.oom_score, has_cap);
        let own_oom_score = oom::own_score();
        let oci_features = crate::handler::probe_features(&shared.cfg.runtime_handlers).await;
        if oom_clamp {
            tracing::info!(
                own_score = own_oom_score,
                cap_sys_resource = has_cap,
                "containers' oom_score_adj below criusd's own will be clamped to it"
            );
        }
        Ok(Containers {
            shared,
            store,
            events,
            transitions: Default::default(),
            oom_clamp,
            own_oom_score,
            stdin_pipes: Mutex::new(Default::default()),
            oci_features,
            known: Default::default(),
            removals: Default::default(),
            user_files: Default::default(),
        })
    }

    /// The optional features of `handler`'s OCI runtime (none for an unknown handler).
    pub fn oci_features(&self, handler: &str) -> crate::runc_features::RuncFeatures {
        self.oci_features.get(handler).copied().unwrap_or_default()
    }

    /// The score a container's spec gets for kubelet's request, logged when clamped.
    pub fn oom_score(&self, container: &str, requested: i32) -> i32 {
        let eff = oom::effective_score(requested, self.own_oom_score, self.oom_clamp);
        if eff != requested {
            tracing::info!(
                container,
                requested,
                effective = eff,
                "oom_score_adj clamped: criusd lacks CAP_SYS_RESOURCE"
            );
        }
        eff
    }
}
