//! The WebSocket side: kubelet's channel protocols (`v5.channel.k8s.io`, `v4.channel.k8s.io`) for
//! exec/attach, and port-forward in the same framing (offered as `v4.channel.k8s.io`,
//! `portforward.k8s.io` or no subprotocol).
//!
//! Every binary message starts with its channel. Remote commands: 0 stdin, 1 stdout, 2 stderr,
//! 3 error/status (the `metav1.Status` JSON, then the server closes), 4 resize (JSON size);
//! v5 adds 255 close (`[255, 0]`: stdin's EOF). Port-forward: channels `2i` (data) and `2i+1`
//! (errors) for the i-th port, each opened by the server with the port as two little-endian bytes.

use super::linger;
use super::runtime::StreamRuntime;
use super::session::{self, Wants};
use super::tokens::Pending;
use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const V5: &str = "v5.channel.k8s.io";
pub const V4: &str = "v4.channel.k8s.io";
/// Subprotocols for exec/attach, best first.
pub const REMOTE_COMMAND: &[&str] = &[V5, V4];
/// Subprotocols for port-forward, best first (none at all is accepted too).
pub const PORT_FORWARD: &[&str] = &[V4, "portforward.k8s.io"];

type Ws = WebSocketStream<TokioIo<Upgraded>>;

/// `Connection: Upgrade` + `Upgrade: websocket`.
pub fn is_websocket(req: &Request<Incoming>) -> bool {
    let has = |name: &str, want: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(want)))
        })
    };
    has("connection", "upgrade") && has("upgrade", "websocket")
}

/// The subprotocol to answer with: the first of ours the client offers. `Some("")` when the
/// client offers none and `allow_none`.
pub fn choose(req: &Request<Incoming>, ours: &[&str], allow_none: bool) -> Option<String> {
    let offered: Vec<String> = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(',').map(|p| p.trim().to_string()))
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return allow_none.then(String::new);
    }
    ours.iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .map(|p| p.to_string())
}

/// The 101 answer; None without a `Sec-WebSocket-Key`.
pub fn accept(req: &Request<Incoming>, protocol: &str) -> Option<hyper::Response<String>> {
    let key = req.headers().get("sec-websocket-key")?;
    let mut b = hyper::Response::builder()
        .status(hyper::StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()));
    if !protocol.is_empty() {
        b = b.header("sec-websocket-protocol", protocol);
    }
    b.body(String::new()).ok()
}

fn frame(ch: u8, data: &[u8]) -> Message {
    let mut f = Vec::with_capacity(data.len() + 1);
    f.push(ch);
    f.extend_from_slice(data);
    Message::Binary(f.into())
}

/// Copy `r` to channel `ch` until EOF.
async fn pump(mut r: DuplexStream, ch: u8, tx: mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(frame(ch, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

type Sink = futures::stream::SplitSink<Ws, Message>;
type Source = futures::stream::SplitStream<Ws>;

/// One socket's writer: messages from the session's tasks, in order; sends the close frame when
/// the last sender is gone and hands the sink back (for the final half-close).
fn writer(mut sink: Sink) -> (mpsc::Sender<Message>, tokio::task::JoinHandle<Sink>) {
    let (tx, mut rx) = mpsc::channel::<Message>(32);
    let h = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return sink;
            }
        }
        let _ = sink.close().await;
        sink
    });
    (tx, h)
}

/// The client's messages until its close frame (or the connection's end), discarded.
async fn until_close(mut stream: Source) -> Source {
    while let Some(Ok(m)) = stream.next().await {
        if let Message::Close(_) = m {
            break;
        }
    }
    stream
}

/// End the session without a reset ([`linger`]): while `flush` sends the last messages and our
/// close frame (and hands back the sink), read the client's input until its close frame; then
/// half-close the socket and wait briefly for the client's end.
async fn finish<F>(flush: F, stream: Source)
where
    F: Future<Output = Result<Sink, tokio::task::JoinError>>,
{
    let (sink, stream) = linger::while_draining(flush, until_close(stream)).await;
    let (Ok(sink), Some(stream)) = (sink, stream) else {
        return;
    };
    if let Ok(mut ws) = stream.reunite(sink) {
        linger::shutdown_and_drain(ws.get_mut()).await;
    }
}

