//! A start whose outcome criusd did not see. containerd can die (or be killed) while it runs
//! StartContainer's Tasks.Create or Tasks.Start: the call fails, yet the shim — which outlives
//! containerd — may have created or even started the process. Recording such a start as failed
//! would report EXITED for a process that runs (and kubelet would start a second copy). So the
//! answer comes from containerd's task once containerd is back: started → the start is complete;
//! created only → it is started now; gone → the start failed. A container that was never seen to
//! start stays CREATED and its status follows the task later ([`Containers::task_truth`]).

use std::time::Duration;

use crius_ctrd::{TaskInfo, TaskStatus};

use super::Containers;
use crate::error::{Error, Result};

/// How long StartContainer waits for containerd to come back and tell what happened.
const SETTLE: Duration = Duration::from_secs(20);

/// What containerd's task of a container shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// No task.
    None,
    /// Created, never started.
    Created,
    /// Started: running, paused, or already exited.
    Started,
}

/// True when a containerd call failed without saying whether it took effect (the connection
/// broke, containerd went away mid-call).
pub fn outcome_unknown(e: &Error) -> bool {
    match e {
        Error::Containerd(e) => e.outcome_unknown(),
        _ => false,
    }
}

impl Containers {
    /// The init process of container `id`'s task, as containerd reports it; None without a task.
    pub(crate) async fn task_process(&self, id: &str) -> Result<Option<TaskInfo>> {
        Ok(self.shared.ctrd.task(id).await?)
    }

    /// What containerd says of container `id`'s task.
    pub(crate) async fn task_truth(&self, id: &str) -> Result<Truth> {
        Ok(match self.task_process(id).await? {
            None => Truth::None,
            Some(t) if matches!(t.status, TaskStatus::Created | TaskStatus::Unknown) => {
                Truth::Created
            }
            Some(_) => Truth::Started,
        })
    }

    /// Start a created task (the Tasks.Start a crash cut off).
    pub(crate) async fn start_created_task(&self, id: &str) -> Result<()> {
        let pid = self.shared.ctrd.start(id, None).await?;
        self.known.running(id, pid);
        Ok(())
    }

    /// After a start failed with `err` of unknown outcome: wait (bounded) for containerd and make
    /// the start true one way or the other. Ok(true): the container was started (by the cut-off
    /// call or now); Ok(false): nothing runs, the start failed; Err: containerd did not come back
    /// in time — the container stays CREATED and nothing is undone.
    pub(crate) async fn settle_start(&self, id: &str, err: &Error) -> Result<bool> {
        tracing::warn!(container = %id, error = %err, "start outcome unknown (containerd gone mid-call); asking the task once containerd is back");
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            match self.task_truth(id).await {
                Ok(Truth::Started) => {
                    tracing::info!(container = %id, "the cut-off start did start the task");
                    return Ok(true);
                }
                Ok(Truth::Created) => {
                    tracing::info!(container = %id, "task created but not started; starting it");
                    return match self.start_created_task(id).await {
                        Ok(()) => Ok(true),
                        Err(e) if outcome_unknown(&e) => Err(e),
                        Err(e) => {
                            tracing::warn!(container = %id, error = %e, "start of the created task failed");
                            Ok(false)
                        }
                    };
                }
                Ok(Truth::None) => return Ok(false),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::Unavailable(format!(
                        "start of container {id} could not be confirmed ({err}); containerd is still unreachable ({e}): the container stays CREATED and its status will follow its task"
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

impl Containers {
    /// A CREATED record whose task was started after all (a start cut off by a crash of
    /// containerd or criusd): RUNNING from now, so its status is what is true. Unchanged when
    /// the task is not started or containerd cannot say.
    pub(crate) async fn promote_if_started(
        &self,
        rec: super::record::ContainerRecord,
    ) -> super::record::ContainerRecord {
        // A Start in flight holds the guard and records its own outcome.
        let Some(_guard) = self.transitions.try_lock(&rec.id) else {
            return rec;
        };
        self.promote_started(rec).await
    }

    /// [`Containers::promote_if_started`] for a caller that holds the container's guard.
    pub(crate) async fn promote_started(
        &self,
        rec: super::record::ContainerRecord,
    ) -> super::record::ContainerRecord {
        use super::record::Phase;
        match self.task_truth(&rec.id).await {
            Ok(Truth::Started) => {}
            _ => return rec,
        }
        // Not this criusd's to start any more.
        self.known.take_unstarted(&rec.id);
        tracing::warn!(pod = %rec.pod_id, container = %rec.id, "container recorded CREATED has a started task (start cut off by a crash): now RUNNING");
        let now = crate::util::time::now_ns();
        match self
            .store
            .update(&rec.id, |r| {
                if r.phase != Phase::Created {
                    return false;
                }
                r.phase = Phase::Running;
                r.started_at_ns = now;
                true
            })
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(container = %rec.id, error = %e, "recording the started container failed");
                rec
            }
        }
    }
}
