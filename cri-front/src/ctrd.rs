//! The containerd connection: one channel, every request tagged with criusd's
//! namespace (and, during a pull, a lease so the GC keeps half-pulled content).

use std::path::Path;

use containerd_client::services::v1::{
    containers_client::ContainersClient, content_client::ContentClient, diff_client::DiffClient,
    events_client::EventsClient, images_client::ImagesClient,
    introspection_client::IntrospectionClient, leases_client::LeasesClient,
    snapshots::snapshots_client::SnapshotsClient, tasks_client::TasksClient,
    version_client::VersionClient,
};
use containerd_client::tonic::transport::{Channel, Endpoint};
use containerd_client::tonic::{metadata::MetadataValue, Request};

use crate::error::{Error, Result};

/// A cheap-to-clone handle on containerd for one namespace.
#[derive(Clone)]
pub struct Ctrd {
    channel: Channel,
    namespace: String,
}

impl Ctrd {
    /// Connect lazily: containerd may come up (or restart) after criusd; calls fail
    /// UNAVAILABLE meanwhile instead of criusd refusing to start.
    pub fn connect(address: &Path, namespace: &str) -> Result<Ctrd> {
        let path = address.to_path_buf();
        let channel = Endpoint::try_from("http://[::]")
            .map_err(|e| Error::Internal(format!("containerd endpoint: {e}")))?
            .connect_with_connector_lazy(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }));
        Ok(Ctrd {
            channel,
            namespace: namespace.to_string(),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Wrap a message in a request carrying the namespace (and a lease if given).
    pub fn req<T>(&self, msg: T) -> Request<T> {
        self.req_lease(msg, None)
    }

    pub fn req_lease<T>(&self, msg: T, lease: Option<&str>) -> Request<T> {
        let mut req = Request::new(msg);
        // Namespaces and lease ids are plain ASCII names we chose; a bad one is skipped, not a panic.
        if let Ok(v) = MetadataValue::try_from(self.namespace.as_str()) {
            req.metadata_mut().insert("containerd-namespace", v);
        }
        if let Some(l) = lease.and_then(|l| MetadataValue::try_from(l).ok()) {
            req.metadata_mut().insert("containerd-lease", l);
        }
        req
    }

    pub fn containers(&self) -> ContainersClient<Channel> {
        ContainersClient::new(self.channel.clone())
    }
    pub fn content(&self) -> ContentClient<Channel> {
        ContentClient::new(self.channel.clone())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }
    pub fn diff(&self) -> DiffClient<Channel> {
        DiffClient::new(self.channel.clone())
    }
    pub fn events(&self) -> EventsClient<Channel> {
        EventsClient::new(self.channel.clone())
    }
    pub fn images(&self) -> ImagesClient<Channel> {
        ImagesClient::new(self.channel.clone())
    }
    pub fn introspection(&self) -> IntrospectionClient<Channel> {
        IntrospectionClient::new(self.channel.clone())
    }
    pub fn leases(&self) -> LeasesClient<Channel> {
        LeasesClient::new(self.channel.clone())
    }
    pub fn snapshots(&self) -> SnapshotsClient<Channel> {
        SnapshotsClient::new(self.channel.clone())
    }
    pub fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }
    pub fn version(&self) -> VersionClient<Channel> {
        VersionClient::new(self.channel.clone())
    }
}
