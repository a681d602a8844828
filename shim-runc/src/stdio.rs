//! A process's stdio: pipes (or a file) handed to runc, or a console socket
//! through which runc hands back the pty master, which the shim then keeps.

use std::{
    fs::{File, OpenOptions},
    io::IoSliceMut,
    os::{
        fd::OwnedFd,
        unix::{fs::OpenOptionsExt, net::UnixListener},
    },
    path::PathBuf,
    process::Stdio as CmdStdio,
    sync::atomic::{AtomicU64, Ordering},
};

use containerd_shim::asynchronous::io::{IoTasks, Pty, Stdio};
use nix::{
    fcntl::OFlag,
    sys::socket::{recvmsg, ControlMessageOwned, MsgFlags},
    unistd::pipe2,
};
use tokio::net::unix::pipe;

use crate::{
    error::{Error, Result},
    logbinary::{self, Logger},
    runc::ProcStdio,
};

/// Where one output stream goes.
enum Target<'a> {
    Null,
    Fifo(&'a str),
    File(&'a str),
}

fn target(uri: &str) -> Result<Target<'_>> {
    if uri.is_empty() {
        Ok(Target::Null)
    } else if let Some(path) = uri.strip_prefix("file://") {
        Ok(Target::File(path))
    } else if uri.starts_with("binary://") {
        // Only as stdout (which takes stderr along), and not with a terminal.
        Err(Error::Unimplemented(format!(
            "binary:// log URI here is not supported: {uri}"
        )))
    } else if let Some(path) = uri.strip_prefix("fifo://") {
        Ok(Target::Fifo(path))
    } else {
        Ok(Target::Fifo(uri))
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    Ok(pipe2(OFlag::O_CLOEXEC)?)
}

/// Sets up the non-terminal stdio of a process and starts copying it.
/// With a `binary://` stdout the log driver gets both output streams (as in
/// containerd's shims) and is returned, to be finished when the process is deleted.
pub async fn pipes(
    io: &IoTasks,
    req: &Stdio,
    id: &str,
    namespace: &str,
) -> Result<(ProcStdio, Option<Logger>)> {
    let mut out = ProcStdio::null();
    if !req.stdin.is_empty() {
        let (r, w) = pipe()?;
        let sender = pipe::Sender::from_owned_fd(w).map_err(Error::io("stdin pipe"))?;
        io.copy_from_fifo(&req.stdin, sender)?;
        out.stdin = CmdStdio::from(r);
    }
    if req.stdout.starts_with("binary://") {
        let (stdout, stderr, logger) = logbinary::start(&req.stdout, id, namespace).await?;
        out.stdout = stdout;
        out.stderr = stderr;
        return Ok((out, Some(logger)));
    }
    out.stdout = output(io, &req.stdout)?;
    out.stderr = output(io, &req.stderr)?;
    Ok((out, None))
}

fn output(io: &IoTasks, uri: &str) -> Result<CmdStdio> {
    Ok(match target(uri)? {
        Target::Null => CmdStdio::null(),
        Target::File(path) => {
            // The process writes straight into the log file: no copy needed.
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .open(path)
                .map_err(Error::io(format!("open log {path}")))?;
            CmdStdio::from(f)
        }
        Target::Fifo(path) => {
            let (r, w) = pipe()?;
            let receiver = pipe::Receiver::from_owned_fd(r).map_err(Error::io("output pipe"))?;
            io.copy_to_fifo(receiver, path)?;
            CmdStdio::from(w)
        }
    })
}

/// A listening socket for runc's `--console-socket`.
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

static CONSOLE_SEQ: AtomicU64 = AtomicU64::new(0);

impl ConsoleSocket {
    pub fn new() -> Result<Self> {
        // Bundle paths can exceed the 108 bytes a socket path may have.
        let path = std::env::temp_dir().join(format!(
            "crius-pty-{}-{}.sock",
            std::process::id(),
            CONSOLE_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).map_err(Error::io(format!("bind {}", path.display())))?;
        Ok(ConsoleSocket { path, listener })
    }

    /// Receives the pty master runc sent. runc has exited by now, so its
    /// connection is either queued or was never made.
    pub fn receive(&self) -> Result<File> {
        self.listener
            .set_nonblocking(true)
            .map_err(Error::io("console socket"))?;
        let (stream, _) = self
            .listener
            .accept()
            .map_err(|e| Error::Other(format!("runc sent no console: {e}")))?;
        stream
            .set_nonblocking(false)
            .map_err(Error::io("console socket"))?;
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&fd) = fds.first() {
                    return Ok(crate::sys::own_fd(fd));
                }
            }
        }
        Err(Error::Other("console socket message carried no fd".into()))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Starts copying between containerd's fifos and the pty master.
pub fn attach_pty(io: &IoTasks, req: &Stdio, master: File) -> Result<Pty> {
    let pty = Pty::new(master)?;
    if !req.stdin.is_empty() {
        io.copy_from_fifo(&req.stdin, pty.clone())?;
    }
    if let Target::Fifo(path) = target(&req.stdout)? {
        io.copy_to_fifo(pty.clone(), path)?;
    }
    Ok(pty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(matches!(target(""), Ok(Target::Null)));
        assert!(matches!(
            target("/run/x/stdout"),
            Ok(Target::Fifo("/run/x/stdout"))
        ));
        assert!(matches!(
            target("file:///var/log/x"),
            Ok(Target::File("/var/log/x"))
        ));
        assert!(matches!(
            target("binary:///bin/logger"),
            Err(Error::Unimplemented(_))
        ));
    }
}
