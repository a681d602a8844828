//! cgroup files the shim touches itself: the fast path's cgroups, and stats
//! for every task. cgroup v1 or v2 is detected at runtime from mountinfo.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use containerd_shim::protos::{
    cgroups::metrics as v1, cgroups_v2::metrics as v2, protobuf::well_known_types::any::Any,
};

use crate::{
    error::{Error, Result},
    fastpath::plan::Resources,
};

/// The cgroup hierarchies mounted on this machine.
#[derive(Debug, Clone)]
pub enum Mode {
    /// v1 hierarchies: (controllers, mountpoint). A hybrid v2 mount is ignored.
    V1(Vec<(Vec<String>, PathBuf)>),
    /// The unified v2 tree.
    V2(PathBuf),
}

/// The host's hierarchies, read once per shim: they change only with a reboot, and mountinfo
/// grows with every pod's mounts while each create, OOM watch and Stats call needs the mode.
pub fn mode() -> Result<&'static Mode> {
    static MODE: OnceLock<Mode> = OnceLock::new();
    if let Some(m) = MODE.get() {
        return Ok(m);
    }
    let text = fs::read_to_string("/proc/self/mountinfo").map_err(Error::io("read mountinfo"))?;
    Ok(MODE.get_or_init(|| parse_mode(&text)))
}

fn parse_mode(mountinfo: &str) -> Mode {
    let mut v1 = Vec::new();
    let mut v2 = None;
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mountpoint) = pre.split(' ').nth(4) else {
            continue;
        };
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or("");
        let opts = post.nth(1).unwrap_or("");
        match fstype {
            "cgroup" => {
                let ctrls = opts
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro"
                                | "xattr"
                                | "noprefix"
                                | "clone_children"
                                | "cpuset_v2_mode"
                        ) && !o.contains('=')
                    })
                    .map(str::to_string)
                    .collect::<Vec<_>>();
                let ctrls = if ctrls.is_empty() {
                    opts.split(',')
                        .filter(|o| o.starts_with("name="))
                        .map(str::to_string)
                        .collect()
                } else {
                    ctrls
                };
                v1.push((ctrls, PathBuf::from(mountpoint)));
            }
            "cgroup2" => v2 = Some(PathBuf::from(mountpoint)),
            _ => {}
        }
    }
    match (v1.is_empty(), v2) {
        (true, Some(p)) => Mode::V2(p),
        _ => Mode::V1(v1),
    }
}

fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let path = dir.join(file);
    fs::write(&path, value).map_err(Error::io(format!("write {value:?} to {}", path.display())))
}

fn has(ctrls: &[String], c: &str) -> bool {
    ctrls.iter().any(|x| x == c)
}

/// Creates the cgroup `path` in every hierarchy and applies `res`.
/// Returns the directories, first the one used for pids/freezing. On an error it removes the
/// directories it made.
pub fn setup(path: &str, res: &Resources) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    match setup_into(path, res, &mut dirs) {
        Ok(()) => Ok(dirs),
        Err(e) => {
            // Fresh and empty: rmdir succeeds at once.
            for d in dirs.iter().rev() {
                let _ = fs::remove_dir(d);
            }
            Err(e)
        }
    }
}

/// Moves `pid` into each of `dirs`.
pub fn join(dirs: &[PathBuf], pid: u32) -> Result<()> {
    let pid = pid.to_string();
    dirs.iter().try_for_each(|d| write(d, "cgroup.procs", &pid))
}

fn setup_into(path: &str, res: &Resources, dirs: &mut Vec<PathBuf>) -> Result<()> {
    let rel = path.trim_start_matches('/');
    match mode()? {
        Mode::V1(hier) => {
            for (ctrls, mnt) in hier {
                let dir = mnt.join(rel);
                fs::create_dir_all(&dir).map_err(Error::io(format!("mkdir {}", dir.display())))?;
                dirs.push(dir.clone());
                if has(ctrls, "cpuset") {
                    init_cpuset(mnt, rel)?;
                }
                if has(ctrls, "devices") {
                    for (allow, rule) in &res.devices {
                        write(
                            &dir,
                            if *allow {
                                "devices.allow"
                            } else {
                                "devices.deny"
                            },
                            rule,
                        )?;
                    }
                }
                if has(ctrls, "cpu") {
                    if let Some(s) = res.cpu_shares {
                        write(&dir, "cpu.shares", &s.to_string())?;
                    }
                    if let Some(p) = res.cpu_period {
                        write(&dir, "cpu.cfs_period_us", &p.to_string())?;
                    }
                    if let Some(q) = res.cpu_quota {
                        write(&dir, "cpu.cfs_quota_us", &q.to_string())?;
                    }
                }
                if has(ctrls, "memory") {
                    if let Some(l) = res.memory_limit {
                        write(&dir, "memory.limit_in_bytes", &l.to_string())?;
                    }
                }
                if has(ctrls, "pids") {
                    if let Some(l) = res.pids_limit {
                        let v = if l <= 0 {
                            "max".to_string()
                        } else {
                            l.to_string()
                        };
                        write(&dir, "pids.max", &v)?;
                    }
                }
            }
        }
        Mode::V2(mnt) => {
            let dir = mnt.join(rel);
            fs::create_dir_all(&dir).map_err(Error::io(format!("mkdir {}", dir.display())))?;
            dirs.push(dir.clone());
            if let Some(s) = res.cpu_shares {
                write(&dir, "cpu.weight", &shares_to_weight(s).to_string())?;
            }
            if res.cpu_quota.is_some() || res.cpu_period.is_some() {
                let q = res
                    .cpu_quota
                    .filter(|q| *q > 0)
                    .map_or("max".to_string(), |q| q.to_string());
                write(
                    &dir,
                    "cpu.max",
                    &format!("{q} {}", res.cpu_period.unwrap_or(100_000)),
                )?;
            }
            if let Some(l) = res.memory_limit {
                write(&dir, "memory.max", &l.to_string())?;
            }
            if let Some(l) = res.pids_limit {
                write(
                    &dir,
                    "pids.max",
                    &if l <= 0 { "max".into() } else { l.to_string() },
                )?;
            }
        }
    }
    // Freezing and listing use the freezer hierarchy on v1 when there is one.
    if let Some(i) = dirs
        .iter()
        .position(|d| d.components().any(|c| c.as_os_str() == "freezer"))
    {
        dirs.swap(0, i);
    }
    Ok(())
}

