//! Id-mapped mounts for a container in its pod's user namespace. runc 1.1 cannot make them
//! (runc 1.2 can), so the shim makes them itself, with the kernel's mount_setattr
//! (MOUNT_ATTR_IDMAP), before `runc create`:
//! - the rootfs: an overlay over id-mapped copies of the lower layers, whose upper dir is owned
//!   by the mapped root (as containerd's remapped snapshots are). overlayfs itself cannot be
//!   id-mapped, and an id-mapped upper dir would need the mounter's own uid (host root) mapped;
//! - every bind mount named in the spec's [`ANN_IDMAP_MOUNTS`] annotation (criusd names the
//!   mounts a CRI request wants id-mapped): its source becomes an id-mapped copy. An annotation
//!   rather than OCI's `uidMappings` on the mount: containerd 2.x refuses those for a runtime
//!   whose `features` lack runc 1.2's idmap mount extension.
//!
//! The copies hang under `<bundle>/crius-idmap/` only until the overlay is mounted and runc has
//! bound the volumes into the container; [`release`] detaches them then, on delete, and in the
//! shim's `delete` after a crash.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use containerd_shim_protos::api::Mount;
use serde_json::Value;

use crate::{
    error::{Error, Result},
    sys,
};

/// Where the id-mapped copies are attached, under the bundle.
pub const DIR: &str = "crius-idmap";

/// Spec annotation: a JSON array of the mount destinations to id-map with the user namespace's
/// mapping.
pub const ANN_IDMAP_MOUNTS: &str = "io.crius.idmap-mounts";

/// One container's id mapping: the user namespace whose mapping the mounts take.
pub struct Mapper {
    userns: File,
    /// The host ids of the container's root (owner of the rootfs's upper dir).
    root: (u32, u32),
    dir: PathBuf,
    next: usize,
}

/// The host id that container id 0 maps to in an OCI mapping list.
fn host_root(maps: &Value) -> Option<u32> {
    maps.as_array()?.iter().find_map(|m| {
        (m.get("containerID")?.as_u64()? == 0)
            .then(|| m.get("hostID")?.as_u64())
            .flatten()
            .map(|h| h as u32)
    })
}

/// The user namespace a spec joins by path, if it has one with id mappings.
pub fn joined_userns(spec: &Value) -> Option<&str> {
    spec.pointer("/linux/namespaces")?
        .as_array()?
        .iter()
        .find(|ns| ns.get("type").and_then(Value::as_str) == Some("user"))?
        .get("path")?
        .as_str()
        .filter(|p| !p.is_empty())
}

impl Mapper {
    /// A mapper for a spec that joins a user namespace by path; None for any other spec.
    pub fn for_spec(spec: &Value, bundle: &Path) -> Result<Option<Mapper>> {
        let Some(path) = joined_userns(spec) else {
            return Ok(None);
        };
        let uid_map = spec
            .pointer("/linux/uidMappings")
            .cloned()
            .unwrap_or_default();
        let gid_map = spec
            .pointer("/linux/gidMappings")
            .cloned()
            .unwrap_or_default();
        let (Some(uid), Some(gid)) = (host_root(&uid_map), host_root(&gid_map)) else {
            return Err(Error::InvalidArgument(format!(
                "user namespace {path}: uidMappings and gidMappings must map container id 0"
            )));
        };
        let userns = File::open(path).map_err(Error::io(format!("open user namespace {path}")))?;
        Ok(Some(Mapper {
            userns,
            root: (uid, gid),
            dir: bundle.join(DIR),
            next: 0,
        }))
    }

