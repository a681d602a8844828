//! The OCI runtime spec of a CRI container, from already-resolved inputs (no I/O
//! here, so it is unit-tested). Written as JSON and checked by decoding it into
//! `oci_spec::runtime::Spec`, which is what criusd hands to containerd.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// How the container gets one namespace.
#[derive(Debug, Clone, PartialEq)]
pub enum Ns {
    /// A fresh one.
    New,
    /// Join the one at this path (`/proc/<pid>/ns/<kind>` or a netns bind mount).
    Join(PathBuf),
    /// The host's (no namespace entry).
    Host,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BindMount {
    pub container_path: String,
    pub host_path: String,
    pub readonly: bool,
    /// `rprivate`, `rslave` or `rshared`.
    pub propagation: &'static str,
    /// Read-only all the way down (`rro`): submounts of the source too.
    pub recursive_readonly: bool,
    /// No setuid binaries, no device nodes (image volumes: files kubelet never vetted).
    pub nosuid_nodev: bool,
    /// Seen through the pod's user namespace mapping (made by the crius shim).
    pub idmap: bool,
}

/// Spec annotation naming (JSON array) the mount destinations the crius shim id-maps.
pub const ANN_IDMAP_MOUNTS: &str = "io.crius.idmap-mounts";

/// The pod's user namespace, which the container joins.
#[derive(Debug, Clone, PartialEq)]
pub struct UsernsJoin {
    /// `/proc/<pause>/ns/user`.
    pub path: PathBuf,
    pub map: crius_sandboxer::UserNamespace,
}

impl UsernsJoin {
    /// OCI `uidMappings` and `gidMappings`.
    fn oci_maps(&self) -> (Value, Value) {
        let one = |m: &crius_sandboxer::IdMapping| json!([{"containerID": m.container_id, "hostID": m.host_id, "size": m.length}]);
        (one(&self.map.uids), one(&self.map.gids))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSpec {
    pub container_path: String,
    /// `c` or `b`.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    pub file_mode: u32,
    /// The host node's owner, as containerd gives it.
    pub uid: u32,
    pub gid: u32,
    pub permissions: String,
}

/// Everything the spec is made of.
#[derive(Debug, Clone, Default)]
pub struct SpecInput {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub tty: bool,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub no_new_privs: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Ambient (and so inheritable) capabilities: a non-root process keeps them across exec.
    pub cap_ambient: Vec<String>,
    /// Bounding set the caps must fit in (criusd's own).
    pub available_caps: u64,
    pub oom_score_adj: Option<i32>,
    pub net: Option<Ns>,
    pub ipc: Option<Ns>,
    pub uts: Option<Ns>,
    pub pid: Option<Ns>,
    /// None: the host's user namespace.
    pub userns: Option<UsernsJoin>,
    pub cgroups_path: String,
    /// A private cgroup namespace (cgroup v2 hosts, unprivileged containers, as containerd does):
    /// the container sees its own cgroup as `/`.
    pub cgroup_ns: bool,
    /// OCI `linux.resources` without the device rules (made from CRI's resources the way
    /// UpdateContainerResources makes them).
    pub resources: Value,
    /// Pod files bound in: /etc/hosts, /etc/resolv.conf, /etc/hostname (host paths).
    pub hosts_path: Option<String>,
    pub resolv_path: Option<String>,
    pub hostname_path: Option<String>,
    /// The pod's /dev/shm tmpfs; None: a private one.
    pub shm_path: Option<String>,
    pub mounts: Vec<BindMount>,
    pub devices: Vec<DeviceSpec>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub seccomp: Seccomp,
    pub apparmor_profile: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

/// The container's seccomp filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Seccomp {
    #[default]
    Unconfined,
    /// crius's allow-list (`seccomp.rs`), widened by the capabilities the container holds.
    RuntimeDefault,
    /// An OCI `linux.seccomp` object as given (a Localhost profile).
    Profile(Value),
}

/// Docker's / containerd's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn cap_name(c: &str) -> String {
    let c = c.trim().to_ascii_uppercase();
    if c.starts_with("CAP_") || c == "ALL" {
        c
    } else {
        format!("CAP_{c}")
    }
}

/// Capabilities whose bit is set in `available` (criusd's bounding set: runc cannot grant more).
fn all_available(available: u64) -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all()
        .into_iter()
        .filter(|c| available & (1u64 << c.index()) != 0)
        .collect();
    all.sort_by_key(|c| c.index());
    all.iter().map(|c| c.to_string()).collect()
}

/// Default set, then drops, then adds (`ALL` allowed in both), as containerd does.
/// `available` is criusd's own bounding set: privileged and `ALL` mean "all of those", and
/// adding one outside it is refused here rather than by runc.
pub fn capabilities(
    privileged: bool,
    add: &[String],
    drop: &[String],
    available: u64,
) -> Result<Vec<String>> {
    if privileged {
        return Ok(all_available(available));
    }
    let add: Vec<String> = add.iter().map(|c| cap_name(c)).collect();
    let drop: Vec<String> = drop.iter().map(|c| cap_name(c)).collect();
    for c in add.iter().chain(&drop) {
        if c != "ALL" && c.parse::<caps::Capability>().is_err() {
            return Err(Error::InvalidArgument(format!("unknown capability {c:?}")));
        }
    }
    let mut caps: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    if add.iter().any(|c| c == "ALL") {
        caps = all_available(available);
    } else {
        let have = all_available(available);
        for c in add {
            if !have.contains(&c) {
                return Err(Error::InvalidArgument(format!(
                    "capability {c} is not in criusd's bounding set, so it cannot be granted"
                )));
            }
            if !caps.contains(&c) {
                caps.push(c);
            }
        }
    }
    // The defaults, too, can only be what criusd has.
    let have = all_available(available);
    caps.retain(|c| have.contains(c));
    Ok(caps)
}

/// Ambient capabilities (CRI `add_ambient_capabilities`): each must be one the container
/// has, since the kernel raises an ambient capability only when it is permitted and
/// inheritable; refused here rather than failing at start.
pub fn ambient_capabilities(ambient: &[String], caps: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for c in ambient.iter().map(|c| cap_name(c)) {
        if c.parse::<caps::Capability>().is_err() {
            return Err(Error::InvalidArgument(format!(
                "unknown ambient capability {c:?}"
            )));
        }
        if !caps.contains(&c) {
            return Err(Error::InvalidArgument(format!(
                "ambient capability {c} is not among the container's capabilities (add it too)"
            )));
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// criusd's capability bounding set from `/proc/self/status` (all bits if unreadable).
pub fn own_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

fn ns_entry(kind: &str, ns: &Option<Ns>) -> Option<Value> {
    match ns {
        Some(Ns::New) => Some(json!({ "type": kind })),
        Some(Ns::Join(p)) => Some(json!({ "type": kind, "path": p })),
        Some(Ns::Host) | None => None,
    }
}

fn bind(dst: &str, src: &str, ro: bool, prop: &str) -> Value {
    json!({
        "destination": dst, "type": "bind", "source": src,
        "options": ["rbind", prop, if ro { "ro" } else { "rw" }],
    })
}

/// Build and validate the spec.
pub fn build(i: &SpecInput) -> Result<Spec> {
    let caps = capabilities(i.privileged, &i.cap_add, &i.cap_drop, i.available_caps)?;
    let ambient = ambient_capabilities(&i.cap_ambient, &caps)?;
    let user_set: Vec<&str> = i.mounts.iter().map(|m| m.container_path.as_str()).collect();
    let taken = |p: &str| user_set.iter().any(|u| u.trim_end_matches('/') == p);

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if i.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if i.privileged { "rw" } else { "ro" }]}),
    ];
    if !taken("/dev/shm") {
        mounts.push(match &i.shm_path {
            Some(p) => bind("/dev/shm", p, false, "rprivate"),
            None => json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        });
    }
    for (dst, src) in [
        ("/etc/hosts", &i.hosts_path),
        ("/etc/resolv.conf", &i.resolv_path),
        ("/etc/hostname", &i.hostname_path),
    ] {
        if let Some(src) = src {
            if !taken(dst) {
                mounts.push(bind(dst, src, i.readonly_rootfs, "rprivate"));
            }
        }
    }
    // Shorter destinations first, so a parent mount never hides a child mount.
    let mut user = i.mounts.clone();
    user.sort_by_key(|m| m.container_path.matches('/').count());
    for m in &user {
        let mut b = bind(&m.container_path, &m.host_path, m.readonly, m.propagation);
        if let Some(o) = b["options"].as_array_mut() {
            if m.recursive_readonly {
                o.push(json!("rro"));
            }
            if m.nosuid_nodev {
                o.extend([json!("nosuid"), json!("nodev")]);
            }
        }
        mounts.push(b);
    }

