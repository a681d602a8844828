//! The pause container's OCI runtime spec, built from the pod config.
//!
//! Kept to what the pause needs (the crius shim's sandbox fast path covers
//! exactly this shape): `/pause`, no capabilities, no-new-privileges, the
//! pod's namespaces, hostname, sysctls, cgroup, oom score and a few standard
//! mounts. No seccomp or AppArmor profile is applied to the pause itself: it
//! makes no syscalls beyond sigwaitinfo/waitpid.

use std::path::Path;

use serde_json::{json, Value};

use crate::pod::{NamespaceMode, PodConfig};

/// Inputs beyond the pod config.
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub config: &'a PodConfig,
    pub rootfs: &'a Path,
    /// None: host network.
    pub netns: Option<&'a Path>,
    /// None: host IPC (the host's /dev/shm is used).
    pub shm: Option<&'a Path>,
    pub hostname: &'a str,
    pub cgroups_path: &'a str,
    pub oom_score_adj: i32,
    /// A pause image: its process, and `rootfs` (the snapshot containerd
    /// mounts in the bundle) instead of `rootfs`'s dir.
    pub image: Option<&'a crate::pause::image::PauseImage>,
}

const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn is_ipc_sysctl(k: &str) -> bool {
    k.starts_with("fs.mqueue.")
        || k.starts_with("kernel.shm")
        || k.starts_with("kernel.msg")
        || k == "kernel.sem"
}

/// What all of a pod's sysctls may add up to (names and values). They travel in the pause
/// helper's plan, one argv string that execve caps at 128 KiB (MAX_ARG_STRLEN), with the rest of
/// the plan beside them.
pub const SYSCTLS_MAX_BYTES: usize = 32 * 1024;
/// Longest value: /proc/sys takes one page per write.
pub const SYSCTL_VALUE_MAX: usize = 4095;

/// kubelet's and runc's rules: only sysctls of a namespace the pod has of its own (IPC:
/// `kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`; network: `net.*`); anything
/// else would be the host's. Names are dotted (no `/`, no `..`), values short and NUL-free.
pub fn check_sysctls(config: &PodConfig) -> Result<(), String> {
    let ns = &config.linux.namespaces;
    let mut total = 0;
    for (k, v) in &config.linux.sysctls {
        if k.is_empty()
            || k.contains(['/', '\0'])
            || k.contains("..")
            || k.starts_with('.')
            || k.ends_with('.')
            || k.chars().any(char::is_whitespace)
        {
            return Err(format!("sysctl name {k:?} is invalid"));
        }
        if v.contains('\0') || v.len() > SYSCTL_VALUE_MAX {
            return Err(format!(
                "sysctl {k}: value must be NUL-free and at most {SYSCTL_VALUE_MAX} bytes"
            ));
        }
        total += k.len() + v.len();
        if k.starts_with("net.") {
            if ns.network == NamespaceMode::Node {
                return Err(format!("sysctl {k} is not allowed with host network"));
            }
        } else if is_ipc_sysctl(k) {
            if ns.ipc == NamespaceMode::Node {
                return Err(format!("sysctl {k} is not allowed with host IPC"));
            }
        } else {
            return Err(format!(
                "sysctl {k} is not namespaced (only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* are): it would change the host"
            ));
        }
    }
    if total > SYSCTLS_MAX_BYTES {
        return Err(format!(
            "sysctls add up to {total} bytes, more than {SYSCTLS_MAX_BYTES}"
        ));
    }
    Ok(())
}

/// Deny all devices but the standard character ones. runc adds these itself;
/// spelled out so a runtime without runc's defaults (the shim's fast path)
/// gets the same rules.
fn devices() -> Value {
    let mut d = vec![json!({"allow": false, "access": "rwm"})];
    for (major, minor) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2)] {
        d.push(
            json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "rwm"}),
        );
    }
    d.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
    Value::Array(d)
}

