//! The pod service: one module per pod RPC (`run`, `stop`, `remove`, `status`, `list`,
//! `update`), CRI ↔ sandboxer types in `convert`. The sandboxer owns the pods; criusd
//! stops and removes a pod's containers before the sandboxer tears it down.

use std::sync::Arc;

use crius_sandboxer::PodStatus;

use crate::container::Containers;
use crate::daemon::Shared;
use crate::error::{Error, Result};

pub mod convert;
pub mod list;
pub mod remove;
pub mod run;
pub mod status;
pub mod stop;
pub mod update;
pub mod userns;

pub use convert::{from_cri, matches, to_cri, to_cri_status};

/// The pod RPCs: the sandboxer (in [`Shared`]) and the containers pods hold.
pub struct Pods {
    pub shared: Arc<Shared>,
    pub containers: Arc<Containers>,
}

impl Pods {
    pub fn new(shared: Arc<Shared>, containers: Arc<Containers>) -> Pods {
        Pods { shared, containers }
    }
}

impl Shared {
    /// Resolve an id or unique prefix to a pod.
    pub async fn find_pod(&self, id: &str) -> Result<PodStatus> {
        if id.is_empty() {
            return Err(Error::InvalidArgument("pod sandbox id is empty".into()));
        }
        match self.sandboxer.status(id).await {
            Ok(p) => return Ok(p),
            Err(e) if *e.kind() == crius_sandboxer::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let all = self.sandboxer.list().await?;
        let mut hits = all.into_iter().filter(|p| p.id.starts_with(id));
        match (hits.next(), hits.next()) {
            (Some(p), None) => Ok(p),
            (Some(_), Some(_)) => Err(Error::InvalidArgument(format!(
                "pod sandbox id prefix {id:?} is ambiguous"
            ))),
            _ => Err(Error::NotFound(format!("pod sandbox {id:?} not found"))),
        }
    }
}