    let namespaces: Vec<Value> = [
        ns_entry("pid", &i.pid),
        ns_entry("network", &i.net),
        ns_entry("ipc", &i.ipc),
        ns_entry("uts", &i.uts),
        Some(json!({"type": "mount"})),
        i.cgroup_ns.then(|| json!({"type": "cgroup"})),
        i.userns
            .as_ref()
            .map(|u| json!({"type": "user", "path": u.path})),
    ]
    .into_iter()
    .flatten()
    .collect();

    let mut devices_cgroup = vec![json!({"allow": i.privileged, "access": "rwm"})];
    let mut devices = Vec::new();
    for d in &i.devices {
        devices.push(json!({
            "path": d.container_path, "type": d.kind.to_string(), "major": d.major, "minor": d.minor,
            "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid,
        }));
        if i.privileged {
            // Every device is allowed already (the first rule).
            continue;
        }
        devices_cgroup.push(json!({
            "allow": true, "type": d.kind.to_string(), "major": d.major, "minor": d.minor,
            "access": if d.permissions.is_empty() { "rwm" } else { d.permissions.as_str() },
        }));
    }
    let mut resources = match &i.resources {
        Value::Object(_) => i.resources.clone(),
        _ => json!({}),
    };
    resources["devices"] = Value::Array(devices_cgroup);

