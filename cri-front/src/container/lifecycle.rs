//! StartContainer, StopContainer, RemoveContainer over containerd's Tasks service.

use std::time::Duration;

use containerd_client::services::v1::snapshots::MountsRequest;
use containerd_client::services::v1::{
    CreateTaskRequest, DeleteContainerRequest, DeleteTaskRequest, GetRequest, KillRequest,
    StartRequest, WaitRequest,
};
use containerd_client::tonic::Code;
use containerd_client::types::v1::Status as TaskStatus;
use crius_proto::runtime as cri;
use nix::sys::signal::Signal;

use super::create::now_ns;
use super::record::{ContainerRecord, Phase};
use crate::config::LogMode;
use crate::daemon::Daemon;
use crate::error::{CtrdContext, Error, Result};

/// What containerd says about a container's task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskState {
    Running,
    Exited { code: i32, at_ns: i64 },
    Missing,
}

pub fn ts_ns(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map(|t| t.seconds * 1_000_000_000 + t.nanos as i64)
        .filter(|n| *n > 0)
        .unwrap_or_else(now_ns)
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

fn signal_number(name: &str) -> u32 {
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

impl Daemon {
    /// The pid of a container's init process, while its task exists.
    pub async fn task_pid(&self, id: &str) -> Option<u32> {
        self.ctrd
            .tasks()
            .get(self.ctrd.req(GetRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            }))
            .await
            .ok()
            .and_then(|r| r.into_inner().process)
            .map(|p| p.pid)
            .filter(|p| *p > 0)
    }

    pub(crate) async fn task_state(&self, id: &str) -> Result<TaskState> {
        Ok(match self.task_process(id).await? {
            None => TaskState::Missing,
            Some(p) if p.status == TaskStatus::Stopped as i32 => TaskState::Exited {
                code: p.exit_status as i32,
                at_ns: ts_ns(p.exited_at.as_ref()),
            },
            Some(_) => TaskState::Running,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn start_container(&self, id: &str) -> Result<()> {
        let rec = self.store.find(id).await?;
        let id = rec.id.clone();
        match rec.phase {
            Phase::Created => {}
            Phase::Running => {
                return Err(Error::FailedPrecondition(format!(
                    "container {id} is already running"
                )))
            }
            Phase::Exited => {
                return Err(Error::FailedPrecondition(format!(
                    "container {id} has exited; containers cannot be restarted"
                )))
            }
        }
        tracing::info!(pod = %rec.pod_id, container = %id, "StartContainer");
        // Taken before the task starts, so it is never later than the exit time containerd reports.
        let started_at = now_ns();
        let started = match self.task_truth(&id).await? {
            // A start a crash cut off created the task: finish that start instead.
            super::start_truth::Truth::Created => self.start_created_task(&id).await,
            super::start_truth::Truth::Started => Ok(()),
            super::start_truth::Truth::None => self.start_task(&rec).await,
        };
        let started = match started {
            Err(e) if super::start_truth::outcome_unknown(&e) => {
                match self.settle_start(&id, &e).await? {
                    true => Ok(()),
                    false => Err(e),
                }
            }
            r => r,
        };
        if let Err(e) = started {
            self.delete_task(&id).await;
            self.kill_logger(&id);
            let msg = e.to_string();
            self.store
                .update(&id, |r| {
                    r.set_exited(128, now_ns());
                    r.reason = "StartError".into();
                    r.message = msg.clone();
                    true
                })
                .await?;
            self.kill_leftovers(&id).await;
            return Err(e);
        }
        let rec = self
            .store
            .update(&id, |r| {
                if r.phase == Phase::Created {
                    r.phase = Phase::Running;
                    r.started_at_ns = started_at;
                }
                true
            })
            .await?;
        self.emit(&rec, cri::ContainerEventType::ContainerStartedEvent)
            .await;
        // An exit that raced the start was skipped by record_exit (phase was Created): catch it now.
        self.refreshed(rec).await?;
        Ok(())
    }

    async fn start_task(&self, rec: &ContainerRecord) -> Result<()> {
        let id = &rec.id;
        self.ensure_image_volumes(rec).await?;
        let rootfs = self
            .ctrd
            .snapshots()
            .mounts(self.ctrd.req(MountsRequest {
                snapshotter: self.cfg.snapshotter.clone(),
                key: id.clone(),
            }))
            .await
            .step(&format!("snapshot mounts {id}"))?
            .into_inner()
            .mounts;
        // The log driver runs for every container, with a log path or not: attachers join the
        // live output through it.
        let (stdout, stderr) = match self.cfg.log_mode {
            LogMode::Binary => {
                let uri = log_uri(
                    &self.cfg.logger_path().display().to_string(),
                    &rec.log_path,
                    &self.logger_pidfile(id).display().to_string(),
                    self.cfg.max_log_line_bytes,
                    &self.attach_socket(id).display().to_string(),
                );
                (uri.clone(), if rec.tty { String::new() } else { uri })
            }
            LogMode::Fifo => self.spawn_logger(rec).await?,
        };
        let stdin = if rec.stdin {
            self.open_stdin(id).await?.0
        } else {
            String::new()
        };
        self.ctrd
            .tasks()
            .create(self.ctrd.req(CreateTaskRequest {
                container_id: id.clone(),
                rootfs,
                stdin,
                stdout,
                stderr,
                // With a terminal the shim keeps the pty master and all output is on stdout.
                terminal: rec.tty,
                ..Default::default()
            }))
            .await
            .step(&format!("task create {id}"))?;
        self.ctrd
            .tasks()
            .start(self.ctrd.req(StartRequest {
                container_id: id.clone(),
                exec_id: String::new(),
            }))
            .await
            .step(&format!("task start {id}"))?;
        Ok(())
    }

    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<()> {
        match self
            .ctrd
            .tasks()
            .kill(self.ctrd.req(KillRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
                signal,
                all,
            }))
            .await
        {
            Ok(_) => Ok(()),
            // Already gone: the wait below reports it.
            Err(s) if s.code() == Code::NotFound || s.code() == Code::FailedPrecondition => Ok(()),
            Err(s) => Err(Error::containerd(format!("task kill {id}"), s)),
        }
    }

    /// Wait for the task's exit, at most `limit`.
    async fn wait(&self, id: &str, limit: Duration) -> Result<Option<(i32, i64)>> {
        let mut tasks = self.ctrd.tasks();
        let call = tasks.wait(self.ctrd.req(WaitRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }));
        match tokio::time::timeout(limit, call).await {
            Err(_) => Ok(None),
            Ok(Ok(r)) => {
                let r = r.into_inner();
                Ok(Some((r.exit_status as i32, ts_ns(r.exited_at.as_ref()))))
            }
            Ok(Err(s)) if s.code() == Code::NotFound => Ok(Some((255, now_ns()))),
            Ok(Err(s)) => Err(Error::containerd(format!("task wait {id}"), s)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        let rec = match self.store.find(id).await {
            Ok(r) => r,
            // kubelet stops again after its restarts and garbage collection; as containerd
            // and CRI-O, an unknown container is already stopped.
            Err(e) if e.is_not_found() => {
                tracing::info!(container = %id, "StopContainer: no such container, nothing to stop");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let id = rec.id.clone();
        if rec.phase != Phase::Running {
            return Ok(());
        }
        tracing::info!(pod = %rec.pod_id, container = %id, timeout_secs, "StopContainer");
        let exit = match self.task_state(&id).await? {
            TaskState::Exited { code, at_ns } => Some((code, at_ns)),
            TaskState::Missing => Some((255, now_ns())),
            TaskState::Running => {
                let mut got = None;
                if timeout_secs > 0 {
                    self.kill(&id, signal_number(&rec.stop_signal), false)
                        .await?;
                    got = self
                        .wait(&id, Duration::from_secs(timeout_secs as u64))
                        .await?;
                }
                if got.is_none() {
                    self.kill(&id, Signal::SIGKILL as i32 as u32, true).await?;
                    got = self.wait(&id, Duration::from_secs(30)).await?;
                }
                got
            }
        };
        let Some((code, at)) = exit else {
            return Err(Error::DeadlineExceeded(format!(
                "container {id} did not exit after SIGKILL"
            )));
        };
        self.record_exit(&id, code, at).await;
        Ok(())
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
        if let Err(s) = self
            .ctrd
            .tasks()
            .delete(self.ctrd.req(DeleteTaskRequest {
                container_id: id.to_string(),
            }))
            .await
        {
            if s.code() != Code::NotFound {
                tracing::warn!(container = id, error = %s.message(), "task delete failed");
            }
        }
    }

    /// Remove a container: kill if still running, then task, containerd container,
    /// snapshot, image volumes and record. Unknown ids are fine (idempotent).
    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let rec = match self.store.find(id).await {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let id = rec.id.clone();
        tracing::info!(pod = %rec.pod_id, container = %id, "RemoveContainer");
        if let TaskState::Running = self.task_state(&id).await? {
            self.kill(&id, Signal::SIGKILL as i32 as u32, true).await?;
            if let Some((code, at)) = self.wait(&id, Duration::from_secs(30)).await? {
                self.record_exit(&id, code, at).await;
            }
        }
        self.delete_task(&id).await;
        if self
            .store
            .get(&id)
            .await
            .is_some_and(|r| r.phase == Phase::Created)
        {
            // Never started (a start cut off before its task existed): its logger waits on
            // fifos no task will ever open.
            self.kill_logger(&id);
        }
        match self
            .ctrd
            .containers()
            .delete(self.ctrd.req(DeleteContainerRequest { id: id.clone() }))
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == Code::NotFound => {}
            Err(s) => return Err(Error::containerd(format!("container delete {id}"), s)),
        }
        self.remove_snapshot(&id).await;
        self.drop_image_volumes(&id).await;
        self.stdin_pipes.lock().await.remove(&id);
        let _ = tokio::fs::remove_dir_all(self.io_dir(&id)).await;
        let rec = self.store.get(&id).await.unwrap_or(rec);
        self.store.remove(&id).await?;
        self.emit(&rec, cri::ContainerEventType::ContainerDeletedEvent)
            .await;
        Ok(())
    }

    /// ReopenContainerLog: SIGUSR1 to the container's crius-logger.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn reopen_log(&self, id: &str) -> Result<()> {
        let rec = self.store.find(id).await?;
        if rec.phase != Phase::Running {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                rec.id
            )));
        }
        let pid = self.logger_pid(&rec.id).ok_or_else(|| {
            Error::FailedPrecondition(format!("container {} has no log driver running", rec.id))
        })?;
        crate::sys::kill(pid, Signal::SIGUSR1)
            .map_err(|e| Error::Internal(format!("signal log driver {pid}: {e}")))?;
        Ok(())
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
