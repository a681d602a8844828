//! StopPodSandbox: the pod's running containers, then the pause and the network.

use super::Pods;
use crate::container::record::Phase;
use crate::error::Result;

impl Pods {
    /// Kill the pod's containers (no grace: kubelet stopped them already if it wanted
    /// grace), then let the sandboxer stop the pause and the network. Idempotent.
    #[tracing::instrument(level = "debug", skip_all, fields(pod = %id))]
    pub async fn stop(&self, id: &str) -> Result<()> {
        let pod = match self.shared.find_pod(id).await {
            Ok(p) => p,
            // kubelet stops again after its restarts and garbage collection; as containerd
            // and CRI-O, an unknown pod is already stopped.
            Err(e) if e.is_not_found() => {
                tracing::info!(pod = %id, "StopPodSandbox: no such pod sandbox, nothing to stop");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        tracing::info!(pod = %pod.id, "StopPodSandbox");
        for r in self.containers.store.all().await {
            if r.pod_id == pod.id && r.phase == Phase::Running {
                self.containers.stop_container(&r.id, 0).await?;
            }
        }
        self.shared.sandboxer.stop(&pod.id).await?;
        Ok(())
    }
}
