//! Every `unsafe` call of the shim, kept small and in one place.

use std::{
    fs::File,
    os::fd::{AsRawFd, FromRawFd, RawFd},
};

/// Takes ownership of a descriptor the kernel just handed us (SCM_RIGHTS).
pub fn own_fd(fd: RawFd) -> File {
    // SAFETY: the caller received `fd` fresh from recvmsg; nothing else owns it.
    unsafe { File::from_raw_fd(fd) }
}

/// Sets a terminal's window size (TIOCSWINSZ) on the pty master.
pub fn set_winsize(pty: &impl AsRawFd, width: u16, height: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which is valid.
    let rc = unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Forks the single-threaded pause helper (never call from the tokio shim).
/// Returns the child's pid in the parent, 0 in the child.
pub fn fork_single_threaded() -> std::io::Result<i32> {
    // SAFETY: only the helper calls this, before it ever starts a thread, so
    // the child inherits a consistent, single-threaded address space.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(pid)
}

/// Drops `cap` from the bounding set.
pub fn capbset_drop(cap: u32) -> std::io::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        // Caps beyond what this kernel knows are absent already.
        if e.raw_os_error() == Some(libc::EINVAL) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}

/// Sets effective/permitted/inheritable capability masks (64-bit, v3 ABI).
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const V3: u32 = 0x2008_0522;
    let mut hdr = Header {
        version: V3,
        pid: 0,
    };
    let lo = |m: u64| m as u32;
    let hi = |m: u64| (m >> 32) as u32;
    let data = [
        Data {
            effective: lo(effective),
            permitted: lo(permitted),
            inheritable: lo(inheritable),
        },
        Data {
            effective: hi(effective),
            permitted: hi(permitted),
            inheritable: hi(inheritable),
        },
    ];
    // SAFETY: header and the two-element data array match the v3 ABI layout.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Raises an ambient capability.
pub fn ambient_raise(cap: u32) -> std::io::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
            cap as libc::c_ulong,
            0,
            0,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Keeps permitted caps across the setuid to the spec's user.
pub fn keep_caps(on: bool) -> std::io::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, on as libc::c_ulong, 0, 0, 0) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Ends the process at once, without running Rust destructors or atexit.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// A new non-blocking, close-on-exec eventfd (for cgroup v1 OOM notifications).
pub fn eventfd() -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall; on success we own the returned descriptor.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is fresh and owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Registers an owned descriptor with the tokio reactor.
pub fn register_fd(
    fd: std::os::fd::OwnedFd,
) -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    // SAFETY: the AsyncFd takes ownership of `fd`, so the descriptor stays
    // open and unchanged for as long as the registration lives.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(std::io::Error::from)
}

/// dup2 on raw descriptor numbers (the log helper's fd shuffle).
pub fn dup2_raw(from: RawFd, to: RawFd) -> std::io::Result<()> {
    // SAFETY: dup2 only manipulates the descriptor table; `to` is a standard
    // or well-known slot the single-threaded helper owns.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A non-blocking inotify descriptor watching `path` for modification
/// (cgroup v2 `memory.events`).
pub fn inotify_modify(path: &std::path::Path) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::{fd::FromRawFd, unix::ffi::OsStrExt};
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: plain syscall; on success we own the returned descriptor.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is fresh and owned by nobody else.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: `c` is a valid NUL-terminated path for the call's duration.
    if unsafe { libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_MODIFY) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(owned)
}

/// A pod's namespaces as the Sandbox service makes them: the network namespace containerd's CRI
/// made is joined, ipc and uts are new, and each new one is pinned by a bind mount of its nsfs
/// file so that it outlives the thread that made it (no process is left holding them).
pub struct PodNamespaces {
    pub netns: Option<std::path::PathBuf>,
    /// Pin path for a new ipc namespace; `None` keeps the host's.
    pub ipc_pin: Option<std::path::PathBuf>,
    /// Pin path for a new uts namespace; `None` keeps the host's.
    pub uts_pin: Option<std::path::PathBuf>,
    /// Set in the new uts namespace.
    pub hostname: Option<String>,
    /// Written from inside the pod's namespaces (net.*, ipc sysctls).
    pub sysctls: Vec<(String, String)>,
}

