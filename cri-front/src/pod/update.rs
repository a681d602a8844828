//! UpdatePodSandboxResources: the pod's recorded resources follow what kubelet applied.

use crius_proto::runtime as cri;

use super::convert::resources_of;
use super::Pods;
use crate::error::{Error, Result};

impl Pods {
    /// Keep the pod's recorded resources in step with what kubelet applied to its cgroup.
    #[tracing::instrument(level = "debug", skip_all, fields(pod = %id))]
    pub async fn update_resources(
        &self,
        id: &str,
        overhead: Option<&cri::LinuxContainerResources>,
        resources: Option<&cri::LinuxContainerResources>,
    ) -> Result<()> {
        for r in [overhead, resources].into_iter().flatten() {
            if r.cpu_period < 0
                || r.cpu_shares < 0
                || r.memory_limit_in_bytes < 0
                || r.cpu_quota < -1
            {
                return Err(Error::InvalidArgument(format!(
                    "pod {id}: negative resource figures: {r:?}"
                )));
            }
        }
        let pod = self.shared.find_pod(id).await?;
        tracing::info!(pod = %pod.id, "UpdatePodSandboxResources");
        self.shared
            .sandboxer
            .update_resources(&pod.id, resources_of(overhead), resources_of(resources))
            .await?;
        Ok(())
    }
}
