//! Version, introspection, leases and events.

use std::collections::HashMap;
use std::sync::Arc;

use containerd_client::events::{TaskExit, TaskOom};
use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::introspection_client::IntrospectionClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::services::v1::{
    CreateRequest as LeaseCreate, DeleteRequest as LeaseDelete, PluginsRequest, SubscribeRequest,
};
use containerd_client::types::Envelope;
use futures::StreamExt;
use prost::Message;

use super::{err, Client};
use crate::error::Result;
use crate::types::{ts_ns, EventStream, Exit, TaskEvent};
use crate::{Containerd, Service};

const EXIT: &str = "/tasks/exit";
const OOM: &str = "/tasks/oom";
/// `/images/create`, `/images/update`, `/images/delete`.
const IMAGES: &str = "/images/";

/// The task events of `namespace` crius follows.
fn task_event_filters(namespace: &str) -> Vec<String> {
    let mut f: Vec<String> = [EXIT, OOM]
        .iter()
        .map(|t| format!("namespace=={namespace},topic==\"{t}\""))
        .collect();
    f.push(format!("namespace=={namespace},topic~=\"^{IMAGES}\""));
    f
}

/// None for other topics or an undecodable event.
fn task_event(env: Envelope) -> Option<TaskEvent> {
    if env.topic.starts_with(IMAGES) {
        return Some(TaskEvent::ImagesChanged);
    }
    let any = env.event?;
    match env.topic.as_str() {
        EXIT => TaskExit::decode(any.value.as_slice())
            .ok()
            .map(|e| TaskEvent::Exit {
                container_id: e.container_id,
                id: e.id,
                exit: Exit {
                    code: e.exit_status,
                    at_ns: ts_ns(e.exited_at.as_ref()),
                },
            }),
        OOM => TaskOom::decode(any.value.as_slice())
            .ok()
            .map(|e| TaskEvent::Oom {
                container_id: e.container_id,
            }),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Service for Client {
    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn snapshotter(&self) -> &str {
        &self.snapshotter
    }

    async fn version(&self) -> Result<String> {
        let v = VersionClient::new(self.channel.clone())
            .version(containerd_client::tonic::Request::new(()))
            .await
            .map_err(err("version"))?;
        Ok(v.into_inner().version)
    }

    async fn snapshotter_exports(&self) -> Result<HashMap<String, String>> {
        let resp = IntrospectionClient::new(self.channel.clone())
            .plugins(self.req(PluginsRequest {
                filters: vec![format!(
                    "type==io.containerd.snapshotter.v1,id=={}",
                    self.snapshotter
                )],
            }))
            .await
            .map_err(err("introspection plugins"))?;
        Ok(resp
            .into_inner()
            .plugins
            .into_iter()
            .next()
            .map(|p| p.exports)
            .unwrap_or_default())
    }

    async fn create_lease(&self, id: &str, labels: HashMap<String, String>) -> Result<()> {
        LeasesClient::new(self.channel.clone())
            .create(self.req(LeaseCreate {
                id: id.to_string(),
                labels,
            }))
            .await
            .map_err(err(format!("lease create {id}")))?;
        Ok(())
    }

    async fn delete_lease(&self, id: &str) -> Result<()> {
        LeasesClient::new(self.channel.clone())
            .delete(self.req(LeaseDelete {
                id: id.to_string(),
                sync: false,
            }))
            .await
            .map_err(err(format!("lease delete {id}")))?;
        Ok(())
    }

    fn leased(&self, id: &str) -> Arc<dyn Containerd> {
        Arc::new(self.with_lease(id))
    }

    async fn subscribe_task_events(&self) -> Result<EventStream> {
        let stream = EventsClient::new(self.channel.clone())
            .subscribe(self.req(SubscribeRequest {
                filters: task_event_filters(&self.namespace),
            }))
            .await
            .map_err(err("events subscribe"))?
            .into_inner();
        Ok(Box::pin(stream.filter_map(|m| async move {
            match m {
                Ok(env) => task_event(env).map(Ok),
                Err(s) => Some(Err(crate::Error::from_status("event stream", &s))),
            }
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_name_namespace_and_topic() {
        assert_eq!(
            task_event_filters("k8s.io"),
            vec![
                "namespace==k8s.io,topic==\"/tasks/exit\"",
                "namespace==k8s.io,topic==\"/tasks/oom\"",
                "namespace==k8s.io,topic~=\"^/images/\""
            ]
        );
    }

    #[test]
    fn envelopes_decode_to_task_events() {
        let exit = TaskExit {
            container_id: "c1".into(),
            id: "c1".into(),
            pid: 7,
            exit_status: 3,
            exited_at: None,
        };
        let env = Envelope {
            topic: EXIT.into(),
            event: Some(prost_types::Any {
                type_url: "containerd.events.TaskExit".into(),
                value: exit.encode_to_vec(),
            }),
            ..Default::default()
        };
        assert_eq!(
            task_event(env),
            Some(TaskEvent::Exit {
                container_id: "c1".into(),
                id: "c1".into(),
                exit: Exit {
                    code: 3,
                    at_ns: None
                }
            })
        );
        let other = Envelope {
            topic: "/containers/create".into(),
            event: Some(Default::default()),
            ..Default::default()
        };
        assert_eq!(task_event(other), None);
        let image = Envelope {
            topic: "/images/delete".into(),
            event: Some(Default::default()),
            ..Default::default()
        };
        assert_eq!(task_event(image), Some(TaskEvent::ImagesChanged));
    }
}
