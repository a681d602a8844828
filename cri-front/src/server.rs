//! Serving: the CRI services on a unix socket (mode 0600), stopped by SIGTERM/SIGINT.
//! Stopping criusd never touches containers: the shims keep them (and their logs) going.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use crius_proto::tonic::transport::Server;
use crius_proto::{ImageServiceServer, RuntimeServiceServer};
use futures::TryStreamExt;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_stream::wrappers::UnixListenerStream;

use crate::daemon::Daemon;
use crate::error::{Error, IoContext, Result};
use crate::image::service::ImageSvc;
use crate::rpc::RpcLayer;
use crate::runtime::service::RuntimeSvc;
use crate::uds_authority::AuthorityFix;

/// Largest CRI message accepted or sent (ListContainers on a big node).
const MAX_MSG: usize = 16 << 20;

pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("remove stale {}", path.display()), e)),
    }
    let l = UnixListener::bind(path).ctx(|| format!("bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .ctx(|| format!("chmod {}", path.display()))?;
    Ok(l)
}

pub async fn serve(d: Arc<Daemon>, listener: UnixListener) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).ctx(|| "install SIGTERM handler".into())?;
    let mut int = signal(SignalKind::interrupt()).ctx(|| "install SIGINT handler".into())?;
    let token = d.shared.shutdown.clone();
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down; containers keep running"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down; containers keep running"),
        }
        token.cancel();
    };
    let runtime = RuntimeServiceServer::new(RuntimeSvc { d: d.clone() })
        .max_decoding_message_size(MAX_MSG)
        .max_encoding_message_size(MAX_MSG);
    let images = ImageServiceServer::new(ImageSvc {
        images: d.shared.images.clone(),
    })
    .max_decoding_message_size(MAX_MSG)
    .max_encoding_message_size(MAX_MSG);
    Server::builder()
        .layer(RpcLayer::new(d.rpc_metrics.clone()))
        .add_service(runtime)
        .add_service(images)
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(listener).map_ok(AuthorityFix::new),
            shutdown,
        )
        .await
        .map_err(|e| Error::Internal(format!("serve: {e}")))
}
