//! Processes left in a container's cgroup once its task is over. When the pod's shim is killed
//! the container's process lives on (reparented), yet containerd reports the task exited or gone;
//! a container recorded EXITED must have nothing running behind that state (kubelet would start a
//! second copy beside it). As `runc delete` does for a stopped container, they are killed.

use nix::sys::signal::Signal;

use super::Containers;

/// Pids in cgroup `path` (cgroupfs layout; v1 controllers or the v2 tree).
fn procs(path: &str) -> Vec<i32> {
    let rel = path.trim_start_matches('/');
    let mut out = Vec::new();
    let Ok(roots) = std::fs::read_dir("/sys/fs/cgroup") else {
        return out;
    };
    let mut dirs: Vec<std::path::PathBuf> = roots.flatten().map(|e| e.path().join(rel)).collect();
    dirs.push(std::path::Path::new("/sys/fs/cgroup").join(rel));
    for d in dirs {
        if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
            out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

impl Containers {
    /// SIGKILL whatever still runs in container `id`'s cgroup (its task is over).
    pub(crate) async fn kill_leftovers(&self, id: &str) {
        let Some(rec) = self.store.get(id).await else {
            return;
        };
        // A systemd unit name (`slice:prefix:name`) is not a cgroupfs path: systemd stops it.
        if rec.cgroups_path.is_empty() || rec.cgroups_path.contains(':') {
            return;
        }
        let left = procs(&rec.cgroups_path);
        if left.is_empty() {
            return;
        }
        tracing::warn!(pod = %rec.pod_id, container = %id, pids = ?left, "processes still run in an exited container's cgroup (its shim died): killing them");
        for pid in left {
            let _ = crate::sys::kill(pid, Signal::SIGKILL);
        }
    }
}
