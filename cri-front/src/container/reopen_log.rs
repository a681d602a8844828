//! ReopenContainerLog: the container's log driver reopens its log file (after kubelet rotated it).

use nix::sys::signal::Signal;

use super::record::Phase;
use super::Containers;
use crate::error::{Error, Result};

impl Containers {
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
