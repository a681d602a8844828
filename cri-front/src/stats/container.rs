//! Container and pod stats read from the cgroup files runc set up (cgroup v1, or
//! v2 when the host is unified), plus the writable layer's snapshot usage.

use std::path::{Path, PathBuf};

use crius_proto::runtime as cri;

use super::Stats;
use crate::container::record::ContainerRecord;
use crate::container::status::matches;
use crate::error::Result;
use crate::util::time::now_ns;

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
    pub cpu_user_ns: Option<u64>,
    pub cpu_system_ns: Option<u64>,
    pub mem_cache: Option<u64>,
    /// Times usage hit the limit (v1 `memory.failcnt`, v2 `max` of `memory.events`).
    pub mem_failcnt: Option<u64>,
    /// Lines of `cgroup.procs` / of `tasks` (v2: `cgroup.threads`).
    pub processes: Option<u64>,
    pub threads: Option<u64>,
    /// cgroup v2 pressure stall information (`cpu.pressure`, `memory.pressure`, `io.pressure`).
    pub cpu_psi: Option<cri::PsiStats>,
    pub mem_psi: Option<cri::PsiStats>,
    pub io_psi: Option<cri::PsiStats>,
    /// cgroup v2 `memory.swap.current` and `memory.swap.max` (None: no limit).
    pub swap_usage: Option<u64>,
    pub swap_limit: Option<u64>,
    /// Block I/O per device (v2 `io.stat`, v1 blkio's throttle counters).
    pub io: Vec<super::io::IoDevice>,
}

/// A `*.pressure` file: `some avg10=… avg60=… avg300=… total=<µs>` and the same for `full`.
fn parse_psi(text: &str) -> Option<cri::PsiStats> {
    let line = |kind: &str| {
        let l = text.lines().find(|l| l.starts_with(kind))?;
        let mut d = cri::PsiData::default();
        for kv in l.split_whitespace().skip(1) {
            let (k, v) = kv.split_once('=')?;
            match k {
                "avg10" => d.avg10 = v.parse().ok()?,
                "avg60" => d.avg60 = v.parse().ok()?,
                "avg300" => d.avg300 = v.parse().ok()?,
                "total" => d.total = v.parse::<u64>().ok()?.saturating_mul(1000),
                _ => {}
            }
        }
        Some(d)
    };
    let some = line("some ")?;
    // The root cgroup's cpu.pressure had no `full` line before Linux 5.13.
    Some(cri::PsiStats {
        full: Some(line("full ").unwrap_or_default()),
        some: Some(some),
    })
}

fn read_psi(dir: &Path, file: &str) -> Option<cri::PsiStats> {
    parse_psi(&std::fs::read_to_string(dir.join(file)).ok()?)
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

/// Lines of `file` in cgroup `dir` and its children (a pod cgroup holds no task itself).
fn count_lines(dir: &Path, file: &str) -> Option<u64> {
    let mut n = std::fs::read_to_string(dir.join(file))
        .ok()?
        .lines()
        .count() as u64;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            n += count_lines(&e.path(), file).unwrap_or(0);
        }
    }
    Some(n)
}

fn v1_dir(root: &Path, controller: &str, path: &str) -> PathBuf {
    root.join(controller).join(path.trim_start_matches('/'))
}

/// Read a cgroup by its `cgroupsPath` (`/kubepods/pod1/<id>`, or the systemd driver's
/// `<slice>:crius:<id>`) or a pod's cgroup parent (a path, or a slice).
pub fn sample(path: &str) -> CgroupSample {
    sample_in(Path::new(ROOT), &crius_sandboxer::cgroup::fs_path(path))
}

