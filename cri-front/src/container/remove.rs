//! RemoveContainer: kill what still runs, then delete the task, the containerd container,
//! the snapshot, image volumes and the record.

use std::time::Duration;

use crius_proto::runtime as cri;
use nix::sys::signal::Signal;

use super::record::Phase;
use super::state::Op;
use super::task::TaskState;
use super::Containers;
use crate::error::Result;

impl Containers {
    /// Remove a container: kill if still running, then task, containerd container,
    /// snapshot, image volumes and record. Unknown ids are fine (idempotent).
    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        // → Removing under the container's guard: Start/Stop/Update wait, then find no record.
        let (_guard, rec) = match self.begin(id, Op::Remove).await {
            Ok(Some(held)) => held,
            Ok(None) => return Ok(()),
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
        self.shared.ctrd.delete_container(&id).await?;
        self.remove_snapshot(&id).await;
        self.drop_image_volumes(&id).await;
        self.stdin_pipes.lock().await.remove(&id);
        let _ = tokio::fs::remove_dir_all(self.io_dir(&id)).await;
        let rec = self.store.get(&id).await.unwrap_or(rec);
        self.store.remove(&id).await?;
        self.transitions.forget(&id);
        self.known.forget(&id);
        self.emit(&rec, cri::ContainerEventType::ContainerDeletedEvent)
            .await;
        Ok(())
    }
}
