//! Enum fields. prost keeps a value the proto does not define as its plain i32; the mapping code
//! further on would take it as the default (TCP, private propagation, pod namespace,
//! unconfined), which is not what the client asked for. Refuse it instead.

use crius_proto::runtime as cri;

use super::text::Check;

/// `v` is a value of enum `E`.
pub fn known<E: TryFrom<i32>>(what: &str, v: i32) -> Check {
    E::try_from(v)
        .map(|_| ())
        .map_err(|_| format!("{what}: unknown value {v}"))
}

/// Network, pid, ipc and user namespace modes; TARGET only where `target_ok` (a container's pid).
pub fn namespaces(what: &str, n: &cri::NamespaceOption, container: bool) -> Check {
    use cri::NamespaceMode as M;
    for (kind, v) in [("network", n.network), ("pid", n.pid), ("ipc", n.ipc)] {
        known::<M>(&format!("{what} {kind} namespace mode"), v)?;
        if v == M::Target as i32 && !(container && kind == "pid") {
            return Err(format!(
                "{what} {kind} namespace mode TARGET is only for a container's pid namespace"
            ));
        }
    }
    if let Some(u) = &n.userns_options {
        known::<M>(&format!("{what} user namespace mode"), u.mode)?;
    }
    Ok(())
}

/// A seccomp or AppArmor profile's type.
pub fn profile(what: &str, p: Option<&cri::SecurityProfile>) -> Check {
    match p {
        Some(p) => {
            known::<cri::security_profile::ProfileType>(
                &format!("{what} profile type"),
                p.profile_type,
            )?;
            super::text::plain(
                &format!("{what} localhost_ref"),
                &p.localhost_ref,
                super::text::PATH_MAX,
            )
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values() {
        assert!(known::<cri::Protocol>("protocol", 2).is_ok());
        assert!(known::<cri::Protocol>("protocol", 3).is_err());
        assert!(known::<cri::MountPropagation>("propagation", -1).is_err());
        let mut n = cri::NamespaceOption {
            pid: cri::NamespaceMode::Target as i32,
            ..Default::default()
        };
        assert!(namespaces("container", &n, true).is_ok());
        assert!(namespaces("pod", &n, false).is_err());
        n.pid = 0;
        n.network = 9;
        assert!(namespaces("pod", &n, false).is_err());
        let p = cri::SecurityProfile {
            profile_type: 7,
            ..Default::default()
        };
        assert!(profile("seccomp", Some(&p)).is_err());
    }
}
