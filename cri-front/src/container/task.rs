//! A container's task in containerd: its state and pid, kill, wait, delete, and the
//! recorded exit. The verbs the Start/Stop/Remove RPCs are made of.

use std::time::Duration;

use crius_proto::runtime as cri;
use nix::sys::signal::Signal;

use super::record::Phase;
use super::Containers;
use crate::error::Result;
use crate::util::time::{exited_at, now_ns};

/// What containerd says about a container's task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskState {
    Running,
    Exited { code: i32, at_ns: i64 },
    Missing,
}

impl TaskState {
    /// The state of a task's init as containerd reports it (None: no task).
    pub fn of(t: Option<&crius_ctrd::TaskInfo>) -> TaskState {
        match t {
            None => TaskState::Missing,
            Some(t) => match t.exit {
                Some(exit) => TaskState::Exited {
                    code: exit.code as i32,
                    at_ns: exited_at(&exit),
                },
                None => TaskState::Running,
            },
        }
    }
}

/// `binary://` log URI for the shim: it starts crius-logger with the container's pipes.
pub fn log_uri(
    logger: &str,
    log_path: &str,
    pidfile: &str,
    max_line: usize,
    attach: &str,
) -> String {
    format!(
        "binary://{}?path={}&pidfile={}&max-line={max_line}&attach={}",
        logger,
        query_escape(log_path),
        query_escape(pidfile),
        query_escape(attach)
    )
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn signal_number(name: &str) -> u32 {
    // Image configs may give the number itself ("15").
    if let Ok(n) = name.trim().parse::<u32>() {
        if (1..=64).contains(&n) {
            return n;
        }
    }
    let n = name.trim().to_ascii_uppercase();
    let n = if n.starts_with("SIG") {
        n
    } else {
        format!("SIG{n}")
    };
    n.parse::<Signal>()
        .map(|s| s as i32 as u32)
        .unwrap_or(Signal::SIGTERM as i32 as u32)
}

impl Containers {
    /// The pid of a container's init process, while its task exists.
    pub async fn task_pid(&self, id: &str) -> Option<u32> {
        let t = self.shared.ctrd.task(id).await.ok()??;
        Some(t.pid).filter(|p| *p > 0)
    }

    pub(crate) async fn task_state(&self, id: &str) -> Result<TaskState> {
        Ok(TaskState::of(self.task_process(id).await?.as_ref()))
    }

    /// Signal the init (`all`: every process of the task). A task already gone is Ok: the
    /// wait that follows reports it.
    pub(crate) async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<()> {
        Ok(self.shared.ctrd.kill(id, None, signal, all).await?)
    }

    /// Wait for the task's exit, at most `limit`.
    pub(crate) async fn wait(&self, id: &str, limit: Duration) -> Result<Option<(i32, i64)>> {
        match tokio::time::timeout(limit, self.shared.ctrd.wait(id, None)).await {
            Err(_) => Ok(None),
            Ok(Ok(exit)) => Ok(Some((exit.code as i32, exited_at(&exit)))),
            Ok(Err(e)) if e.is_not_found() => Ok(Some((255, now_ns()))),
            Ok(Err(e)) => Err(e.into()),
        }
    }

    /// Persist an exit (once) and emit the stopped event.
    pub(crate) async fn record_exit(&self, id: &str, code: i32, at_ns: i64) {
        let mut changed = false;
        let res = self
            .store
            .update(id, |r| {
                // Created: StartContainer is in flight and records the exit itself, after "started".
                changed = r.phase == Phase::Running && r.set_exited(code, at_ns);
                changed
            })
            .await;
        match res {
            Ok(rec) if changed => {
                tracing::info!(pod = %rec.pod_id, container = %id, exit_code = code, reason = %rec.reason, "container exited");
                self.kill_leftovers(id).await;
                self.emit(&rec, cri::ContainerEventType::ContainerStoppedEvent)
                    .await;
            }
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(container = %id, error = %e, "recording exit failed"),
        }
    }

    pub(crate) async fn delete_task(&self, id: &str) {
        if let Err(e) = self.shared.ctrd.delete_task(id).await {
            tracing::warn!(container = id, error = %e, "task delete failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_escapes_query_values() {
        let u = log_uri(
            "/usr/bin/crius-logger",
            "/var/log/pods/a b/c&d.log",
            "/run/x.pid",
            16384,
            "/run/a.sock",
        );
        assert_eq!(
            u,
            "binary:///usr/bin/crius-logger?path=/var/log/pods/a%20b/c%26d.log&pidfile=/run/x.pid&max-line=16384&attach=/run/a.sock"
        );
    }

    #[test]
    fn signals() {
        assert_eq!(signal_number("SIGKILL"), 9);
        assert_eq!(signal_number("quit"), 3);
        assert_eq!(signal_number("bogus"), 15);
        assert_eq!(signal_number("2"), 2);
    }
}
