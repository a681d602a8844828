//! Publishing task events to containerd.

use std::sync::Arc;

use containerd_shim::{
    event::Event,
    protos::{events::task::TaskCreate, protobuf::MessageFull},
    publisher::RemotePublisher,
    Context,
};
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

/// Builds the task events' protobuf reflection tables ahead of the shim's first event, once.
/// The publisher reads each event's type URL from them, and rust-protobuf builds them on first
/// use: 0.6 ms measured inside the first Create, on the pod's path. Called as a Create begins,
/// so that they are built on another thread while the container is set up (a shim that never
/// gets a task, as a Sandbox API pod's until its first container, does not build them).
pub fn warm_up() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // One .proto holds every task event: any of them builds the whole file.
    ONCE.call_once(|| drop(tokio::task::spawn_blocking(TaskCreate::descriptor)));
}

pub fn timestamp(
    at: OffsetDateTime,
) -> containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp {
    containerd_shim::util::convert_to_timestamp(Some(at))
}