/// The client's next binary message as (channel, payload); None once it closed or went away.
async fn next_channel_message(stream: &mut Source) -> Option<(u8, bytes::Bytes)> {
    while let Some(Ok(msg)) = stream.next().await {
        match msg {
            Message::Binary(b) if !b.is_empty() => return Some((b[0], b.slice(1..))),
            Message::Close(_) => return None,
            _ => {}
        }
    }
    None
}

/// The client's messages for a remote command: stdin, resize, close. Returns when the client is
/// gone or closed the WebSocket.
async fn forward_input(
    stream: &mut Source,
    mut stdin: Option<DuplexStream>,
    resize: Option<mpsc::Sender<super::TermSize>>,
    v5: bool,
) {
    let mut sizes = Vec::new();
    while let Some((ch, body)) = next_channel_message(stream).await {
        match ch {
            0 => {
                if let Some(w) = stdin.as_mut() {
                    if w.write_all(&body).await.is_err() {
                        stdin = None;
                    }
                }
            }
            4 => {
                sizes.extend_from_slice(&body);
                for sz in session::parse_sizes(&mut sizes) {
                    if let Some(r) = &resize {
                        let _ = r.send(sz).await;
                    }
                }
            }
            255 if v5 && body.first() == Some(&0) => stdin = None,
            _ => {}
        }
    }
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
    let ws = WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, None).await;
    let (sink, mut stream) = ws.split();
    let (tx, write_task) = writer(sink);
    let (io, ends) = session::wire(wants);
    let mut pumps = Vec::new();
    if let Some(r) = ends.stdout {
        pumps.push(tokio::spawn(pump(r, 1, tx.clone())));
    }
    if let Some(r) = ends.stderr {
        pumps.push(tokio::spawn(pump(r, 2, tx.clone())));
    }
    let status = {
        let input = forward_input(&mut stream, ends.stdin, ends.resize, protocol == V5);
        let run = session::run(rt, pending, io);
        tokio::pin!(run, input);
        tokio::select! {
            s = &mut run => Some(s),
            _ = &mut input => None,
        }
    };
    let Some(status) = status else {
        // The client left: drop the session (the runtime sees its streams end).
        tracing::debug!("streaming: client closed the WebSocket before the command ended");
        pumps.iter().for_each(|p| p.abort());
        drop(tx);
        finish(write_task, stream).await;
        return;
    };
    // The status goes after all output; the client may still be sending meanwhile.
    let flush = async move {
        for p in pumps {
            let _ = p.await;
        }
        let _ = tx.send(frame(3, &status)).await;
        drop(tx);
        write_task.await
    };
    finish(flush, stream).await;
}

/// Serve port-forward on an upgraded connection: one connection per port of the request.
pub async fn serve_port_forward(
    io: Upgraded,
    pod_id: String,
    ports: Vec<u16>,
    rt: Arc<dyn StreamRuntime>,
) {
    let ws = WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, None).await;
    let (sink, mut stream) = ws.split();
    let (tx, write_task) = writer(sink);
    let mut to_pod: Vec<Option<tokio::io::WriteHalf<DuplexStream>>> = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let (data_ch, err_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        let _ = tx.send(frame(data_ch, &port.to_le_bytes())).await;
        let _ = tx.send(frame(err_ch, &port.to_le_bytes())).await;
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (rd, wr) = tokio::io::split(ours);
        to_pod.push(Some(wr));
        let rt = rt.clone();
        let pod = pod_id.clone();
        let etx = tx.clone();
        tasks.spawn(async move {
            if let Err(e) = rt.port_forward(&pod, port, theirs).await {
                let msg = format!("error forwarding port {port} to pod {pod}: {e}");
                let _ = etx.send(frame(err_ch, msg.as_bytes())).await;
            }
        });
        let ptx = tx.clone();
        tasks.spawn(async move {
            let mut rd = rd;
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if ptx.send(frame(data_ch, &buf[..n])).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(tx);
    let input = async {
        let stream = &mut stream;
        while let Some((ch, body)) = next_channel_message(stream).await {
            let i = usize::from(ch);
            if i % 2 == 0 {
                if let Some(slot) = to_pod.get_mut(i / 2) {
                    if let Some(w) = slot.as_mut() {
                        if w.write_all(&body).await.is_err() {
                            *slot = None;
                        }
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = input => {}
        _ = async { while tasks.join_next().await.is_some() {} } => {}
    }
    tasks.abort_all();
    drop(to_pod);
    // The pod's side may be done while the client still sends: end without a reset.
    finish(write_task, stream).await;
}
