//! What Kill answers for a process that is already gone: NOT_FOUND ("process already finished"), as
//! containerd's runc shim does (`checkKillError`). containerd's CRI takes NOT_FOUND from Kill as
//! "stopped" (StopContainer, StopPodSandbox); any other error fails the stop and leaves the pod behind.
//! The window is real: a process may die between the shim's last look at it and runc's (or the
//! signal's), before the reaper has recorded its exit.

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::error::Error;

/// NOT_FOUND for a process that already exited: `id` for an init, `id/exec_id` for an exec.
pub fn finished(id: &str, exec_id: &str) -> Error {
    if exec_id.is_empty() {
        Error::NotFound(format!("process {id} already finished"))
    } else {
        Error::NotFound(format!("process {id}/{exec_id} already finished"))
    }
}

/// Map a failed `runc kill`: the container's init already exited or the container is gone.
pub fn runc_error(id: &str, e: Error) -> Error {
    let Error::Runc { msg, .. } = &e else {
        return e;
    };
    let lower = msg.to_lowercase();
    if lower.contains("container not running")
        || lower.contains("process already finished")
        || lower.contains("no such process")
    {
        finished(id, "")
    } else if crate::runc::names_missing_container(msg) {
        Error::NotFound(format!("no such container: {id}"))
    } else {
        e
    }
}

/// Signal one process (an exec, or a fast-path init); ESRCH is "already finished".
pub fn signal(id: &str, exec_id: &str, pid: i32, sig: Signal) -> Result<(), Error> {
    match nix::sys::signal::kill(Pid::from_raw(pid), sig) {
        Err(nix::errno::Errno::ESRCH) => Err(finished(id, exec_id)),
        r => r.map_err(Error::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use containerd_shim::protos::ttrpc::Code;

    fn runc(msg: &str) -> Error {
        Error::Runc {
            cmd: "kill".into(),
            msg: msg.into(),
        }
    }

    #[test]
    fn runc_says_gone_is_not_found() {
        for msg in [
            "container not running",
            "os: process already finished",
            "kill: No such process",
            "container \"c1\" does not exist",
            // crun's, for a container whose state is gone.
            "error opening file `/run/containerd/runc/k8s.io/c1/status`: No such file or directory",
        ] {
            assert_eq!(runc_error("c1", runc(msg)).code(), Code::NOT_FOUND, "{msg}");
        }
    }

    #[test]
    fn other_runc_errors_stay() {
        let e = runc_error("c1", runc("permission denied"));
        assert_eq!(e.code(), Code::INTERNAL);
        assert!(e.to_string().contains("permission denied"), "{e}");
    }

    #[test]
    fn signal_to_a_reaped_pid_is_not_found() {
        let mut child = std::process::Command::new("true").spawn().expect("true");
        let pid = child.id() as i32;
        child.wait().expect("wait");
        // The pid is free now (reused within the test's lifetime is vanishingly unlikely).
        let e = signal("c1", "e1", pid, Signal::SIGTERM).expect_err("gone");
        assert_eq!(e.code(), Code::NOT_FOUND, "{e}");
    }
}
