//! Containers service.

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, DeleteContainerRequest, GetContainerRequest,
    ListContainersRequest, UpdateContainerRequest,
};

use super::{absent_ok, err, Client};
use crate::error::{Error, Result};
use crate::types::{ContainerInfo, NewContainer, SPEC_TYPE_URL};
use crate::Containers;

/// containerd's `containerd.runc.v1.Options`, the one field crius sets (tag as in containerd's
/// `api/types/runc/options/oci.proto`); shims of runc's kind (containerd's, crius's) read it.
#[derive(Clone, PartialEq, prost::Message)]
struct RuncOptions {
    #[prost(string, tag = "6")]
    binary_name: String,
}

/// The type URL shims match runc's options by.
const RUNC_OPTIONS_TYPE_URL: &str = "containerd.runc.v1.Options";

fn runtime_options(binary: &str) -> Option<prost_types::Any> {
    (!binary.is_empty()).then(|| prost_types::Any {
        type_url: RUNC_OPTIONS_TYPE_URL.into(),
        value: prost::Message::encode_to_vec(&RuncOptions {
            binary_name: binary.into(),
        }),
    })
}

fn runtime_binary(options: Option<&prost_types::Any>) -> String {
    options
        .filter(|a| a.type_url.ends_with(RUNC_OPTIONS_TYPE_URL))
        .and_then(|a| <RuncOptions as prost::Message>::decode(a.value.as_slice()).ok())
        .map(|o| o.binary_name)
        .unwrap_or_default()
}

fn create_request(c: NewContainer, snapshotter: &str) -> CreateContainerRequest {
    let snapshotter = if c.snapshot_key.is_empty() {
        String::new()
    } else {
        snapshotter.to_string()
    };
    CreateContainerRequest {
        container: Some(Container {
            id: c.id,
            labels: c.labels,
            image: c.image,
            runtime: Some(Runtime {
                name: c.runtime,
                options: runtime_options(&c.runtime_binary),
            }),
            spec: Some(prost_types::Any {
                type_url: SPEC_TYPE_URL.to_string(),
                value: c.spec,
            }),
            snapshotter,
            snapshot_key: c.snapshot_key,
            ..Default::default()
        }),
    }
}

/// containerd's filter for "has every one of these labels".
fn label_filter(labels: &[(&str, &str)]) -> Vec<String> {
    if labels.is_empty() {
        return Vec::new();
    }
    let all: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("labels.\"{k}\"=={v}"))
        .collect();
    vec![all.join(",")]
}

fn info(c: Container) -> ContainerInfo {
    ContainerInfo {
        id: c.id,
        labels: c.labels,
        image: c.image,
        runtime_binary: runtime_binary(c.runtime.as_ref().and_then(|r| r.options.as_ref())),
        runtime: c.runtime.map(|r| r.name).unwrap_or_default(),
        spec: c.spec.map(|a| a.value).unwrap_or_default(),
        snapshot_key: c.snapshot_key,
    }
}

impl Client {
    fn containers_client(&self) -> ContainersClient<containerd_client::tonic::transport::Channel> {
        ContainersClient::new(self.channel.clone())
    }

    async fn get_raw(&self, id: &str) -> Result<Container> {
        let op = format!("container get {id}");
        self.containers_client()
            .get(self.req(GetContainerRequest { id: id.to_string() }))
            .await
            .map_err(err(op.clone()))?
            .into_inner()
            .container
            .ok_or_else(|| Error::NotFound {
                op,
                msg: "no container in the answer".into(),
            })
    }
}

#[async_trait::async_trait]
impl Containers for Client {
    async fn create_container(&self, c: NewContainer) -> Result<()> {
        let op = format!("container create {}", c.id);
        self.containers_client()
            .create(self.req(create_request(c, &self.snapshotter)))
            .await
            .map_err(err(op))?;
        Ok(())
    }

    async fn container(&self, id: &str) -> Result<ContainerInfo> {
        self.get_raw(id).await.map(info)
    }

    async fn containers(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>> {
        let resp = self
            .containers_client()
            .list(self.req(ListContainersRequest {
                filters: label_filter(labels),
            }))
            .await
            .map_err(err("container list"))?;
        Ok(resp.into_inner().containers.into_iter().map(info).collect())
    }

    async fn update_container_spec(&self, id: &str, spec: Vec<u8>) -> Result<()> {
        let mut c = self.get_raw(id).await?;
        let type_url = c
            .spec
            .take()
            .map(|a| a.type_url)
            .unwrap_or_else(|| SPEC_TYPE_URL.to_string());
        c.spec = Some(prost_types::Any {
            type_url,
            value: spec,
        });
        self.containers_client()
            .update(self.req(UpdateContainerRequest {
                container: Some(c),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["spec".into()],
                }),
            }))
            .await
            .map_err(err(format!("container update {id}")))?;
        Ok(())
    }

    async fn delete_container(&self, id: &str) -> Result<()> {
        let r = self
            .containers_client()
            .delete(self.req(DeleteContainerRequest { id: id.to_string() }))
            .await
            .map_err(err(format!("container delete {id}")));
        absent_ok(r).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_names_the_snapshotter_only_with_a_snapshot() {
        let c = NewContainer {
            id: "c1".into(),
            runtime: "io.containerd.crius.v2".into(),
            spec: b"{}".to_vec(),
            snapshot_key: "c1".into(),
            ..Default::default()
        };
        let r = create_request(c.clone(), "overlayfs").container.unwrap();
        assert_eq!(r.snapshotter, "overlayfs");
        assert_eq!(r.snapshot_key, "c1");
        assert_eq!(r.runtime.unwrap().name, "io.containerd.crius.v2");
        assert_eq!(r.spec.unwrap().type_url, SPEC_TYPE_URL);
        let bare = NewContainer {
            snapshot_key: String::new(),
            ..c
        };
        assert_eq!(
            create_request(bare, "overlayfs")
                .container
                .unwrap()
                .snapshotter,
            ""
        );
    }

    #[test]
    fn a_runtime_binary_is_runc_s_binary_name_option() {
        let c = NewContainer {
            id: "c1".into(),
            runtime: "io.containerd.crius.v2".into(),
            runtime_binary: "crun".into(),
            ..Default::default()
        };
        let r = create_request(c, "overlayfs").container.unwrap();
        let opts = r.runtime.as_ref().unwrap().options.clone().unwrap();
        assert_eq!(opts.type_url, "containerd.runc.v1.Options");
        // Field 6, length 4, "crun": what containerd's runc Options decode as BinaryName.
        assert_eq!(opts.value, b"\x32\x04crun");
        assert_eq!(info(r).runtime_binary, "crun");
        let plain = create_request(NewContainer::default(), "overlayfs")
            .container
            .unwrap();
        assert!(plain.runtime.unwrap().options.is_none());
    }

    #[test]
    fn label_filters_are_one_conjunction() {
        assert!(label_filter(&[]).is_empty());
        assert_eq!(
            label_filter(&[
                ("io.crius.kind", "container"),
                ("io.crius.sandbox-id", "p1")
            ]),
            vec!["labels.\"io.crius.kind\"==container,labels.\"io.crius.sandbox-id\"==p1"]
        );
    }
}