/// [`sample`] under another cgroupfs root (tests); v2 when `root` is unified.
fn sample_in(root: &Path, path: &str) -> CgroupSample {
    if root.join("cgroup.controllers").exists() {
        let d = root.join(path.trim_start_matches('/'));
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
            cpu_user_ns: stat_field(&cpu, "user_usec").map(|u| u * 1000),
            cpu_system_ns: stat_field(&cpu, "system_usec").map(|u| u * 1000),
            mem_cache: stat_field(&mem, "file"),
            mem_failcnt: std::fs::read_to_string(d.join("memory.events"))
                .ok()
                .and_then(|t| stat_field(&t, "max")),
            processes: count_lines(&d, "cgroup.procs"),
            threads: count_lines(&d, "cgroup.threads"),
            cpu_psi: read_psi(&d, "cpu.pressure"),
            mem_psi: read_psi(&d, "memory.pressure"),
            io_psi: read_psi(&d, "io.pressure"),
            swap_usage: read_u64(&d.join("memory.swap.current")),
            swap_limit: read_u64(&d.join("memory.swap.max")),
            io: super::io::read_v2(&d)
                .map(super::io::named)
                .unwrap_or_default(),
        };
    }
    let cpu = v1_dir(root, "cpu,cpuacct", path);
    let cpu = if cpu.exists() {
        cpu
    } else {
        v1_dir(root, "cpuacct", path)
    };
    let m = v1_dir(root, "memory", path);
    let mem = std::fs::read_to_string(m.join("memory.stat")).unwrap_or_default();
    let usage = read_u64(&m.join("memory.usage_in_bytes"));
    let inactive = stat_field(&mem, "total_inactive_file").unwrap_or(0);
    // cpuacct.stat is in USER_HZ ticks (100 on Linux): the fallback for kernels
    // without cpuacct.usage_user/usage_sys.
    let ticks = std::fs::read_to_string(cpu.join("cpuacct.stat")).unwrap_or_default();
    let tick_ns = |k: &str| stat_field(&ticks, k).map(|t| t * 10_000_000);
    CgroupSample {
        cpu_ns: read_u64(&cpu.join("cpuacct.usage")),
        mem_usage: usage,
        mem_working_set: usage.map(|u| u.saturating_sub(inactive)),
        mem_rss: stat_field(&mem, "total_rss"),
        mem_limit: read_u64(&m.join("memory.limit_in_bytes")),
        pgfault: stat_field(&mem, "total_pgfault"),
        pgmajfault: stat_field(&mem, "total_pgmajfault"),
        pids: read_u64(&v1_dir(root, "pids", path).join("pids.current")),
        cpu_user_ns: read_u64(&cpu.join("cpuacct.usage_user")).or_else(|| tick_ns("user")),
        cpu_system_ns: read_u64(&cpu.join("cpuacct.usage_sys")).or_else(|| tick_ns("system")),
        mem_cache: stat_field(&mem, "total_cache"),
        mem_failcnt: read_u64(&m.join("memory.failcnt")),
        processes: count_lines(&m, "cgroup.procs"),
        threads: count_lines(&m, "tasks"),
        io: super::io::read_v1(&v1_dir(root, "blkio", path))
            .map(super::io::named)
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// One interface's line of `/proc/<pid>/net/dev`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IfCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Interfaces of a `/proc/<pid>/net/dev` text, `lo` left out.
pub fn net_dev_counters(text: &str) -> Vec<IfCounters> {
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
            Some(IfCounters {
                name: name.to_string(),
                rx_bytes: f[0],
                rx_packets: f[1],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_packets: f[9],
                tx_errors: f[10],
                tx_dropped: f[11],
            })
        })
        .collect()
}

/// Interface counters of the netns process `pid` is in.
pub fn read_net_dev(pid: u32) -> Option<Vec<IfCounters>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    Some(net_dev_counters(&text))
}

