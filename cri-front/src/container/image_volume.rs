//! Image volumes (Kubernetes ImageVolume, CRI `Mount.image`): an image kubelet has pulled,
//! mounted read-only into a container. Each such mount gets a View snapshot of the image's top
//! chain id (key `crius-iv-<container>-<n>`, n = index of the mount in the request) mounted at
//! `<run_dir>/image-volumes/<container>/<n>`; the container bind-mounts that (or its
//! `image_sub_path`). Views carry a gc.root label (containerd's GC would take them otherwise)
//! and the container id, so RemoveContainer, a failed create and start-up recovery find them.

use std::collections::{HashMap, VecDeque};
use std::path::{Component, Path, PathBuf};

use crius_proto::runtime as cri;
use serde::{Deserialize, Serialize};

use super::record::ContainerRecord;
use super::view;
use super::Containers;
use crate::error::{Error, Result};

/// Label on an image volume's view snapshot: the container it belongs to.
pub const LABEL_IMAGE_VOLUME: &str = "io.crius.image-volume.container";
/// containerd's GC keeps snapshots with this label (views have no other reference).
const LABEL_GC_ROOT: &str = "containerd.io/gc.root";
/// Symlinks followed while resolving a sub path, as Linux's MAXSYMLINKS.
const MAX_LINKS: usize = 40;

/// One image volume of a container, as made (kept in the container record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageVolume {
    /// Index of the mount in the CreateContainer request.
    pub index: usize,
    pub container_path: String,
    /// The image as kubelet named it, and its id.
    pub image: String,
    pub image_id: String,
    #[serde(default)]
    pub sub_path: String,
    /// The view snapshot's key.
    pub key: String,
    /// Where the view is mounted on the host.
    pub host_dir: String,
    /// What the container bind-mounts: `host_dir` or the sub path's directory in it.
    pub source: String,
}

pub fn snapshot_key(container: &str, index: usize) -> String {
    format!("crius-iv-{container}-{index}")
}

/// A sub path must stay inside the image: relative, no `..`.
pub fn check_sub_path(sub: &str) -> Result<()> {
    let p = Path::new(sub);
    if p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
        return Err(Error::InvalidArgument(format!(
            "image_sub_path {sub:?} must be a relative path without \"..\""
        )));
    }
    Ok(())
}

/// Resolve `rel` inside `root` as though `root` were `/`: symlinks are followed within it (an
/// absolute target starts again at `root`, `..` stops there), so nothing outside is reached.
pub fn lookup_in_root(root: &Path, rel: &str) -> std::io::Result<PathBuf> {
    let parts = |s: &str| -> Vec<String> { s.split('/').map(String::from).collect() };
    let mut todo: VecDeque<String> = parts(rel).into();
    let mut cur = PathBuf::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let next = cur.join(&c);
        let md = std::fs::symlink_metadata(root.join(&next))?;
        if !md.file_type().is_symlink() {
            cur = next;
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(std::io::Error::from_raw_os_error(nix::libc::ELOOP));
        }
        let target = std::fs::read_link(root.join(&next))?;
        let target = target.to_string_lossy();
        if target.starts_with('/') {
            cur = PathBuf::new();
        }
        for p in parts(&target).into_iter().rev() {
            todo.push_front(p);
        }
    }
    Ok(root.join(cur))
}

/// The directory a sub path names in the mounted image at `root`: it must exist and be a
/// directory (mounting single files is not part of the feature).
pub fn resolve_sub_path(root: &Path, sub: &str) -> Result<PathBuf> {
    check_sub_path(sub)?;
    let p = lookup_in_root(root, sub).map_err(|e| {
        Error::InvalidArgument(format!("image_sub_path {sub:?} is not in the image: {e}"))
    })?;
    if !p.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "image_sub_path {sub:?} is not a directory in the image"
        )));
    }
    Ok(p)
}

/// What an image mount must be before anything is made for it.
fn check_mount(m: &cri::Mount, image: &str) -> Result<()> {
    if !m.container_path.starts_with('/') {
        return Err(Error::InvalidArgument(format!(
            "mount container_path {:?} must be absolute",
            m.container_path
        )));
    }
    if image.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "image mount {}: image is empty",
            m.container_path
        )));
    }
    if !m.host_path.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "image mount {}: host_path must be empty",
            m.container_path
        )));
    }
    check_sub_path(&m.image_sub_path)
}

