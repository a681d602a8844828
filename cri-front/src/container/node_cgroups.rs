//! What this node's cgroups can apply, for CRI resources that only some hosts honour: the
//! `unified` map needs cgroup v2, a swap limit needs swap accounting. Asked once (as
//! containerd does), refused at CreateContainer rather than dropped or failing in runc.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crius_proto::runtime as cri;

use crate::error::{Error, Result};

const ROOT: &str = "/sys/fs/cgroup";

/// runc's test: /sys/fs/cgroup is itself the cgroup2 mount (not a v1 tmpfs with one beside it).
pub fn unified() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| Path::new(ROOT).join("cgroup.controllers").exists())
}

/// cgroup v1's `memory.memsw.*`, or v2's `memory.swap.max` in criusd's own cgroup (the root
/// has none), as containerd looks.
pub fn swap_accounting() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| {
        if !unified() {
            return Path::new(ROOT)
                .join("memory/memory.memsw.limit_in_bytes")
                .exists();
        }
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
            })
            .unwrap_or_default();
        PathBuf::from(ROOT)
            .join(own.trim_start_matches('/'))
            .join("memory.swap.max")
            .exists()
    })
}

/// Refuse what this node cannot apply, and swap limits that cannot be right.
pub fn check(r: &cri::LinuxContainerResources) -> Result<()> {
    if !r.unified.is_empty() && !unified() {
        return Err(Error::InvalidArgument(format!(
            "unified cgroup settings {:?} need cgroup v2; this node runs cgroup v1",
            r.unified.keys().collect::<Vec<_>>()
        )));
    }
    let swap = r.memory_swap_limit_in_bytes;
    if swap != 0 {
        if swap < -1 {
            return Err(Error::InvalidArgument(format!(
                "memory_swap_limit_in_bytes {swap} is negative (-1 is unlimited)"
            )));
        }
        if swap > 0 && r.memory_limit_in_bytes > 0 && swap < r.memory_limit_in_bytes {
            return Err(Error::InvalidArgument(format!(
                "memory_swap_limit_in_bytes {swap} is below memory_limit_in_bytes {} (it is memory + swap)",
                r.memory_limit_in_bytes
            )));
        }
        if !swap_accounting() {
            return Err(Error::InvalidArgument(format!(
                "memory_swap_limit_in_bytes {swap}: this node's kernel has no swap accounting"
            )));
        }
    }
    Ok(())
}
