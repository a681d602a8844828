//! RemoveContainer: kill what still runs, mark the record removing (on disk; the container is
//! gone for every RPC and its name free), answer; the task, the containerd container, the
//! snapshot, image volumes and the record go after the reply (`removal.rs`).

use std::sync::Arc;
use std::time::Duration;

use crius_proto::runtime as cri;
use nix::sys::signal::Signal;

use super::record::Phase;
use super::state::Op;
use super::task::TaskState;
use super::Containers;
use crate::error::Result;

impl Containers {
    /// Remove a container: kill it if it still runs, then mark it removing and hand the rest
    /// to [`Containers::finish_removal`] in the background, which holds the container's
    /// guard (state Removing) until it is done. Unknown ids are fine (idempotent), and so is a
    /// container whose removal has answered already.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn remove_container(self: &Arc<Self>, id: &str) -> Result<()> {
        // → Removing under the container's guard: Start/Stop/Update wait, then find no record.
        let (guard, rec) = match self.begin(id, Op::Remove).await {
            Ok(Some(held)) => held,
            Ok(None) => return Ok(()),
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let id = rec.id.clone();
        tracing::info!(pod = %rec.pod_id, container = %id, "RemoveContainer");
        // An exited container's task has ended; any other may still run (a start a crash cut
        // off leaves a CREATED record over a live task).
        if rec.phase != Phase::Exited {
            if let TaskState::Running = self.task_state(&id).await? {
                self.kill(&id, Signal::SIGKILL as i32 as u32, true).await?;
                if let Some((code, at)) = self.wait(&id, Duration::from_secs(30)).await? {
                    self.record_exit(&id, code, at).await;
                }
            }
        }
        let rec = self.store.mark_removing(&id).await?;
        self.known.forget(&id);
        self.spawn_removal(guard, &id, &rec.pod_id);
        self.emit(&rec, cri::ContainerEventType::ContainerDeletedEvent)
            .await;
        Ok(())
    }
}