/// Per-interface counters of `/proc/<pid>/net/dev` (the netns `pid` lives in), `lo` left out.
pub fn parse_net_dev(text: &str) -> Vec<cri::NetworkInterfaceUsage> {
    net_dev_counters(text)
        .into_iter()
        .map(|c| cri::NetworkInterfaceUsage {
            name: c.name,
            rx_bytes: u(Some(c.rx_bytes)),
            rx_errors: u(Some(c.rx_errors)),
            tx_bytes: u(Some(c.tx_bytes)),
            tx_errors: u(Some(c.tx_errors)),
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
        let c = net_dev_counters(t);
        assert_eq!((c[0].rx_packets, c[0].tx_packets), (5, 7));
        assert_eq!(
            (c[0].rx_errors, c[0].rx_dropped, c[0].tx_dropped),
            (1, 0, 0)
        );
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        std::fs::create_dir_all(dir).unwrap();
        for (f, t) in files {
            std::fs::write(dir.join(f), t).unwrap();
        }
    }

    #[test]
    fn sample_v2() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), &[("cgroup.controllers", "cpu memory pids")]);
        write(
            &root.path().join("kubepods/pod1/c1"),
            &[
                (
                    "cpu.stat",
                    "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
                ),
                ("memory.stat", "anon 300\nfile 700\ninactive_file 200\n"),
                ("memory.current", "1000\n"),
                ("memory.max", "max\n"),
                ("memory.events", "low 0\nhigh 0\nmax 4\noom 0\noom_kill 0\n"),
                ("pids.current", "3\n"),
                ("cgroup.procs", "10\n11\n"),
                ("cgroup.threads", "10\n11\n12\n"),
            ],
        );
        let s = sample_in(root.path(), "/kubepods/pod1/c1");
        assert_eq!(s.cpu_ns, Some(2_500_000_000));
        assert_eq!(
            (s.cpu_user_ns, s.cpu_system_ns),
            (Some(2_000_000_000), Some(500_000_000))
        );
        assert_eq!((s.mem_usage, s.mem_working_set), (Some(1000), Some(800)));
        assert_eq!(
            (s.mem_rss, s.mem_cache, s.mem_limit),
            (Some(300), Some(700), None)
        );
        assert_eq!(s.mem_failcnt, Some(4));
        assert_eq!(
            (s.processes, s.threads, s.pids),
            (Some(2), Some(3), Some(3))
        );
    }

    #[test]
    fn sample_v1() {
        let root = tempfile::tempdir().unwrap();
        write(
            &root.path().join("cpu,cpuacct/kubepods/c1"),
            &[
                ("cpuacct.usage", "3000000000\n"),
                ("cpuacct.stat", "user 150\nsystem 50\n"),
            ],
        );
        write(
            &root.path().join("memory/kubepods/c1"),
            &[
                (
                    "memory.stat",
                    "total_rss 300\ntotal_cache 700\ntotal_inactive_file 100\n",
                ),
                ("memory.usage_in_bytes", "1000\n"),
                ("memory.limit_in_bytes", "67108864\n"),
                ("memory.failcnt", "2\n"),
                ("cgroup.procs", "10\n"),
                ("tasks", "10\n11\n"),
            ],
        );
        write(
            &root.path().join("memory/kubepods/c1/child"),
            &[("cgroup.procs", "12\n"), ("tasks", "12\n")],
        );
        let s = sample_in(root.path(), "/kubepods/c1");
        assert_eq!(s.cpu_ns, Some(3_000_000_000));
        // No cpuacct.usage_user here: USER_HZ ticks of cpuacct.stat.
        assert_eq!(
            (s.cpu_user_ns, s.cpu_system_ns),
            (Some(1_500_000_000), Some(500_000_000))
        );
        assert_eq!(
            (s.mem_working_set, s.mem_cache, s.mem_limit),
            (Some(900), Some(700), Some(64 << 20))
        );
        assert_eq!(
            (s.mem_failcnt, s.processes, s.threads),
            (Some(2), Some(2), Some(3))
        );
    }

    #[test]
    fn psi_files() {
        let t = "some avg10=1.50 avg60=0.25 avg300=0.00 total=1234\nfull avg10=0.50 avg60=0.00 avg300=0.00 total=100\n";
        let p = parse_psi(t).expect("psi");
        let some = p.some.expect("some");
        assert_eq!((some.avg10, some.avg60, some.total), (1.5, 0.25, 1_234_000));
        assert_eq!(p.full.expect("full").total, 100_000);
        assert!(parse_psi("").is_none());
    }

    #[test]
    fn stat_fields() {
        let t = "cache 10\nrss 20\ntotal_rss 30\ntotal_inactive_file 5\n";
        assert_eq!(stat_field(t, "total_rss"), Some(30));
        assert_eq!(stat_field(t, "rss"), Some(20));
        assert_eq!(stat_field(t, "nope"), None);
    }
}