/// runc's conversion of v1 cpu shares [2..262144] to a v2 weight [1..10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

/// The unified-tree directory `pid` is in (cgroup v2 only), as its /proc/<pid>/cgroup says.
pub fn v2_dir_of(pid: u32) -> Result<PathBuf> {
    let Mode::V2(mnt) = mode()? else {
        return Err(Error::FailedPrecondition("not a cgroup v2 host".into()));
    };
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(Error::io(format!("read /proc/{pid}/cgroup")))?;
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| Error::Other(format!("no v2 entry in /proc/{pid}/cgroup")))?;
    Ok(mnt.join(rel.trim().trim_start_matches('/')))
}

/// Whether this host has the unified tree only (the systemd fast path needs it).
pub fn is_v2() -> bool {
    matches!(mode(), Ok(Mode::V2(_)))
}

/// A new v1 cpuset cgroup admits no task until it has cpus and mems: copy
/// them down from the parent at every level, as runc does.
fn init_cpuset(mnt: &Path, rel: &str) -> Result<()> {
    let mut parent = mnt.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        let dir = parent.join(part);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let cur = fs::read_to_string(dir.join(file)).unwrap_or_default();
            if cur.trim().is_empty() {
                let from = fs::read_to_string(parent.join(file))
                    .map_err(Error::io(format!("read {}/{file}", parent.display())))?;
                write(&dir, file, from.trim())?;
            }
        }
        parent = dir;
    }
    Ok(())
}

/// Removes cgroup directories, retrying while the last process leaves.
pub async fn remove(dirs: &[PathBuf]) {
    for dir in dirs {
        for attempt in 0..20 {
            match fs::remove_dir(dir) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if attempt == 19 => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cgroup not removed")
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }
}

/// Pids in the cgroup.
pub fn procs(dir: &Path) -> Result<Vec<i32>> {
    let text = fs::read_to_string(dir.join("cgroup.procs"))
        .map_err(Error::io(format!("read {}/cgroup.procs", dir.display())))?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Freezes or thaws the cgroup (v1 freezer or v2 cgroup.freeze).
pub fn freeze(dirs: &[PathBuf], frozen: bool) -> Result<()> {
    for dir in dirs {
        if dir.join("freezer.state").exists() {
            return write(
                dir,
                "freezer.state",
                if frozen { "FROZEN" } else { "THAWED" },
            );
        }
        if dir.join("cgroup.freeze").exists() {
            return write(dir, "cgroup.freeze", if frozen { "1" } else { "0" });
        }
    }
    Err(Error::FailedPrecondition("no freezer for this task".into()))
}

fn read_u64(path: &Path) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn kv(path: &Path) -> Vec<(String, u64)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The cgroup paths of `pid` per controller ("" for v2), from /proc.
fn proc_cgroups(pid: i32) -> Result<Vec<(String, String)>> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(Error::io(format!("read /proc/{pid}/cgroup")))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect())
}

/// Metrics of the cgroup `pid` lives in, as containerd's typed Any.
pub fn stats(pid: i32) -> Result<Any> {
    stats_in(&proc_cgroups(pid)?)
}

/// Metrics of the cgroupfs path `path` (the same path in every hierarchy), e.g. a pod's parent.
pub fn stats_of_path(path: &str) -> Result<Any> {
    let cgs = [
        ("pids,cpu,cpuacct,memory".to_string(), path.to_string()),
        (String::new(), path.to_string()),
    ];
    stats_in(&cgs)
}

