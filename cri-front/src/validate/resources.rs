//! LinuxContainerResources (CreateContainer, UpdateContainerResources): figures the kernel
//! would refuse are refused here, with a message saying which, instead of runc's cgroup write
//! failing half-way through an update.

use std::sync::OnceLock;

use crius_proto::runtime as cri;

use super::text::{line, plain, Check};

/// Below this a container cannot start (runc, its init and the process need pages of their
/// own); Docker's floor for the same field.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// cgroup v1 cpu.shares (and the v2 weight it is converted to) range.
const SHARES: std::ops::RangeInclusive<i64> = 2..=262_144;
/// CFS period range, in microseconds.
const PERIOD: std::ops::RangeInclusive<i64> = 1_000..=1_000_000;
/// Smallest CFS quota, in microseconds.
const MIN_QUOTA: i64 = 1_000;
/// Largest CFS quota we pass on: 4096 CPUs' worth of the longest period (the kernel's own bound
/// is far above any machine; a larger figure is a mistake, which the kernel refuses with EINVAL).
const MAX_QUOTA: i64 = 4096 * 1_000_000;
/// cgroup v2 controllers a `unified` key may name.
const CONTROLLERS: &[&str] = &[
    "cpu", "cpuset", "memory", "io", "pids", "hugetlb", "rdma", "misc",
];

/// What the host allows: the CPUs and memory nodes that exist, and whether cgroups are v2.
#[derive(Debug, Clone, Copy)]
pub struct Host {
    /// Highest CPU number (`/sys/devices/system/cpu/possible`).
    pub max_cpu: u32,
    /// Highest memory node number (`/sys/devices/system/node/possible`).
    pub max_node: u32,
    /// `/sys/fs/cgroup` is the cgroup v2 hierarchy (`unified` resources can apply).
    pub unified: bool,
}

impl Host {
    /// This machine, read once.
    pub fn this() -> Host {
        static HOST: OnceLock<Host> = OnceLock::new();
        *HOST.get_or_init(|| {
            let highest = |p: &str| {
                std::fs::read_to_string(p)
                    .ok()
                    .and_then(|s| cpuset_max(s.trim()).ok().flatten())
            };
            Host {
                max_cpu: highest("/sys/devices/system/cpu/possible").unwrap_or(u32::MAX),
                max_node: highest("/sys/devices/system/node/possible").unwrap_or(0),
                unified: std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
            }
        })
    }
}

/// Parse a cpuset list (`0-3,5,7-8`); its highest number, None for an empty list.
pub fn cpuset_max(s: &str) -> Result<Option<u32>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let num = |n: &str| -> Result<u32, String> {
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{n:?} is not a number"));
        }
        n.parse().map_err(|_| format!("{n:?} is too large"))
    };
    let mut max = 0;
    for item in s.split(',') {
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(item)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!("range {item:?} runs backwards"));
        }
        max = max.max(hi);
    }
    Ok(Some(max))
}

fn cpuset(what: &str, s: &str, highest: u32) -> Check {
    plain(what, s, 4096)?;
    match cpuset_max(s) {
        Err(e) => Err(format!("{what} {s:?}: {e}")),
        Ok(Some(m)) if m > highest => Err(format!(
            "{what} {s:?} names {m}, but this host's highest is {highest}"
        )),
        Ok(_) => Ok(()),
    }
}

fn hugepage_size(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && ["KB", "MB", "GB", "TB", "PB"].contains(&unit)
}

