//! User namespaces (`hostUsers: false`, `userns_options` mode POD). The pod's pause starts in a
//! new user namespace with the pod's mapping; its containers join it by path
//! (`/proc/<pause>/ns/user`). runc 1.1 makes no id-mapped mounts, so the crius shim makes them
//! (rootfs layers, and the mounts marked here): that is why user namespaces work only where
//! both the pause's runtime and the handler's are the crius shim.
//!
//! Refused as containerd refuses them (INVALID_ARGUMENT): modes CONTAINER and TARGET, not
//! exactly one uid and one gid mapping, a mapping that leaves container id 0 unmapped.

use crius_proto::runtime as cri;
use crius_sandboxer::{IdMapping, UserNamespace};

use crate::config::Config;
use crate::error::{Error, Result};

/// The containerd runtime of the crius shim, which makes the id-mapped mounts.
const CRIUS_RUNTIME: &str = "io.containerd.crius.v2";

/// Oldest kernel whose overlayfs takes id-mapped layers (5.19).
const MIN_KERNEL: (u32, u32) = (5, 19);

/// Whether user-namespaced pods work on `handler`: the pause (the default handler's runtime)
/// and the containers run under the crius shim, on a kernel with id-mapped overlay layers.
pub fn supported(cfg: &Config, handler: &str) -> std::result::Result<(), String> {
    for (what, h) in [
        ("the pause's (default handler)", ""),
        ("this handler's", handler),
    ] {
        match cfg.runtime_for(h) {
            Some(CRIUS_RUNTIME) => {}
            other => {
                return Err(format!(
                    "{what} runtime {other:?} is not the crius shim ({CRIUS_RUNTIME}), which makes the id-mapped mounts runc 1.1 cannot"
                ))
            }
        }
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let version = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    if version < MIN_KERNEL {
        return Err(format!(
            "kernel {release} has no id-mapped overlayfs layers (needs {}.{})",
            MIN_KERNEL.0, MIN_KERNEL.1
        ));
    }
    Ok(())
}

/// A default pod sysctl's value for a pod in `userns`: `ping_group_range` spans the gids the
/// pod's namespace maps (the kernel refuses gids beyond), as containerd sets it.
pub fn default_sysctl(userns: Option<UserNamespace>, key: &str, value: &str) -> String {
    match userns {
        Some(u) if key == "net.ipv4.ping_group_range" => format!("0 {}", u.gids.length - 1),
        _ => value.to_string(),
    }
}

fn mapping(maps: &[cri::IdMapping], kind: &str, what: &str) -> Result<IdMapping> {
    let [m] = maps else {
        return Err(Error::InvalidArgument(format!(
            "{what}: a user namespace needs exactly one {kind} mapping, got {}",
            maps.len()
        )));
    };
    if m.container_id != 0 || m.length == 0 || m.host_id.checked_add(m.length - 1).is_none() {
        return Err(Error::InvalidArgument(format!(
            "{what}: the {kind} mapping must map container id 0 to a host range within 32 bits (got container_id {}, host_id {}, length {})",
            m.container_id, m.host_id, m.length
        )));
    }
    Ok(IdMapping {
        container_id: m.container_id,
        host_id: m.host_id,
        length: m.length,
    })
}

/// The user namespace a request asks for: None for NODE (or none), the mapping for POD.
pub fn requested(u: Option<&cri::UserNamespace>, what: &str) -> Result<Option<UserNamespace>> {
    use cri::NamespaceMode as M;
    let Some(u) = u else { return Ok(None) };
    match M::try_from(u.mode) {
        Ok(M::Node) => return Ok(None),
        Ok(M::Pod) => {}
        _ => {
            return Err(Error::InvalidArgument(format!(
                "{what}: user namespace mode {} is not supported (only POD and NODE)",
                u.mode
            )))
        }
    }
    Ok(Some(UserNamespace {
        uids: mapping(&u.uids, "uid", what)?,
        gids: mapping(&u.gids, "gid", what)?,
    }))
}

/// A container's user namespace: its pod's. A container asking for another one (or for one in
/// a pod without) is refused; one asking for none runs in its pod's, as kubelet means it.
pub fn for_container(
    u: Option<&cri::UserNamespace>,
    pod: Option<UserNamespace>,
) -> Result<Option<UserNamespace>> {
    let asked = requested(u, "container")?;
    let node_asked = u.is_some() && asked.is_none();
    match (asked, pod) {
        (Some(a), Some(p)) if a != p => Err(Error::InvalidArgument(
            "container: its user namespace mapping differs from its pod's".into(),
        )),
        (Some(_), None) => Err(Error::InvalidArgument(
            "container: asks for a user namespace, but its pod runs in the host's".into(),
        )),
        (None, Some(_)) if node_asked => Err(Error::InvalidArgument(
            "container: asks for the host's user namespace, but its pod has its own".into(),
        )),
        (_, pod) => Ok(pod),
    }
}

/// Whether a CRI mount is to be id-mapped: it carries uid/gid mappings (kubelet sets the pod's
/// on each volume of a user-namespaced pod), which must then be the pod's own.
pub fn mount_idmapped(m: &cri::Mount, pod: Option<UserNamespace>) -> Result<bool> {
    if m.uid_mappings.is_empty() && m.gid_mappings.is_empty() {
        return Ok(false);
    }
    let what = format!("mount {}", m.container_path);
    let Some(pod) = pod else {
        return Err(Error::Unimplemented(format!(
            "{what}: id-mapped mounts outside a user-namespaced pod"
        )));
    };
    let asked = UserNamespace {
        uids: mapping(&m.uid_mappings, "uid", &what)?,
        gids: mapping(&m.gid_mappings, "gid", &what)?,
    };
    if asked != pod {
        return Err(Error::InvalidArgument(format!(
            "{what}: its id mapping differs from the pod's user namespace"
        )));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(container_id: u32, host_id: u32, length: u32) -> cri::IdMapping {
        cri::IdMapping {
            container_id,
            host_id,
            length,
        }
    }

    fn pod_ns(host: u32) -> cri::UserNamespace {
        cri::UserNamespace {
            mode: cri::NamespaceMode::Pod as i32,
            uids: vec![map(0, host, 65536)],
            gids: vec![map(0, host, 65536)],
        }
    }

    #[test]
    fn shapes() {
        let u = requested(Some(&pod_ns(100000)), "pod").unwrap().unwrap();
        assert_eq!(u.host_root(), (100000, 100000));
        assert_eq!(requested(None, "pod").unwrap(), None);
        let mut bad = pod_ns(1);
        bad.uids.push(map(65536, 70000, 1));
        assert!(matches!(
            requested(Some(&bad), "pod"),
            Err(Error::InvalidArgument(_))
        ));
        let mut bad = pod_ns(1);
        bad.gids = vec![map(1, 1000, 10)];
        assert!(matches!(
            requested(Some(&bad), "pod"),
            Err(Error::InvalidArgument(_))
        ));
        let bad = cri::UserNamespace {
            uids: vec![map(0, u32::MAX, 2)],
            ..pod_ns(1)
        };
        assert!(matches!(
            requested(Some(&bad), "pod"),
            Err(Error::InvalidArgument(_))
        ));
        let bad = cri::UserNamespace {
            mode: cri::NamespaceMode::Container as i32,
            ..pod_ns(1)
        };
        assert!(matches!(
            requested(Some(&bad), "pod"),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn containers_take_their_pods() {
        let pod = requested(Some(&pod_ns(100000)), "pod").unwrap();
        assert_eq!(for_container(None, pod).unwrap(), pod);
        assert_eq!(for_container(Some(&pod_ns(100000)), pod).unwrap(), pod);
        assert!(for_container(Some(&pod_ns(200000)), pod).is_err());
        assert!(for_container(Some(&pod_ns(100000)), None).is_err());
        let node = cri::UserNamespace {
            mode: cri::NamespaceMode::Node as i32,
            ..Default::default()
        };
        assert!(for_container(Some(&node), pod).is_err());
        assert_eq!(for_container(Some(&node), None).unwrap(), None);
    }

    #[test]
    fn mounts_with_the_pods_mapping() {
        let pod = requested(Some(&pod_ns(100000)), "pod").unwrap();
        let mut m = cri::Mount {
            container_path: "/data".into(),
            ..Default::default()
        };
        assert!(!mount_idmapped(&m, pod).unwrap());
        m.uid_mappings = vec![map(0, 100000, 65536)];
        m.gid_mappings = vec![map(0, 100000, 65536)];
        assert!(mount_idmapped(&m, pod).unwrap());
        assert!(matches!(
            mount_idmapped(&m, None),
            Err(Error::Unimplemented(_))
        ));
        m.gid_mappings = vec![map(0, 5, 65536)];
        assert!(matches!(
            mount_idmapped(&m, pod),
            Err(Error::InvalidArgument(_))
        ));
    }
}
