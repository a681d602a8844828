//! The few raw system calls criusd and crius-logger make, all in one place.

use std::fs::File;
use std::os::fd::{FromRawFd, RawFd};
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::Mode;

/// Take ownership of an inherited fd, if it is open.
pub fn take_fd(fd: RawFd) -> Option<File> {
    // F_GETFD only asks whether the fd exists; it changes nothing.
    if nix::fcntl::fcntl(
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_GETFD,
    )
    .is_err()
    {
        return None;
    }
    // SAFETY: the fd is open (checked above) and nothing else in this process owns it:
    // it was inherited from the parent for exactly this use.
    Some(unsafe { File::from_raw_fd(fd) })
}

/// Block `signals` for this thread and every thread spawned after (so one thread can sigwait).
pub fn block_signals(signals: &[Signal]) -> nix::Result<SigSet> {
    let mut set = SigSet::empty();
    for s in signals {
        set.add(*s);
    }
    set.thread_block()?;
    Ok(set)
}

/// Make a fifo (exec stdio).
pub fn mkfifo(path: &Path) -> nix::Result<()> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600))
}

/// Whether process `pid` is alive: it exists and is not a zombie. A container's init whose shim
/// was killed is reparented to PID 1 and stays a zombie until PID 1 reaps it (slowly, on some
/// hosts), and kill(pid, 0) succeeds on a zombie: /proc tells. Where /proc cannot be read, signal
/// 0 decides (EPERM still means it exists).
pub fn process_exists(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat_state(&stat), Some('Z' | 'X')),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(_) => !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        ),
    }
}

/// The state letter of a `/proc/<pid>/stat` line (after the command, which may hold ')').
fn stat_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Send a signal to a process.
pub fn kill(pid: i32, sig: Signal) -> nix::Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig)
}

/// Mount one containerd mount (overlay or bind, as snapshotters hand out) at `target`.
/// `ro`, `nosuid` and `nodev` hold for either kind (a bind takes them on a remount).
pub fn mount(kind: &str, source: &str, options: &[String], target: &Path) -> nix::Result<()> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            other => data.push(other),
        }
    }
    let data = data.join(",");
    let bind = flags.contains(MsFlags::MS_BIND);
    let locked = flags & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
    nix::mount::mount(
        Some(source),
        target,
        if bind { None } else { Some(kind) },
        if bind { flags - locked } else { flags },
        if data.is_empty() {
            None
        } else {
            Some(data.as_str())
        },
    )?;
    if bind && !locked.is_empty() {
        // A bind mount takes these flags only on a remount.
        nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | locked,
            None::<&str>,
        )?;
    }
    Ok(())
}

/// Make a fifo or device node like the one `mode` (type and permission bits) and `rdev` describe.
pub fn mknod(path: &Path, mode: u32, rdev: u64) -> std::io::Result<()> {
    let kind = nix::sys::stat::SFlag::from_bits_truncate(mode & nix::libc::S_IFMT);
    let perm = nix::sys::stat::Mode::from_bits_truncate(mode & 0o7777);
    nix::sys::stat::mknod(path, kind, perm, rdev as nix::libc::dev_t).map_err(std::io::Error::from)
}

/// Detach a mount.
pub fn umount(target: &Path) -> nix::Result<()> {
    nix::mount::umount2(target, MntFlags::MNT_DETACH)
}

/// Connect to `127.0.0.1:port` inside the network namespace at `netns`. Runs on a thread of its
/// own, which alone enters the namespace and then ends: no other task ever runs in it. The
/// socket stays in the pod's namespace.
pub fn connect_in_netns(netns: &Path, port: u16) -> std::io::Result<std::net::TcpStream> {
    let netns = netns.to_path_buf();
    std::thread::spawn(move || {
        let f = File::open(&netns)?;
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| std::io::Error::other(format!("setns {}: {e}", netns.display())))?;
        std::net::TcpStream::connect(("127.0.0.1", port))
    })
    .join()
    .map_err(|_| std::io::Error::other("netns connect thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_is_not_alive() {
        assert!(process_exists(std::process::id() as i32));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id() as i32;
        // Not reaped yet: once it has exited it is a zombie, which kill(pid, 0) still finds.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while process_exists(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!process_exists(pid), "zombie {pid} counted as alive");
        assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
        child.wait().expect("reap");
        assert!(!process_exists(pid));
        assert!(!process_exists(0));
    }

    #[test]
    fn stat_state_after_a_command_with_parens() {
        assert_eq!(stat_state("42 (a) b) S 1 42"), Some('S'));
        assert_eq!(stat_state("42 (sleep) Z 1"), Some('Z'));
        assert_eq!(stat_state("garbage"), None);
    }
}