/// The image mounts of a request, validated, with their index in it.
fn image_mounts(mounts: &[cri::Mount]) -> Result<Vec<(usize, &cri::Mount, &str)>> {
    let mut out = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        if let Some(spec) = &m.image {
            check_mount(m, &spec.image)?;
            out.push((i, m, spec.image.as_str()));
        }
    }
    Ok(out)
}

impl Containers {
    fn image_volumes_dir(&self) -> PathBuf {
        self.shared.cfg.run_dir.join("image-volumes")
    }

    /// Make the image volumes of a new container. On failure nothing of them is left.
    pub(crate) async fn make_image_volumes(
        &self,
        pod_id: &str,
        id: &str,
        mounts: &[cri::Mount],
    ) -> Result<Vec<ImageVolume>> {
        // Everything that can be refused is, before anything is made.
        let mut planned = Vec::new();
        for (index, m, image) in image_mounts(mounts)? {
            let img = self.shared.images.resolve(image).await?;
            let top = img.top_chain.ok_or_else(|| {
                Error::InvalidArgument(format!("image {image:?} has no layers to mount"))
            })?;
            planned.push((index, m, image, img.view.id, top));
        }
        let mut made = Vec::new();
        for (index, m, image, image_id, top) in planned {
            let vol = ImageVolume {
                index,
                container_path: m.container_path.clone(),
                image: image.to_string(),
                image_id,
                sub_path: m.image_sub_path.clone(),
                key: snapshot_key(id, index),
                host_dir: self
                    .image_volumes_dir()
                    .join(id)
                    .join(index.to_string())
                    .display()
                    .to_string(),
                source: String::new(),
            };
            match self.make_image_volume(id, vol, &top).await {
                Ok(v) => {
                    tracing::info!(pod = %pod_id, container = %id, image = %v.image,
                        path = %v.container_path, sub_path = %v.sub_path, "image volume mounted");
                    made.push(v);
                }
                Err(e) => {
                    self.drop_image_volumes(id).await;
                    return Err(e);
                }
            }
        }
        Ok(made)
    }

    async fn make_image_volume(
        &self,
        id: &str,
        mut vol: ImageVolume,
        top: &str,
    ) -> Result<ImageVolume> {
        let labels = HashMap::from([
            (LABEL_GC_ROOT.to_string(), "crius image volume".to_string()),
            (LABEL_IMAGE_VOLUME.to_string(), id.to_string()),
        ]);
        let mounts = self.view_snapshot(&vol.key, top, labels).await?;
        let dir = PathBuf::from(&vol.host_dir);
        let sub = vol.sub_path.clone();
        let source = tokio::task::spawn_blocking(move || {
            view::mount_view(&mounts, &dir, &["nosuid", "nodev"])?;
            resolve_sub_path(&dir, &sub)
        })
        .await
        .map_err(|e| Error::Internal(format!("mount image volume: {e}")))??;
        vol.source = source.display().to_string();
        Ok(vol)
    }

    /// Mount again the views whose host mount is gone (after a reboot /run is empty while
    /// containerd still has the snapshots), before the container starts.
    pub(crate) async fn ensure_image_volumes(&self, rec: &ContainerRecord) -> Result<()> {
        for v in &rec.image_volumes {
            let dir = PathBuf::from(&v.host_dir);
            let here = std::fs::canonicalize(&dir)
                .ok()
                .map(|p| view::mounted(&p))
                .transpose()?
                .unwrap_or(false);
            if here {
                continue;
            }
            let mounts = self.snapshot_mounts(&v.key).await.map_err(|e| {
                Error::FailedPrecondition(format!(
                    "image volume {} of container {}: {e}",
                    v.container_path, rec.id
                ))
            })?;
            tokio::task::spawn_blocking(move || {
                view::mount_view(&mounts, &dir, &["nosuid", "nodev"])
            })
            .await
            .map_err(|e| Error::Internal(format!("mount image volume: {e}")))??;
            tracing::info!(pod = %rec.pod_id, container = %rec.id, path = %v.container_path,
                "image volume mounted again");
        }
        Ok(())
    }

