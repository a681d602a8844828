//! What criusd knows first-hand of its containers' tasks, so the frequent RPCs need not ask
//! containerd (containerd's CRI answers from its in-memory store, kept true by task events):
//! - a container this criusd created and has not tried to start has no task: StartContainer
//!   skips asking (records from before a restart are asked: a crash may have cut a start off);
//! - a running container's init pid, from Tasks.Start (or the Tasks.Get that found it
//!   running): while that process exists the container runs (its exit comes as an event);
//!   once it is gone containerd is asked for the exit, so a status is never RUNNING for a
//!   process that has ended and been reaped;
//! - a created container's rootfs mounts, as Prepare returned them: StartContainer takes them
//!   instead of asking the snapshotter again.
//!
//! These are facts, not states: the transitions stay the state machine's (`state.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crius_ctrd::Mount;

/// Whether a process exists (the real one: `kill(pid, 0)`).
pub type Probe = Arc<dyn Fn(u32) -> bool + Send + Sync>;

pub struct Known {
    unstarted: Mutex<HashSet<String>>,
    pids: Mutex<HashMap<String, u32>>,
    rootfs: Mutex<HashMap<String, Vec<Mount>>>,
    probe: Probe,
}

impl Default for Known {
    fn default() -> Self {
        Known::with_probe(Arc::new(|pid| crate::sys::process_exists(pid as i32)))
    }
}

impl Known {
    pub fn with_probe(probe: Probe) -> Known {
        Known {
            unstarted: Default::default(),
            pids: Default::default(),
            rootfs: Default::default(),
            probe,
        }
    }

    /// Container `id` was created by this criusd: it has no task yet.
    pub fn created(&self, id: &str) {
        lock(&self.unstarted).insert(id.to_string());
    }

    /// True once, for a container [`Known::created`] by this criusd: it has no task.
    pub fn take_unstarted(&self, id: &str) -> bool {
        lock(&self.unstarted).remove(id)
    }

    /// Container `id`'s rootfs snapshot mounts as `mounts` (the snapshot's for its life).
    pub fn rootfs(&self, id: &str, mounts: Vec<Mount>) {
        lock(&self.rootfs).insert(id.to_string(), mounts);
    }

    /// The rootfs mounts [`Known::rootfs`] kept, once: only a start needs them.
    pub fn take_rootfs(&self, id: &str) -> Option<Vec<Mount>> {
        lock(&self.rootfs).remove(id)
    }

    /// Container `id`'s init runs as `pid` (0: unknown, nothing kept).
    pub fn running(&self, id: &str, pid: u32) {
        if pid > 0 {
            lock(&self.pids).insert(id.to_string(), pid);
        }
    }

    /// The init pid last seen running.
    pub fn pid(&self, id: &str) -> Option<u32> {
        lock(&self.pids).get(id).copied()
    }

    /// True when the container's init is known and still exists.
    pub fn alive(&self, id: &str) -> bool {
        self.pid(id).is_some_and(|pid| (self.probe)(pid))
    }

    /// The container is gone (removed, or its record dropped).
    pub fn forget(&self, id: &str) {
        lock(&self.unstarted).remove(id);
        lock(&self.pids).remove(id);
        lock(&self.rootfs).remove(id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstarted_once_and_pids_that_live() {
        let k = Known::default();
        k.created("a");
        assert!(k.take_unstarted("a"));
        assert!(!k.take_unstarted("a"));
        assert!(!k.alive("a"));
        k.running("a", 0);
        assert_eq!(k.pid("a"), None);
        k.running("a", std::process::id());
        assert!(k.alive("a"));
        k.forget("a");
        assert!(!k.alive("a"));
    }

    #[test]
    fn rootfs_mounts_are_taken_once() {
        let k = Known::default();
        let m = Mount {
            r#type: "overlay".into(),
            ..Default::default()
        };
        k.rootfs("a", vec![m.clone()]);
        assert_eq!(k.take_rootfs("a"), Some(vec![m.clone()]));
        assert_eq!(k.take_rootfs("a"), None);
        k.rootfs("b", vec![m]);
        k.forget("b");
        assert_eq!(k.take_rootfs("b"), None);
    }

    #[test]
    fn a_pid_that_is_gone_is_not_alive() {
        // A child that has exited and been reaped: its pid names no process.
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("reap");
        let k = Known::default();
        k.running("a", pid);
        assert!(!k.alive("a"));
    }
}
