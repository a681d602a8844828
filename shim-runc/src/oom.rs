//! OOM notifications, published as TaskOOM: cgroup v1's memory.oom_control
//! through an eventfd, or cgroup v2's `memory.events` (its `oom_kill`
//! count) through inotify.

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

fn oom_kills(dir: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("memory.events"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
}

/// cgroup v2: every rise of `oom_kill` in memory.events is one TaskOOM.
fn watch_v2(id: &str, dir: PathBuf, events: Events) {
    let fd = match sys::inotify_modify(&dir.join("memory.events")).and_then(sys::register_fd) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(container_id = id, error = %e, "OOM watch not armed");
            return;
        }
    };
    let id = id.to_string();
    // Counted now, before the task runs: a kill right after the start is a rise.
    let mut seen = oom_kills(&dir).unwrap_or(0);
    tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            if guard
                .try_io(|f| nix::unistd::read(f.get_ref(), &mut buf).map_err(std::io::Error::from))
                .is_err()
            {
                continue;
            }
            let Some(now) = oom_kills(&dir) else {
                return; // the cgroup is gone
            };
            if now > seen {
                seen = now;
                tracing::info!(container_id = %id, "OOM");
                let ev = TaskOOM {
                    container_id: id.clone(),
                    ..Default::default()
                };
                events.send(&id, ev).await;
            }
        }
    });
}

/// Publishes TaskOOM for `id` whenever its memory cgroup hits its limit. Armed at Create, while
/// the init waits in its cgroup: a task that is OOM-killed as soon as it starts (and reaped at
/// once) would otherwise leave no /proc/<pid>/cgroup to find the cgroup by.
pub fn watch(id: &str, pid: i32, events: Events) {
    if let Ok(dir) = cgroups::v2_dir_of(pid as u32) {
        return watch_v2(id, dir, events);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oom_kill_count() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(oom_kills(d.path()), Some(2));
        assert_eq!(oom_kills(&d.path().join("gone")), None);
    }

    #[tokio::test]
    async fn inotify_sees_memory_events_change() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("memory.events");
        std::fs::write(&f, "oom_kill 0\n").unwrap();
        let fd = sys::register_fd(sys::inotify_modify(&f).unwrap()).unwrap();
        std::fs::write(&f, "oom_kill 1\n").unwrap();
        let ready = tokio::time::timeout(std::time::Duration::from_secs(2), fd.readable()).await;
        assert!(ready.is_ok(), "no inotify event");
        assert_eq!(oom_kills(d.path()), Some(1));
    }
}
