//! Which sandbox specs the fast path covers, and the plan the helper follows.
//!
//! Covered: a sandbox (pause) process without terminal or stdio; namespaces
//! pid/network/ipc/uts/mount/cgroup, joined by path or new, and a new user
//! namespace with its uid/gid mappings; an absolute
//! cgroupfs `cgroupsPath` (cgroup v1 controllers, or the v2 unified tree), or a
//! systemd `slice:prefix:name` one on a v2 host (a transient scope, `systemd`),
//! with devices, cpu shares/quota/period, memory limit and pids limit; hostname;
//! sysctls; uid/gid/additional gids; capabilities; no_new_privileges;
//! rlimits; oom_score_adj; the usual CRI mounts (/proc, /dev, /sys, ...),
//! which a pause never looks at and are therefore not made. Not covered (so
//! runc runs it): a joined user namespace, time namespaces, seccomp,
//! AppArmor/SELinux labels, hooks, extra devices, other mounts, other
//! resources, systemd paths that name no scope, a terminal or stdio.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Mount destinations a pause never uses; a spec with others is not covered.
const HARMLESS_MOUNTS: &[&str] = &[
    "/proc",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/sys",
    "/sys/fs/cgroup",
    "/etc/resolv.conf",
    "/etc/hostname",
    "/etc/hosts",
    "/run",
];

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub struct Caps {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub struct Plan {
    pub rootfs: String,
    pub cwd: String,
    /// Executable, as a path inside the rootfs.
    pub exe: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// Namespaces to join: (type, path).
    pub join: Vec<(String, String)>,
    /// Namespaces to create (the user namespace apart, in `userns`).
    pub new: Vec<String>,
    /// A new user namespace, made before the other new namespaces so that it owns them.
    pub userns: Option<UserNs>,
    pub hostname: Option<String>,
    pub sysctls: Vec<(String, String)>,
    pub oom_score_adj: Option<i64>,
    /// Wait for one byte on stdin before the new namespaces: meanwhile the shim moves the
    /// helper into the pod's cgroup (cgroupfs dirs or a systemd scope; EOF: it could not). A
    /// new cgroup namespace is rooted where the helper is when it unshares, and the pause
    /// forked after it inherits the cgroup.
    #[serde(default)]
    pub await_cgroup: bool,
    pub caps: Option<Caps>,
    pub no_new_privileges: bool,
    /// (resource, soft, hard)
    pub rlimits: Vec<(i32, u64, u64)>,
}

/// A new user namespace's mappings, as `/proc/<pid>/uid_map` and `gid_map` take them.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq)]
pub struct UserNs {
    pub uid_map: String,
    pub gid_map: String,
}

/// OCI `uidMappings`/`gidMappings` as uid_map text (`container host size` lines).
fn id_map(v: Option<&Value>) -> Result<Option<String>, String> {
    let Some(list) = v.and_then(Value::as_array).filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let mut text = String::new();
    for m in list {
        let n = |k: &str| {
            m.get(k)
                .and_then(Value::as_u64)
                .filter(|n| *n <= u64::from(u32::MAX))
                .ok_or_else(|| format!("id mapping without a valid {k}"))
        };
        text.push_str(&format!(
            "{} {} {}\n",
            n("containerID")?,
            n("hostID")?,
            n("size")?
        ));
    }
    Ok(Some(text))
}

/// Resource settings the shim writes into the cgroup before the helper joins.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Resources {
    /// (allow, "type major:minor access")
    pub devices: Vec<(bool, String)>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub memory_limit: Option<i64>,
    pub pids_limit: Option<i64>,
}

fn not_covered<T>(why: impl Into<String>) -> Result<T, String> {
    Err(why.into())
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.values().all(|v| is_empty(Some(v))),
        Some(_) => false,
    }
}

