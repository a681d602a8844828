//! The container's bind mounts: the image's VOLUMEs (directories of its own), then each CRI
//! mount — an image volume's read-only view, or a host path checked and given its
//! propagation.

use std::path::{Path, PathBuf};

use crius_proto::runtime as cri;
use crius_sandboxer::UserNamespace;

use crate::container::image_volume::ImageVolume;
use crate::container::propagation::{self, MountPoint};
use crate::container::spec::BindMount;
use crate::container::Containers;
use crate::error::{Error, Result};

impl Containers {
    /// `volumes` are the image's VOLUMEs and their host directories, `vols` the image
    /// volumes made for CRI mounts (by mount index); `userns` the pod's user namespace the
    /// container is in.
    pub(super) fn bind_mounts(
        &self,
        config: &cri::ContainerConfig,
        volumes: &[(String, PathBuf)],
        vols: &[ImageVolume],
        userns: Option<UserNamespace>,
        rro_supported: bool,
    ) -> Result<Vec<BindMount>> {
        let mut mounts: Vec<BindMount> = volumes
            .iter()
            .map(|(path, host)| BindMount {
                container_path: path.clone(),
                host_path: host.display().to_string(),
                readonly: false,
                propagation: "rprivate",
                recursive_readonly: false,
                nosuid_nodev: false,
                // The image's files, seen as the image has them.
                idmap: userns.is_some(),
            })
            .collect();
        let mount_table = if config
            .mounts
            .iter()
            .any(|m| m.propagation != cri::MountPropagation::PropagationPrivate as i32)
        {
            propagation::mounts_now()?
        } else {
            Vec::new()
        };
        for (i, m) in config.mounts.iter().enumerate() {
            let asked_idmap = crate::pod::userns::mount_idmapped(m, userns)?;
            mounts.push(match vols.iter().find(|v| v.index == i) {
                Some(v) => BindMount {
                    idmap: userns.is_some(),
                    ..image_bind(v)
                },
                None => BindMount {
                    idmap: asked_idmap,
                    ..bind_mount(m, rro_supported, &mount_table)?
                },
            });
        }
        Ok(mounts)
    }
}

fn bind_mount(
    m: &cri::Mount,
    rro_supported: bool,
    mount_table: &[MountPoint],
) -> Result<BindMount> {
    if m.container_path.is_empty() || !m.container_path.starts_with('/') {
        return Err(Error::InvalidArgument(format!(
            "mount container_path {:?} must be absolute",
            m.container_path
        )));
    }
    if m.image.is_some() {
        return Err(Error::Internal(format!(
            "image mount {} was not made",
            m.container_path
        )));
    }
    if m.recursive_read_only {
        // The CRI contract: read-only, private propagation, and a runtime that can.
        if !m.readonly || m.propagation != cri::MountPropagation::PropagationPrivate as i32 {
            return Err(Error::InvalidArgument(format!(
                "mount {}: recursive read-only needs readonly and private propagation",
                m.container_path
            )));
        }
        if !rro_supported {
            return Err(Error::InvalidArgument(format!(
                "mount {}: recursive read-only is not supported by this node's runc or kernel",
                m.container_path
            )));
        }
    }
    let src = Path::new(&m.host_path);
    if !src.exists() {
        // kubelet usually creates host paths; containerd creates a missing one as a dir.
        std::fs::create_dir_all(src)
            .map_err(|e| Error::io(format!("create mount source {}", src.display()), e))?;
    }
    let propagation = propagation::option_for(m, mount_table)?;
    Ok(BindMount {
        container_path: m.container_path.clone(),
        host_path: m.host_path.clone(),
        readonly: m.readonly,
        propagation,
        recursive_readonly: m.recursive_read_only,
        nosuid_nodev: false,
        idmap: false,
    })
}

/// An image volume's bind: always read-only (the feature says so, whatever `readonly` was).
fn image_bind(v: &ImageVolume) -> BindMount {
    BindMount {
        container_path: v.container_path.clone(),
        host_path: v.source.clone(),
        readonly: true,
        propagation: "rprivate",
        recursive_readonly: false,
        nosuid_nodev: true,
        idmap: false,
    }
}