/// Makes and pins the pod's namespaces on a thread of its own, which then ends: namespace
/// changes are per thread, and a pooled thread must never carry them into other work.
pub async fn pin_pod_namespaces(p: PodNamespaces) -> Result<(), String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("crius-pod-ns".into())
        .spawn(move || {
            let _ = tx.send(pin_on_this_thread(&p));
        })
        .map_err(|e| format!("spawn namespace thread: {e}"))?;
    rx.await
        .unwrap_or_else(|_| Err("namespace thread died".into()))
}

fn pin_on_this_thread(p: &PodNamespaces) -> Result<(), String> {
    use nix::{
        mount::{mount, MsFlags},
        sched::{setns, unshare, CloneFlags},
    };
    use std::os::fd::AsFd;
    if let Some(ns) = &p.netns {
        let f = File::open(ns).map_err(|e| format!("open netns {}: {e}", ns.display()))?;
        setns(f.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns {}: {e}", ns.display()))?;
    }
    let mut new = CloneFlags::empty();
    if p.ipc_pin.is_some() {
        new |= CloneFlags::CLONE_NEWIPC;
    }
    if p.uts_pin.is_some() {
        new |= CloneFlags::CLONE_NEWUTS;
    }
    if !new.is_empty() {
        unshare(new).map_err(|e| format!("unshare {new:?}: {e}"))?;
    }
    if let (Some(h), Some(_)) = (&p.hostname, &p.uts_pin) {
        nix::unistd::sethostname(h).map_err(|e| format!("sethostname {h}: {e}"))?;
    }
    // /proc/sys acts on the namespaces of the thread that opens it: the pod's, now.
    for (k, v) in &p.sysctls {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).map_err(|e| format!("sysctl {k}={v}: {e}"))?;
    }
    for (kind, pin) in [("ipc", &p.ipc_pin), ("uts", &p.uts_pin)] {
        let Some(pin) = pin else { continue };
        File::create(pin).map_err(|e| format!("create {}: {e}", pin.display()))?;
        let src = format!("/proc/thread-self/ns/{kind}");
        mount(
            Some(src.as_str()),
            pin,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("pin {kind} namespace at {}: {e}", pin.display()))?;
    }
    Ok(())
}

/// Mounts the pod's /dev/shm tmpfs (containerd's CRI's flags and default 64 MiB size).
pub fn mount_shm(dir: &std::path::Path) -> std::io::Result<()> {
    use nix::mount::{mount, MsFlags};
    std::fs::create_dir_all(dir)?;
    mount(
        Some("shm"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777,size=65536k"),
    )
    .map_err(std::io::Error::from)
}

/// Detaches the mount at `path`; a path that is not (or no longer) mounted is fine.
pub fn unmount(path: &std::path::Path) -> std::io::Result<()> {
    use nix::{errno::Errno, mount::umount2, mount::MntFlags};
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The pod's pause when its containers share a pid namespace: pid 1 there, it reaps orphans and
/// ends on SIGTERM/SIGINT. Signals are blocked and taken with sigwait, so no handler runs.
pub fn pause_forever() -> ! {
    use nix::sys::{
        signal::{SigSet, Signal},
        wait::{waitpid, WaitPidFlag, WaitStatus},
    };
    let mut set = SigSet::empty();
    for s in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        exit_now(1);
    }
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => {
                while let Ok(ws) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    if ws == WaitStatus::StillAlive {
                        break;
                    }
                }
            }
            Ok(_) => exit_now(0),
            Err(_) => {}
        }
    }
}

/// A detached copy of the mount tree at `src` (open_tree with OPEN_TREE_CLONE, recursive): the
/// one kind of mount the kernel lets us give an id mapping.
pub fn open_tree_clone(src: &std::path::Path) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(src.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as u32;
    // SAFETY: `c` is a valid NUL-terminated path for the call's duration; integer flags.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is fresh from open_tree and owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Gives the detached mount tree `tree` the id mapping of the user namespace `userns`
/// (mount_setattr with MOUNT_ATTR_IDMAP, recursive).
pub fn set_idmap(tree: &std::os::fd::OwnedFd, userns: &File) -> std::io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: `attr` is a valid mount_attr of the size passed; the path is the empty C string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Attaches the detached mount tree `tree` at `target` (move_mount).
pub fn attach_tree(tree: &std::os::fd::OwnedFd, target: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(target.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: both paths are valid NUL-terminated strings for the call's duration.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
