//! One cgroup's raw figures, read from the files runc set up (cgroup v1, or v2 when the host
//! is unified): CPU, memory, pids, processes and threads, PSI, swap, block I/O.

use std::path::{Path, PathBuf};

use crius_proto::runtime as cri;

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

#[cfg(test)]
mod tests {
    use super::*;

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
