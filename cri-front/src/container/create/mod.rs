//! CreateContainer: validate, resolve image and user, build the OCI spec, then the
//! containerd container and its rootfs snapshot. A failure removes what was made.
//!
//! The RPC's steps, in the order it takes them: `request` (what the request and its pod must
//! be), `image_files` (users and VOLUME contents read from the image), `namespaces`,
//! `mounts`, `devices`, `profiles` (seccomp, AppArmor), `oci` (the spec from all of them),
//! `new_record` (the record ContainerStatus reads), `containerd` (the container, its rootfs
//! snapshot, and the undo of a half-made create).

mod containerd;
mod devices;
mod image_files;
mod mounts;
mod namespaces;
mod new_record;
mod oci;
mod profiles;
mod request;

use crius_proto::runtime as cri;

use super::names::NameKey;
use super::record::Phase;
use super::state::State;
use super::Containers;
use crate::error::{Error, Result};
use crate::util::phases::Phases;

pub use containerd::LABEL_CONTAINER_NAME;

/// A fresh 64-hex id, like containerd's CRI plugin makes.
pub fn new_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Containers {
    /// Runs in the RPC's span (no span of its own): the id goes on it once made, so every
    /// line logged from then on, the RPC's failure line too, names the container.
    pub async fn create_container(
        &self,
        pod_id: &str,
        config: cri::ContainerConfig,
    ) -> Result<String> {
        let mut phases = Phases::new();
        let (meta, image) = request::check(pod_id, &config)?;
        let pod = self.ready_pod(pod_id).await?;
        let pod_id = pod.id.clone();
        let handler = self.handler_of(&pod)?;
        let img = self.shared.images.resolve(&image).await?;
        phases.mark("resolve");

        // The name is this container's from here until it is removed; a failed create frees it.
        let id = new_id();
        crate::rpc::container(&id);
        self.store.reserve_name(
            NameKey {
                pod_id: pod_id.clone(),
                name: meta.name.clone(),
                attempt: meta.attempt,
            },
            &id,
        )?;
        let mut guard = self.transitions.lock_new(&id).await;
        tracing::info!(pod = %pod_id, container = %id, name = %meta.name, image = %image, "CreateContainer");
        let made: Result<Vec<crius_ctrd::Mount>> = async {
            let vols = self
                .make_image_volumes(&pod_id, &id, &config.mounts)
                .await?;
            phases.mark("image_volumes");
            let built = match self
                .build_spec(&id, &pod, &config, &img, &vols, &mut phases)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    self.drop_image_volumes(&id).await;
                    self.drop_config_volumes(&id).await;
                    return Err(e);
                }
            };
            let mut rec = new_record::new_record(new_record::Made {
                id: &id,
                pod: &pod,
                config: &config,
                meta: &meta,
                image: &image,
                img: &img,
                runtime: handler.runtime(),
                built: &built,
                vols,
            });

            let spec_json = serde_json::to_vec(&built.spec)
                .map_err(|e| Error::Internal(format!("encode spec: {e}")))?;
            phases.mark("spec");
            let made = self
                .create_in_containerd(
                    &rec,
                    &handler,
                    &meta.name,
                    spec_json,
                    img.top_chain.as_deref(),
                )
                .await;
            let rootfs = match made {
                Ok(m) => m,
                Err(e) => {
                    self.undo_create(&id).await;
                    return Err(e);
                }
            };
            phases.mark("containerd");
            if let Err(e) = self.store.put(&rec).await {
                self.undo_create(&id).await;
                let _ = self.store.remove(&id).await;
                return Err(e);
            }
            phases.mark("record");
            rec.phase = Phase::Created;
            self.emit(&rec, cri::ContainerEventType::ContainerCreatedEvent)
                .await;
            Ok(rootfs)
        }
        .await;
        match made {
            Ok(rootfs) => {
                tracing::debug!(pod = %pod_id, container = %id, phases = %phases, "CreateContainer phases");
                self.known.created(&id);
                self.known.rootfs(&id, rootfs);
                *guard = State::Created;
                Ok(id)
            }
            Err(e) => {
                self.store.release_name(&id);
                self.transitions.forget(&id);
                Err(e)
            }
        }
    }
}
