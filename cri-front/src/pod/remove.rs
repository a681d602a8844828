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
        // The containers' removals finish after their replies: the pod goes once they are
        // done (one that failed is tried again here, and its error is the pod's).
        self.containers
            .removals_done(Some(&pod_id), std::time::Duration::from_secs(60))
            .await;
        self.containers.finish_removals(Some(&pod_id)).await?;
        self.shared.sandboxer.remove(&pod_id).await?;
        if known {
            self.containers
                .emit_pod(&pod_id, cri::ContainerEventType::ContainerDeletedEvent)
                .await;
        }
        Ok(())
    }
}
