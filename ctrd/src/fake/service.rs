//! The fake's namespace, version, leases and events.

use std::collections::HashMap;
use std::sync::Arc;

use super::{exists, not_found, Fake};
use crate::error::Result;
use crate::types::EventStream;
use crate::{Containerd, Service};

#[async_trait::async_trait]
impl Service for Fake {
    fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    fn snapshotter(&self) -> &str {
        &self.inner.snapshotter
    }

    async fn version(&self) -> Result<String> {
        drop(self.call("version", "")?);
        Ok("fake".into())
    }

    async fn snapshotter_exports(&self) -> Result<HashMap<String, String>> {
        drop(self.call("snapshotter_exports", "")?);
        Ok(HashMap::from([(
            "root".to_string(),
            format!(
                "/fake/io.containerd.snapshotter.v1.{}",
                self.inner.snapshotter
            ),
        )]))
    }

    async fn create_lease(&self, id: &str, _labels: HashMap<String, String>) -> Result<()> {
        let mut st = self.call("create_lease", id)?;
        if !st.leases.insert(id.to_string()) {
            return Err(exists(format!("lease create {id}"), &format!("lease {id}")));
        }
        Ok(())
    }

    async fn delete_lease(&self, id: &str) -> Result<()> {
        let mut st = self.call("delete_lease", id)?;
        if !st.leases.remove(id) {
            return Err(not_found(
                format!("lease delete {id}"),
                &format!("lease {id}"),
            ));
        }
        Ok(())
    }

    /// The same store: the fake has no garbage collector for a lease to hold off.
    fn leased(&self, _id: &str) -> Arc<dyn Containerd> {
        Arc::new(self.clone())
    }

    async fn subscribe_task_events(&self) -> Result<EventStream> {
        drop(self.call("subscribe_task_events", "")?);
        let rx = self.inner.events.subscribe();
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => return Some((Ok(ev), rx)),
                    // A slow subscriber loses old events, as with containerd's.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        })))
    }
}
