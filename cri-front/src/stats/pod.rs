//! PodSandboxStats and ListPodSandboxStats (and StreamPodSandboxStats): a ready pod's
//! cgroup, network and process figures, with its running containers' stats.

use crius_proto::runtime as cri;

use super::cpu_samples::pod_key;
use super::Stats;
use crate::container::record::Phase;
use crate::error::{Error, Result};
use crate::pod;

impl Stats {
    /// PodSandboxStats: one pod's stats; FAILED_PRECONDITION when it is not ready.
    pub async fn pod(&self, id: &str) -> Result<cri::PodSandboxStats> {
        let p = self.shared.find_pod(id).await?;
        self.pods(Some(cri::PodSandboxStatsFilter {
            id: p.id.clone(),
            ..Default::default()
        }))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::FailedPrecondition(format!("pod sandbox {} is not ready", p.id)))
    }

    /// ListPodSandboxStats: the ready pods that pass the filter.
    pub async fn pods(
        &self,
        f: Option<cri::PodSandboxStatsFilter>,
    ) -> Result<Vec<cri::PodSandboxStats>> {
        let f = f.unwrap_or_default();
        let pf = cri::PodSandboxFilter {
            id: f.id,
            label_selector: f.label_selector,
            state: Some(cri::PodSandboxStateValue {
                state: cri::PodSandboxState::SandboxReady as i32,
            }),
        };
        let pods = self.shared.sandboxer.list().await?;
        let containers = self.containers.all_refreshed().await?;
        let mut out = Vec::new();
        for p in pods.iter().filter(|p| pod::matches(p, &pf)) {
            let (cpu, memory, sample) = self.cgroup_usage(&pod_key(&p.id), &p.cgroup_parent);
            let mut cs = Vec::new();
            for r in containers
                .iter()
                .filter(|r| r.pod_id == p.id && r.phase == Phase::Running)
            {
                cs.push(self.container_stats(r).await);
            }
            out.push(cri::PodSandboxStats {
                attributes: Some(cri::PodSandboxAttributes {
                    id: p.id.clone(),
                    metadata: pod::to_cri(p).metadata,
                    labels: p.config.labels.clone().into_iter().collect(),
                    annotations: p.config.annotations.clone().into_iter().collect(),
                }),
                linux: Some(cri::LinuxPodSandboxStats {
                    cpu: Some(cpu),
                    memory: Some(memory),
                    // hostNetwork pods would report the host's interfaces: none then.
                    network: p
                        .pause_pid
                        .filter(|_| p.netns_path.is_some())
                        .and_then(super::net_dev::network_usage),
                    process: sample.pids.map(|n| cri::ProcessUsage {
                        timestamp: cpu.timestamp,
                        process_count: Some(cri::UInt64Value { value: n }),
                    }),
                    containers: cs,
                    io: None,
                }),
                windows: None,
            });
        }
        // All pods and containers, whatever the filter: other samples are of ones removed.
        let live_pods = pods.iter().map(|p| p.id.as_str()).collect();
        let live = containers.iter().map(|r| r.id.as_str()).collect();
        self.cpu_samples.keep_only(&live, Some(&live_pods));
        Ok(out)
    }
}
