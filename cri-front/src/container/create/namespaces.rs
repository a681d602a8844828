//! The namespaces a container joins or gets: its pod's (through the pause's /proc entries),
//! the node's, its own, or (pid, `kubectl debug --target`) another container's; and the
//! pod's user namespace.

use std::path::PathBuf;

use crius_proto::runtime as cri;
use crius_sandboxer::{PodStatus, UserNamespace};

use crate::container::record::Phase;
use crate::container::spec::{Ns, UsernsJoin};
use crate::container::Containers;
use crate::error::{Error, Result};

pub(super) struct Namespaces {
    pub net: Ns,
    pub ipc: Ns,
    pub uts: Ns,
    pub pid: Ns,
    /// The pod's user namespace mapping, when the container is in it.
    pub userns: Option<UserNamespace>,
    /// The /dev/shm the container mounts: the host's with the host IPC namespace.
    pub shm_path: Option<String>,
}

/// `/proc/<pause>/ns/<kind>` of the pod, or FAILED_PRECONDITION without a running pause.
fn pod_ns(pod: &PodStatus, kind: &str) -> Result<Ns> {
    let pid = pod.pause_pid.ok_or_else(|| {
        Error::FailedPrecondition(format!("pod sandbox {} has no running pause", pod.id))
    })?;
    Ok(Ns::Join(PathBuf::from(format!("/proc/{pid}/ns/{kind}"))))
}

impl Containers {
    pub(super) async fn namespaces(
        &self,
        pod: &PodStatus,
        sc: &cri::LinuxContainerSecurityContext,
    ) -> Result<Namespaces> {
        let nso = sc.namespace_options.clone().unwrap_or_default();
        let userns = crate::pod::userns::for_container(
            nso.userns_options.as_ref(),
            pod.config.linux.userns,
        )?;
        let host_net = pod.netns_path.is_none();
        let net = match &pod.netns_path {
            Some(p) => Ns::Join(p.clone()),
            None => Ns::Host,
        };
        let node = cri::NamespaceMode::Node as i32;
        let ipc = if nso.ipc == node {
            Ns::Host
        } else {
            pod_ns(pod, "ipc")?
        };
        let uts = if host_net {
            Ns::Host
        } else {
            pod_ns(pod, "uts")?
        };
        let pid = match cri::NamespaceMode::try_from(nso.pid) {
            Ok(cri::NamespaceMode::Pod) => pod_ns(pod, "pid")?,
            Ok(cri::NamespaceMode::Container) => Ns::New,
            Ok(cri::NamespaceMode::Node) => Ns::Host,
            Ok(cri::NamespaceMode::Target) => self.target_pid_ns(&pod.id, &nso.target_id).await?,
            Err(_) => {
                return Err(Error::InvalidArgument(format!(
                    "unknown pid namespace mode {}",
                    nso.pid
                )))
            }
        };
        let shm_path = if ipc == Ns::Host {
            Some("/dev/shm".to_string())
        } else {
            pod.shm_path.as_ref().map(|p| p.display().to_string())
        };
        Ok(Namespaces {
            net,
            ipc,
            uts,
            pid,
            userns,
            shm_path,
        })
    }

    /// The pid namespace of another running container of the same pod (`kubectl debug
    /// --target`: an ephemeral container that sees the target's processes).
    async fn target_pid_ns(&self, pod_id: &str, target_id: &str) -> Result<Ns> {
        if target_id.is_empty() {
            return Err(Error::InvalidArgument(
                "pid namespace mode TARGET needs target_id".into(),
            ));
        }
        let target = self.store.find(target_id).await?;
        if target.pod_id != pod_id {
            return Err(Error::InvalidArgument(format!(
                "target container {} is in pod {}, not {pod_id}",
                target.id, target.pod_id
            )));
        }
        let pid = match target.phase {
            Phase::Running => self.task_pid(&target.id).await,
            _ => None,
        }
        .ok_or_else(|| {
            Error::FailedPrecondition(format!("target container {} is not running", target.id))
        })?;
        Ok(Ns::Join(PathBuf::from(format!("/proc/{pid}/ns/pid"))))
    }
}

impl Namespaces {
    /// The pod's user namespace for a container in it; such a container cannot also use
    /// the host's PID or IPC namespace.
    pub(super) fn userns_join(&self, pod: &PodStatus) -> Result<Option<UsernsJoin>> {
        let Some(map) = self.userns else {
            return Ok(None);
        };
        if self.ipc == Ns::Host || self.pid == Ns::Host {
            return Err(Error::InvalidArgument(
                "a container in its pod's user namespace cannot use the host's PID or IPC namespace".into(),
            ));
        }
        Ok(match pod_ns(pod, "user")? {
            Ns::Join(path) => Some(UsernsJoin { path, map }),
            _ => None,
        })
    }
}