/// `cgs`: (controllers, path) as in /proc/<pid>/cgroup; v2's entry has no controllers.
fn stats_in(cgs: &[(String, String)]) -> Result<Any> {
    match mode()? {
        Mode::V1(hier) => {
            let dir = |c: &str| -> Option<PathBuf> {
                let (_, rel) = cgs
                    .iter()
                    .find(|(ctrls, _)| ctrls.split(',').any(|x| x == c))?;
                let (_, mnt) = hier.iter().find(|(ctrls, _)| has(ctrls, c))?;
                Some(mnt.join(rel.trim_start_matches('/')))
            };
            let mut m = v1::Metrics::new();
            if let Some(d) = dir("pids") {
                let mut p = v1::PidsStat::new();
                p.current = read_u64(&d.join("pids.current"));
                p.limit = read_u64(&d.join("pids.max"));
                m.pids = Some(p).into();
            }
            if let Some(d) = dir("cpuacct") {
                let mut u = v1::CPUUsage::new();
                u.total = read_u64(&d.join("cpuacct.usage"));
                u.user = read_u64(&d.join("cpuacct.usage_user"));
                u.kernel = read_u64(&d.join("cpuacct.usage_sys"));
                let mut c = v1::CPUStat::new();
                c.usage = Some(u).into();
                if let Some(cd) = dir("cpu") {
                    let mut t = v1::Throttle::new();
                    for (k, v) in kv(&cd.join("cpu.stat")) {
                        match k.as_str() {
                            "nr_periods" => t.periods = v,
                            "nr_throttled" => t.throttled_periods = v,
                            "throttled_time" => t.throttled_time = v,
                            _ => {}
                        }
                    }
                    c.throttling = Some(t).into();
                }
                m.cpu = Some(c).into();
            }
            if let Some(d) = dir("memory") {
                let mut s = v1::MemoryStat::new();
                for (k, v) in kv(&d.join("memory.stat")) {
                    match k.as_str() {
                        "cache" => s.cache = v,
                        "rss" => s.rss = v,
                        "mapped_file" => s.mapped_file = v,
                        "inactive_file" => s.inactive_file = v,
                        "active_file" => s.active_file = v,
                        "inactive_anon" => s.inactive_anon = v,
                        "active_anon" => s.active_anon = v,
                        "total_cache" => s.total_cache = v,
                        "total_rss" => s.total_rss = v,
                        "total_inactive_file" => s.total_inactive_file = v,
                        "hierarchical_memory_limit" => s.hierarchical_memory_limit = v,
                        _ => {}
                    }
                }
                let mut u = v1::MemoryEntry::new();
                u.usage = read_u64(&d.join("memory.usage_in_bytes"));
                u.limit = read_u64(&d.join("memory.limit_in_bytes"));
                u.max = read_u64(&d.join("memory.max_usage_in_bytes"));
                u.failcnt = read_u64(&d.join("memory.failcnt"));
                s.usage = Some(u).into();
                m.memory = Some(s).into();
            }
            Ok(containerd_shim::util::convert_to_any(Box::new(m))?)
        }
        Mode::V2(mnt) => {
            let rel = cgs
                .iter()
                .find(|(c, _)| c.is_empty())
                .map(|(_, p)| p.clone())
                .unwrap_or_default();
            let d = mnt.join(rel.trim_start_matches('/'));
            let mut m = v2::Metrics::new();
            let mut p = v2::PidsStat::new();
            p.current = read_u64(&d.join("pids.current"));
            p.limit = read_u64(&d.join("pids.max"));
            m.pids = Some(p).into();
            let mut c = v2::CPUStat::new();
            for (k, v) in kv(&d.join("cpu.stat")) {
                match k.as_str() {
                    "usage_usec" => c.usage_usec = v,
                    "user_usec" => c.user_usec = v,
                    "system_usec" => c.system_usec = v,
                    "nr_periods" => c.nr_periods = v,
                    "nr_throttled" => c.nr_throttled = v,
                    "throttled_usec" => c.throttled_usec = v,
                    _ => {}
                }
            }
            m.cpu = Some(c).into();
            let mut s = v2::MemoryStat::new();
            s.usage = read_u64(&d.join("memory.current"));
            s.usage_limit = read_u64(&d.join("memory.max"));
            for (k, v) in kv(&d.join("memory.stat")) {
                match k.as_str() {
                    "anon" => s.anon = v,
                    "file" => s.file = v,
                    _ => {}
                }
            }
            m.memory = Some(s).into();
            Ok(containerd_shim::util::convert_to_any(Box::new(m))?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_hybrid_mountinfo() {
        let mi = "\
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
32 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 25 0:29 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer";
        let Mode::V1(h) = parse_mode(mi) else {
            panic!("expected v1")
        };
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].0, vec!["cpu", "cpuacct"]);
        assert_eq!(h[1].0, vec!["name=systemd"]);
    }

    #[test]
    fn v2_mountinfo() {
        let mi = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw";
        assert!(matches!(parse_mode(mi), Mode::V2(p) if p == Path::new("/sys/fs/cgroup")));
    }
}