    /// An id-mapped copy of `src`, attached under the bundle; returns where.
    fn map(&mut self, src: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.dir).map_err(Error::io("mkdir idmap dir"))?;
        let at = self.dir.join(self.next.to_string());
        self.next += 1;
        let is_dir = std::fs::metadata(src)
            .map_err(Error::io(format!(
                "id-mapped mount source {}",
                src.display()
            )))?
            .is_dir();
        if is_dir {
            std::fs::create_dir_all(&at)
        } else {
            File::create(&at).map(drop)
        }
        .map_err(Error::io(format!("create {}", at.display())))?;
        let tree = sys::open_tree_clone(src).map_err(Error::io(format!(
            "open_tree {} (id-mapped mount)",
            src.display()
        )))?;
        sys::set_idmap(&tree, &self.userns).map_err(Error::io(format!(
            "id-map {} (mount_setattr MOUNT_ATTR_IDMAP: does its filesystem support id-mapped mounts?)",
            src.display()
        )))?;
        sys::attach_tree(&tree, &at)
            .map_err(Error::io(format!("move_mount to {}", at.display())))?;
        Ok(at)
    }

    /// Mounts the container's rootfs at `target` with the layers id-mapped: an overlay gets
    /// id-mapped lower dirs and an upper dir owned by the mapped root; a bind (a single-layer
    /// or read-only snapshot) is the id-mapped copy itself.
    pub fn mount_rootfs(&mut self, m: &Mount, target: &Path) -> Result<()> {
        use nix::mount::{mount, MsFlags};
        match m.type_.as_str() {
            "overlay" => {
                let mut data = Vec::new();
                let mut flags = MsFlags::empty();
                for o in &m.options {
                    if let Some(lowers) = o.strip_prefix("lowerdir=") {
                        let mut mapped = Vec::new();
                        for l in lowers.split(':') {
                            mapped.push(self.map(Path::new(l))?.to_string_lossy().into_owned());
                        }
                        data.push(format!("lowerdir={}", mapped.join(":")));
                        continue;
                    }
                    if let Some(upper) = o.strip_prefix("upperdir=") {
                        let (uid, gid) = self.root;
                        std::os::unix::fs::chown(upper, Some(uid), Some(gid))
                            .map_err(Error::io(format!("chown upper dir {upper}")))?;
                    }
                    match o.as_str() {
                        "ro" => flags |= MsFlags::MS_RDONLY,
                        "rw" => {}
                        _ => data.push(o.clone()),
                    }
                }
                let data = data.join(",");
                mount(
                    Some("overlay"),
                    target,
                    Some("overlay"),
                    flags,
                    Some(data.as_str()),
                )
                .map_err(|e| Error::Other(format!("mount id-mapped overlay rootfs: {e}")))
            }
            "bind" => {
                let tree = sys::open_tree_clone(Path::new(&m.source))
                    .map_err(Error::io(format!("open_tree {}", m.source)))?;
                sys::set_idmap(&tree, &self.userns)
                    .map_err(Error::io(format!("id-map rootfs {}", m.source)))?;
                sys::attach_tree(&tree, target).map_err(Error::io("move_mount rootfs"))?;
                if m.options.iter().any(|o| o == "ro") {
                    mount(
                        None::<&str>,
                        target,
                        None::<&str>,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                        None::<&str>,
                    )
                    .map_err(|e| Error::Other(format!("remount rootfs read-only: {e}")))?;
                }
                Ok(())
            }
            other => Err(Error::InvalidArgument(format!(
                "rootfs mount type {other:?} cannot be id-mapped (overlay or bind only)"
            ))),
        }
    }

    /// Points every bind mount of `spec` named in [`ANN_IDMAP_MOUNTS`] at an id-mapped copy of
    /// its source. True when the spec changed.
    pub fn map_volumes(&mut self, spec: &mut Value) -> Result<bool> {
        let Some(listed) = spec
            .pointer(&format!("/annotations/{ANN_IDMAP_MOUNTS}"))
            .and_then(Value::as_str)
        else {
            return Ok(false);
        };
        let wanted: Vec<String> = serde_json::from_str(listed)
            .map_err(|e| Error::InvalidArgument(format!("annotation {ANN_IDMAP_MOUNTS}: {e}")))?;
        let mounts = spec.get_mut("mounts").and_then(Value::as_array_mut);
        let mut changed = false;
        for m in mounts.into_iter().flatten() {
            let dest = m.get("destination").and_then(Value::as_str).unwrap_or("");
            if !wanted.iter().any(|w| w == dest) {
                continue;
            }
            let src = m
                .get("source")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let mapped = self.map(Path::new(&src))?;
            m["source"] = Value::String(mapped.to_string_lossy().into_owned());
            changed = true;
        }
        Ok(changed)
    }
}

