//! OOM notifications: cgroup v1's memory.oom_control through an eventfd,
//! published as TaskOOM. (cgroup v2 is not watched yet.)

use std::{
    os::fd::{AsRawFd, OwnedFd},
    path::PathBuf,
};

use crate::{cgroups, events::Events, sys};
use containerd_shim::protos::events::task::TaskOOM;

/// The v1 memory cgroup directory of `pid`.
fn memory_dir(pid: i32) -> Option<PathBuf> {
    let cgroups::Mode::V1(hier) = cgroups::mode().ok()? else {
        return None;
    };
    let (_, mnt) = hier.iter().find(|(c, _)| c.iter().any(|x| x == "memory"))?;
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let _ = it.next()?;
        let ctrls = it.next()?;
        let path = it.next()?;
        ctrls
            .split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    })?;
    Some(mnt.join(rel.trim_start_matches('/')))
}

/// Publishes TaskOOM for `id` whenever its memory cgroup hits its limit.
pub fn watch(id: &str, pid: i32, events: Events) {
    let Some(dir) = memory_dir(pid) else {
        tracing::debug!(
            container_id = id,
            "no v1 memory cgroup: OOM events not watched"
        );
        return;
    };
    let efd = match arm(&dir) {
        Ok(efd) => efd,
        Err(e) => {
            tracing::warn!(container_id = id, error = %e, "OOM watch not armed");
            return;
        }
    };
    let id = id.to_string();
    tokio::spawn(async move {
        let Ok(fd) = sys::register_fd(efd) else {
            return;
        };
        loop {
            let Ok(mut guard) = fd.readable().await else {
                return;
            };
            let mut buf = [0u8; 8];
            let res = guard
                .try_io(|f| nix::unistd::read(f.get_ref(), &mut buf).map_err(std::io::Error::from));
            if res.is_err() {
                continue; // would block: wait again
            }
            // The eventfd also fires when the cgroup goes away.
            if !dir.exists() {
                return;
            }
            tracing::info!(container_id = %id, "OOM");
            events
                .send(
                    &id,
                    TaskOOM {
                        container_id: id.clone(),
                        ..Default::default()
                    },
                )
                .await;
        }
    });
}

fn arm(dir: &std::path::Path) -> std::io::Result<OwnedFd> {
    let efd = sys::eventfd()?;
    let control = std::fs::File::open(dir.join("memory.oom_control"))?;
    std::fs::write(
        dir.join("cgroup.event_control"),
        format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
    )?;
    // The registration holds its own reference to oom_control.
    Ok(efd)
}
