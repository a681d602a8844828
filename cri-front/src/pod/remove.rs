//! RemovePodSandbox: the pod's containers first, then the sandbox.

use crius_proto::runtime as cri;

use super::Pods;
use crate::error::Result;

impl Pods {
    /// Remove the pod's containers, then the pod. Unknown ids are fine (idempotent).
    #[tracing::instrument(level = "debug", skip_all, fields(pod = %id))]
    pub async fn remove(&self, id: &str) -> Result<()> {
        let (pod_id, known) = match self.shared.find_pod(id).await {
            Ok(p) => (p.id, true),
            Err(e) if e.is_not_found() => (id.to_string(), false),
            Err(e) => return Err(e),
        };
        tracing::info!(pod = %pod_id, "RemovePodSandbox");
        for r in self.containers.store.all().await {
            if r.pod_id == pod_id {
                self.containers.remove_container(&r.id).await?;
            }
        }
        self.shared.sandboxer.remove(&pod_id).await?;
        if known {
            self.containers
                .emit_pod(&pod_id, cri::ContainerEventType::ContainerDeletedEvent)
                .await;
        }
        Ok(())
    }
}
