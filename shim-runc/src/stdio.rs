//! A process's stdio: pipes (or a file) handed to runc, or a console socket
//! through which runc hands back the pty master, which the shim then keeps.

use std::{
    fs::{File, OpenOptions},
    io::IoSliceMut,
    os::fd::AsRawFd,
    os::{
        fd::OwnedFd,
        unix::{fs::OpenOptionsExt, net::UnixListener},
    },
    path::PathBuf,
    process::Stdio as CmdStdio,
    sync::atomic::{AtomicU64, Ordering},
    sync::Arc,
};

use containerd_shim::asynchronous::io::{IoTasks, Pty, Stdio};
use nix::{
    fcntl::OFlag,
    sys::socket::{recvmsg, ControlMessageOwned, MsgFlags},
    unistd::pipe2,
};
use tokio::{net::unix::pipe, sync::oneshot};

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
/// A process's non-terminal stdio, wired.
pub struct Wired {
    pub stdio: ProcStdio,
    /// The `binary://` driver, finished when the process is deleted.
    pub logger: Option<Logger>,
    pub stdin: Option<StdinCopy>,
}

/// With a `binary://` stdout the log driver gets both output streams (as in
/// containerd's shims).
pub async fn pipes(io: &IoTasks, req: &Stdio, id: &str, namespace: &str) -> Result<Wired> {
    let mut out = Wired {
        stdio: ProcStdio::null(),
        logger: None,
        stdin: None,
    };
    if !req.stdin.is_empty() {
        let (r, w) = pipe()?;
        let sender = pipe::Sender::from_owned_fd(w).map_err(Error::io("stdin pipe"))?;
        out.stdin = Some(StdinCopy::start(&req.stdin, sender)?);
        out.stdio.stdin = CmdStdio::from(r);
    }
    if req.stdout.starts_with("binary://") {
        let (stdout, stderr, logger) = logbinary::start(&req.stdout, id, namespace).await?;
        out.stdio.stdout = stdout;
        out.stdio.stderr = stderr;
        out.logger = Some(logger);
        return Ok(out);
    }
    out.stdio.stdout = output(io, &req.stdout)?;
    out.stdio.stderr = output(io, &req.stderr)?;
    Ok(out)
}

/// Copies containerd's stdin fifo into the process the way containerd 1.6's
/// own shim does: the fifo is opened for reading once a writer comes, and the
/// writer's close is the process's EOF (`echo x | ctr run ... cat` relies on
/// it; 1.6 clients do not always send CloseIO). CloseIO releases a reader that
/// no writer ever came to; Delete ends the copy at once.
///
/// As containerd's fifo package does, the fifo is reached through an O_PATH
/// handle (`/proc/self/fd/N`): clients may unlink the fifo before Delete, and
/// a reader still blocked in open() must remain reachable to be released.
pub struct StdinCopy {
    handle: Arc<File>,
    stop: Option<oneshot::Sender<()>>,
}

fn proc_path(handle: &File) -> String {
    format!("/proc/self/fd/{}", handle.as_raw_fd())
}

impl StdinCopy {
    fn start(path: &str, mut to: pipe::Sender) -> Result<Self> {
        let handle = Arc::new(
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
                .open(path)
                .map_err(Error::io(format!("stdin fifo {path}")))?,
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let held = handle.clone();
        tokio::spawn(async move {
            let copy = async move {
                // A blocking open waits for containerd's writer without ever
                // reading a spurious EOF before it comes. `held` keeps the
                // handle (and so its /proc path) valid until open returns.
                let opened =
                    tokio::task::spawn_blocking(move || File::open(proc_path(&held))).await;
                let Ok(Ok(file)) = opened else {
                    return;
                };
                let Ok(mut from) = pipe::Receiver::from_file(file) else {
                    return;
                };
                if let Err(e) = tokio::io::copy(&mut from, &mut to).await {
                    tracing::debug!(error = %e, "stdin copy ended");
                }
                // `to` drops here: the process reads EOF.
            };
            tokio::select! {
                _ = copy => {}
                _ = stopped => {}
            }
        });
        Ok(StdinCopy {
            handle,
            stop: Some(stop),
        })
    }

    /// CloseIO: the client is done with stdin. As in containerd's shim (which
    /// only lets go of its own writer), the copy still drains what the fifo
    /// holds and ends at the fifo's EOF, once the client's writer is closed:
    /// stopping it here would drop up to a fifo's worth of input.
    pub fn close(&mut self) {
        self.release_waiting_reader();
    }

    /// Delete: stop copying now, and with it the process's stdin.
    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            self.release_waiting_reader();
        }
    }

    /// Releases a reader still blocked in open() (no writer ever came): a
    /// writer that comes and goes reads as EOF. Fails harmlessly (ENXIO) when
    /// no reader waits, and is a no-op for a reader already copying.
    fn release_waiting_reader(&self) {
        let _ = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(proc_path(&self.handle));
    }
}

impl Drop for StdinCopy {
    fn drop(&mut self) {
        self.stop();
    }
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
