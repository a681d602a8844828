//! The shim's only `waitpid` caller.
//!
//! The shim is a subreaper, so container processes (runc's grandchildren)
//! land here once runc exits. One task reaps every child on SIGCHLD and hands
//! each exit to whoever watches that pid; an exit that arrives before its
//! watcher (a container that dies at once) is parked until claimed, so no exit
//! is ever lost. Nothing else may wait on a child: that is why runc is spawned
//! with `std::process::Command` and never `wait()`ed, and why tokio's process
//! module is not used.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
    time::{Duration, Instant},
};

use nix::{
    errno::Errno,
    sys::wait::{waitpid, WaitPidFlag, WaitStatus},
    unistd::Pid,
};
use time::OffsetDateTime;
use tokio::sync::oneshot;

/// How a process ended, as containerd wants it: signal n becomes 128+n.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    pub status: i32,
    pub at: OffsetDateTime,
}

/// Exit status containerd expects for a wait status; `None` for stops etc.
pub fn exit_code(ws: WaitStatus) -> Option<(i32, i32)> {
    match ws {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as i32)),
        _ => None,
    }
}

/// Unclaimed exits older than this belong to no one we will ever ask about.
const PARK_TTL: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Registry {
    watchers: HashMap<i32, oneshot::Sender<Exit>>,
    parked: HashMap<i32, (Exit, Instant)>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A poisoned lock only means a panic elsewhere; the map itself is intact.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Watches `pid`'s exit. Must be called before anyone could ask about a
/// recycled pid; exits already reaped are delivered at once.
pub fn watch(pid: i32) -> oneshot::Receiver<Exit> {
    let (tx, rx) = oneshot::channel();
    let mut reg = registry();
    if let Some((exit, _)) = reg.parked.remove(&pid) {
        let _ = tx.send(exit);
    } else {
        reg.watchers.insert(pid, tx);
    }
    rx
}

fn deliver(pid: i32, status: i32) {
    let exit = Exit {
        status,
        at: OffsetDateTime::now_utc(),
    };
    let mut reg = registry();
    match reg.watchers.remove(&pid) {
        Some(tx) => {
            let _ = tx.send(exit);
        }
        None => {
            let now = Instant::now();
            reg.parked
                .retain(|_, (_, t)| now.duration_since(*t) < PARK_TTL);
            reg.parked.insert(pid, (exit, now));
        }
    }
}

/// Reaps every exited child without blocking.
pub fn reap_all() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(ws) => {
                if let Some((pid, status)) = exit_code(ws) {
                    deliver(pid, status);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "waitpid failed");
                break;
            }
        }
    }
}

/// Starts the reaping task; call once, inside the tokio runtime.
pub fn start() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigchld = signal(SignalKind::child())?;
    tokio::spawn(async move {
        // Children may have exited before the handler was installed.
        reap_all();
        while sigchld.recv().await.is_some() {
            reap_all();
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn exit_codes() {
        let p = Pid::from_raw(7);
        assert_eq!(exit_code(WaitStatus::Exited(p, 3)), Some((7, 3)));
        assert_eq!(
            exit_code(WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            Some((7, 137))
        );
        assert_eq!(
            exit_code(WaitStatus::Signaled(p, Signal::SIGTERM, true)),
            Some((7, 143))
        );
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }

    #[test]
    fn parked_exit_is_claimed() {
        deliver(999_991, 5);
        let mut rx = watch(999_991);
        assert_eq!(rx.try_recv().map(|e| e.status), Ok(5));
    }

    #[test]
    fn watcher_gets_later_exit() {
        let mut rx = watch(999_992);
        assert!(rx.try_recv().is_err());
        deliver(999_992, 0);
        assert_eq!(rx.try_recv().map(|e| e.status), Ok(0));
    }
}
