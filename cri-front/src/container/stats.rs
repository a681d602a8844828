//! Container and pod stats read from the cgroup files runc set up (cgroup v1, or
//! v2 when the host is unified), plus the writable layer's snapshot usage.

use std::path::{Path, PathBuf};

use containerd_client::services::v1::snapshots::UsageRequest;
use crius_proto::runtime as cri;

use super::create::now_ns;
use super::record::ContainerRecord;
use crate::daemon::Daemon;

const ROOT: &str = "/sys/fs/cgroup";

/// Raw figures of one cgroup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupSample {
    pub cpu_ns: Option<u64>,
    pub mem_usage: Option<u64>,
    pub mem_working_set: Option<u64>,
    pub mem_rss: Option<u64>,
    pub mem_limit: Option<u64>,
    pub pgfault: Option<u64>,
    pub pgmajfault: Option<u64>,
    pub pids: Option<u64>,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn stat_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn unified() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

fn v1_dir(controller: &str, path: &str) -> PathBuf {
    Path::new(ROOT)
        .join(controller)
        .join(path.trim_start_matches('/'))
}

/// Read a cgroup by its cgroupfs path (`/kubepods/pod1/<id>`).
pub fn sample(path: &str) -> CgroupSample {
    if unified() {
        let d = Path::new(ROOT).join(path.trim_start_matches('/'));
        let cpu = std::fs::read_to_string(d.join("cpu.stat")).unwrap_or_default();
        let mem = std::fs::read_to_string(d.join("memory.stat")).unwrap_or_default();
        let usage = read_u64(&d.join("memory.current"));
        let inactive = stat_field(&mem, "inactive_file").unwrap_or(0);
        return CgroupSample {
            cpu_ns: stat_field(&cpu, "usage_usec").map(|u| u * 1000),
            mem_usage: usage,
            mem_working_set: usage.map(|u| u.saturating_sub(inactive)),
            mem_rss: stat_field(&mem, "anon"),
            mem_limit: read_u64(&d.join("memory.max")),
            pgfault: stat_field(&mem, "pgfault"),
            pgmajfault: stat_field(&mem, "pgmajfault"),
            pids: read_u64(&d.join("pids.current")),
        };
    }
    let cpu = v1_dir("cpu,cpuacct", path);
    let cpu = if cpu.exists() {
        cpu
    } else {
        v1_dir("cpuacct", path)
    };
    let m = v1_dir("memory", path);
    let mem = std::fs::read_to_string(m.join("memory.stat")).unwrap_or_default();
    let usage = read_u64(&m.join("memory.usage_in_bytes"));
    let inactive = stat_field(&mem, "total_inactive_file").unwrap_or(0);
    CgroupSample {
        cpu_ns: read_u64(&cpu.join("cpuacct.usage")),
        mem_usage: usage,
        mem_working_set: usage.map(|u| u.saturating_sub(inactive)),
        mem_rss: stat_field(&mem, "total_rss"),
        mem_limit: read_u64(&m.join("memory.limit_in_bytes")),
        pgfault: stat_field(&mem, "total_pgfault"),
        pgmajfault: stat_field(&mem, "total_pgmajfault"),
        pids: read_u64(&v1_dir("pids", path).join("pids.current")),
    }
}

/// Per-interface counters of `/proc/<pid>/net/dev` (the netns `pid` lives in), `lo` left out.
pub fn parse_net_dev(text: &str) -> Vec<cri::NetworkInterfaceUsage> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if name == "lo" || f.len() < 16 {
                return None;
            }
            Some(cri::NetworkInterfaceUsage {
                name: name.to_string(),
                rx_bytes: u(Some(f[0])),
                rx_errors: u(Some(f[2])),
                tx_bytes: u(Some(f[8])),
                tx_errors: u(Some(f[10])),
            })
        })
        .collect()
}

/// Network usage of the netns process `pid` is in; `eth0` (CNI_IFNAME) is the default interface.
pub fn network_usage(pid: u32) -> Option<cri::NetworkUsage> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    let interfaces = parse_net_dev(&text);
    Some(cri::NetworkUsage {
        timestamp: now_ns(),
        default_interface: interfaces.iter().find(|i| i.name == "eth0").cloned(),
        interfaces,
    })
}

fn u(v: Option<u64>) -> Option<cri::UInt64Value> {
    v.map(|value| cri::UInt64Value { value })
}

impl Daemon {
    /// CPU and memory of a cgroup in CRI form; nano-cores from the previous sample.
    pub fn cgroup_usage(
        &self,
        key: &str,
        path: &str,
    ) -> (cri::CpuUsage, cri::MemoryUsage, CgroupSample) {
        let s = sample(path);
        let now = now_ns();
        let nano_cores = s.cpu_ns.and_then(|cpu| {
            let mut prev = self.cpu_samples.lock().ok()?;
            let before = prev.insert(key.to_string(), (now, cpu));
            let (t0, c0) = before?;
            let dt = (now - t0).max(1) as u128;
            Some((cpu.saturating_sub(c0) as u128 * 1_000_000_000 / dt) as u64)
        });
        let available = match (s.mem_limit, s.mem_working_set) {
            // "No limit" reads as a huge number; CRI then wants no value.
            (Some(l), Some(ws)) if l < (1u64 << 62) => Some(l.saturating_sub(ws)),
            _ => None,
        };
        let cpu = cri::CpuUsage {
            timestamp: now,
            usage_core_nano_seconds: u(s.cpu_ns),
            usage_nano_cores: u(nano_cores),
            psi: None,
        };
        let mem = cri::MemoryUsage {
            timestamp: now,
            working_set_bytes: u(s.mem_working_set),
            available_bytes: u(available),
            usage_bytes: u(s.mem_usage),
            rss_bytes: u(s.mem_rss),
            page_faults: u(s.pgfault),
            major_page_faults: u(s.pgmajfault),
            psi: None,
        };
        (cpu, mem, s)
    }

    pub async fn container_stats(&self, r: &ContainerRecord) -> cri::ContainerStats {
        let (cpu, memory, _) = self.cgroup_usage(&r.id, &r.cgroups_path);
        let usage = self
            .ctrd
            .snapshots()
            .usage(self.ctrd.req(UsageRequest {
                snapshotter: self.cfg.snapshotter.clone(),
                key: r.id.clone(),
            }))
            .await
            .ok()
            .map(|x| x.into_inner());
        let root = self.images.fs_root().await;
        let writable_layer = usage.map(|x| cri::FilesystemUsage {
            timestamp: now_ns(),
            fs_id: Some(cri::FilesystemIdentifier {
                mountpoint: root.clone(),
            }),
            used_bytes: u(Some(x.size.max(0) as u64)),
            inodes_used: u(Some(x.inodes.max(0) as u64)),
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
            swap: None,
            io: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev() {
        let t = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth0: 500 5 1 0 0 0 0 0 700 7 2 0 0 0 0 0\n";
        let v = parse_net_dev(t);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].name, "eth0");
        assert_eq!(v[0].rx_bytes.map(|x| x.value), Some(500));
        assert_eq!(v[0].tx_errors.map(|x| x.value), Some(2));
    }

    #[test]
    fn stat_fields() {
        let t = "cache 10\nrss 20\ntotal_rss 30\ntotal_inactive_file 5\n";
        assert_eq!(stat_field(t, "total_rss"), Some(30));
        assert_eq!(stat_field(t, "rss"), Some(20));
        assert_eq!(stat_field(t, "nope"), None);
    }
}
