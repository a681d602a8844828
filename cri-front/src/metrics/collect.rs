//! Gathers ListPodSandboxMetrics: ready pods, their running containers, through the
//! stats code (one cgroup read per pod and per container, one net/dev read per pod).

use crius_proto::runtime as cri;
use crius_sandboxer::{PodState, PodStatus};

use super::build::{self, ContainerExtra, Labels};
use crate::container::record::{ContainerRecord, Phase};
use crate::error::{Error, Result};
use crate::stats::Stats;
use crate::stats::{cgroup, net_dev};

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Labels of the pod cgroup's own series: cAdvisor gives them no container name.
fn pod_labels(p: &PodStatus) -> Labels {
    Labels {
        id: p.cgroup_parent.clone(),
        namespace: p.config.metadata.namespace.clone(),
        pod: p.config.metadata.name.clone(),
        ..Default::default()
    }
}

fn container_labels(p: &PodStatus, r: &ContainerRecord) -> Labels {
    Labels {
        container: r.name.clone(),
        id: r.cgroups_path.clone(),
        image: r.image.clone(),
        name: r.id.clone(),
        ..pod_labels(p)
    }
}

impl Stats {
    /// Metrics of every ready pod and its running containers.
    pub async fn pod_sandbox_metrics(&self) -> Result<Vec<cri::PodSandboxMetrics>> {
        let pods = self.shared.sandboxer.list().await.map_err(Error::from)?;
        let containers = self.containers.all_refreshed().await?;
        let fs_root = self.shared.images.fs_root().await;
        let now = now_s();
        let mut out = Vec::new();
        for p in pods.iter().filter(|p| p.state == PodState::Ready) {
            let pl = pod_labels(p);
            let mut metrics = build::cgroup_metrics(&pl, &cgroup::sample(&p.cgroup_parent));
            metrics.push(build::metric(&super::descriptors::LAST_SEEN, &pl, "", now));
            // hostNetwork pods would show the host's interfaces: none then.
            if let Some(pid) = p.pause_pid.filter(|_| p.netns_path.is_some()) {
                match net_dev::read_net_dev(pid) {
                    Some(ifs) => {
                        // cAdvisor reports the pod's network on its pause container.
                        let l = Labels {
                            container: "POD".into(),
                            name: p.id.clone(),
                            ..pod_labels(p)
                        };
                        metrics.extend(build::network_metrics(&l, &ifs));
                    }
                    None => tracing::debug!(pod = %p.id, pid, "no net/dev for the pause"),
                }
            }
            let mut container_metrics = Vec::new();
            for r in containers
                .iter()
                .filter(|r| r.pod_id == p.id && r.phase == Phase::Running)
            {
                let x = ContainerExtra {
                    started_at_ns: r.started_at_ns,
                    writable_layer: self
                        .writable_layer_usage(&r.id)
                        .await
                        .map(|(bytes, _)| (bytes, fs_root.clone())),
                    now_s: now,
                };
                let s = cgroup::sample(&r.cgroups_path);
                container_metrics.push(cri::ContainerMetrics {
                    container_id: r.id.clone(),
                    metrics: build::container_metrics(&container_labels(p, r), &s, &x),
                });
            }
            tracing::debug!(
                pod = %p.id,
                containers = container_metrics.len(),
                "pod sandbox metrics"
            );
            out.push(cri::PodSandboxMetrics {
                pod_sandbox_id: p.id.clone(),
                metrics,
                container_metrics,
            });
        }
        Ok(out)
    }
}
