//! StartContainer: the task's rootfs, stdio (log driver) and stdin, then containerd's task
//! create and start; a start a crash cut off is finished from what containerd holds.

use crius_ctrd::{NewTask, Stdio};
use crius_proto::runtime as cri;

use super::record::{ContainerRecord, Phase};
use super::state::{Op, State};
use super::task::log_uri;
use super::Containers;
use crate::config::LogMode;
use crate::error::Result;
use crate::util::phases::Phases;
use crate::util::time::now_ns;

impl Containers {
    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn start_container(&self, id: &str) -> Result<()> {
        // Created → Starting, under the container's guard: a second Start waits, then finds
        // it running.
        let Some((mut guard, rec)) = self.begin(id, Op::Start).await? else {
            return Ok(());
        };
        let id = rec.id.clone();
        tracing::info!(pod = %rec.pod_id, container = %id, "StartContainer");
        // Taken before the task starts, so it is never later than the exit time containerd reports.
        let started_at = now_ns();
        // Created by this criusd and never started: no task can exist, nothing to ask.
        let truth = if self.known.take_unstarted(&id) {
            super::start_truth::Truth::None
        } else {
            self.task_truth(&id).await?
        };
        let started = match truth {
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
            *guard = State::Exited;
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
        *guard = State::of(rec.phase);
        self.emit(&rec, cri::ContainerEventType::ContainerStartedEvent)
            .await;
        // An exit that raced the start was skipped by record_exit (phase was Created): catch it now.
        self.refreshed(rec).await?;
        Ok(())
    }

    async fn start_task(&self, rec: &ContainerRecord) -> Result<()> {
        let id = &rec.id;
        let mut phases = Phases::new();
        self.ensure_image_volumes(rec).await?;
        // Kept from CreateContainer's Prepare by this criusd; asked of containerd otherwise.
        let rootfs = match self.known.take_rootfs(id) {
            Some(mounts) => mounts,
            None => self.shared.ctrd.snapshot_mounts(id).await?,
        };
        phases.mark("rootfs");
        // The log driver runs for every container, with a log path or not: attachers join the
        // live output through it.
        let (stdout, stderr) = match self.shared.cfg.log_mode {
            LogMode::Binary => {
                let uri = log_uri(
                    &self.shared.cfg.logger_path().display().to_string(),
                    &rec.log_path,
                    &self.logger_pidfile(id).display().to_string(),
                    self.shared.cfg.max_log_line_bytes,
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
        phases.mark("stdio");
        self.shared
            .ctrd
            .create_task(NewTask {
                container_id: id.clone(),
                rootfs,
                io: Stdio {
                    stdin,
                    stdout,
                    stderr,
                    // With a terminal the shim keeps the pty master and all output is on stdout.
                    terminal: rec.tty,
                },
            })
            .await?;
        phases.mark("task_create");
        let pid = self.shared.ctrd.start(id, None).await?;
        phases.mark("task_start");
        self.known.running(id, pid);
        tracing::debug!(pod = %rec.pod_id, container = %id, phases = %phases, "StartContainer phases");
        Ok(())
    }
}
