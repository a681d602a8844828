//! CRI v1 clients over a unix socket: criusd's, or containerd's own CRI plugin.

use anyhow::Context;
use crius_proto::tonic::transport::{Channel, Endpoint, Uri};
use crius_proto::{runtime, ImageServiceClient, RuntimeServiceClient};
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::net::UnixStream;

/// Both CRI services on one connection.
#[derive(Clone)]
pub struct CriClient {
    pub runtime: RuntimeServiceClient<Channel>,
    pub image: ImageServiceClient<Channel>,
}

/// Connect to the CRI server on `socket`, waiting up to 30 s for it to appear.
pub async fn connect(socket: &Path) -> crate::Result<CriClient> {
    let deadline = Instant::now() + Duration::from_secs(30);
    // The socket file exists from bind() on, but connects are refused until listen(): retry
    // until the deadline rather than fail on a server that is a moment from ready.
    let channel = loop {
        let path: PathBuf = socket.to_path_buf();
        // The URI is ignored: the connector below always dials the socket.
        let attempt =
            Endpoint::try_from("http://[::]:0")?
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }))
                .await;
        match attempt {
            Ok(c) => break c,
            Err(e) if Instant::now() >= deadline => {
                return Err(anyhow::Error::new(e).context(format!(
                    "connecting to CRI socket {} (30 s)",
                    socket.display()
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    Ok(CriClient {
        runtime: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(64 << 20),
        image: ImageServiceClient::new(channel).max_decoding_message_size(64 << 20),
    })
}

/// RunPodSandbox with `handler` (empty: the default runtime); the pod's id.
pub async fn run_pod(
    c: &mut CriClient,
    cfg: &runtime::PodSandboxConfig,
    handler: &str,
) -> crate::Result<String> {
    let resp = c
        .runtime
        .run_pod_sandbox(runtime::RunPodSandboxRequest {
            config: Some(cfg.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .context("RunPodSandbox")?;
    Ok(resp.into_inner().pod_sandbox_id)
}

/// CreateContainer then StartContainer in `pod`; the container's id.
pub async fn create_and_start(
    c: &mut CriClient,
    pod: &str,
    pcfg: &runtime::PodSandboxConfig,
    ccfg: runtime::ContainerConfig,
) -> crate::Result<String> {
    let id = c
        .runtime
        .create_container(runtime::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(ccfg),
            sandbox_config: Some(pcfg.clone()),
        })
        .await
        .context("CreateContainer")?
        .into_inner()
        .container_id;
    c.runtime
        .start_container(runtime::StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .with_context(|| format!("StartContainer {id}"))?;
    Ok(id)
}
