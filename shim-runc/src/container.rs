//! A container in this shim: its bundle, how it runs (runc or the sandbox
//! fast path), its init and exec processes.

use std::{collections::HashMap, path::PathBuf};

use crate::{fastpath::FastTask, process::Process, runc::Runc};

pub enum Kind {
    Runc,
    Fast(FastTask),
}

pub struct Container {
    pub bundle: PathBuf,
    pub runc: Runc,
    pub kind: Kind,
    pub init: Process,
    pub execs: HashMap<String, Process>,
    /// Set when the shim mounted the rootfs, so Delete unmounts it.
    pub rootfs: Option<PathBuf>,
    /// No pid namespace of its own: when the init exits, its other
    /// processes do not die with it and must be killed (as runc-v2 does).
    pub shares_pid_ns: bool,
}

impl Container {
    pub fn process(&self, exec_id: &str) -> Option<&Process> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id)
        }
    }

    pub fn process_mut(&mut self, exec_id: &str) -> Option<&mut Process> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id)
        }
    }
}

/// Unmounts a rootfs the shim mounted, and everything below it.
pub fn unmount_rootfs(rootfs: &std::path::Path) {
    if let Some(path) = rootfs.to_str() {
        if let Err(e) = containerd_shim::mount::umount_recursive(Some(path), libc::MNT_DETACH) {
            tracing::warn!(rootfs = path, error = %e, "unmount rootfs failed");
        }
    }
}
