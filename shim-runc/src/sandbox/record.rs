//! The sandbox's state on disk, in its bundle: what `delete` (run by containerd after the shim
//! died) needs to undo everything the shim made, and what a look at the bundle should tell.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files::CriDirs;

pub const RECORD_FILE: &str = "crius-sandbox.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Created,
    Ready,
    Stopped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub phase: Phase,
    pub netns: Option<PathBuf>,
    pub dirs: CriDirs,
    /// The /dev/shm tmpfs, once mounted.
    pub shm: Option<PathBuf>,
    /// nsfs bind mounts pinning the pod's own ipc and uts namespaces.
    pub ipc_pin: Option<PathBuf>,
    pub uts_pin: Option<PathBuf>,
    /// The pause, when the pod shares a pid namespace (0: none).
    pub pause_pid: i32,
    /// Unix nanoseconds.
    pub created_at: i64,
}

impl Record {
    pub fn save(&self, bundle: &Path) {
        let path = bundle.join(RECORD_FILE);
        let written = serde_json::to_vec(self)
            .map_err(std::io::Error::other)
            .and_then(|t| std::fs::write(&path, t));
        if let Err(e) = written {
            tracing::warn!(sandbox_id = %self.id, error = %e, "writing sandbox record failed");
        }
    }

    pub fn load(bundle: &Path) -> Option<Record> {
        let text = std::fs::read(bundle.join(RECORD_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn remove(bundle: &Path) {
        let _ = std::fs::remove_file(bundle.join(RECORD_FILE));
    }

    /// Unmounts the pins and the shm tmpfs; what is not mounted is skipped.
    pub fn unmount_all(&mut self) {
        for p in [self.ipc_pin.take(), self.uts_pin.take(), self.shm.take()]
            .into_iter()
            .flatten()
        {
            if let Err(e) = crate::sys::unmount(&p) {
                tracing::warn!(sandbox_id = %self.id, path = %p.display(), error = %e, "unmount failed");
            }
            // A pin is a file, the shm mount point a dir; either goes.
            let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir(&p));
        }
    }
}
