//! The face criusd implements for the streaming server: run an exec, attach to a container, forward
//! a port — with plain async byte streams, whatever protocol the client spoke.

use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::sync::mpsc;

pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// A terminal size, as the resize channel carries it (`{"Width":80,"Height":24}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct TermSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// The client's streams, as the request asked for them.
pub struct StreamIo {
    /// The client's stdin; EOF when the client closes it.
    pub stdin: Option<BoxRead>,
    /// Where the process's stdout goes (with a tty: all its output).
    pub stdout: Option<BoxWrite>,
    /// Where stderr goes (never with a tty).
    pub stderr: Option<BoxWrite>,
    /// The process has a terminal.
    pub tty: bool,
    /// Terminal sizes from the client (first one soon after the start), with a tty.
    pub resize: Option<mpsc::Receiver<TermSize>>,
}

/// Why a stream could not be served; the client sees the message.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Failed(String),
}

/// What criusd provides. Each call runs for the life of one client session; when the client goes
/// away first, the future is dropped (implementations clean up in `Drop` or treat it as a detach).
#[async_trait]
pub trait StreamRuntime: Send + Sync + 'static {
    /// Run `cmd` in the container; the exit code, returned once the process has exited and its
    /// output is written (drop the writers: that is the end of output for the client).
    async fn exec(
        &self,
        container_id: &str,
        cmd: Vec<String>,
        io: StreamIo,
    ) -> Result<i32, StreamError>;

    /// Connect to the container's main process: its output from now on, stdin to it. Returns when
    /// the container exits (or its streams end).
    async fn attach(&self, container_id: &str, io: StreamIo) -> Result<(), StreamError>;

    /// Connect `conn` to `port` on localhost inside the pod's network namespace and copy both
    /// ways; return once the pod's side has closed and all it sent is written to `conn` (the
    /// client's EOF only half-closes towards the pod).
    async fn port_forward(
        &self,
        pod_id: &str,
        port: u16,
        conn: DuplexStream,
    ) -> Result<(), StreamError>;
}