/// Build and validate (through oci-spec's types) the pause spec as JSON bytes.
pub fn build(i: &SpecInput<'_>) -> Result<Vec<u8>, String> {
    let c = i.config;
    let ns = &c.linux.namespaces;
    let mut namespaces = vec![json!({"type": "mount"})];
    if ns.pid != NamespaceMode::Node {
        namespaces.push(json!({"type": "pid"}));
    }
    if ns.ipc != NamespaceMode::Node {
        namespaces.push(json!({"type": "ipc"}));
    }
    let userns = c.linux.userns.as_ref();
    if let Some(netns) = i.netns {
        // A user-namespaced pod's pause makes the netns inside the pod's user namespace (the
        // sandboxer pins it afterwards): its containers can mount sysfs only in a netns their
        // user namespace owns.
        match userns {
            Some(_) => namespaces.push(json!({"type": "network"})),
            None => namespaces.push(json!({"type": "network", "path": netns})),
        }
        namespaces.push(json!({"type": "uts"}));
    }
    if userns.is_some() {
        namespaces.push(json!({"type": "user"}));
    }

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "bind",
               "source": i.shm.map(|p| p.to_path_buf()).unwrap_or_else(|| "/dev/shm".into()),
               "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}),
    ];
    if ns.ipc != NamespaceMode::Node {
        mounts.push(
            json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                           "options": ["nosuid", "noexec", "nodev"]}),
        );
    }
    mounts.push(
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                       "options": ["nosuid", "noexec", "nodev", "ro"]}),
    );

    let md = &c.metadata;
    let mut annotations = serde_json::Map::new();
    for (k, v) in [
        (crate::ANN_CRI_CONTAINER_TYPE, "sandbox"),
        (crate::ANN_CRIUS_CONTAINER_TYPE, "sandbox"),
        (crate::ANN_CRI_SANDBOX_ID, i.id),
        (crate::ANN_CRIUS_SANDBOX_ID, i.id),
        ("io.kubernetes.cri.sandbox-name", md.name.as_str()),
        ("io.kubernetes.cri.sandbox-namespace", md.namespace.as_str()),
        ("io.kubernetes.cri.sandbox-uid", md.uid.as_str()),
    ] {
        annotations.insert(k.into(), json!(v));
    }
    if let Some(dir) = &c.log_directory {
        annotations.insert("io.kubernetes.cri.sandbox-log-directory".into(), json!(dir));
    }

    let image_user = i.image.and_then(|im| im.user);
    let user = json!({
        "uid": c.linux.run_as_user.or(image_user.map(|u| u.0)).unwrap_or(0),
        "gid": c.linux.run_as_group.or(image_user.map(|u| u.1)).unwrap_or(0),
        "additionalGids": c.linux.supplemental_groups,
    });
    let default_env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    let (args, env, cwd, root) = match i.image {
        Some(im) => (
            im.args.clone(),
            im.env.clone(),
            im.cwd.clone(),
            json!("rootfs"),
        ),
        None => (
            vec![crate::pause::rootfs::PAUSE_IN_ROOTFS.to_string()],
            default_env,
            "/".to_string(),
            json!(i.rootfs),
        ),
    };
    let mut linux = json!({
        "namespaces": namespaces,
        "cgroupsPath": i.cgroups_path,
        "sysctl": c.linux.sysctls,
        "resources": {"devices": devices()},
    });
    if let Some(u) = userns {
        let map = |m: &crate::pod::IdMapping| json!([{"containerID": m.container_id, "hostID": m.host_id, "size": m.length}]);
        linux["uidMappings"] = map(&u.uids);
        linux["gidMappings"] = map(&u.gids);
    }
    if !c.linux.privileged {
        linux["maskedPaths"] = json!(MASKED);
        linux["readonlyPaths"] = json!(READONLY);
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": user,
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": [], "effective": [], "permitted": []},
            "noNewPrivileges": true,
            "oomScoreAdj": i.oom_score_adj,
        },
        "root": {"path": root, "readonly": true},
        "mounts": mounts,
        "annotations": annotations,
        "linux": linux,
    });
    if i.netns.is_some() {
        spec["hostname"] = json!(i.hostname);
    }
    // Validate against oci-spec's types: a spec containerd or runc would
    // reject is caught here with a clear message.
    let typed: oci_spec::runtime::Spec =
        serde_json::from_value(spec.clone()).map_err(|e| format!("pause spec invalid: {e}"))?;
    serde_json::to_vec(&typed).map_err(|e| format!("pause spec: {e}"))
}

