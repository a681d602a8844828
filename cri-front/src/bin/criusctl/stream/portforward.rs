//! port-forward over WebSocket (`v4.channel.k8s.io` framing, as kubelet's server uses for
//! port-forward; `portforward.k8s.io` is offered too). One connection forwards one port: channel 0
//! carries data, channel 1 errors; the server opens each channel with the port as two
//! little-endian bytes, which are not data.

use super::Ws;
use anyhow::bail;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

pub const PROTOCOLS: &[&str] = &["v4.channel.k8s.io", "portforward.k8s.io"];

/// Pipe `tcp` through the socket until either side closes.
pub async fn pipe(ws: Ws, mut tcp: TcpStream) -> anyhow::Result<()> {
    let (mut sink, mut stream) = ws.split();
    let (mut rd, mut wr) = tcp.split();
    let mut prefix_left = [2usize, 2usize];
    let mut buf = vec![0u8; 32 * 1024];
    let mut local_open = true;
    let mut error = Vec::new();
    loop {
        tokio::select! {
            n = rd.read(&mut buf), if local_open => {
                let n = n.unwrap_or(0);
                if n == 0 {
                    // No half-close in this protocol: stop sending, keep reading the answer.
                    local_open = false;
                    continue;
                }
                let mut f = Vec::with_capacity(n + 1);
                f.push(0u8);
                f.extend_from_slice(&buf[..n]);
                if sink.send(Message::Binary(f.into())).await.is_err() {
                    break;
                }
            }
            msg = stream.next() => {
                let Some(Ok(msg)) = msg else { break };
                let data = match msg {
                    Message::Binary(b) => b.to_vec(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                let Some((&ch, mut body)) = data.split_first() else { continue };
                let ch = usize::from(ch);
                if ch > 1 {
                    continue;
                }
                let skip = prefix_left[ch].min(body.len());
                prefix_left[ch] -= skip;
                body = &body[skip..];
                if ch == 0 {
                    if wr.write_all(body).await.is_err() {
                        break;
                    }
                } else {
                    error.extend_from_slice(body);
                }
            }
        }
    }
    let _ = sink.close().await;
    let _ = wr.shutdown().await;
    if !error.is_empty() {
        bail!("{}", String::from_utf8_lossy(&error).trim());
    }
    Ok(())
}
