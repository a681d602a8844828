//! What a container takes from its image's files at create: the image's /etc/passwd and
//! /etc/group (to resolve its user) and its VOLUMEs' contents, both through one read-only
//! view snapshot of the image; the user files only once per image ([`UserFilesCache`]).
//!
//! [`UserFilesCache`]: crate::container::user_files::UserFilesCache

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crius_proto::runtime as cri;

use crate::container::config_volumes;
use crate::container::user::{self, UserRequest};
use crate::container::Containers;
use crate::error::{Error, Result};
use crate::image::manifest::RunConfig;
use crate::image::ResolvedImage;

impl Containers {
    /// The image's VOLUME paths no CRI mount covers, each with the directory of the
    /// container's own that holds it (none with `ignore_image_defined_volumes`).
    pub(super) fn config_volumes(
        &self,
        id: &str,
        run: &RunConfig,
        mounts: &[cri::Mount],
    ) -> Vec<(String, PathBuf)> {
        if self.shared.cfg.ignore_image_defined_volumes {
            Vec::new()
        } else {
            config_volumes::uncovered(run, mounts)
                .into_iter()
                .enumerate()
                .map(|(n, p)| (p, self.config_volumes_dir(id).join(n.to_string())))
                .collect()
        }
    }

    /// Fill the container's VOLUMEs from the image, and read the image's /etc/passwd and
    /// /etc/group when `ureq` needs them ("" when not needed or absent).
    pub(super) async fn read_image_files(
        &self,
        id: &str,
        img: &ResolvedImage,
        ureq: &UserRequest,
        volumes: &[(String, PathBuf)],
    ) -> Result<(String, String)> {
        // One read-only view of the image serves both: its user files and its VOLUME contents.
        let need_files = user::needs_files(ureq);
        Ok(match &img.top_chain {
            Some(top) if need_files || !volumes.is_empty() => {
                if volumes.is_empty() {
                    if let Some(files) = self.user_files.get(top) {
                        return Ok(files);
                    }
                }
                let volumes = volumes.to_vec();
                let files = self
                    .with_image_view(id, top, move |root| {
                        for (path, host) in &volumes {
                            config_volumes::populate(Some(root), path, host)?;
                        }
                        Ok(need_files.then(|| read_user_files(root)))
                    })
                    .await?;
                match files {
                    Some(files) => {
                        self.user_files.put(top, &files);
                        files
                    }
                    None => Default::default(),
                }
            }
            _ => {
                for (path, host) in volumes {
                    config_volumes::populate(None, path, host)?;
                }
                Default::default()
            }
        })
    }

    /// Where a container's image-config volumes live: in its record dir, so they go with it.
    pub(crate) fn config_volumes_dir(&self, id: &str) -> PathBuf {
        self.store.dir_of(id).join("volumes")
    }

    /// Run `work` on the image's files, through a read-only view snapshot of its top layer
    /// mounted for the call.
    async fn with_image_view<T: Send + 'static>(
        &self,
        id: &str,
        top: &str,
        work: impl FnOnce(&Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let key = format!("{}{id}", crate::container::view::USER_FILES_VIEW);
        let mounts = self.view_snapshot(&key, top, HashMap::new()).await?;
        let dir = self.user_files_dir().join(id);
        let res = tokio::task::spawn_blocking(move || {
            crate::container::view::mount_view(&mounts, &dir, &[])?;
            let out = work(&dir);
            if let Err(e) = crate::sys::umount(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "umount image view failed");
            }
            let _ = std::fs::remove_dir(&dir);
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("image view work: {e}")));
        self.remove_snapshot(&key).await;
        res?
    }
}

/// The image's /etc/passwd and /etc/group ("" when absent) from its files at `root`.
fn read_user_files(root: &Path) -> (String, String) {
    let read = |rel: &str| -> String {
        let p = root.join(rel);
        // A symlink could point out of the image onto the host's files: treat it as absent.
        match std::fs::symlink_metadata(&p) {
            Ok(md) if md.is_file() => std::fs::read_to_string(&p).unwrap_or_default(),
            _ => String::new(),
        }
    };
    (read("etc/passwd"), read("etc/group"))
}