/// Parse built spec bytes back to JSON.
#[cfg(test)]
fn as_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod::NamespaceOptions;

    fn pod() -> PodConfig {
        let mut c = PodConfig::default();
        c.metadata.name = "web".into();
        c.metadata.namespace = "default".into();
        c.metadata.uid = "u1".into();
        c.linux
            .sysctls
            .insert("net.ipv4.ip_forward".into(), "1".into());
        c
    }

    #[test]
    fn user_namespaced_pod_spec() {
        let mut c = pod();
        let m = crate::pod::IdMapping {
            container_id: 0,
            host_id: 300000,
            length: 65536,
        };
        c.linux.userns = Some(crate::pod::UserNamespace { uids: m, gids: m });
        let bytes = build(&SpecInput {
            id: "abc",
            config: &c,
            rootfs: Path::new("/run/crius/pause/rootfs"),
            netns: Some(Path::new("/run/crius/netns/abc")),
            shm: None,
            hostname: "web",
            cgroups_path: "/crius/abc",
            oom_score_adj: 0,
            image: None,
        })
        .expect("spec");
        let v = as_value(&bytes);
        let ns = v["linux"]["namespaces"].as_array().expect("ns");
        assert!(ns.contains(&json!({"type": "user"})));
        // The pause makes the netns inside the pod's user namespace: no path.
        assert!(ns.contains(&json!({"type": "network"})));
        let want = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
        assert_eq!(v["linux"]["uidMappings"], want);
        assert_eq!(v["linux"]["gidMappings"], want);
    }

    #[test]
    fn pod_network_spec() {
        let c = pod();
        let bytes = build(&SpecInput {
            id: "abc",
            config: &c,
            rootfs: Path::new("/run/crius/pause/rootfs"),
            netns: Some(Path::new("/run/crius/netns/abc")),
            shm: Some(Path::new("/run/crius/sandboxes/abc/shm")),
            hostname: "web",
            cgroups_path: "/crius/abc",
            oom_score_adj: 0,
            image: None,
        })
        .expect("spec");
        let v = as_value(&bytes);
        assert_eq!(v["process"]["args"][0], "/pause");
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(v["hostname"], "web");
        assert_eq!(v["linux"]["cgroupsPath"], "/crius/abc");
        assert_eq!(v["linux"]["sysctl"]["net.ipv4.ip_forward"], "1");
        assert_eq!(
            v["annotations"]["io.kubernetes.cri.container-type"],
            "sandbox"
        );
        assert_eq!(v["annotations"]["io.crius.sandbox-id"], "abc");
        let types: Vec<_> = v["linux"]["namespaces"]
            .as_array()
            .expect("ns")
            .iter()
            .map(|n| n["type"].as_str().unwrap_or("").to_string())
            .collect();
        assert!(types.contains(&"network".to_string()) && types.contains(&"uts".to_string()));
        assert!(types.contains(&"pid".to_string()) && types.contains(&"ipc".to_string()));
    }

    #[test]
    fn host_namespaces() {
        let mut c = pod();
        c.linux.sysctls.clear();
        c.linux.namespaces = NamespaceOptions {
            network: NamespaceMode::Node,
            pid: NamespaceMode::Node,
            ipc: NamespaceMode::Node,
        };
        let v = as_value(
            &build(&SpecInput {
                id: "abc",
                config: &c,
                rootfs: Path::new("/r"),
                netns: None,
                shm: None,
                hostname: "node1",
                cgroups_path: "/crius/abc",
                oom_score_adj: -998,
                image: None,
            })
            .expect("spec"),
        );
        assert_eq!(v["linux"]["namespaces"].as_array().map(Vec::len), Some(1));
        assert!(v.get("hostname").is_none());
        assert_eq!(v["process"]["oomScoreAdj"], -998);
    }

    #[test]
    fn sysctl_checks() {
        let mut c = pod();
        assert!(check_sysctls(&c).is_ok());
        c.linux.namespaces.network = NamespaceMode::Node;
        assert!(check_sysctls(&c).unwrap_err().contains("host network"));
        c.linux.sysctls.clear();
        c.linux.sysctls.insert("kernel.shmmax".into(), "1".into());
        c.linux.namespaces.ipc = NamespaceMode::Node;
        assert!(check_sysctls(&c).unwrap_err().contains("host IPC"));
        c.linux.namespaces = Default::default();
        for ok in [
            "kernel.msgmax",
            "kernel.sem",
            "fs.mqueue.msg_max",
            "net.core.somaxconn",
        ] {
            c.linux.sysctls.clear();
            c.linux.sysctls.insert(ok.into(), "1".into());
            assert!(check_sysctls(&c).is_ok(), "{ok}");
        }
        for bad in [
            "vm.swappiness",
            "kernel.pid_max",
            "fs.file-max",
            "kernel.hostname",
            "net..x",
            "net/ipv4",
        ] {
            c.linux.sysctls.clear();
            c.linux.sysctls.insert(bad.into(), "1".into());
            assert!(check_sysctls(&c).is_err(), "{bad}");
        }
        c.linux.sysctls.clear();
        c.linux.sysctls.insert("net.x".into(), "1\0".into());
        assert!(check_sysctls(&c).is_err());
        c.linux.sysctls = (0..2000)
            .map(|i| (format!("net.ipv4.conf.eth{i}.forwarding"), "1".to_string()))
            .collect();
        assert!(check_sysctls(&c).unwrap_err().contains("add up"));
    }
}
