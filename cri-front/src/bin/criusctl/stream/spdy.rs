//! The SPDY/3.1 transport (what kubectl uses), on crius's own framing
//! (`crius_cri_front::streaming::spdy`): an HTTP/1.1 upgrade by hand, then one SPDY stream per
//! `streamtype`. Remote commands speak `v4.channel.k8s.io`; port-forward `portforward.k8s.io`.

use super::remotecommand::{self, Options};
use anyhow::{bail, Context};
use crius_cri_front::streaming::spdy::session::{Role, Session, Stream, StreamWriter};
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upgrade a connection to `url` to SPDY/3.1 offering `protocol`.
pub async fn connect(url: &str, protocol: &str) -> anyhow::Result<Session> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("streaming URL {url:?}: only http:// is supported"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut tcp = TcpStream::connect(host)
        .await
        .with_context(|| format!("connecting to streaming server {host}"))?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
         X-Stream-Protocol-Version: {protocol}\r\nContent-Length: 0\r\n\r\n"
    );
    tcp.write_all(req.as_bytes())
        .await
        .context("sending upgrade")?;
    // Read the answer's head byte by byte: SPDY frames may follow it at once.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut b).await.context("reading upgrade answer")? == 0 || head.len() > 16384 {
            break;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head.lines().next().unwrap_or("");
    if !status.contains(" 101 ") {
        bail!(
            "streaming server refused the SPDY upgrade: {}",
            status.trim()
        );
    }
    Ok(Session::start(tcp, Role::Client))
}

fn kind(k: &str) -> Vec<(String, String)> {
    vec![("streamtype".to_string(), k.to_string())]
}

async fn copy_out(mut s: Stream, mut w: impl Write) -> anyhow::Result<()> {
    while let Some(b) = s.recv().await {
        w.write_all(&b).context("writing output")?;
        w.flush().context("writing output")?;
    }
    Ok(())
}

async fn send_size(w: &StreamWriter) {
    if let Some((c, r)) = crate::term::size() {
        let _ = w
            .write(format!("{{\"Width\":{c},\"Height\":{r}}}").as_bytes())
            .await;
    }
}

/// exec/attach over SPDY; the remote exit code.
pub async fn remote_command(url: &str, opts: Options) -> anyhow::Result<i32> {
    let sess = connect(url, remotecommand::V4).await?;
    // client-go's order: the error stream first.
    let mut error = sess.open(kind("error")).await?;
    let stdin = if opts.stdin {
        Some(sess.open(kind("stdin")).await?)
    } else {
        None
    };
    let stdout = sess.open(kind("stdout")).await?;
    let stderr = if opts.tty {
        None
    } else {
        Some(sess.open(kind("stderr")).await?)
    };
    if opts.tty {
        let resize = sess.open(kind("resize")).await?;
        tokio::spawn(async move {
            let w = resize.writer();
            send_size(&w).await;
            let Ok(mut winch) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
            else {
                return;
            };
            while winch.recv().await.is_some() {
                send_size(&w).await;
            }
        });
    }
    if let Some(s) = stdin {
        let w = s.writer();
        tokio::spawn(async move {
            let mut input = tokio::io::stdin();
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match input.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if w.write(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = w.close().await;
        });
    }
    let out = copy_out(stdout, std::io::stdout());
    let err = async {
        match stderr {
            Some(s) => copy_out(s, std::io::stderr()).await,
            None => Ok(()),
        }
    };
    let status = async {
        let mut v = Vec::new();
        while let Some(b) = error.recv().await {
            v.extend_from_slice(&b);
        }
        v
    };
    let (o, e, status) = tokio::join!(out, err, status);
    o?;
    e?;
    remotecommand::exit_code(&status)
}

/// One forwarded connection over SPDY: `tcp` to `port` in the pod.
pub async fn port_forward(url: &str, port: u16, mut tcp: TcpStream) -> anyhow::Result<()> {
    let sess = connect(url, "portforward.k8s.io").await?;
    let hdr = |k: &str| {
        vec![
            ("streamtype".to_string(), k.to_string()),
            ("port".to_string(), port.to_string()),
            ("requestID".to_string(), "0".to_string()),
        ]
    };
    let mut error = sess.open(hdr("error")).await?;
    let mut data = sess.open(hdr("data")).await?;
    let w = data.writer();
    let (mut rd, mut wr) = tcp.split();
    let up = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if w.write(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = w.close().await;
        std::future::pending::<()>().await
    };
    let down = async {
        while let Some(b) = data.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    let mut msg = Vec::new();
    if let Ok(Some(b)) =
        tokio::time::timeout(std::time::Duration::from_millis(200), error.recv()).await
    {
        msg.extend_from_slice(&b);
    }
    sess.close().await;
    if !msg.is_empty() {
        bail!("{}", String::from_utf8_lossy(&msg).trim());
    }
    Ok(())
}
