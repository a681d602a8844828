//! ListPodSandbox (and StreamPodSandboxes): the sandboxer's pods that pass kubelet's filter.

use crius_proto::runtime as cri;

use super::convert::{matches, to_cri};
use super::Pods;
use crate::error::Result;

impl Pods {
    pub async fn list(
        &self,
        filter: Option<cri::PodSandboxFilter>,
    ) -> Result<Vec<cri::PodSandbox>> {
        let f = filter.unwrap_or_default();
        let pods = self.shared.sandboxer.list().await?;
        Ok(pods.iter().filter(|p| matches(p, &f)).map(to_cri).collect())
    }
}
