//! PodSandboxStatus: the sandboxer's pod, and the statuses of its containers.

use std::collections::HashMap;

use crius_proto::runtime as cri;

use super::convert::to_cri_status;
use super::Pods;
use crate::error::Result;
use crate::util::time::now_ns;

impl Pods {
    pub async fn status(&self, id: &str, verbose: bool) -> Result<cri::PodSandboxStatusResponse> {
        let p = self.shared.find_pod(id).await?;
        let mut info = HashMap::new();
        if verbose {
            if let Ok(j) = serde_json::to_string(&p) {
                info.insert("info".to_string(), j);
            }
        }
        let recs: Vec<_> = self
            .containers
            .all_refreshed()
            .await?
            .into_iter()
            .filter(|r| r.pod_id == p.id)
            .collect();
        let containers = self.containers.cri_statuses(&recs).await?;
        Ok(cri::PodSandboxStatusResponse {
            status: Some(to_cri_status(&p)),
            info,
            containers_statuses: containers,
            timestamp: now_ns(),
        })
    }
}