/// Builds the plan for `spec`, or says why the fast path does not cover it.
/// Returns the plan, the cgroup path (absolute, cgroupfs) and its resources.
pub fn plan(spec: &Value, bundle: &Path) -> Result<(Plan, Option<String>, Resources), String> {
    let process = spec.get("process").ok_or("no process")?;
    if process.get("terminal").and_then(Value::as_bool) == Some(true) {
        return not_covered("terminal");
    }
    for key in ["apparmorProfile", "selinuxLabel"] {
        if !is_empty(process.get(key)) {
            return not_covered(key);
        }
    }
    if !is_empty(spec.get("hooks")) {
        return not_covered("hooks");
    }
    let linux = spec.get("linux").ok_or("no linux section")?;
    for key in [
        "seccomp",
        "devices",
        "mountLabel",
        "intelRdt",
        "personality",
    ] {
        if !is_empty(linux.get(key)) {
            return not_covered(format!("linux.{key}"));
        }
    }
    for m in spec
        .get("mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let dest = m.get("destination").and_then(Value::as_str).unwrap_or("");
        if !HARMLESS_MOUNTS.contains(&dest.trim_end_matches('/')) {
            return not_covered(format!("mount {dest}"));
        }
    }

    let root = spec
        .get("root")
        .and_then(|r| r.get("path"))
        .and_then(Value::as_str)
        .unwrap_or("rootfs");
    let rootfs = if Path::new(root).is_absolute() {
        PathBuf::from(root)
    } else {
        bundle.join(root)
    };

    let args: Vec<String> = strings(process.get("args"));
    if args.is_empty() {
        return not_covered("no args");
    }
    let env: Vec<String> = strings(process.get("env"));
    let cwd = process
        .get("cwd")
        .and_then(Value::as_str)
        .unwrap_or("/")
        .to_string();
    let exe = resolve_exe(&rootfs, &args[0], &cwd, &env)
        .ok_or_else(|| format!("executable {:?} not found in rootfs", args[0]))?;

    let user = process.get("user");
    let num = |k: &str| {
        user.and_then(|u| u.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0) as u32
    };
    let groups = user
        .and_then(|u| u.get("additionalGids"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .map(|g| g as u32)
                .collect()
        })
        .unwrap_or_default();
    if !is_empty(user.and_then(|u| u.get("umask"))) {
        return not_covered("umask");
    }

    let mut join = Vec::new();
    let mut new = Vec::new();
    for ns in linux
        .get("namespaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = ns.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(
            kind,
            "pid" | "network" | "ipc" | "uts" | "mount" | "cgroup" | "user"
        ) {
            return not_covered(format!("{kind} namespace"));
        }
        match ns
            .get("path")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
        {
            Some(path) if kind == "mount" || kind == "user" => {
                return not_covered(format!("join {kind} ns {path}"))
            }
            None if kind == "user" => {}
            Some(path) => join.push((kind.to_string(), path.to_string())),
            None => new.push(kind.to_string()),
        }
    }

    let new_userns = linux
        .get("namespaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|ns| ns.get("type").and_then(Value::as_str) == Some("user"));
    let userns = match (
        new_userns,
        id_map(linux.get("uidMappings"))?,
        id_map(linux.get("gidMappings"))?,
    ) {
        (false, None, None) => None,
        (true, Some(uid_map), Some(gid_map)) => Some(UserNs { uid_map, gid_map }),
        _ => return not_covered("id mappings without a new user namespace, or one without both"),
    };

    let sysctls = linux
        .get("sysctl")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();

    let resources = resources(linux.get("resources"))?;
    let cgroup_path = match linux.get("cgroupsPath").and_then(Value::as_str) {
        None | Some("") => None,
        Some(p) if crate::systemd::parse(p).is_some() => Some(p.to_string()),
        Some(p) if p.contains(':') => return not_covered(format!("systemd cgroup {p}")),
        Some(p) if !p.starts_with('/') => return not_covered(format!("relative cgroup {p}")),
        Some(p) => Some(p.to_string()),
    };
    if cgroup_path.is_none() && resources != Resources::default() {
        return not_covered("resources without cgroupsPath");
    }

    let caps = process.get("capabilities").map(caps).transpose()?;
    let rlimits = process
        .get("rlimits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(rlimit)
        .collect::<Result<Vec<_>, _>>()?;

    Ok((
        Plan {
            rootfs: rootfs.to_string_lossy().into_owned(),
            cwd,
            exe,
            args,
            env,
            uid: num("uid"),
            gid: num("gid"),
            groups,
            join,
            new,
            userns,
            hostname: spec
                .get("hostname")
                .and_then(Value::as_str)
                .filter(|h| !h.is_empty())
                .map(str::to_string),
            sysctls,
            oom_score_adj: process.get("oomScoreAdj").and_then(Value::as_i64),
            await_cgroup: false,
            caps,
            no_new_privileges: process
                .get("noNewPrivileges")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            rlimits,
        },
        cgroup_path,
        resources,
    ))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Finds `arg0` inside `rootfs` the way execvp would after chroot.
fn resolve_exe(rootfs: &Path, arg0: &str, cwd: &str, env: &[String]) -> Option<String> {
    let inside = |p: &str| rootfs.join(p.trim_start_matches('/'));
    if arg0.contains('/') {
        let p = if arg0.starts_with('/') {
            arg0.to_string()
        } else {
            format!("{}/{}", cwd.trim_end_matches('/'), arg0)
        };
        return inside(&p).exists().then_some(p);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':').filter(|d| !d.is_empty()).find_map(|dir| {
        let p = format!("{}/{}", dir.trim_end_matches('/'), arg0);
        inside(&p).is_file().then_some(p)
    })
}

fn resources(v: Option<&Value>) -> Result<Resources, String> {
    let mut r = Resources::default();
    let Some(Value::Object(map)) = v else {
        return Ok(r);
    };
    for (key, val) in map {
        match key.as_str() {
            "devices" => {
                for d in val.as_array().into_iter().flatten() {
                    let allow = d.get("allow").and_then(Value::as_bool).unwrap_or(false);
                    let kind = d.get("type").and_then(Value::as_str).unwrap_or("a");
                    let n = |k: &str| {
                        d.get(k)
                            .and_then(Value::as_i64)
                            .filter(|n| *n >= 0)
                            .map_or("*".to_string(), |n| n.to_string())
                    };
                    let access = d.get("access").and_then(Value::as_str).unwrap_or("rwm");
                    let rule = if kind == "a" {
                        "a".to_string()
                    } else {
                        format!("{kind} {}:{} {access}", n("major"), n("minor"))
                    };
                    r.devices.push((allow, rule));
                }
            }
            "cpu" => {
                for (k, v) in val.as_object().into_iter().flatten() {
                    match k.as_str() {
                        "shares" => r.cpu_shares = v.as_u64(),
                        "quota" => r.cpu_quota = v.as_i64(),
                        "period" => r.cpu_period = v.as_u64(),
                        _ if is_empty(Some(v)) => {}
                        _ => return not_covered(format!("cpu.{k}")),
                    }
                }
            }
            "memory" => {
                for (k, v) in val.as_object().into_iter().flatten() {
                    match k.as_str() {
                        "limit" => r.memory_limit = v.as_i64(),
                        _ if is_empty(Some(v)) => {}
                        _ => return not_covered(format!("memory.{k}")),
                    }
                }
            }
            "pids" => r.pids_limit = val.get("limit").and_then(Value::as_i64),
            _ if is_empty(Some(val)) => {}
            _ => return not_covered(format!("resources.{key}")),
        }
    }
    Ok(r)
}

/// Highest capability number this build knows (the `caps` crate's list), for walking every bit.
pub fn cap_last() -> u32 {
    caps::all()
        .iter()
        .map(|c| u32::from(c.index()))
        .max()
        .unwrap_or(0)
}

fn cap_mask(v: Option<&Value>) -> Result<u64, String> {
    let mut mask = 0u64;
    for name in v.and_then(Value::as_array).into_iter().flatten() {
        let name = name.as_str().unwrap_or("");
        let cap: caps::Capability = name
            .parse()
            .map_err(|_| format!("unknown capability {name}"))?;
        mask |= 1 << cap.index();
    }
    Ok(mask)
}

fn caps(v: &Value) -> Result<Caps, String> {
    Ok(Caps {
        bounding: cap_mask(v.get("bounding"))?,
        effective: cap_mask(v.get("effective"))?,
        permitted: cap_mask(v.get("permitted"))?,
        inheritable: cap_mask(v.get("inheritable"))?,
        ambient: cap_mask(v.get("ambient"))?,
    })
}

fn rlimit(v: &Value) -> Result<(i32, u64, u64), String> {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    let res = match kind {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return not_covered(format!("rlimit {kind}")),
    };
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Ok((res as i32, n("soft"), n("hard")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sandbox_spec(rootfs: &Path) -> Value {
        json!({
            "process": {
                "user": {"uid": 65535, "gid": 65535, "additionalGids": [65535]},
                "args": ["/pause"], "env": ["PATH=/bin"], "cwd": "/",
                "capabilities": {"bounding": ["CAP_KILL"], "effective": [], "permitted": []},
                "noNewPrivileges": true, "oomScoreAdj": -998,
                "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024}]
            },
            "root": {"path": rootfs.to_str().unwrap(), "readonly": true},
            "hostname": "pod1",
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                       {"destination": "/dev/shm", "type": "bind", "source": "/run/x/shm"}],
            "annotations": {"io.kubernetes.cri.container-type": "sandbox"},
            "linux": {
                "sysctl": {"net.ipv4.ip_unprivileged_port_start": "0"},
                "resources": {"devices": [{"allow": false, "access": "rwm"}], "cpu": {"shares": 2}},
                "cgroupsPath": "/crius/pod1",
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                               {"type": "network", "path": "/run/crius/netns/pod1"}],
                "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]
            }
        })
    }

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("pause"), b"").unwrap();
        d
    }

    #[test]
    fn covers_cri_sandbox() {
        let r = rootfs();
        let (p, cg, res) = plan(&sandbox_spec(r.path()), Path::new("/b")).unwrap();
        assert_eq!(p.exe, "/pause");
        assert_eq!(
            (p.uid, p.gid, p.groups.clone()),
            (65535, 65535, vec![65535])
        );
        assert_eq!(
            p.join,
            vec![("network".into(), "/run/crius/netns/pod1".into())]
        );
        assert_eq!(p.new, vec!["pid", "ipc", "uts", "mount"]);
        assert_eq!(p.hostname.as_deref(), Some("pod1"));
        assert_eq!(p.oom_score_adj, Some(-998));
        assert_eq!(p.caps.unwrap().bounding, 1 << 5);
        assert_eq!(p.rlimits, vec![(libc::RLIMIT_NOFILE as i32, 1024, 1024)]);
        assert_eq!(cg.as_deref(), Some("/crius/pod1"));
        assert_eq!(res.cpu_shares, Some(2));
        assert_eq!(res.devices, vec![(false, "a".to_string())]);
    }

    #[test]
    fn rejects_uncovered() {
        let r = rootfs();
        let cases: Vec<(&str, Value)> = vec![
            ("/process/terminal", json!(true)),
            ("/linux/seccomp", json!({"defaultAction": "SCMP_ACT_ERRNO"})),
            ("/linux/cgroupsPath", json!("kubepods.slice:cri:pod1:x")),
            ("/linux/cgroupsPath", json!("kubepods.slice:cri:sub.slice")),
            ("/linux/resources/memory", json!({"swap": 5, "limit": 10})),
            ("/process/args", json!(["/nope"])),
            ("/mounts", json!([{"destination": "/data", "source": "/x"}])),
        ];
        for (ptr, val) in cases {
            let mut s = sandbox_spec(r.path());
            let (parent, key) = ptr.rsplit_once('/').unwrap();
            s.pointer_mut(parent).unwrap()[key] = val;
            assert!(
                plan(&s, Path::new("/b")).is_err(),
                "{ptr} should not be covered"
            );
        }
        let mut s = sandbox_spec(r.path());
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        assert!(
            plan(&s, Path::new("/b")).is_err(),
            "user ns without mappings"
        );
        s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 10}]);
        assert!(plan(&s, Path::new("/b")).is_err(), "no gid mappings");
        s["linux"]["namespaces"][5] = json!({"type": "user", "path": "/proc/1/ns/user"});
        s["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 10}]);
        assert!(plan(&s, Path::new("/b")).is_err(), "joined user ns");
    }

    #[test]
    fn covers_a_new_user_namespace() {
        let r = rootfs();
        let mut s = sandbox_spec(r.path());
        s["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
        s["linux"]["uidMappings"] = map.clone();
        s["linux"]["gidMappings"] = map;
        let (p, _, _) = plan(&s, Path::new("/b")).unwrap();
        let u = p.userns.unwrap();
        assert_eq!(u.uid_map, "0 300000 65536\n");
        assert_eq!(u.gid_map, u.uid_map);
        assert!(!p.new.contains(&"user".to_string()));
    }

    #[test]
    fn covers_systemd_scope_paths() {
        let r = rootfs();
        let mut s = sandbox_spec(r.path());
        s["linux"]["cgroupsPath"] = json!("kubepods-besteffort-pod1.slice:crius:pod1");
        let (_, cg, _) = plan(&s, Path::new("/b")).unwrap();
        assert_eq!(
            cg.as_deref(),
            Some("kubepods-besteffort-pod1.slice:crius:pod1")
        );
    }

    #[test]
    fn resolves_via_path() {
        let r = rootfs();
        std::fs::create_dir_all(r.path().join("bin")).unwrap();
        std::fs::write(r.path().join("bin/sleep"), b"").unwrap();
        let env = vec!["PATH=/usr/bin:/bin".to_string()];
        assert_eq!(
            resolve_exe(r.path(), "sleep", "/", &env).as_deref(),
            Some("/bin/sleep")
        );
        assert_eq!(resolve_exe(r.path(), "nope", "/", &env), None);
    }
}
