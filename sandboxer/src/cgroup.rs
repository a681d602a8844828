//! cgroup drivers: how a pod's cgroup parent and a container's id become the OCI `cgroupsPath`
//! runc gets, and where that cgroup then sits under /sys/fs/cgroup.
//!
//! - `cgroupfs`: `<parent>/<id>`, a plain directory path (runc makes the dirs).
//! - `systemd`: the parent is a systemd slice as kubelet's systemd driver names it
//!   (`kubepods-besteffort-pod<uid>.slice`, or a path of slices whose last one counts, as
//!   containerd reads it); the path is `<slice>:crius:<id>`, and runc (`--systemd-cgroup`) or the
//!   shim's fast path asks systemd for a transient scope `crius-<id>.scope` in that slice.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The prefix of every scope crius asks for (`crius-<id>.scope`), as containerd uses `cri-containerd`.
pub const SCOPE_PREFIX: &str = "crius";

/// Which cgroup manager runc and crius use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupDriver {
    Cgroupfs,
    Systemd,
}

impl CgroupDriver {
    /// systemd when it runs as PID 1 and the host is cgroup v2 only (what kubeadm sets up);
    /// cgroupfs otherwise.
    pub fn detect() -> CgroupDriver {
        if systemd_running() && Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            CgroupDriver::Systemd
        } else {
            CgroupDriver::Cgroupfs
        }
    }

    /// The parent of pods whose config names none.
    pub fn default_parent(self) -> &'static str {
        match self {
            CgroupDriver::Cgroupfs => "/crius",
            CgroupDriver::Systemd => "system.slice",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CgroupDriver::Cgroupfs => "cgroupfs",
            CgroupDriver::Systemd => "systemd",
        }
    }
}

/// systemd's own test (`sd_booted`): it runs as the init system.
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The `cgroupsPath` of `id` under `parent` for `driver`; an error says why a systemd parent is
/// not a slice name.
pub fn cgroups_path(driver: CgroupDriver, parent: &str, id: &str) -> Result<String, String> {
    match driver {
        CgroupDriver::Cgroupfs => {
            let parent = parent.trim_end_matches('/');
            if parent.starts_with('/') || parent.is_empty() {
                Ok(format!("{parent}/{id}"))
            } else {
                Ok(format!("/{parent}/{id}"))
            }
        }
        CgroupDriver::Systemd => {
            let slice = slice_of(parent)?;
            Ok(format!("{slice}:{SCOPE_PREFIX}:{id}"))
        }
    }
}

/// The slice a systemd-driver parent names: the last component of a path of slices.
fn slice_of(parent: &str) -> Result<&str, String> {
    let slice = parent
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    expand_slice(slice).map(|_| slice)
}

/// A slice's place in the tree, as systemd (and runc's `ExpandSlice`) lays it out:
/// `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
pub fn expand_slice(slice: &str) -> Result<String, String> {
    let bad = |why: &str| {
        Err(format!(
            "cgroup parent {slice:?} is not a systemd slice: {why}"
        ))
    };
    let Some(stem) = slice.strip_suffix(".slice") else {
        return bad("the name must end in .slice (the systemd cgroup driver is in use)");
    };
    if slice.contains('/') {
        return bad("a slice name holds no '/'");
    }
    if stem == "-" {
        return Ok("/".into());
    }
    if stem.is_empty()
        || stem.starts_with('-')
        || stem.ends_with('-')
        || stem.contains("--")
        || !stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:\\".contains(&b))
    {
        return bad("empty or misplaced '-' part, or a character systemd refuses in unit names");
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    Ok(path)
}

/// Where a `cgroupsPath` of either driver (or a pod's cgroup parent) sits, relative to the
/// cgroup root: `slice:prefix:name` → `<expanded slice>/prefix-name.scope`, a slice name → its
/// expanded path, a cgroupfs path as it is.
pub fn fs_path(cgroups_path: &str) -> String {
    if !cgroups_path.contains(['/', ':']) && cgroups_path.ends_with(".slice") {
        if let Ok(p) = expand_slice(cgroups_path) {
            return p;
        }
    }
    let mut parts = cgroups_path.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(slice), Some(prefix), Some(name)) if !cgroups_path.starts_with('/') => {
            let base = if slice.is_empty() {
                "/system.slice".to_string()
            } else {
                expand_slice(slice).unwrap_or_else(|_| format!("/{slice}"))
            };
            let base = base.trim_end_matches('/');
            if name.ends_with(".slice") {
                format!("{base}/{name}")
            } else if prefix.is_empty() {
                format!("{base}/{name}.scope")
            } else {
                format!("{base}/{prefix}-{name}.scope")
            }
        }
        _ => cgroups_path.to_string(),
    }
}

/// Whether a `cgroupsPath` is in the systemd driver's `slice:prefix:name` form.
pub fn is_systemd_path(cgroups_path: &str) -> bool {
    !cgroups_path.starts_with('/') && cgroups_path.split(':').count() == 3
}

/// The scope unit of a systemd `cgroupsPath` (`crius-<id>.scope`), or None for cgroupfs paths.
pub fn scope_unit(cgroups_path: &str) -> Option<String> {
    if !is_systemd_path(cgroups_path) {
        return None;
    }
    let p = fs_path(cgroups_path);
    p.rsplit('/')
        .next()
        .filter(|u| u.ends_with(".scope"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroupfs_paths() {
        let p = |parent| cgroups_path(CgroupDriver::Cgroupfs, parent, "x").unwrap();
        assert_eq!(p("/kubepods/pod1"), "/kubepods/pod1/x");
        assert_eq!(p("kubepods/"), "/kubepods/x");
        assert_eq!(fs_path("/kubepods/pod1/x"), "/kubepods/pod1/x");
        assert!(!is_systemd_path("/kubepods/pod1/x"));
    }

    #[test]
    fn systemd_paths_as_containerd_makes_them() {
        let p = |parent| cgroups_path(CgroupDriver::Systemd, parent, "abc");
        let slice = "kubepods-besteffort-pod1234.slice";
        assert_eq!(p(slice).unwrap(), format!("{slice}:crius:abc"));
        // kubelet's cgroupfs-looking form of the same slice: its last part counts.
        assert_eq!(
            p(&format!(
                "/kubepods.slice/kubepods-besteffort.slice/{slice}"
            ))
            .unwrap(),
            format!("{slice}:crius:abc")
        );
        assert_eq!(
            fs_path(&format!("{slice}:crius:abc")),
            format!("/kubepods.slice/kubepods-besteffort.slice/{slice}/crius-abc.scope")
        );
        assert_eq!(
            scope_unit(&format!("{slice}:crius:abc")).as_deref(),
            Some("crius-abc.scope")
        );
        assert_eq!(fs_path("-.slice:crius:abc"), "/crius-abc.scope");
        assert_eq!(
            fs_path(slice),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice"
        );
        assert_eq!(scope_unit("/crius/abc"), None);
    }

    #[test]
    fn bad_slices_are_refused() {
        for bad in [
            "/kubepods/pod1",
            "kubepods",
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            ".slice",
            "a b.slice",
        ] {
            let e = cgroups_path(CgroupDriver::Systemd, bad, "x").unwrap_err();
            assert!(e.contains("not a systemd slice"), "{bad}: {e}");
        }
        assert_eq!(expand_slice("-.slice").unwrap(), "/");
        assert_eq!(expand_slice("a-b.slice").unwrap(), "/a.slice/a-b.slice");
    }
}