/// Every figure of `r`, against `host`.
pub fn check(r: &cri::LinuxContainerResources, host: &Host) -> Check {
    if r.cpu_shares != 0 && !SHARES.contains(&r.cpu_shares) {
        return Err(format!(
            "cpu_shares {} is outside {}..={}",
            r.cpu_shares,
            SHARES.start(),
            SHARES.end()
        ));
    }
    if r.cpu_period != 0 && !PERIOD.contains(&r.cpu_period) {
        return Err(format!(
            "cpu_period {} is outside {}..={} µs",
            r.cpu_period,
            PERIOD.start(),
            PERIOD.end()
        ));
    }
    if r.cpu_quota != 0 && r.cpu_quota != -1 && !(MIN_QUOTA..=MAX_QUOTA).contains(&r.cpu_quota) {
        return Err(format!(
            "cpu_quota {} must be -1 (none) or {MIN_QUOTA}..={MAX_QUOTA} µs",
            r.cpu_quota
        ));
    }
    if r.memory_limit_in_bytes < 0 {
        return Err(format!(
            "memory_limit_in_bytes {} is negative",
            r.memory_limit_in_bytes
        ));
    }
    if r.memory_limit_in_bytes != 0 && r.memory_limit_in_bytes < MIN_MEMORY {
        return Err(format!(
            "memory_limit_in_bytes {} is below the minimum of {MIN_MEMORY}",
            r.memory_limit_in_bytes
        ));
    }
    let swap = r.memory_swap_limit_in_bytes;
    if swap < -1 || (swap > 0 && swap < r.memory_limit_in_bytes) {
        return Err(format!(
            "memory_swap_limit_in_bytes {swap} must be -1 (unlimited), 0 (unset) or at least the memory limit"
        ));
    }
    if !(-1000..=1000).contains(&r.oom_score_adj) {
        return Err(format!(
            "oom_score_adj {} is outside -1000..=1000",
            r.oom_score_adj
        ));
    }
    cpuset("cpuset_cpus", &r.cpuset_cpus, host.max_cpu)?;
    cpuset("cpuset_mems", &r.cpuset_mems, host.max_node)?;
    for h in &r.hugepage_limits {
        if !hugepage_size(&h.page_size) {
            return Err(format!(
                "hugepage page_size {:?} is not a size like 2MB or 1GB",
                h.page_size
            ));
        }
    }
    if !r.unified.is_empty() && !host.unified {
        return Err(
            "unified (cgroup v2) resources were given, but this host's cgroups are v1".into(),
        );
    }
    for (k, v) in &r.unified {
        let controller = k.split_once('.').map(|(c, _)| c);
        match controller {
            Some(c) if CONTROLLERS.contains(&c) && !k.contains('/') && !k.ends_with('.') => {}
            _ => {
                return Err(format!(
                    "unified key {k:?} is not a file of a cgroup v2 controller ({})",
                    CONTROLLERS.join(", ")
                ))
            }
        }
        line(&format!("unified {k}"), v, 4096)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Host = Host {
        max_cpu: 3,
        max_node: 0,
        unified: false,
    };

    fn ok(r: cri::LinuxContainerResources) -> bool {
        check(&r, &HOST).is_ok()
    }

    #[test]
    fn cpusets() {
        assert_eq!(cpuset_max("0-3,5"), Ok(Some(5)));
        assert_eq!(cpuset_max(""), Ok(None));
        for bad in ["a", "1-", "-1", "3-1", "1,,2", " 1", "99999999999"] {
            assert!(cpuset_max(bad).is_err(), "{bad}");
        }
        let r = |c: &str| cri::LinuxContainerResources {
            cpuset_cpus: c.into(),
            ..Default::default()
        };
        assert!(ok(r("0-3")));
        assert!(!ok(r("0-100000")));
        assert!(!ok(r("garbage")));
    }

    #[test]
    fn figures() {
        let d = cri::LinuxContainerResources::default;
        assert!(ok(d()));
        assert!(!ok(cri::LinuxContainerResources {
            memory_limit_in_bytes: 1,
            ..d()
        }));
        assert!(ok(cri::LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            cpu_shares: 512,
            cpu_quota: 50_000,
            cpu_period: 100_000,
            ..d()
        }));
        assert!(!ok(cri::LinuxContainerResources {
            cpu_shares: 1,
            ..d()
        }));
        assert!(!ok(cri::LinuxContainerResources {
            cpu_quota: 5,
            ..d()
        }));
        assert!(!ok(cri::LinuxContainerResources {
            cpu_quota: i64::MAX,
            ..d()
        }));
        assert!(!ok(cri::LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            memory_swap_limit_in_bytes: 1 << 20,
            ..d()
        }));
        assert!(!ok(cri::LinuxContainerResources {
            hugepage_limits: vec![cri::HugepageLimit {
                page_size: "2XB".into(),
                limit: 1,
            }],
            ..d()
        }));
    }

    #[test]
    fn unified_keys() {
        let r = |k: &str| cri::LinuxContainerResources {
            unified: [(k.to_string(), "1".to_string())].into(),
            ..Default::default()
        };
        assert!(check(&r("memory.high"), &HOST).is_err(), "v1 host");
        let v2 = Host {
            unified: true,
            ..HOST
        };
        assert!(check(&r("memory.high"), &v2).is_ok());
        for bad in [
            "bogus.key",
            "cgroup.procs",
            "memory",
            "memory./x",
            "../memory.max",
        ] {
            assert!(check(&r(bad), &v2).is_err(), "{bad}");
        }
    }
}
