//! The real client: one lazily connected tonic channel to containerd's socket; every request
//! carries the client's namespace and, for a leased client, its lease.

mod containers;
mod content;
mod images;
mod service;
mod snapshots;
mod tasks;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use containerd_client::tonic::metadata::MetadataValue;
use containerd_client::tonic::transport::{Channel, Endpoint, Uri};
use containerd_client::tonic::{Request, Status};

use crate::error::{Error, Result};

/// A cheap-to-clone handle on containerd for one namespace and snapshotter.
#[derive(Clone)]
pub struct Client {
    channel: Channel,
    namespace: Arc<str>,
    snapshotter: Arc<str>,
    lease: Option<Arc<str>>,
}

impl Client {
    /// Connect lazily: containerd may come up (or restart) after its user; calls fail
    /// UNAVAILABLE meanwhile instead of the user refusing to start.
    pub fn connect(address: &Path, namespace: &str, snapshotter: &str) -> Result<Client> {
        let path = address.to_path_buf();
        let channel = Endpoint::try_from("http://[::]")
            .map_err(|e| {
                Error::new(
                    containerd_client::tonic::Code::Internal,
                    "connect",
                    e.to_string(),
                )
            })?
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }));
        Ok(Client {
            channel,
            namespace: namespace.into(),
            snapshotter: snapshotter.into(),
            lease: None,
        })
    }

    /// Wrap a message in a request carrying the namespace (and the lease, if any).
    pub(crate) fn req<T>(&self, msg: T) -> Request<T> {
        let mut req = Request::new(msg);
        // Namespaces and lease ids are plain ASCII names we chose; a bad one is skipped, not a panic.
        if let Ok(v) = MetadataValue::try_from(&*self.namespace) {
            req.metadata_mut().insert("containerd-namespace", v);
        }
        if let Some(l) = self
            .lease
            .as_deref()
            .and_then(|l| MetadataValue::try_from(l).ok())
        {
            req.metadata_mut().insert("containerd-lease", l);
        }
        req
    }

    pub(crate) fn with_lease(&self, id: &str) -> Client {
        Client {
            lease: Some(id.into()),
            ..self.clone()
        }
    }
}

/// The error of call `op`.
pub(crate) fn err(op: impl Into<String>) -> impl FnOnce(Status) -> Error {
    move |s| Error::from_status(op, &s)
}

/// Ok(None) for NOT_FOUND.
pub(crate) fn absent_ok<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A task whose shim died answers "ttrpc: closed" until containerd has noticed and cleaned up
/// after the dead shim (its `delete`, the exit event), which takes a moment; then the task is
/// gone (NOT_FOUND) or exited. Retry `call` through that window, for up to 10 s.
pub(crate) async fn until_shim_cleaned<T, F, Fut>(mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match call().await {
            Err(e) if e.is_shim_closed() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            r => return r,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A client whose calls would fail (nothing listens); for request-building tests.
    pub(crate) fn client() -> Client {
        Client::connect(
            Path::new("/nonexistent/containerd.sock"),
            "k8s.io",
            "overlayfs",
        )
        .unwrap()
    }

    #[tokio::test]
    async fn requests_carry_namespace_and_lease() {
        let c = client();
        let r = c.req(());
        assert_eq!(r.metadata().get("containerd-namespace").unwrap(), "k8s.io");
        assert!(r.metadata().get("containerd-lease").is_none());
        let r = c.with_lease("crius-pull-1").req(());
        assert_eq!(
            r.metadata().get("containerd-lease").unwrap(),
            "crius-pull-1"
        );
        assert_eq!(r.metadata().get("containerd-namespace").unwrap(), "k8s.io");
    }

    #[tokio::test]
    async fn an_absent_containerd_is_unavailable() {
        use crate::Tasks;
        let e = client().task("c1").await.unwrap_err();
        assert!(e.is_unavailable(), "{e:?}");
    }
}
