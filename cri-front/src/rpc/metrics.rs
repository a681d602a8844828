//! criusd's Prometheus endpoint (`metrics_address`, off when empty): `GET /metrics` in the
//! text format, with `crius_cri_rpc_duration_seconds{rpc, code}`, each CRI RPC's latency.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, IoContext, Result};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    rpc: String,
    code: String,
}

/// The RPC latency histograms and the registry that exposes them.
pub struct RpcMetrics {
    registry: Registry,
    latency: Family<RpcLabels, Histogram>,
}

impl Default for RpcMetrics {
    fn default() -> Self {
        // 0.5 ms … ~16 s: ListContainers on an idle node to a StopContainer's grace period.
        let latency = Family::<RpcLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let mut registry = Registry::with_prefix("crius_cri");
        registry.register(
            "rpc_duration_seconds",
            "Time criusd took to answer a CRI RPC, by RPC and gRPC code",
            latency.clone(),
        );
        RpcMetrics { registry, latency }
    }
}

impl RpcMetrics {
    pub fn observe(&self, rpc: &str, code: tonic::Code, took: Duration) {
        self.latency
            .get_or_create(&RpcLabels {
                rpc: rpc.to_string(),
                code: format!("{code:?}"),
            })
            .observe(took.as_secs_f64());
    }

    /// Everything registered, in the Prometheus/OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

fn answer(req: &Request<Incoming>, m: &RpcMetrics) -> Response<String> {
    let (code, body, ctype) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            m.encode(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "not found: criusd serves /metrics\n".to_string(),
            "text/plain; charset=utf-8",
        ),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = code;
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

/// Serve `/metrics` on `addr` until `stop`; the address bound (a port of 0 picks one).
pub async fn serve(addr: &str, m: Arc<RpcMetrics>, stop: CancellationToken) -> Result<SocketAddr> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| Error::Config(format!("metrics_address {addr:?}: {e}")))?;
    let l = TcpListener::bind(addr)
        .await
        .ctx(|| format!("bind metrics endpoint {addr}"))?;
    let bound = l.local_addr().ctx(|| "metrics endpoint address".into())?;
    tokio::spawn(async move {
        loop {
            let tcp = tokio::select! {
                _ = stop.cancelled() => return,
                got = l.accept() => match got {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics endpoint accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let m = m.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let resp = answer(&req, &m);
                    async move { Ok::<_, Infallible>(resp) }
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await
                {
                    tracing::debug!(error = %e, "metrics connection ended");
                }
            });
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_in_text_format() {
        let m = RpcMetrics::default();
        m.observe("StartContainer", tonic::Code::Ok, Duration::from_millis(3));
        m.observe(
            "StartContainer",
            tonic::Code::NotFound,
            Duration::from_millis(1),
        );
        let text = m.encode();
        assert!(
            text.contains("# TYPE crius_cri_rpc_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(
                r#"crius_cri_rpc_duration_seconds_count{rpc="StartContainer",code="Ok"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"code="NotFound""#), "{text}");
    }
}
