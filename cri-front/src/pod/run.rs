//! RunPodSandbox: the pause image, the node's default sysctls, then the sandboxer runs the pod.

use crius_proto::runtime as cri;

use super::convert::from_cri;
use super::Pods;
use crate::error::{Error, Result};

impl Pods {
    pub async fn run(&self, config: cri::PodSandboxConfig, handler: &str) -> Result<String> {
        if self.shared.cfg.runtime_for(handler).is_none() {
            return Err(Error::InvalidArgument(format!(
                "unknown runtime handler {handler:?}"
            )));
        }
        let mut cfg = from_cri(config, handler)?;
        if cfg.linux.userns.is_some() {
            super::userns::supported(&self.shared.cfg, handler).map_err(|why| {
                Error::Unimplemented(format!("user-namespaced pod on handler {handler:?}: {why}"))
            })?;
        }
        if !cfg.host_network() {
            for (k, v) in self.shared.cfg.default_pod_sysctls() {
                let v = super::userns::default_sysctl(cfg.linux.userns, k, v);
                cfg.linux.sysctls.entry(k.to_string()).or_insert(v);
            }
        }
        self.ensure_pause_image().await?;
        let (name, ns) = (cfg.metadata.name.clone(), cfg.metadata.namespace.clone());
        tracing::info!(pod_name = %name, pod_namespace = %ns, "RunPodSandbox");
        let st = self.shared.sandboxer.run(cfg).await?;
        tracing::info!(pod = %st.id, pod_name = %name, ips = ?st.ips, "pod sandbox ready");
        self.containers
            .emit_pod(&st.id, cri::ContainerEventType::ContainerCreatedEvent)
            .await;
        self.containers
            .emit_pod(&st.id, cri::ContainerEventType::ContainerStartedEvent)
            .await;
        Ok(st.id)
    }

    /// With a pause image configured, pull it before the first pod needs it.
    async fn ensure_pause_image(&self) -> Result<()> {
        let crius_sandboxer::PauseSource::Image(image) = &self.shared.cfg.pause else {
            return Ok(());
        };
        if self.shared.images.find(image).await?.is_none() {
            tracing::info!(image = %image, "pulling the pause image");
            self.shared.images.pull(image, None).await?;
        }
        Ok(())
    }
}
