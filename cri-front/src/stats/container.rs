//! ContainerStats and ListContainerStats: a container's cgroup figures in CRI form (the
//! CPU and memory form serves pods too), plus its writable layer's snapshot usage.

use crius_proto::runtime as cri;

use super::cgroup::{sample, CgroupSample};
use super::{u, Stats};
use crate::container::record::ContainerRecord;
use crate::container::status::matches;
use crate::error::Result;
use crate::util::time::now_ns;

impl Stats {
    /// CPU and memory of a cgroup in CRI form; nano-cores from the previous sample.
    pub fn cgroup_usage(
        &self,
        key: &str,
        path: &str,
    ) -> (cri::CpuUsage, cri::MemoryUsage, CgroupSample) {
        let s = sample(path);
        let now = now_ns();
        let nano_cores = s
            .cpu_ns
            .and_then(|cpu| self.cpu_samples.rate(key, now, cpu));
        let available = match (s.mem_limit, s.mem_working_set) {
            // "No limit" reads as a huge number; CRI then wants no value.
            (Some(l), Some(ws)) if l < (1u64 << 62) => Some(l.saturating_sub(ws)),
            _ => None,
        };
        let cpu = cri::CpuUsage {
            timestamp: now,
            usage_core_nano_seconds: u(s.cpu_ns),
            usage_nano_cores: u(nano_cores),
            psi: s.cpu_psi,
        };
        let mem = cri::MemoryUsage {
            timestamp: now,
            working_set_bytes: u(s.mem_working_set),
            available_bytes: u(available),
            usage_bytes: u(s.mem_usage),
            rss_bytes: u(s.mem_rss),
            page_faults: u(s.pgfault),
            major_page_faults: u(s.pgmajfault),
            psi: s.mem_psi,
        };
        (cpu, mem, s)
    }

    /// Size and inodes of a container's writable layer (its snapshot).
    pub async fn writable_layer_usage(&self, id: &str) -> Option<(u64, u64)> {
        let u = self.shared.ctrd.snapshot_usage(id).await.ok()?;
        Some((u.bytes, u.inodes))
    }

    pub async fn container_stats(&self, r: &ContainerRecord) -> cri::ContainerStats {
        let (cpu, memory, s) = self.cgroup_usage(&r.id, &r.cgroups_path);
        let usage = self.writable_layer_usage(&r.id).await;
        let root = self.shared.images.fs_root().await;
        let writable_layer = usage.map(|x| cri::FilesystemUsage {
            timestamp: now_ns(),
            fs_id: Some(cri::FilesystemIdentifier {
                mountpoint: root.clone(),
            }),
            used_bytes: u(Some(x.0)),
            inodes_used: u(Some(x.1)),
        });
        cri::ContainerStats {
            attributes: Some(cri::ContainerAttributes {
                id: r.id.clone(),
                metadata: Some(cri::ContainerMetadata {
                    name: r.name.clone(),
                    attempt: r.attempt,
                }),
                labels: r.labels.clone().into_iter().collect(),
                annotations: r.annotations.clone().into_iter().collect(),
            }),
            cpu: Some(cpu),
            memory: Some(memory),
            writable_layer,
            swap: s.swap_usage.map(|used| cri::SwapUsage {
                timestamp: now_ns(),
                swap_usage_bytes: u(Some(used)),
                swap_available_bytes: u(s.swap_limit.map(|l| l.saturating_sub(used))),
            }),
            io: s.io_psi.map(|psi| cri::IoUsage {
                timestamp: now_ns(),
                psi: Some(psi),
            }),
        }
    }
}

impl Stats {
    /// ContainerStats: one container's stats, whatever its state.
    pub async fn container(&self, id: &str) -> Result<cri::ContainerStats> {
        let rec = self.containers.store.find(id).await?;
        Ok(self.container_stats(&rec).await)
    }

    /// ListContainerStats: the running containers that pass the filter.
    pub async fn containers(
        &self,
        f: Option<cri::ContainerStatsFilter>,
    ) -> Result<Vec<cri::ContainerStats>> {
        let f = f.unwrap_or_default();
        let cf = cri::ContainerFilter {
            id: f.id,
            pod_sandbox_id: f.pod_sandbox_id,
            label_selector: f.label_selector,
            state: Some(cri::ContainerStateValue {
                state: cri::ContainerState::ContainerRunning as i32,
            }),
        };
        let all = self.containers.all_refreshed().await?;
        let mut out = Vec::new();
        for r in all.iter().filter(|r| matches(r, &cf)) {
            out.push(self.container_stats(r).await);
        }
        // Every container is in `all`, whatever the filter: the others' samples are of
        // containers removed since.
        let live = all.iter().map(|r| r.id.as_str()).collect();
        self.cpu_samples.keep_only(&live, None);
        Ok(out)
    }
}
