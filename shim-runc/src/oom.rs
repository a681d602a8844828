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

/// Whether a batch of inotify events holds a modification (`struct inotify_event`: wd, mask,
/// cookie, len, then `len` bytes of name).
fn has_modify(buf: &[u8]) -> bool {
    let word = |at: usize| {
        buf.get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_ne_bytes)
    };
    let mut off = 0;
    while off + 16 <= buf.len() {
        if word(off + 4) & libc::IN_MODIFY != 0 {
            return true;
        }
        off += 16 + word(off + 12) as usize;
    }
    false
}

/// cgroup v2: every rise of `oom_kill` in memory.events is one TaskOOM. systemd removes an
/// emptied scope at once, often before the kill's notification is read: when the cgroup is gone
/// right after its memory.events changed, a rise of the parent's (hierarchical) `oom_kill` count
/// since the last read is taken as this cgroup's kill.
fn watch_v2(id: &str, dir: PathBuf, events: Events) {
    let fd = match sys::inotify_modify(&dir.join("memory.events")).and_then(sys::register_fd) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(container_id = id, error = %e, "OOM watch not armed");
            return;
        }
    };
    let id = id.to_string();
    let parent = dir.parent().map(PathBuf::from);
    let parent_kills = move || parent.as_deref().and_then(oom_kills).unwrap_or(0);
    // Counted now, before the task runs: a kill right after the start is a rise.
    let mut seen = oom_kills(&dir).unwrap_or(0);
    let mut seen_parent = parent_kills();
    let mut modified = false;
    tokio::spawn(async move {
        loop {
            let Ok(mut guard) = fd.readable().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let read = guard
                .try_io(|f| nix::unistd::read(f.get_ref(), &mut buf).map_err(std::io::Error::from));
            let Ok(Ok(n)) = read else {
                continue;
            };
            modified |= has_modify(&buf[..n]);
            let (now, gone) = match oom_kills(&dir) {
                Some(now) => (now, false),
                None if modified && parent_kills() > seen_parent => (seen + 1, true),
                None => return, // the cgroup is gone
            };
            seen_parent = parent_kills();
            if now > seen {
                seen = now;
                modified = false;
                tracing::info!(container_id = %id, gone, "OOM");
                let ev = TaskOOM {
                    container_id: id.clone(),
                    ..Default::default()
                };
                events.send(&id, ev).await;
            }
            if gone {
                return;
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

    #[test]
    fn inotify_batches_with_a_modification() {
        let ev = |mask: u32, name: &[u8]| {
            let mut b = Vec::new();
            b.extend(1i32.to_ne_bytes());
            b.extend(mask.to_ne_bytes());
            b.extend(0u32.to_ne_bytes());
            b.extend((name.len() as u32).to_ne_bytes());
            b.extend(name);
            b
        };
        let ignored = ev(libc::IN_IGNORED, b"");
        let mut both = ev(libc::IN_ATTRIB, b"x\0\0\0");
        both.extend(ev(libc::IN_MODIFY, b""));
        assert!(!has_modify(&ignored));
        assert!(has_modify(&both));
        assert!(!has_modify(&both[..10]));
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
