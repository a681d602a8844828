//! The containerd side of a create: the container and its rootfs snapshot, and the undo of
//! a half-made one (also used by start-up recovery).

use std::collections::HashMap;

use crius_ctrd::NewContainer;
use crius_sandboxer::{LABEL_KIND, LABEL_SANDBOX_ID};

use crate::container::record::ContainerRecord;
use crate::container::Containers;
use crate::error::Result;
use crate::handler::Handler;

/// containerd label with the CRI container name (for `ctr c ls` readers).
pub const LABEL_CONTAINER_NAME: &str = "io.crius.container.name";

impl Containers {
    pub(super) async fn create_in_containerd(
        &self,
        rec: &ContainerRecord,
        handler: &Handler,
        name: &str,
        spec_json: Vec<u8>,
        parent: Option<&str>,
    ) -> Result<Vec<crius_ctrd::Mount>> {
        let mut labels = HashMap::new();
        labels.insert(LABEL_SANDBOX_ID.to_string(), rec.pod_id.clone());
        labels.insert(LABEL_KIND.to_string(), "container".to_string());
        labels.insert(LABEL_CONTAINER_NAME.to_string(), name.to_string());
        // The container record first: it references the snapshot key, so the GC never
        // takes the snapshot between its Prepare and here.
        let ctrd = &self.shared.ctrd;
        ctrd.create_container(NewContainer {
            id: rec.id.clone(),
            runtime: handler.runtime().to_string(),
            // The OCI runtime the shim runs, when the handler names one (crun).
            runtime_binary: handler.binary_name().to_string(),
            spec: spec_json,
            labels,
            image: rec.image_name.clone(),
            snapshot_key: rec.id.clone(),
        })
        .await?;
        // The rootfs mounts, kept for the start (see `Known::rootfs`).
        let mounts = ctrd
            .prepare_snapshot(&rec.id, parent.unwrap_or_default(), HashMap::new())
            .await?;
        Ok(mounts)
    }

    /// Remove a half-made container (containerd record, snapshots, image volumes), logging
    /// what fails.
    pub(crate) async fn undo_create(&self, id: &str) {
        if let Err(e) = self.shared.ctrd.delete_container(id).await {
            tracing::warn!(container = id, error = %e, "cleanup: container delete failed");
        }
        self.remove_snapshot(id).await;
        self.drop_image_volumes(id).await;
        self.drop_config_volumes(id).await;
    }

    /// Remove a container's image-config volumes (a create that failed before its record).
    pub(crate) async fn drop_config_volumes(&self, id: &str) {
        let dir = self.config_volumes_dir(id);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(container = id, dir = %dir.display(), error = %e, "removing image-config volumes failed");
            }
        }
        // The record dir itself, when nothing else made it.
        let _ = tokio::fs::remove_dir(self.store.dir_of(id)).await;
    }

    pub(crate) async fn remove_snapshot(&self, key: &str) {
        if let Err(e) = self.shared.ctrd.remove_snapshot(key).await {
            tracing::warn!(snapshot = key, error = %e, "snapshot remove failed");
        }
    }
}
