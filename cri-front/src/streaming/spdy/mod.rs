//! SPDY/3.1, the stream multiplexing kubectl and client-go use for exec, attach and port-forward
//! (`Upgrade: SPDY/3.1`, subprotocol in `X-Stream-Protocol-Version`).
//!
//! - [`frame`]: the frames and their header compression ([`dictionary`]).
//! - [`session`]: a connection with its streams (server or client side).
//! - This file: the handshake and kubelet's two protocols on top. Remote commands: the client
//!   opens one stream per `streamtype` header (`error`, `stdin`, `stdout`, `stderr`, `resize`);
//!   the status goes on `error` (v4: `metav1.Status` JSON; older: the error text). Port-forward
//!   (`portforward.k8s.io`): per connection the client opens an `error` and a `data` stream with
//!   the same `requestID` and the `port` header.

pub mod dictionary;
pub mod frame;
pub mod session;

use super::runtime::StreamRuntime;
use super::session::{self as common, Wants};
use super::tokens::Pending;
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper::Request;
use hyper_util::rt::TokioIo;
use session::{Role, Session, Stream};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Remote-command subprotocols, best first.
pub const REMOTE_COMMAND: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
pub const PORT_FORWARD: &[&str] = &["portforward.k8s.io"];

/// How long a client has to open all the streams of a remote command.
const STREAM_CREATION: Duration = Duration::from_secs(30);

/// `Upgrade: SPDY/3.1`.
pub fn is_spdy(req: &Request<Incoming>) -> bool {
    req.headers().get_all("upgrade").iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.trim().eq_ignore_ascii_case("SPDY/3.1"))
    })
}

/// The first protocol the client offers that we speak (client's order, as kubelet negotiates).
pub fn choose(req: &Request<Incoming>, ours: &[&str]) -> Option<String> {
    req.headers()
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(',').map(|p| p.trim().to_string()))
        .find(|p| ours.contains(&p.as_str()))
}

/// The 101 answer.
pub fn accept(protocol: &str) -> Option<hyper::Response<String>> {
    hyper::Response::builder()
        .status(hyper::StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", protocol)
        .body(String::new())
        .ok()
}

/// The error stream's text for protocols before v4: nothing on success, else the message.
fn legacy_status(status_json: &[u8]) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_slice(status_json).unwrap_or_default();
    if v["status"] == "Success" {
        return Vec::new();
    }
    v["message"].as_str().unwrap_or("error").as_bytes().to_vec()
}

/// Serve exec/attach on an upgraded connection.
pub async fn serve_remote_command(
    io: Upgraded,
    protocol: String,
    pending: Pending,
    rt: Arc<dyn StreamRuntime>,
) {
    let Some(wants) = Wants::of(&pending) else {
        return;
    };
    let mut sess = Session::start(TokioIo::new(io), Role::Server);
    let mut streams: HashMap<String, Stream> = HashMap::new();
    let expected = 1
        + usize::from(wants.stdin)
        + usize::from(wants.stdout)
        + usize::from(wants.stderr)
        + usize::from(wants.tty && protocol != "channel.k8s.io" && protocol != "v2.channel.k8s.io");
    let collect = async {
        while streams.len() < expected {
            let s = sess.accept().await?;
            let kind = s.header("streamtype").unwrap_or("").to_string();
            streams.insert(kind, s);
        }
        Some(())
    };
    match tokio::time::timeout(STREAM_CREATION, collect).await {
        Ok(Some(())) => {}
        _ => {
            tracing::debug!("streaming: SPDY client did not open its streams");
            sess.close().await;
            return;
        }
    }
    let Some(error) = streams.remove("error") else {
        sess.close().await;
        return;
    };
    let (io, ends) = common::wire(wants);
    let mut tasks = Vec::new();
    for (kind, end) in [("stdout", ends.stdout), ("stderr", ends.stderr)] {
        if let (Some(mut r), Some(s)) = (end, streams.remove(kind)) {
            let w = s.writer();
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if w.write(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = w.close().await;
            }));
        }
    }
    if let (Some(mut w), Some(mut s)) = (ends.stdin, streams.remove("stdin")) {
        tokio::spawn(async move {
            while let Some(b) = s.recv().await {
                if w.write_all(&b).await.is_err() {
                    return;
                }
            }
            // Dropping `w` is stdin's EOF.
        });
    }
    if let (Some(tx), Some(mut s)) = (ends.resize, streams.remove("resize")) {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(b) = s.recv().await {
                buf.extend_from_slice(&b);
                for sz in common::parse_sizes(&mut buf) {
                    if tx.send(sz).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
    let run = common::run(rt, pending, io);
    tokio::pin!(run);
    let status = tokio::select! {
        s = &mut run => s,
        // A connection that ends (accept → None) is a client that left.
        _ = async { while sess.accept().await.is_some() {} } => {
            tracing::debug!("streaming: SPDY client left before the command ended");
            return;
        }
    };
    for t in tasks {
        let _ = t.await;
    }
    let body = if protocol == "v4.channel.k8s.io" {
        status
    } else {
        legacy_status(&status)
    };
    let w = error.writer();
    if !body.is_empty() {
        let _ = w.write(&body).await;
    }
    let _ = w.close().await;
    sess.close().await;
}

/// Serve port-forward: every (error, data) stream pair with one `requestID` is one connection to
/// the pod's `port`, until the client closes the connection.
pub async fn serve_port_forward(
    io: Upgraded,
    pod_id: String,
    allowed: Vec<u16>,
    rt: Arc<dyn StreamRuntime>,
) {
    let mut sess = Session::start(TokioIo::new(io), Role::Server);
    let mut errors: HashMap<String, Stream> = HashMap::new();
    let mut datas: HashMap<String, Stream> = HashMap::new();
    while let Some(s) = sess.accept().await {
        let key = s
            .header("requestid")
            .map(String::from)
            .unwrap_or_else(|| s.header("port").unwrap_or("").to_string());
        match s.header("streamtype") {
            Some("error") => {
                errors.insert(key.clone(), s);
            }
            Some("data") => {
                datas.insert(key.clone(), s);
            }
            _ => continue,
        }
        if !(errors.contains_key(&key) && datas.contains_key(&key)) {
            continue;
        }
        let (Some(e), Some(d)) = (errors.remove(&key), datas.remove(&key)) else {
            continue;
        };
        let rt = rt.clone();
        let pod = pod_id.clone();
        let allowed = allowed.clone();
        tokio::spawn(forward_pair(rt, pod, allowed, e, d));
    }
}

async fn forward_pair(
    rt: Arc<dyn StreamRuntime>,
    pod: String,
    allowed: Vec<u16>,
    error: Stream,
    mut data: Stream,
) {
    let ew = error.writer();
    let port = match data.header("port").and_then(|p| p.parse::<u16>().ok()) {
        Some(p) if p > 0 && (allowed.is_empty() || allowed.contains(&p)) => p,
        _ => {
            let msg = format!("invalid or unrequested port {:?}", data.header("port"));
            let _ = ew.write(msg.as_bytes()).await;
            let _ = ew.close().await;
            let _ = data.writer().close().await;
            return;
        }
    };
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (mut rd, mut wr) = tokio::io::split(ours);
    let dw = data.writer();
    let to_client = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if dw.write(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = dw.close().await;
    });
    tokio::spawn(async move {
        while let Some(b) = data.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    if let Err(e) = rt.port_forward(&pod, port, theirs).await {
        let msg = format!("error forwarding port {port} to pod {pod}: {e}");
        let _ = ew.write(msg.as_bytes()).await;
    }
    let _ = to_client.await;
    let _ = ew.close().await;
}
