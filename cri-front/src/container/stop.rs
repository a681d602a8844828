//! StopContainer: the stop signal, a grace period, then SIGKILL; the exit is recorded.

use std::time::Duration;

use nix::sys::signal::Signal;

use super::state::{Op, State};
use super::task::{signal_number, TaskState};
use super::Containers;
use crate::error::{Error, Result};
use crate::util::time::now_ns;

impl Containers {
    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<()> {
        // Running → Stopping under the container's guard; anything else is stopped already.
        let (mut guard, rec) = match self.begin(id, Op::Stop).await {
            Ok(Some(held)) => held,
            Ok(None) => return Ok(()),
            // kubelet stops again after its restarts and garbage collection; as containerd
            // and CRI-O, an unknown container is already stopped.
            Err(e) if e.is_not_found() => {
                tracing::info!(container = %id, "StopContainer: no such container, nothing to stop");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let id = rec.id.clone();
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
        *guard = State::Exited;
        Ok(())
    }
}