/// Detaches every id-mapped copy under `bundle` and removes their mount points (never
/// recursively: a copy still attached would expose the volume itself). Idempotent.
pub fn release(bundle: &Path) {
    let dir = bundle.join(DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if let Err(err) = sys::unmount(&p) {
            tracing::warn!(path = %p.display(), error = %err, "detach id-mapped mount failed");
            continue;
        }
        let removed = if p.is_dir() {
            std::fs::remove_dir(&p)
        } else {
            std::fs::remove_file(&p)
        };
        if let Err(err) = removed {
            tracing::warn!(path = %p.display(), error = %err, "remove id-mapped mount point failed");
        }
    }
    let _ = std::fs::remove_dir(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn joined_userns_needs_a_path() {
        let s = json!({"linux": {"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}]}});
        assert_eq!(joined_userns(&s), Some("/proc/1/ns/user"));
        let s = json!({"linux": {"namespaces": [{"type": "user"}, {"type": "pid"}]}});
        assert_eq!(joined_userns(&s), None);
        assert_eq!(joined_userns(&json!({})), None);
    }

    /// A user namespace mapping 0 → 200000 (65536 ids), held by an `unshare --user` sleeper.
    struct Userns(std::process::Child);

    impl Userns {
        fn new() -> Userns {
            let child = std::process::Command::new("unshare")
                .args(["--user", "sleep", "60"])
                .spawn()
                .expect("unshare");
            let pid = child.id();
            let own = std::fs::read_link("/proc/self/ns/user").unwrap();
            for _ in 0..500 {
                if std::fs::read_link(format!("/proc/{pid}/ns/user")).is_ok_and(|l| l != own) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            for f in ["uid_map", "gid_map"] {
                std::fs::write(format!("/proc/{pid}/{f}"), "0 200000 65536\n").unwrap();
            }
            Userns(child)
        }

        fn spec(&self, mounts: Value) -> Value {
            let map = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            json!({
                "mounts": mounts,
                "linux": {
                    "namespaces": [{"type": "user", "path": format!("/proc/{}/ns/user", self.0.id())}],
                    "uidMappings": map, "gidMappings": map,
                }
            })
        }
    }

    impl Drop for Userns {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn owner(p: &Path) -> (u32, u32) {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid())
    }

    #[test]
    fn volumes_are_id_mapped_until_released() {
        let ns = Userns::new();
        let host = tempfile::tempdir().unwrap();
        let vol = host.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        std::fs::write(vol.join("f"), b"x").unwrap();
        let bundle = host.path().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        let mut spec = ns.spec(json!([
            {"destination": "/data", "type": "bind", "source": vol, "options": ["rbind"]},
            {"destination": "/plain", "type": "bind", "source": vol, "options": ["rbind"]},
        ]));
        spec["annotations"] = json!({});
        spec["annotations"][ANN_IDMAP_MOUNTS] = json!(r#"["/data"]"#);
        let mut m = Mapper::for_spec(&spec, &bundle).unwrap().unwrap();
        assert!(m.map_volumes(&mut spec).unwrap());
        let mapped = PathBuf::from(spec["mounts"][0]["source"].as_str().unwrap());
        assert!(mapped.starts_with(bundle.join(DIR)));
        assert_eq!(spec["mounts"][1]["source"], json!(vol));
        // Host root's file seen through the mapping: the container's root.
        assert_eq!(owner(&mapped.join("f")), (200000, 200000));
        assert_eq!(owner(&vol.join("f")), (0, 0));
        release(&bundle);
        assert!(!bundle.join(DIR).exists());
        assert_eq!(std::fs::read(vol.join("f")).unwrap(), b"x");

        spec["annotations"][ANN_IDMAP_MOUNTS] = json!("/data");
        assert!(matches!(
            m.map_volumes(&mut spec),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn overlay_rootfs_over_id_mapped_layers() {
        let ns = Userns::new();
        let host = tempfile::tempdir().unwrap();
        let (lower, snap, target) = (
            host.path().join("lower"),
            host.path().join("snap"),
            host.path().join("rootfs"),
        );
        for d in [&lower, &snap.join("fs"), &snap.join("work"), &target] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(lower.join("etc-file"), b"layer").unwrap();
        let bundle = host.path().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        let spec = ns.spec(json!([]));
        let mut m = Mapper::for_spec(&spec, &bundle).unwrap().unwrap();
        let mount = Mount {
            type_: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "index=off".into(),
                format!("workdir={}", snap.join("work").display()),
                format!("upperdir={}", snap.join("fs").display()),
                format!("lowerdir={}", lower.display()),
            ],
            ..Default::default()
        };
        m.mount_rootfs(&mount, &target).unwrap();
        release(&bundle);
        assert_eq!(owner(&target.join("etc-file")), (200000, 200000));
        assert_eq!(owner(&target), (200000, 200000));
        // Writable: the upper dir (not id-mapped) takes the writes.
        std::fs::write(target.join("new"), b"w").unwrap();
        assert!(snap.join("fs/new").exists());
        crate::container::unmount_rootfs(&target);
        assert!(!target.join("etc-file").exists());
    }

    #[test]
    fn host_root_is_container_zero() {
        let m = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        assert_eq!(host_root(&m), Some(200000));
        assert_eq!(
            host_root(&json!([{"containerID": 1, "hostID": 5, "size": 1}])),
            None
        );
    }
}