    let mut process = json!({
        "terminal": i.tty,
        "user": { "uid": i.uid, "gid": i.gid, "additionalGids": i.additional_gids },
        "args": i.args,
        "env": i.env,
        "cwd": i.cwd,
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": ambient, "ambient": ambient,
        },
        "noNewPrivileges": i.no_new_privs,
    });
    if let Some(s) = i.oom_score_adj {
        process["oomScoreAdj"] = json!(s);
    }
    if let Some(a) = &i.apparmor_profile {
        process["apparmorProfile"] = json!(a);
    }
    let (masked, ro_paths) = if i.privileged {
        (Vec::new(), Vec::new())
    } else {
        (i.masked_paths.clone(), i.readonly_paths.clone())
    };
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "devices": devices,
        "maskedPaths": masked,
        "readonlyPaths": ro_paths,
    });
    if !i.cgroups_path.is_empty() {
        linux["cgroupsPath"] = json!(i.cgroups_path);
    }
    if let Some(u) = &i.userns {
        let (uids, gids) = u.oci_maps();
        linux["uidMappings"] = uids;
        linux["gidMappings"] = gids;
    }
    // As containerd: the rootfs shared when a mount carries mounts both ways, a slave when
    // one receives them, so they reach the mount points inside.
    let props: Vec<&str> = i.mounts.iter().map(|m| m.propagation).collect();
    if props.contains(&"rshared") {
        linux["rootfsPropagation"] = json!("rshared");
    } else if props.contains(&"rslave") {
        linux["rootfsPropagation"] = json!("rslave");
    }
    match &i.seccomp {
        Seccomp::Unconfined => {}
        Seccomp::RuntimeDefault => linux["seccomp"] = super::seccomp::runtime_default(&caps),
        Seccomp::Profile(p) => linux["seccomp"] = p.clone(),
    }
    let mut annotations = i.annotations.clone();
    if i.userns.is_some() {
        // The crius shim id-maps these (runc 1.1 cannot); see shim-runc/src/idmap.rs.
        let idmapped: Vec<&str> = user
            .iter()
            .filter(|m| m.idmap)
            .map(|m| m.container_path.as_str())
            .collect();
        if !idmapped.is_empty() {
            annotations.insert(ANN_IDMAP_MOUNTS.to_string(), json!(idmapped).to_string());
        }
    }
    let v = json!({
        "ociVersion": "1.1.0",
        "process": process,
        "root": { "path": "rootfs", "readonly": i.readonly_rootfs },
        "mounts": mounts,
        "linux": linux,
        "annotations": annotations,
    });
    serde_json::from_value(v).map_err(|e| Error::InvalidArgument(format!("container spec: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SpecInput {
        SpecInput {
            args: vec!["sh".into()],
            available_caps: u64::MAX,
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            net: Some(Ns::Join("/run/crius/netns/p".into())),
            ipc: Some(Ns::Join("/proc/42/ns/ipc".into())),
            uts: Some(Ns::Join("/proc/42/ns/uts".into())),
            pid: Some(Ns::New),
            hosts_path: Some("/var/lib/crius/sandboxes/p/hosts".into()),
            resolv_path: Some("/var/lib/crius/sandboxes/p/resolv.conf".into()),
            ..Default::default()
        }
    }

    #[test]
    fn caps_rules() {
        let all = u64::MAX;
        let c = capabilities(false, &["NET_ADMIN".into()], &["MKNOD".into()], all).expect("caps");
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_MKNOD".to_string()));
        assert!(capabilities(false, &[], &["ALL".into()], all)
            .expect("c")
            .is_empty());
        assert_eq!(
            capabilities(true, &[], &[], all).expect("c").len(),
            caps::all().len()
        );
        assert!(capabilities(false, &["NOPE".into()], &[], all).is_err());
        // Without CAP_SYS_RESOURCE (bit 24) in the bounding set: privileged leaves it out,
        // an explicit add is refused.
        let no_res = all & !(1 << 24);
        let p = capabilities(true, &[], &[], no_res).expect("c");
        assert!(!p.contains(&"CAP_SYS_RESOURCE".to_string()));
        assert_eq!(p.len(), caps::all().len() - 1);
        assert!(capabilities(false, &["SYS_RESOURCE".into()], &[], no_res).is_err());
    }

    #[test]
    fn spec_has_namespaces_mounts_and_validates() {
        let mut i = base();
        i.mounts.push(BindMount {
            container_path: "/etc/hosts".into(),
            host_path: "/kubelet/hosts".into(),
            readonly: false,
            propagation: "rprivate",
            recursive_readonly: false,
            nosuid_nodev: false,
            idmap: false,
        });
        i.mounts.push(BindMount {
            container_path: "/data".into(),
            host_path: "/srv/data".into(),
            readonly: true,
            propagation: "rprivate",
            recursive_readonly: true,
            nosuid_nodev: true,
            idmap: false,
        });
        i.oom_score_adj = Some(500);
        i.resources = json!({ "memory": { "limit": 64 << 20 } });
        let spec = build(&i).expect("spec");
        let v = serde_json::to_value(&spec).expect("json");
        let ns = v["linux"]["namespaces"].as_array().expect("ns");
        assert!(ns
            .iter()
            .any(|n| n["type"] == "network" && n["path"] == "/run/crius/netns/p"));
        assert!(ns
            .iter()
            .any(|n| n["type"] == "pid" && n.get("path").is_none()));
        let mounts = v["mounts"].as_array().expect("mounts");
        let hosts: Vec<_> = mounts
            .iter()
            .filter(|m| m["destination"] == "/etc/hosts")
            .collect();
        assert_eq!(hosts.len(), 1, "kubelet's /etc/hosts wins over the pod's");
        assert_eq!(hosts[0]["source"], "/kubelet/hosts");
        let data = mounts
            .iter()
            .find(|m| m["destination"] == "/data")
            .expect("/data");
        assert_eq!(
            data["options"],
            json!(["rbind", "rprivate", "ro", "rro", "nosuid", "nodev"])
        );
        assert_eq!(v["process"]["oomScoreAdj"], 500);
        assert!(v["linux"].get("rootfsPropagation").is_none());
        i.mounts[1].propagation = "rslave";
        let v = serde_json::to_value(build(&i).expect("spec")).expect("json");
        assert_eq!(v["linux"]["rootfsPropagation"], "rslave");
        i.mounts[0].propagation = "rshared";
        let v = serde_json::to_value(build(&i).expect("spec")).expect("json");
        assert_eq!(v["linux"]["rootfsPropagation"], "rshared");
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], 64 << 20);
    }

    #[test]
    fn ambient_caps_must_be_held() {
        let mut i = base();
        i.cap_ambient = vec!["net_bind_service".into()];
        let v = serde_json::to_value(build(&i).expect("spec")).expect("json");
        let caps = &v["process"]["capabilities"];
        assert_eq!(caps["ambient"], json!(["CAP_NET_BIND_SERVICE"]));
        assert_eq!(caps["inheritable"], json!(["CAP_NET_BIND_SERVICE"]));
        i.cap_ambient = vec!["SYS_ADMIN".into()];
        assert!(matches!(build(&i), Err(Error::InvalidArgument(_))));
        i.cap_ambient = vec!["NOPE".into()];
        assert!(matches!(build(&i), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn seccomp_default_decodes() {
        let mut i = base();
        i.seccomp = Seccomp::RuntimeDefault;
        let v = serde_json::to_value(build(&i).expect("spec with seccomp")).expect("json");
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    }
}
