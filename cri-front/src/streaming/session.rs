//! What exec/attach/port-forward sessions share whatever the protocol: wiring the client's streams
//! to the runtime with in-memory pipes, and the status the session ends with.

use super::runtime::{StreamIo, StreamRuntime, TermSize};
use super::status;
use super::tokens::Pending;
use std::sync::Arc;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

/// Pipe buffer between the protocol side and the runtime.
const PIPE: usize = 64 * 1024;

/// Which streams a request asked for.
#[derive(Debug, Clone, Copy)]
pub struct Wants {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl Wants {
    pub fn of(p: &Pending) -> Option<Wants> {
        match p {
            Pending::Exec(r) => Some(Wants {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr && !r.tty,
                tty: r.tty,
            }),
            Pending::Attach(r) => Some(Wants {
                stdin: r.stdin,
                stdout: r.stdout,
                stderr: r.stderr && !r.tty,
                tty: r.tty,
            }),
            Pending::PortForward(_) => None,
        }
    }
}

/// The protocol side's ends of the pipes.
pub struct Ends {
    /// Write the client's stdin here; drop it for EOF.
    pub stdin: Option<DuplexStream>,
    /// Read the process's stdout here (EOF once the runtime is done with it).
    pub stdout: Option<DuplexStream>,
    pub stderr: Option<DuplexStream>,
    pub resize: Option<mpsc::Sender<TermSize>>,
}

/// Pipes for `w`: the runtime's [`StreamIo`] and our [`Ends`].
pub fn wire(w: Wants) -> (StreamIo, Ends) {
    let pair = |on: bool| on.then(|| tokio::io::duplex(PIPE));
    let stdin = pair(w.stdin);
    let stdout = pair(w.stdout);
    let stderr = pair(w.stderr);
    let resize = w.tty.then(|| mpsc::channel(8));
    let (rtx, rrx) = match resize {
        Some((t, r)) => (Some(t), Some(r)),
        None => (None, None),
    };
    let (si_rt, si_us) = split(stdin);
    let (so_rt, so_us) = split(stdout);
    let (se_rt, se_us) = split(stderr);
    (
        StreamIo {
            stdin: si_rt.map(|s| Box::new(s) as _),
            stdout: so_rt.map(|s| Box::new(s) as _),
            stderr: se_rt.map(|s| Box::new(s) as _),
            tty: w.tty,
            resize: rrx,
        },
        Ends {
            stdin: si_us,
            stdout: so_us,
            stderr: se_us,
            resize: rtx,
        },
    )
}

fn split(p: Option<(DuplexStream, DuplexStream)>) -> (Option<DuplexStream>, Option<DuplexStream>) {
    match p {
        Some((a, b)) => (Some(a), Some(b)),
        None => (None, None),
    }
}

/// Run exec or attach on the runtime; the status JSON the client gets at the end.
pub async fn run(rt: Arc<dyn StreamRuntime>, p: Pending, io: StreamIo) -> Vec<u8> {
    match p {
        Pending::Exec(r) => match rt.exec(&r.container_id, r.cmd, io).await {
            Ok(code) => status::exit_code(code),
            Err(e) => status::failure(&e.to_string()),
        },
        Pending::Attach(r) => match rt.attach(&r.container_id, io).await {
            Ok(()) => status::success(),
            Err(e) => status::failure(&e.to_string()),
        },
        Pending::PortForward(_) => status::failure("not a remote command"),
    }
}

/// Parse resize messages (JSON objects, possibly several per chunk, as client-go writes them).
pub fn parse_sizes(buf: &mut Vec<u8>) -> Vec<TermSize> {
    let mut out = Vec::new();
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<TermSize>();
    let mut used = 0;
    while let Some(Ok(sz)) = it.next() {
        used = it.byte_offset();
        out.push(sz);
    }
    buf.drain(..used);
    // Garbage that never becomes a size must not grow forever.
    if buf.len() > 4096 {
        buf.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_messages_split_and_join() {
        let mut b = br#"{"Width":80,"Height":24}{"Width":100,"#.to_vec();
        let s = parse_sizes(&mut b);
        assert_eq!(
            s,
            vec![TermSize {
                width: 80,
                height: 24
            }]
        );
        b.extend_from_slice(br#""Height":30}"#);
        assert_eq!(
            parse_sizes(&mut b),
            vec![TermSize {
                width: 100,
                height: 30
            }]
        );
        assert!(b.is_empty());
    }
}
