//! Pod-level resources on the pod's own cgroup (its cgroup parent): LinuxPodSandboxConfig's
//! `resources` plus `overhead` at RunPodSandbox, and again at UpdatePodSandboxResources.
//! - cgroupfs, v2: `cpu.max`, `cpu.weight`, `memory.max` of `/sys/fs/cgroup/<parent>`;
//!   v1: `cpu.cfs_period_us`/`cpu.cfs_quota_us`, `cpu.shares`, `memory.limit_in_bytes`.
//! - systemd: the pod's slice's unit properties (`SetUnitProperties`, runtime), through systemd's
//!   D-Bus API with zbus — systemd owns a slice's files and would rewrite hand-written ones.
//!
//! kubelet, which makes the pod's cgroup, writes the same figures (its pod limit is the
//! containers' limits plus the overhead); crius applies them as well, so a pod run without
//! kubelet (crictl) is bounded the same way. containerd only passes them on as annotations.
//! A pod without a cgroup parent of its own (the configured default, shared) gets nothing.

use std::path::{Path, PathBuf};

use zbus::{zvariant::Value, Connection, Proxy};

use crate::{cgroup::CgroupDriver, pod::PodResources};

/// The figures for the pod's cgroup; None: leave that part as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodLimits {
    /// (quota, period) in µs.
    pub cpu_max: Option<(u64, u64)>,
    pub cpu_shares: Option<u64>,
    pub memory_max: Option<u64>,
}

impl PodLimits {
    pub fn is_empty(&self) -> bool {
        *self == PodLimits::default()
    }
}

/// The pod's limits: its resources plus its overhead, for the parts the resources bound (an
/// unbounded pod stays unbounded, as kubelet sizes it).
pub fn limits(resources: Option<&PodResources>, overhead: Option<&PodResources>) -> PodLimits {
    let Some(r) = resources else {
        return PodLimits::default();
    };
    let extra = |f: fn(&PodResources) -> i64| overhead.map_or(0, f).max(0) as u64;
    let period = if r.cpu_period > 0 {
        r.cpu_period as u64
    } else {
        100_000
    };
    PodLimits {
        cpu_max: (r.cpu_quota > 0).then(|| (r.cpu_quota as u64 + extra(|o| o.cpu_quota), period)),
        cpu_shares: (r.cpu_shares > 0).then(|| r.cpu_shares as u64 + extra(|o| o.cpu_shares)),
        memory_max: (r.memory_limit_in_bytes > 0)
            .then(|| r.memory_limit_in_bytes as u64 + extra(|o| o.memory_limit_in_bytes)),
    }
}

/// runc's conversion of v1 cpu shares [2..262144] to a v2 weight [1..10000].
fn weight(shares: u64) -> u64 {
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// Writes `limits` on the pod's cgroup `parent` under `driver`; an error says which file or
/// property could not be set.
pub async fn apply(driver: CgroupDriver, parent: &str, limits: &PodLimits) -> Result<(), String> {
    if limits.is_empty() {
        return Ok(());
    }
    match driver {
        CgroupDriver::Systemd => {
            let slice = parent
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("");
            set_slice_properties(slice, limits).await
        }
        CgroupDriver::Cgroupfs => {
            let rel = parent.trim_matches('/');
            let root = Path::new("/sys/fs/cgroup");
            if root.join("cgroup.controllers").exists() {
                enable_controllers(root, rel)?;
                write_v2(&root.join(rel), limits)
            } else {
                write_v1(root, rel, limits)
            }
        }
    }
}

fn write(path: PathBuf, value: &str) -> Result<(), String> {
    std::fs::write(&path, value).map_err(|e| format!("write {value:?} to {}: {e}", path.display()))
}

/// v2 shows a controller's files in a cgroup only when its parent delegates the controller:
/// every level above the pod's cgroup gets `+cpu +memory`, as runc does for the cgroups it makes.
fn enable_controllers(root: &Path, rel: &str) -> Result<(), String> {
    let mut dir = root.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        let file = dir.join("cgroup.subtree_control");
        let on = std::fs::read_to_string(&file).unwrap_or_default();
        if !(on.split_whitespace().any(|c| c == "cpu")
            && on.split_whitespace().any(|c| c == "memory"))
        {
            write(file, "+cpu +memory")?;
        }
        dir.push(part);
    }
    Ok(())
}

