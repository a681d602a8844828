//! What a CreateContainer request must hold, and its pod must be, before anything is made.

use crius_proto::runtime as cri;
use crius_sandboxer::{PodState, PodStatus};

use crate::container::Containers;
use crate::error::{Error, Result};
use crate::handler::Handler;

/// The container's metadata (with a name) and its image reference, or INVALID_ARGUMENT.
pub(super) fn check(
    pod_id: &str,
    config: &cri::ContainerConfig,
) -> Result<(cri::ContainerMetadata, String)> {
    let meta = config
        .metadata
        .clone()
        .filter(|m| !m.name.is_empty())
        .ok_or_else(|| Error::InvalidArgument("container metadata.name is missing".into()))?;
    let image = config
        .image
        .as_ref()
        .map(|i| i.image.clone())
        .filter(|i| !i.is_empty())
        .ok_or_else(|| Error::InvalidArgument("container image is missing".into()))?;
    if pod_id.is_empty() {
        return Err(Error::InvalidArgument("pod_sandbox_id is empty".into()));
    }
    Ok((meta, image))
}

impl Containers {
    /// The container's pod, which must be ready.
    pub(super) async fn ready_pod(&self, pod_id: &str) -> Result<PodStatus> {
        let pod = self.shared.sandboxer.status(pod_id).await?;
        if pod.state != PodState::Ready {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {pod_id} is not ready"
            )));
        }
        Ok(pod)
    }

    /// The pod's runtime handler: its containerd runtime and OCI runtime binary.
    pub(super) fn handler_of(&self, pod: &PodStatus) -> Result<Handler> {
        Ok(self
            .shared
            .cfg
            .handler(&pod.config.runtime_handler)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown runtime handler {:?}",
                    pod.config.runtime_handler
                ))
            })?
            .clone())
    }
}
