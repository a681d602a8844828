//! ListContainers (and StreamContainers): the records, refreshed from containerd, that
//! pass kubelet's filter.

use crius_proto::runtime as cri;

use super::status::{matches, to_cri};
use super::Containers;
use crate::error::Result;

impl Containers {
    pub async fn list(&self, filter: Option<cri::ContainerFilter>) -> Result<Vec<cri::Container>> {
        let all = self.all_refreshed().await?;
        let f = filter.unwrap_or_default();
        Ok(all.iter().filter(|r| matches(r, &f)).map(to_cri).collect())
    }
}
