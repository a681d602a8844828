//! The one layer every CRI RPC goes through (a tower layer around both tonic services):
//! its tracing span (`rpc`, plus the pod/container id or image reference the dispatch
//! records with [`pod`], [`container`] and [`image`]; RunPodSandbox and CreateContainer
//! record the id they make as soon as it exists), one log line for each failed RPC with its gRPC code, and its latency in
//! the `crius_cri_rpc_duration_seconds` histogram ([`metrics`]). The mapping of criusd's
//! errors to gRPC codes itself is `crate::error`'s.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::Code;
use tower::{Layer, Service};
use tracing::Instrument;

pub mod metrics;

pub use metrics::RpcMetrics;

/// Record the pod an RPC is about on its span.
pub fn pod(id: &str) {
    tracing::Span::current().record("pod", id);
}

/// Record the container an RPC is about on its span.
pub fn container(id: &str) {
    tracing::Span::current().record("container", id);
}

/// Record the image an RPC is about on its span.
pub fn image(reference: &str) {
    tracing::Span::current().record("image", reference);
}

/// `/runtime.v1.RuntimeService/StartContainer` → `StartContainer`.
pub fn rpc_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[derive(Clone)]
pub struct RpcLayer {
    metrics: Arc<RpcMetrics>,
}

impl RpcLayer {
    pub fn new(metrics: Arc<RpcMetrics>) -> RpcLayer {
        RpcLayer { metrics }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> RpcService<S> {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

impl<S, B, RB> Service<http::Request<B>> for RpcService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // The clone was made ready by poll_ready: call that one (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let rpc = rpc_name(req.uri().path()).to_string();
        let span = tracing::info_span!(
            "rpc",
            rpc = %rpc,
            pod = tracing::field::Empty,
            container = tracing::field::Empty,
            image = tracing::field::Empty
        );
        let metrics = self.metrics.clone();
        Box::pin(
            async move {
                let t0 = Instant::now();
                let res = inner.call(req).await;
                // A failed RPC answers with its status in the headers (trailers-only); a
                // successful one has none there.
                let status = match &res {
                    Ok(resp) => tonic::Status::from_header_map(resp.headers()),
                    Err(_) => Some(tonic::Status::internal("transport error")),
                };
                let code = status.as_ref().map_or(Code::Ok, |s| s.code());
                metrics.observe(&rpc, code, t0.elapsed());
                if let Some(s) = status.filter(|s| s.code() != Code::Ok) {
                    tracing::warn!(code = ?s.code(), error = %s.message(), "{rpc} failed");
                }
                res
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_names_from_paths() {
        assert_eq!(
            rpc_name("/runtime.v1.RuntimeService/StartContainer"),
            "StartContainer"
        );
        assert_eq!(rpc_name("/runtime.v1.ImageService/PullImage"), "PullImage");
        assert_eq!(rpc_name("odd"), "odd");
    }
}
