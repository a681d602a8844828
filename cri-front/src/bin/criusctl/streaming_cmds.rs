//! `exec`, `attach` and `port-forward`: a CRI call for a streaming URL, then the WebSocket session
//! (see [`crate::stream`]); `exec -s` uses ExecSync instead.

use crate::conn::Cri;
use crate::stream::{self, portforward, remotecommand, Transport};
use crate::term::RawMode;
use anyhow::{bail, Context};
use clap::Args;
use crius_proto::runtime as cri;
use std::io::Write;

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Keep stdin open and send it.
    #[arg(short, long)]
    interactive: bool,
    /// Run the command with a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Run with ExecSync (no streaming), printing output when the command ends.
    #[arg(short, long)]
    sync: bool,
    /// ExecSync timeout in seconds (0: none).
    #[arg(long, default_value_t = 0)]
    timeout: i64,
    /// Streaming protocol.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    transport: Transport,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

pub async fn exec(c: &Cri, a: ExecArgs) -> anyhow::Result<i32> {
    if a.sync {
        if a.interactive || a.tty {
            bail!("exec -s runs without stdin and terminal: drop -i/-t");
        }
        let limit = std::time::Duration::from_secs(a.timeout.max(0) as u64 + 120);
        let r = tokio::time::timeout(
            limit,
            c.runtime.clone().exec_sync(cri::ExecSyncRequest {
                container_id: a.container.clone(),
                cmd: a.cmd,
                timeout: a.timeout,
            }),
        )
        .await
        .context("ExecSync: no answer")?
        .map_err(|s| crate::conn::status_error("ExecSync", &s))?
        .into_inner();
        std::io::stdout().write_all(&r.stdout)?;
        std::io::stderr().write_all(&r.stderr)?;
        std::io::stdout().flush()?;
        return Ok(r.exit_code);
    }
    let r = c
        .quick(
            "Exec",
            c.runtime.clone().exec(cri::ExecRequest {
                container_id: a.container.clone(),
                cmd: a.cmd,
                tty: a.tty,
                stdin: a.interactive,
                stdout: true,
                stderr: !a.tty,
            }),
        )
        .await?;
    session(&r.url, a.interactive, a.tty, a.transport).await
}

/// Connect to `url` and run the remote-command session; the remote exit code.
async fn session(url: &str, stdin: bool, tty: bool, transport: Transport) -> anyhow::Result<i32> {
    let opts = remotecommand::Options { stdin, tty };
    // Raw mode only with a terminal on both ends: keystrokes go through unprocessed.
    if transport == Transport::Spdy {
        let _raw = if tty && stdin {
            RawMode::enter()?
        } else {
            None
        };
        return stream::spdy::remote_command(url, opts).await;
    }
    let (ws, proto) = stream::connect(url, &[remotecommand::V5, remotecommand::V4]).await?;
    let _raw = if tty && stdin {
        RawMode::enter()?
    } else {
        None
    };
    remotecommand::run(ws, &proto, opts).await
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    #[arg(short, long)]
    interactive: bool,
    /// The container has a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Streaming protocol.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    transport: Transport,
    container: String,
}

pub async fn attach(c: &Cri, a: AttachArgs) -> anyhow::Result<i32> {
    let r = c
        .quick(
            "Attach",
            c.runtime.clone().attach(cri::AttachRequest {
                container_id: a.container,
                stdin: a.interactive,
                tty: a.tty,
                stdout: true,
                stderr: !a.tty,
            }),
        )
        .await?;
    session(&r.url, a.interactive, a.tty, a.transport).await
}

#[derive(Args, Debug)]
pub struct PortForwardArgs {
    /// Local address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Streaming protocol.
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    transport: Transport,
    pod: String,
    /// [LOCAL:]REMOTE; LOCAL 0 picks a free port.
    #[arg(required = true)]
    ports: Vec<String>,
}

fn parse_port(spec: &str) -> anyhow::Result<(u16, u16)> {
    let (l, r) = spec.split_once(':').unwrap_or((spec, spec));
    let p = |s: &str| {
        s.parse::<u16>()
            .with_context(|| format!("port spec {spec:?}: bad port {s:?}"))
    };
    let remote = p(r)?;
    if remote == 0 {
        bail!("port spec {spec:?}: remote port 0");
    }
    Ok((if l.is_empty() { 0 } else { p(l)? }, remote))
}

pub async fn port_forward(c: &Cri, a: PortForwardArgs) -> anyhow::Result<()> {
    let specs: Vec<(u16, u16)> = a
        .ports
        .iter()
        .map(|s| parse_port(s))
        .collect::<anyhow::Result<_>>()?;
    let mut tasks = tokio::task::JoinSet::new();
    for (local, remote) in specs {
        let l = tokio::net::TcpListener::bind((a.address.as_str(), local))
            .await
            .with_context(|| format!("listening on {}:{local}", a.address))?;
        println!("Forwarding from {} -> {remote}", l.local_addr()?);
        let _ = std::io::stdout().flush();
        let rt = c.runtime.clone();
        let pod = a.pod.clone();
        let transport = a.transport;
        tasks.spawn(async move {
            loop {
                let Ok((tcp, peer)) = l.accept().await else {
                    continue;
                };
                let mut rt = rt.clone();
                let pod = pod.clone();
                tokio::spawn(async move {
                    // Tokens are single-use: every connection asks for its own URL.
                    let r = async {
                        let url = rt
                            .port_forward(cri::PortForwardRequest {
                                pod_sandbox_id: pod,
                                port: vec![remote as i32],
                            })
                            .await
                            .map_err(|s| crate::conn::status_error("PortForward", &s))?
                            .into_inner()
                            .url;
                        if transport == Transport::Spdy {
                            return stream::spdy::port_forward(&url, remote, tcp).await;
                        }
                        let (ws, _) = stream::connect(&url, portforward::PROTOCOLS).await?;
                        portforward::pipe(ws, tcp).await
                    }
                    .await;
                    if let Err(e) = r {
                        eprintln!("criusctl: port-forward {peer} -> {remote}: {e:#}");
                    }
                });
            }
        });
    }
    tokio::signal::ctrl_c().await.context("waiting for ^C")?;
    tasks.abort_all();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_port;

    #[test]
    fn port_specs() {
        assert_eq!(parse_port("8080:80").ok(), Some((8080, 80)));
        assert_eq!(parse_port("80").ok(), Some((80, 80)));
        assert_eq!(parse_port(":80").ok(), Some((0, 80)));
        assert!(parse_port("x:80").is_err());
        assert!(parse_port("80:0").is_err());
    }
}
