//! Connecting to a CRI endpoint and calling it: deadlines and one-line gRPC errors.

use anyhow::{anyhow, bail, Context};
use crius_proto::tonic::transport::{Channel, Endpoint, Uri};
use crius_proto::tonic::{Response, Status};
use crius_proto::{ImageServiceClient, RuntimeServiceClient};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::time::Duration;
use tokio::net::UnixStream;

/// Calls that do real work (start a pod, pull an image) get at least this long.
const SLOW_CALL: Duration = Duration::from_secs(120);

/// Both CRI services and the call deadline.
pub struct Cri {
    pub runtime: RuntimeServiceClient<Channel>,
    pub image: ImageServiceClient<Channel>,
    timeout: Duration,
}

impl Cri {
    pub async fn connect(
        runtime: &str,
        image: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<Cri> {
        let rch = channel(runtime, timeout).await?;
        let ich = match image {
            Some(ep) if ep != runtime => channel(ep, timeout).await?,
            _ => rch.clone(),
        };
        Ok(Cri {
            runtime: RuntimeServiceClient::new(rch).max_decoding_message_size(64 << 20),
            image: ImageServiceClient::new(ich).max_decoding_message_size(64 << 20),
            timeout,
        })
    }

    /// A quick call (status, list): bounded by `--timeout`.
    pub async fn quick<T>(
        &self,
        op: &str,
        fut: impl Future<Output = Result<Response<T>, Status>>,
    ) -> anyhow::Result<T> {
        call(op, self.timeout, fut).await
    }

    /// A call that does work: bounded by `--timeout` or 2 minutes, whichever is longer.
    pub async fn slow<T>(
        &self,
        op: &str,
        fut: impl Future<Output = Result<Response<T>, Status>>,
    ) -> anyhow::Result<T> {
        call(op, self.timeout.max(SLOW_CALL), fut).await
    }
}

async fn call<T>(
    op: &str,
    limit: Duration,
    fut: impl Future<Output = Result<Response<T>, Status>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(status_error(op, &s)),
        Err(_) => bail!("{op}: DeadlineExceeded: no answer within {limit:?} (raise --timeout)"),
    }
}

/// `op: Code: message` — the one line a failed call prints.
pub fn status_error(op: &str, s: &Status) -> anyhow::Error {
    anyhow!("{op}: {:?}: {}", s.code(), s.message())
}

/// A channel to `endpoint`: `unix:///path`, `/path`, `tcp://host:port` or `http://host:port`.
async fn channel(endpoint: &str, timeout: Duration) -> anyhow::Result<Channel> {
    if let Some(rest) = endpoint
        .strip_prefix("tcp://")
        .or_else(|| endpoint.strip_prefix("http://"))
    {
        return Endpoint::try_from(format!("http://{rest}"))?
            .connect_timeout(timeout)
            .connect()
            .await
            .with_context(|| format!("connecting to {endpoint}"));
    }
    let path = endpoint
        .strip_prefix("unix://")
        .unwrap_or(endpoint)
        .to_string();
    if path.is_empty() || !path.starts_with('/') {
        bail!("endpoint {endpoint:?}: want unix:///path/to/socket or tcp://host:port");
    }
    let p2 = path.clone();
    // The URI is a placeholder: the connector always dials the socket.
    let ep = Endpoint::try_from("http://[::]:0")?.connect_timeout(timeout);
    let connect = ep.connect_with_connector(tower::service_fn(move |_: Uri| {
        let p = p2.clone();
        async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(p).await?)) }
    }));
    match tokio::time::timeout(timeout, connect).await {
        Ok(r) => r.with_context(|| format!("connecting to {endpoint} (is the runtime up?)")),
        Err(_) => bail!("connecting to {endpoint}: no answer within {timeout:?}"),
    }
}
