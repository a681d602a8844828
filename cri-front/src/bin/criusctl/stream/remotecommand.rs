//! exec/attach over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`).
//!
//! Channels: 0 stdin, 1 stdout, 2 stderr, 3 error (a JSON `metav1.Status` when the command ends),
//! 4 resize (`{"Width":w,"Height":h}`); v5 adds 255 close: `[255, 0]` is stdin's EOF.

use super::Ws;
use anyhow::Context;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use std::io::Write;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

pub const V5: &str = "v5.channel.k8s.io";
pub const V4: &str = "v4.channel.k8s.io";

/// What to wire up.
pub struct Options {
    /// Send our stdin.
    pub stdin: bool,
    /// The remote side has a terminal: send its size now and on every SIGWINCH.
    pub tty: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    status: String,
    message: String,
    reason: String,
    details: Details,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Details {
    causes: Vec<Cause>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Cause {
    reason: String,
    message: String,
}

/// The exit code a status on the error channel stands for (`Err` for a failure that is not an exit).
pub fn exit_code(status_json: &[u8]) -> anyhow::Result<i32> {
    if status_json.is_empty() {
        return Ok(0);
    }
    let st: Status = serde_json::from_slice(status_json).with_context(|| {
        format!(
            "stream error: {}",
            String::from_utf8_lossy(status_json).trim()
        )
    })?;
    if st.status == "Success" {
        return Ok(0);
    }
    if st.reason == "NonZeroExitCode" {
        if let Some(c) = st.details.causes.iter().find(|c| c.reason == "ExitCode") {
            return c.message.parse().context("exit code in status");
        }
    }
    anyhow::bail!(
        "{}",
        if st.message.is_empty() {
            st.reason
        } else {
            st.message
        }
    )
}

fn resize_frame(cols: u16, rows: u16) -> Message {
    let mut f = vec![4u8];
    f.extend(format!("{{\"Width\":{cols},\"Height\":{rows}}}").into_bytes());
    Message::Binary(f.into())
}

/// Run the session on an open socket; returns the remote command's exit code.
pub async fn run(ws: Ws, protocol: &str, opts: Options) -> anyhow::Result<i32> {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    let v5 = protocol == V5;
    if opts.stdin {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut f = Vec::with_capacity(n + 1);
                        f.push(0u8);
                        f.extend_from_slice(&buf[..n]);
                        if tx.send(Message::Binary(f.into())).await.is_err() {
                            return;
                        }
                    }
                }
            }
            if v5 {
                let _ = tx.send(Message::Binary(vec![255u8, 0].into())).await;
            }
        });
    }
    if opts.tty {
        let tx = tx.clone();
        tokio::spawn(async move {
            if let Some((c, r)) = crate::term::size() {
                let _ = tx.send(resize_frame(c, r)).await;
            }
            let Ok(mut winch) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            while winch.recv().await.is_some() {
                if let Some((c, r)) = crate::term::size() {
                    if tx.send(resize_frame(c, r)).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    let mut status = Vec::new();
    let mut sending = true;
    loop {
        tokio::select! {
            out = rx.recv(), if sending => match out {
                Some(m) => { if sink.send(m).await.is_err() { sending = false; } }
                None => sending = false,
            },
            msg = stream.next() => {
                let Some(msg) = msg else { break };
                let msg = match msg {
                    Ok(m) => m,
                    // The status is the last thing the server sends: a reset after it (the
                    // server closed while our stdin was in flight) loses nothing.
                    Err(_) if !status.is_empty() => break,
                    Err(e) => return Err(e).context("reading from the streaming server"),
                };
                let data = match msg {
                    Message::Binary(b) => b.to_vec(),
                    Message::Text(t) => t.as_bytes().to_vec(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                let Some((&ch, body)) = data.split_first() else { continue };
                match ch {
                    1 => write_out(&mut std::io::stdout(), body)?,
                    2 => write_out(&mut std::io::stderr(), body)?,
                    3 => status.extend_from_slice(body),
                    _ => {}
                }
            }
        }
    }
    let _ = sink.close().await;
    exit_code(&status)
}

fn write_out(w: &mut dyn Write, b: &[u8]) -> anyhow::Result<()> {
    w.write_all(b).context("writing output")?;
    w.flush().context("writing output")
}

#[cfg(test)]
mod tests {
    use super::{exit_code, run, Options, V5};
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::Message;

    /// A server that sends `frames`, then resets the connection (no close frame, no FIN).
    async fn resetting_server(frames: Vec<Vec<u8>>) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            let (tcp, _) = l.accept().await.expect("accept");
            // The error type is tungstenite's, not ours to shrink.
            #[allow(clippy::result_large_err)]
            let answer = |_: &Request, mut r: Response| {
                r.headers_mut()
                    .insert("Sec-WebSocket-Protocol", V5.parse().expect("header"));
                Ok(r)
            };
            let mut ws = tokio_tungstenite::accept_hdr_async(tcp, answer)
                .await
                .expect("websocket");
            for f in frames {
                ws.send(Message::Binary(f.into())).await.expect("send");
            }
            let tcp = ws.into_inner();
            tcp.set_zero_linger().expect("linger");
        });
        format!("http://{addr}/exec/t")
    }

    #[tokio::test]
    async fn a_reset_after_the_status_keeps_the_exit_code() {
        let mut status = vec![3u8];
        status.extend_from_slice(br#"{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"4"}]}}"#);
        let url = resetting_server(vec![status]).await;
        let (ws, proto) = super::super::connect(&url, &[V5]).await.expect("connect");
        let opts = Options {
            stdin: false,
            tty: false,
        };
        assert_eq!(run(ws, &proto, opts).await.expect("exit code"), 4);
    }

    #[tokio::test]
    async fn a_reset_before_the_status_is_an_error() {
        let url = resetting_server(Vec::new()).await;
        let (ws, proto) = super::super::connect(&url, &[V5]).await.expect("connect");
        let opts = Options {
            stdin: false,
            tty: false,
        };
        let err = run(ws, &proto, opts).await.expect_err("lost status");
        assert!(
            format!("{err:#}").contains("reading from the streaming server"),
            "{err:#}"
        );
    }

    #[test]
    fn statuses_map_to_exit_codes() {
        assert_eq!(exit_code(b"").ok(), Some(0));
        assert_eq!(
            exit_code(br#"{"metadata":{},"status":"Success"}"#).ok(),
            Some(0)
        );
        let failed = br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
        assert_eq!(exit_code(failed).ok(), Some(3));
        let other = br#"{"status":"Failure","message":"container not found"}"#;
        assert!(exit_code(other).is_err());
    }
}
