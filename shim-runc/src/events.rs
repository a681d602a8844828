//! Publishing task events to containerd.

use std::sync::Arc;

use containerd_shim::{event::Event, publisher::RemotePublisher, Context};
use time::OffsetDateTime;

#[derive(Clone)]
pub struct Events {
    publisher: Arc<RemotePublisher>,
    namespace: String,
}

impl Events {
    pub fn new(publisher: RemotePublisher, namespace: &str) -> Self {
        Events {
            publisher: Arc::new(publisher),
            namespace: namespace.to_string(),
        }
    }

    /// Queues `ev`; the publisher retries on its own, so a failure here only
    /// means the queue is full, which is logged and otherwise ignored.
    pub async fn send<E: Event + 'static>(&self, container_id: &str, ev: E) {
        let topic = ev.topic();
        if let Err(e) = self
            .publisher
            .publish(Context::default(), &topic, &self.namespace, Box::new(ev))
            .await
        {
            tracing::warn!(container_id, topic, error = %e, "publish event failed");
        }
    }
}

pub fn timestamp(
    at: OffsetDateTime,
) -> containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp {
    containerd_shim::util::convert_to_timestamp(Some(at))
}