fn write_v2(dir: &Path, l: &PodLimits) -> Result<(), String> {
    if let Some((quota, period)) = l.cpu_max {
        write(dir.join("cpu.max"), &format!("{quota} {period}"))?;
    }
    if let Some(s) = l.cpu_shares {
        write(dir.join("cpu.weight"), &weight(s).to_string())?;
    }
    if let Some(m) = l.memory_max {
        write(dir.join("memory.max"), &m.to_string())?;
    }
    Ok(())
}

fn write_v1(root: &Path, rel: &str, l: &PodLimits) -> Result<(), String> {
    let cpu = root.join("cpu").join(rel);
    if let Some((quota, period)) = l.cpu_max {
        write(cpu.join("cpu.cfs_period_us"), &period.to_string())?;
        write(cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
    }
    if let Some(s) = l.cpu_shares {
        write(cpu.join("cpu.shares"), &s.to_string())?;
    }
    if let Some(m) = l.memory_max {
        write(
            root.join("memory").join(rel).join("memory.limit_in_bytes"),
            &m.to_string(),
        )?;
    }
    Ok(())
}

/// The limits as systemd unit properties (runc's systemd driver's conversions).
fn properties(l: &PodLimits) -> Vec<(&'static str, Value<'static>)> {
    let mut props = Vec::new();
    if let Some((quota, period)) = l.cpu_max {
        // systemd keeps the quota in 10 ms steps per second: round up, as runc does.
        let per_sec = (quota * 1_000_000).div_ceil(period).div_ceil(10_000) * 10_000;
        props.push(("CPUQuotaPerSecUSec", Value::from(per_sec)));
        props.push(("CPUQuotaPeriodUSec", Value::from(period)));
    }
    if let Some(s) = l.cpu_shares {
        props.push(("CPUWeight", Value::from(weight(s))));
    }
    if let Some(m) = l.memory_max {
        props.push(("MemoryMax", Value::from(m)));
    }
    props
}

async fn set_slice_properties(slice: &str, l: &PodLimits) -> Result<(), String> {
    let err = |e: zbus::Error| format!("systemd: set properties of {slice}: {e}");
    let conn = Connection::system().await.map_err(err)?;
    let manager = Proxy::new(
        &conn,
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
    )
    .await
    .map_err(err)?;
    manager
        .call::<_, _, ()>("SetUnitProperties", &(slice, true, properties(l)))
        .await
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(quota: i64, shares: i64, mem: i64) -> PodResources {
        PodResources {
            cpu_period: 100_000,
            cpu_quota: quota,
            cpu_shares: shares,
            memory_limit_in_bytes: mem,
            ..Default::default()
        }
    }

    #[test]
    fn resources_plus_overhead() {
        let l = limits(
            Some(&res(50_000, 512, 128 << 20)),
            Some(&res(10_000, 0, 16 << 20)),
        );
        assert_eq!(l.cpu_max, Some((60_000, 100_000)));
        assert_eq!(l.cpu_shares, Some(512));
        assert_eq!(l.memory_max, Some(144 << 20));
        // Unbounded parts stay unbounded; overhead alone bounds nothing.
        let l = limits(Some(&res(-1, 0, 0)), Some(&res(10_000, 0, 16 << 20)));
        assert!(l.is_empty(), "{l:?}");
        assert!(limits(None, Some(&res(10_000, 2, 1))).is_empty());
    }

    #[test]
    fn systemd_properties() {
        let l = PodLimits {
            cpu_max: Some((60_000, 100_000)),
            cpu_shares: Some(2),
            memory_max: Some(1 << 30),
        };
        let p = properties(&l);
        assert_eq!(p[0], ("CPUQuotaPerSecUSec", Value::from(600_000u64)));
        assert_eq!(p[1], ("CPUQuotaPeriodUSec", Value::from(100_000u64)));
        assert_eq!(p[2], ("CPUWeight", Value::from(1u64)));
        assert_eq!(p[3], ("MemoryMax", Value::from(1u64 << 30)));
    }
}
