//! # The CRI streaming server (exec, attach, port-forward)
//!
//! CRI's Exec/Attach/PortForward RPCs do not stream: they return a URL on this server, and the
//! client (kubelet's proxy, kubectl, crictl, criusctl) connects there. criusd owns one
//! [`StreamingServer`] and answers the three RPCs with [`StreamingServer::exec`],
//! [`StreamingServer::attach`] and [`StreamingServer::port_forward`], which validate the request,
//! store it under a single-use token that expires ([`Config::token_ttl`]) and return
//! `http://<addr>/<exec|attach|portforward>/<token>`.
//!
//! The server speaks what kubelet's own streaming library speaks:
//! - WebSocket ([`ws`]): `v5.channel.k8s.io`, `v4.channel.k8s.io` for exec/attach, channel
//!   framing for port-forward;
//! - SPDY/3.1 ([`spdy`]): remote command `v4`/`v3`/`v2`/`channel.k8s.io` and
//!   `portforward.k8s.io`.
//!
//! The work is done by a [`StreamRuntime`] criusd implements (containerd exec, the container's
//! attach pipes, a connection in the pod's netns); the server hands it plain async byte streams,
//! terminal sizes and collects the exit code. A bad, used or expired token gets 404 and nothing
//! runs.
//!
//! ```ignore
//! let server = StreamingServer::start(Config::default(), Arc::new(MyRuntime)).await?;
//! daemon.streaming.set(Arc::new(server)); // criusd's seam: crate::streaming_hook::Streaming
//! ```

mod http;
mod linger;
pub mod runtime;
mod session;
pub mod spdy;
mod status;
pub mod tokens;
pub mod ws;

#[cfg(test)]
mod tests;

pub use runtime::{BoxRead, BoxWrite, StreamError, StreamIo, StreamRuntime, TermSize};

use crius_proto::runtime as cri;
use crius_proto::tonic::Status;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokens::{Pending, Tokens};
use tokio_util::sync::CancellationToken;

/// Where and how the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address; port 0 picks a free one (kubelet's default: 127.0.0.1, random port).
    pub addr: SocketAddr,
    /// How long a URL stays valid before its first use.
    pub token_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token_ttl: Duration::from_secs(60),
        }
    }
}

/// A running streaming server; stops when dropped.
pub struct StreamingServer {
    addr: SocketAddr,
    tokens: Arc<Tokens>,
    stop: CancellationToken,
}

impl StreamingServer {
    /// Bind `config.addr` and serve in the background.
    pub async fn start(
        config: Config,
        runtime: Arc<dyn StreamRuntime>,
    ) -> std::io::Result<StreamingServer> {
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let tokens = Arc::new(Tokens::new(config.token_ttl));
        let stop = CancellationToken::new();
        tokio::spawn(http::serve(listener, tokens.clone(), runtime, stop.clone()));
        tracing::info!(%addr, "streaming server listening");
        Ok(StreamingServer { addr, tokens, stop })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn url(&self, p: Pending) -> Result<String, Status> {
        let kind = p.kind();
        let token = self
            .tokens
            .insert(p)
            .map_err(|e| Status::resource_exhausted(e.to_string()))?;
        Ok(format!("http://{}/{kind}/{token}", self.addr))
    }

    /// Validate an Exec request and return its URL. (criusd checks the container exists and runs.)
    pub fn exec(&self, req: cri::ExecRequest) -> Result<cri::ExecResponse, Status> {
        if req.container_id.is_empty() {
            return Err(Status::invalid_argument("container id is empty"));
        }
        if req.cmd.is_empty() {
            return Err(Status::invalid_argument("cmd is empty"));
        }
        check_streams(req.stdin, req.stdout, req.stderr, req.tty)?;
        Ok(cri::ExecResponse {
            url: self.url(Pending::Exec(req))?,
        })
    }

    /// Validate an Attach request and return its URL.
    pub fn attach(&self, req: cri::AttachRequest) -> Result<cri::AttachResponse, Status> {
        if req.container_id.is_empty() {
            return Err(Status::invalid_argument("container id is empty"));
        }
        check_streams(req.stdin, req.stdout, req.stderr, req.tty)?;
        Ok(cri::AttachResponse {
            url: self.url(Pending::Attach(req))?,
        })
    }

    /// Validate a PortForward request and return its URL.
    pub fn port_forward(
        &self,
        req: cri::PortForwardRequest,
    ) -> Result<cri::PortForwardResponse, Status> {
        if req.pod_sandbox_id.is_empty() {
            return Err(Status::invalid_argument("pod sandbox id is empty"));
        }
        if let Some(p) = req.port.iter().find(|&&p| !(1..=65535).contains(&p)) {
            return Err(Status::invalid_argument(format!(
                "port {p} is out of range"
            )));
        }
        Ok(cri::PortForwardResponse {
            url: self.url(Pending::PortForward(req))?,
        })
    }
}

fn check_streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<(), Status> {
    if !(stdin || stdout || stderr) {
        return Err(Status::invalid_argument(
            "one of stdin, stdout or stderr must be set",
        ));
    }
    if tty && stderr {
        return Err(Status::invalid_argument(
            "tty and stderr cannot both be set (a terminal has one output)",
        ));
    }
    Ok(())
}

/// criusd's seam ([`crate::streaming_hook`]): install an `Arc<StreamingServer>` in
/// `Daemon::streaming` and the three RPCs answer with URLs on this server.
#[crius_proto::tonic::async_trait]
impl crate::streaming_hook::Streaming for StreamingServer {
    async fn exec(&self, req: cri::ExecRequest) -> Result<cri::ExecResponse, Status> {
        StreamingServer::exec(self, req)
    }
    async fn attach(&self, req: cri::AttachRequest) -> Result<cri::AttachResponse, Status> {
        StreamingServer::attach(self, req)
    }
    async fn port_forward(
        &self,
        req: cri::PortForwardRequest,
    ) -> Result<cri::PortForwardResponse, Status> {
        StreamingServer::port_forward(self, req)
    }
}

impl Drop for StreamingServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
