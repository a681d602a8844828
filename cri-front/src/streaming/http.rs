//! The HTTP side: routes `/{exec,attach,portforward}/<token>`, takes the token out (single use),
//! and upgrades to WebSocket or SPDY/3.1. Unknown, used or expired tokens get 404; a protocol we do
//! not speak gets 400/403. Nothing runs in either case.

use super::runtime::StreamRuntime;
use super::tokens::{Pending, Tokens};
use super::{spdy, ws};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub async fn serve(
    listener: TcpListener,
    tokens: Arc<Tokens>,
    rt: Arc<dyn StreamRuntime>,
    stop: CancellationToken,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "streaming: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => return,
        };
        let tokens = tokens.clone();
        let rt = rt.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let tokens = tokens.clone();
                let rt = rt.clone();
                async move { Ok::<_, Infallible>(handle(req, &tokens, rt)) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .with_upgrades()
                .await
            {
                tracing::debug!(peer = %peer, error = %e, "streaming: connection ended with an error");
            }
        });
    }
}

fn plain(code: StatusCode, text: &str) -> Response<String> {
    let mut r = Response::new(format!("{text}\n"));
    *r.status_mut() = code;
    r
}

/// Ports asked for in the query (`?port=80&port=8080`), for requests that named none.
fn query_ports(req: &Request<Incoming>) -> Vec<u16> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("port="))
        .filter_map(|p| p.parse().ok())
        .filter(|&p| p > 0)
        .collect()
}

fn handle(req: Request<Incoming>, tokens: &Tokens, rt: Arc<dyn StreamRuntime>) -> Response<String> {
    let path = req.uri().path().to_string();
    let mut parts = path.trim_matches('/').split('/');
    let (Some(kind), Some(token), None) = (parts.next(), parts.next(), parts.next()) else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    if !matches!(kind, "exec" | "attach" | "portforward") {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    let Some(pending) = tokens.consume(token) else {
        tracing::info!(kind, "streaming: unknown, used or expired token");
        return plain(StatusCode::NOT_FOUND, "token unknown, used or expired");
    };
    if pending.kind() != kind {
        return plain(StatusCode::NOT_FOUND, "token unknown, used or expired");
    }
    let websocket = ws::is_websocket(&req);
    if !websocket && !spdy::is_spdy(&req) {
        return plain(
            StatusCode::BAD_REQUEST,
            "upgrade to websocket or SPDY/3.1 required",
        );
    }
    let forward = matches!(pending, Pending::PortForward(_));
    let protocol = match (websocket, forward) {
        (true, false) => ws::choose(&req, ws::REMOTE_COMMAND, false),
        (true, true) => ws::choose(&req, ws::PORT_FORWARD, true),
        (false, false) => spdy::choose(&req, spdy::REMOTE_COMMAND),
        (false, true) => spdy::choose(&req, spdy::PORT_FORWARD),
    };
    let Some(protocol) = protocol else {
        return plain(
            StatusCode::FORBIDDEN,
            "unable to upgrade: unable to negotiate protocol",
        );
    };
    let answer = if websocket {
        ws::accept(&req, &protocol)
    } else {
        spdy::accept(&protocol)
    };
    let Some(answer) = answer else {
        return plain(StatusCode::BAD_REQUEST, "bad upgrade request");
    };
    let ports: Vec<u16> = match &pending {
        Pending::PortForward(p) if !p.port.is_empty() => p
            .port
            .iter()
            .filter_map(|&p| u16::try_from(p).ok())
            .collect(),
        _ => query_ports(&req),
    };
    tracing::info!(kind, protocol = %protocol, websocket, "streaming: session starts");
    tokio::spawn(async move {
        let io = match hyper::upgrade::on(req).await {
            Ok(io) => io,
            Err(e) => {
                tracing::warn!(error = %e, "streaming: upgrade failed");
                return;
            }
        };
        match (pending, websocket) {
            (Pending::PortForward(p), true) => {
                ws::serve_port_forward(io, p.pod_sandbox_id, ports, rt).await
            }
            (Pending::PortForward(p), false) => {
                spdy::serve_port_forward(io, p.pod_sandbox_id, ports, rt).await
            }
            (p, true) => ws::serve_remote_command(io, protocol, p, rt).await,
            (p, false) => spdy::serve_remote_command(io, protocol, p, rt).await,
        }
    });
    answer
}
