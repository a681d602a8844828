//! What Exec, Attach and PortForward must find before a streaming URL is issued: the
//! container (or pod) exists — NOT_FOUND otherwise — and can be streamed to: a running
//! container, a ready pod — FAILED_PRECONDITION otherwise. A URL for something that cannot be
//! served would only fail later, on the streaming server, where the client sees no gRPC code.

use crius_sandboxer::PodState;

use crate::container::record::Phase;
use crate::daemon::{Containers, Pods};
use crate::error::{Error, Result};

impl Containers {
    /// The full id of a running container `id` names (an id or a unique prefix).
    pub async fn streamable_container(&self, rpc: &str, id: &str) -> Result<String> {
        let rec = self.store.find(id).await?;
        let rec = self.refreshed(rec).await?;
        if rec.phase != Phase::Running {
            let state = match rec.phase {
                Phase::Created => "created",
                _ => "exited",
            };
            tracing::info!(container = %rec.id, rpc, state, "refused: container is not running");
            return Err(Error::FailedPrecondition(format!(
                "{rpc}: container {} is not running (it is {state})",
                rec.id
            )));
        }
        Ok(rec.id)
    }
}

impl Pods {
    /// The full id of a ready pod `id` names.
    pub async fn streamable_pod(&self, rpc: &str, id: &str) -> Result<String> {
        let pod = self.shared.find_pod(id).await?;
        if pod.state != PodState::Ready {
            tracing::info!(pod = %pod.id, rpc, "refused: pod sandbox is not ready");
            return Err(Error::FailedPrecondition(format!(
                "{rpc}: pod sandbox {} is not ready",
                pod.id
            )));
        }
        Ok(pod.id)
    }
}
