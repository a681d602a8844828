//! Every syscall the sandboxer makes on its own (namespaces, mounts), in one
//! place. Namespace work runs on a short-lived dedicated thread, so the
//! `unshare`/`setns` never leaks into a tokio worker.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC, TMPFS_MAGIC};

fn nix_io(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Run `f` on a fresh thread and return its result (panics become errors).
fn on_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)?
        .join()
        .map_err(|_| io::Error::other("namespace thread panicked"))?
}

/// Create a new network namespace pinned by a bind mount at `path` (an empty
/// file is created there), then run `f` inside it on the same thread — used to
/// open netlink sockets that belong to the new namespace.
pub fn create_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)?;
    let target = path.to_path_buf();
    let res = on_thread("crius-netns-new", move || {
        unshare(CloneFlags::CLONE_NEWNET).map_err(nix_io)?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(nix_io)?;
        f()
    });
    if res.is_err() {
        let _ = remove_netns(path);
    }
    res
}

/// Pin the network namespace of process `pid` by a bind mount at `path` (an empty file is
/// created there): a user-namespaced pod's, which its pause made inside the pod's user
/// namespace so that the namespace owns it (sysfs in the pod's containers needs that).
pub fn pin_netns_of(pid: u32, path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)?;
    let src = format!("/proc/{pid}/ns/net");
    let res = mount(
        Some(src.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(nix_io);
    if res.is_err() {
        let _ = remove_netns(path);
    }
    res
}

/// Run `f` on a thread that has joined the network namespace at `path`.
pub fn in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let ns = File::open(path)?;
    on_thread("crius-netns-enter", move || {
        setns(&ns, CloneFlags::CLONE_NEWNET).map_err(nix_io)?;
        f()
    })
}

/// Unmount and delete a netns pin. Idempotent: a missing or already
/// unmounted path is fine.
pub fn remove_netns(path: &Path) -> io::Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(nix_io(e)),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Is `path` a live netns pin (an nsfs bind mount)?
pub fn is_netns_mount(path: &Path) -> bool {
    statfs(path)
        .map(|s| s.filesystem_type() == NSFS_MAGIC)
        .unwrap_or(false)
}

/// Mount a tmpfs for a pod's /dev/shm at `path` (created if missing).
/// `owner`: the host ids of a user-namespaced pod's root, who then owns it.
pub fn mount_shm(path: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    std::fs::create_dir_all(path)?;
    if is_tmpfs(path) {
        return Ok(());
    }
    let mut opts = "mode=1777,size=65536k".to_string();
    if let Some((uid, gid)) = owner {
        opts.push_str(&format!(",uid={uid},gid={gid}"));
    }
    mount(
        Some("shm"),
        path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(opts.as_str()),
    )
    .map_err(nix_io)
}

fn is_tmpfs(path: &Path) -> bool {
    statfs(path)
        .map(|s| s.filesystem_type() == TMPFS_MAGIC)
        .unwrap_or(false)
}

/// Unmount every mount stacked at `path` (idempotent).
pub fn unmount_all(path: &Path) -> io::Result<()> {
    loop {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => return Ok(()),
            Err(e) => return Err(nix_io(e)),
        }
    }
}

/// Start time of a live (not zombie) process, in clock ticks since boot
/// (field 22 of /proc/<pid>/stat). None when there is no such live process.
pub fn proc_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parens: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // `rest` starts at field 3; field 22 is 19 further.
    fields.nth(18)?.parse().ok()
}

/// Random bytes from the kernel (pod ids).
pub fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    use std::io::Read;
    let mut buf = [0u8; N];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

/// Pids whose command line holds every `(flag, value)` pair as adjacent
/// arguments (e.g. `-id <id>`).
pub fn pids_with_args(pairs: &[(&str, &str)]) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
            pairs.iter().all(|(flag, value)| {
                args.windows(2)
                    .any(|w| w[0] == flag.as_bytes() && w[1] == value.as_bytes())
            })
        })
        .collect()
}

/// Whether process `pid`'s last argument is `arg` (a shim's action: `start`, `delete`).
pub fn last_arg_is(pid: u32, arg: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .rfind(|a| !a.is_empty())
                .is_some_and(|a| a == arg.as_bytes())
        })
        .unwrap_or(false)
}

/// Pids whose environment holds exactly `entry` (`KEY=value`).
pub fn pids_with_env(entry: &str) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|raw| raw.split(|b| *b == 0).any(|kv| kv == entry.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

/// The dirs a cgroupfs path `rel` (e.g. `/crius/<id>`) has: one per v1
/// hierarchy under /sys/fs/cgroup, plus the path on a v2-only mount.
fn cgroup_dirs(rel: &str) -> Vec<std::path::PathBuf> {
    let rel = rel.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join(rel)];
    if let Ok(rd) = std::fs::read_dir(root) {
        dirs.extend(rd.filter_map(|e| e.ok()).map(|e| e.path().join(rel)));
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// SIGKILL every process in cgroup `rel` and remove its (then empty) dirs.
/// For a cgroup nobody manages any more (its runtime died mid-create).
pub fn kill_and_remove_cgroup(rel: &str) {
    for _ in 0..50 {
        let dirs = cgroup_dirs(rel);
        if dirs.is_empty() {
            return;
        }
        for d in &dirs {
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
                    kill_pid(pid);
                }
            }
            let _ = std::fs::remove_dir(d);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// SIGKILL one process (best effort).
pub fn kill_pid(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// SIGKILL a whole process group (best effort: it may be gone already).
pub fn kill_process_group(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_processes_by_args() {
        // sh's own argv keeps `-id crius-sys-test` as positional args while it waits.
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30; true", "sh", "-id", "crius-sys-test"])
            .process_group(0)
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(100));
        let found = pids_with_args(&[("-id", "crius-sys-test")]);
        kill_process_group(child.id());
        let _ = child.wait();
        assert_eq!(found, vec![child.id()]);
        assert!(pids_with_args(&[("-id", "no-such-crius-thing")]).is_empty());
    }

    #[test]
    fn own_start_time() {
        let me = std::process::id();
        assert!(proc_start_time(me).is_some());
        assert_eq!(proc_start_time(me), proc_start_time(me));
        assert!(proc_start_time(u32::MAX - 1).is_none());
    }
}