    /// Unmount and remove a container's image volumes: host mounts and view snapshots.
    pub(crate) async fn drop_image_volumes(&self, id: &str) {
        let dir = self.image_volumes_dir().join(id);
        if let Err(e) = tokio::task::spawn_blocking(move || unmount_tree(&dir)).await {
            tracing::warn!(container = id, error = %e, "unmount image volumes failed");
        }
        let filter = format!("labels.\"{LABEL_IMAGE_VOLUME}\"=={id}");
        match self.image_volume_snapshots(filter).await {
            Ok(found) => {
                for (key, _) in found {
                    self.remove_snapshot(&key).await;
                }
            }
            Err(e) => {
                tracing::warn!(container = id, error = %e, "list image volume snapshots failed")
            }
        }
    }

    /// Image volume views matching `filter`: (key, container id).
    async fn image_volume_snapshots(&self, filter: String) -> Result<Vec<(String, String)>> {
        let listed = self.shared.ctrd.snapshots(vec![filter]).await?;
        Ok(listed
            .into_iter()
            .filter_map(|i| {
                let owner = i.labels.get(LABEL_IMAGE_VOLUME)?.clone();
                Some((i.name, owner))
            })
            .collect())
    }

    /// Start-up: remove the image volumes (views, host mounts) of containers that have no
    /// record (criusd crashed during a create or a remove). Returns those container ids.
    pub(crate) async fn sweep_image_volumes(&self) -> Result<Vec<String>> {
        let mut stale = std::collections::BTreeSet::new();
        let filter = format!("labels.\"{LABEL_IMAGE_VOLUME}\"");
        for (_, owner) in self.image_volume_snapshots(filter).await? {
            if self.store.get(&owner).await.is_none() {
                stale.insert(owner);
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.image_volumes_dir()) {
            for e in rd.flatten() {
                let owner = e.file_name().to_string_lossy().into_owned();
                if self.store.get(&owner).await.is_none() {
                    stale.insert(owner);
                }
            }
        }
        for id in &stale {
            tracing::warn!(container = %id, "recover: image volumes without a container record; removing them");
            self.drop_image_volumes(id).await;
        }
        Ok(stale.into_iter().collect())
    }
}

/// Unmount each `<dir>/<n>` and remove the directories.
fn unmount_tree(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        view::unmount_all(&p);
        if let Err(e) = std::fs::remove_dir(&p) {
            tracing::warn!(dir = %p.display(), error = %e, "remove image volume dir failed");
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn sub_paths_stay_relative() {
        assert!(check_sub_path("").is_ok());
        assert!(check_sub_path("home/app").is_ok());
        assert!(check_sub_path("./home//app/").is_ok());
        for bad in ["..", "home/../..", "/etc", "a/../b"] {
            assert!(
                matches!(check_sub_path(bad), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn sub_paths_resolve_inside_the_root() {
        let t = tempfile::tempdir().expect("tmp");
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("home/app/data")).expect("dirs");
        std::fs::write(root.join("home/app/file"), "x").expect("file");
        symlink("/home/app", root.join("abs")).expect("link");
        symlink("../../..", root.join("home/app/up")).expect("link");
        symlink("loop", root.join("loop")).expect("link");
        let ok = |s: &str| resolve_sub_path(&root, s).expect(s);
        assert_eq!(ok(""), root);
        assert_eq!(ok("home/app"), root.join("home/app"));
        // An absolute link starts again at the image root, not the host's.
        assert_eq!(ok("abs/data"), root.join("home/app/data"));
        // `..` in a link stops at the image root.
        assert_eq!(ok("home/app/up"), root);
        for bad in ["nope", "home/app/file", "loop", "../root"] {
            assert!(
                matches!(resolve_sub_path(&root, bad), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn image_mounts_are_checked() {
        let m = |host: &str, sub: &str, image: &str| cri::Mount {
            container_path: "/iv".into(),
            host_path: host.into(),
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            image_sub_path: sub.into(),
            ..Default::default()
        };
        let plain = cri::Mount {
            container_path: "/data".into(),
            host_path: "/srv".into(),
            ..Default::default()
        };
        let both = [plain, m("", "a", "busybox")];
        let got = image_mounts(&both).expect("ok");
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].2), (1, "busybox"));
        for bad in [
            m("/srv", "", "busybox"),
            m("", "../x", "busybox"),
            m("", "", ""),
        ] {
            assert!(matches!(
                image_mounts(&[bad]),
                Err(Error::InvalidArgument(_))
            ));
        }
        assert_eq!(snapshot_key("c1", 2), "crius-iv-c1-2");
    }
}
