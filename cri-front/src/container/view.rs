//! Read-only views of an image's filesystem on the host: a containerd View snapshot of the
//! image's top chain id, mounted at a directory of criusd's (to read the image's /etc/passwd,
//! and for image volumes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crius_ctrd::Mount;

use super::Containers;
use crate::error::{Error, Result};

/// Key prefix of the short-lived views CreateContainer reads an image's /etc/passwd through.
pub const USER_FILES_VIEW: &str = "crius-view-";

impl Containers {
    /// Where those short-lived views are mounted, one dir per container being created.
    pub(crate) fn user_files_dir(&self) -> PathBuf {
        self.shared.cfg.run_dir.join("tmpmounts")
    }

    /// Start-up: no create is in flight, so every user-files view and its mount left is a
    /// crash's. Returns how many views were removed.
    pub(crate) async fn sweep_user_file_views(&self) -> Result<usize> {
        if let Ok(rd) = std::fs::read_dir(self.user_files_dir()) {
            for e in rd.flatten() {
                unmount_all(&e.path());
                let _ = std::fs::remove_dir(e.path());
            }
        }
        let stale: Vec<String> = self
            .shared
            .ctrd
            .snapshots(vec![format!("name~=\"^{USER_FILES_VIEW}\"")])
            .await?
            .into_iter()
            .map(|i| i.name)
            .filter(|n| n.starts_with(USER_FILES_VIEW))
            .collect();
        for key in &stale {
            tracing::warn!(snapshot = %key, "recover: removing a view left by a crash during create");
            self.remove_snapshot(key).await;
        }
        Ok(stale.len())
    }

    /// Make a View snapshot `key` of `parent` (a chain id); its mounts.
    pub(crate) async fn view_snapshot(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>> {
        Ok(self.shared.ctrd.view_snapshot(key, parent, labels).await?)
    }

    /// The mounts of an existing snapshot (to mount a view again after a reboot).
    pub(crate) async fn snapshot_mounts(&self, key: &str) -> Result<Vec<Mount>> {
        Ok(self.shared.ctrd.snapshot_mounts(key).await?)
    }
}

/// Mount a view's mount at `dir` (created), read-only, with `extra` options (nosuid, nodev).
pub fn mount_view(mounts: &[Mount], dir: &Path, extra: &[&str]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
    // Snapshotters hand a view out as one mount (a bind of the layer, or an overlay of lowerdirs).
    let m = match mounts {
        [m] => m,
        [] => return Err(Error::Internal("view snapshot has no mounts".into())),
        _ => {
            return Err(Error::Internal(format!(
                "view snapshot has {} mounts; one expected",
                mounts.len()
            )))
        }
    };
    let mut options = m.options.clone();
    options.extend(extra.iter().map(|s| s.to_string()));
    if !options.iter().any(|o| o == "ro") {
        options.push("ro".into());
    }
    crate::sys::mount(&m.r#type, &m.source, &options, dir)
        .map_err(|e| Error::Internal(format!("mount image view at {}: {e}", dir.display())))
}

/// Unmount everything stacked at `dir` (nothing mounted is fine).
pub fn unmount_all(dir: &Path) {
    // A few rounds: a view mounted twice (remount raced a live one) is two mounts.
    for _ in 0..4 {
        match crate::sys::umount(dir) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "umount image view failed");
                return;
            }
        }
    }
}

/// Whether `path` is a mount point, from the text of /proc/self/mountinfo.
pub fn is_mount_point(mountinfo: &str, path: &Path) -> bool {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| Path::new(&unescape(mp)) == path)
}

/// Whether `path` is a mount point in criusd's mount namespace now.
pub fn mounted(path: &Path) -> Result<bool> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
    Ok(is_mount_point(&text, path))
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
        40 22 0:35 / /run/crius/image-volumes/c1/0 ro,nosuid,nodev - overlay overlay ro,lowerdir=/a:/b\n\
        41 22 0:36 / /run/with\\040space ro - tmpfs tmpfs ro\n";

    #[test]
    fn mount_points_from_mountinfo() {
        assert!(is_mount_point(
            INFO,
            Path::new("/run/crius/image-volumes/c1/0")
        ));
        assert!(is_mount_point(INFO, Path::new("/run/with space")));
        assert!(!is_mount_point(
            INFO,
            Path::new("/run/crius/image-volumes/c1")
        ));
        assert!(!is_mount_point(
            INFO,
            Path::new("/run/crius/image-volumes/c1/1")
        ));
    }
}
