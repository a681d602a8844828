//! Start-up reconciliation of container records with containerd.

use std::collections::HashSet;

use crius_sandboxer::{LABEL_KIND, LABEL_SANDBOX_ID};

use super::Containers;
use crate::error::Result;

/// What recovery found.
#[derive(Debug, Default)]
pub struct ContainerRecovery {
    pub kept: usize,
    /// Records whose containerd container is gone: forgotten.
    pub dropped: Vec<String>,
    /// containerd containers without a record (crash mid-Create): removed.
    pub orphans: Vec<String>,
    /// Containers without a record whose image volumes were left: unmounted and removed.
    pub image_volumes_removed: Vec<String>,
    /// Views a crash mid-Create left (reading the image's /etc/passwd): removed.
    pub user_file_views_removed: usize,
    /// Removals answered before a crash or stop, finished now.
    pub removals_finished: usize,
}

impl Containers {
    pub async fn recover_containers(&self) -> Result<ContainerRecovery> {
        let mut rep = ContainerRecovery::default();
        // RemoveContainers a stopped criusd answered but did not finish.
        match self.finish_removals(None).await {
            Ok(n) => rep.removals_finished = n,
            Err(e) => tracing::warn!(error = %e, "recover: a removal failed; it is tried again"),
        }
        let listed = self
            .shared
            .ctrd
            .containers(&[(LABEL_KIND, "container")])
            .await?;
        let in_ctrd: HashSet<String> = listed.iter().map(|c| c.id.clone()).collect();
        for r in self.store.all().await {
            if in_ctrd.contains(&r.id) {
                rep.kept += 1;
            } else {
                tracing::warn!(container = %r.id, pod = %r.pod_id, "recover: containerd has no such container; dropping its record");
                self.remove_snapshot(&r.id).await;
                self.store.remove(&r.id).await?;
                self.known.forget(&r.id);
                rep.dropped.push(r.id);
            }
        }
        for c in listed {
            if self.store.get(&c.id).await.is_none() {
                let pod = c.labels.get(LABEL_SANDBOX_ID).cloned().unwrap_or_default();
                tracing::warn!(container = %c.id, pod = %pod, "recover: container without a record (crash during create); removing it");
                self.delete_task(&c.id).await;
                self.undo_create(&c.id).await;
                rep.orphans.push(c.id);
            }
        }
        // Record dirs without a record: a crash mid-Create after the image-config volumes
        // were filled, before the record was written.
        if let Ok(rd) = std::fs::read_dir(self.shared.cfg.containers_dir()) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                if self.store.get(&id).await.is_none() && !e.path().join("container.json").exists()
                {
                    tracing::warn!(container = %id, "recover: removing the volumes of a container whose create did not finish");
                    self.drop_config_volumes(&id).await;
                    let _ = tokio::fs::remove_dir_all(e.path()).await;
                }
            }
        }
        // Views of a crash mid-Create or mid-Remove. Views of kept containers stay; a start
        // mounts them again if a reboot took the host mounts.
        match self.sweep_image_volumes().await {
            Ok(ids) => rep.image_volumes_removed = ids,
            Err(e) => tracing::warn!(error = %e, "recover: image volume sweep failed"),
        }
        match self.sweep_user_file_views().await {
            Ok(n) => rep.user_file_views_removed = n,
            Err(e) => tracing::warn!(error = %e, "recover: user-files view sweep failed"),
        }
        // Exits that happened while criusd was down.
        self.all_reconciled().await?;
        Ok(rep)
    }
}
