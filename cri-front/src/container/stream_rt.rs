//! criusd's side of the streaming server ([`crate::streaming::StreamRuntime`]): interactive
//! exec through containerd's Tasks.Exec with fifos (stdin, stdout, stderr, pty resize), attach
//! (the container's live output, joined at its log driver's attach socket; stdin through its
//! fifo), and port-forward (a TCP connection made
//! from inside the pod's network namespace).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crius_ctrd::{Containerd, NewExec, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::unix::pipe;

use super::record::Phase;
use super::Containers;
use crate::error::Error;
use crate::streaming::{StreamError, StreamIo, StreamRuntime};

/// The streaming server's view of criusd.
pub struct ContainerStreams(pub Arc<Containers>);

fn failed(e: impl std::fmt::Display) -> StreamError {
    StreamError::Failed(e.to_string())
}

fn from_err(e: Error) -> StreamError {
    if e.is_not_found() {
        StreamError::NotFound(e.to_string())
    } else {
        StreamError::Failed(e.to_string())
    }
}

/// Kills and deletes an exec if the session ends before it does (client gone).
struct ExecGuard {
    ctrd: Arc<dyn Containerd>,
    container: String,
    exec: String,
    dir: PathBuf,
    done: bool,
}

impl Drop for ExecGuard {
    fn drop(&mut self) {
        let (ctrd, c, e, dir, done) = (
            self.ctrd.clone(),
            self.container.clone(),
            self.exec.clone(),
            self.dir.clone(),
            self.done,
        );
        tokio::spawn(async move {
            if !done {
                let _ = ctrd.kill(&c, Some(&e), 9, false).await;
                let _ = ctrd.wait(&c, Some(&e)).await;
            }
            let _ = ctrd.delete_process(&c, &e).await;
            let _ = tokio::fs::remove_dir_all(dir).await;
        });
    }
}

async fn copy_out(mut r: pipe::Receiver, mut w: crate::streaming::BoxWrite) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if w.write_all(&buf[..n]).await.is_err() || w.flush().await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = w.shutdown().await;
}

/// Pass the client's terminal sizes on to the process (`exec: None`: the container's init).
fn follow_resizes(
    ctrd: Arc<dyn Containerd>,
    id: String,
    exec: Option<String>,
    mut rx: tokio::sync::mpsc::Receiver<crate::streaming::TermSize>,
) {
    tokio::spawn(async move {
        while let Some(sz) = rx.recv().await {
            let _ = ctrd
                .resize_pty(&id, exec.as_deref(), sz.width as u32, sz.height as u32)
                .await;
        }
    });
}

fn mkfifo(p: &Path) -> Result<(), StreamError> {
    crate::sys::mkfifo(p).map_err(|e| failed(format!("mkfifo {}: {e}", p.display())))
}

#[async_trait::async_trait]
impl StreamRuntime for ContainerStreams {
    async fn exec(
        &self,
        container_id: &str,
        cmd: Vec<String>,
        io: StreamIo,
    ) -> Result<i32, StreamError> {
        let d = &self.0;
        let rec = d.store.find(container_id).await.map_err(from_err)?;
        let rec = d.refreshed(rec).await.map_err(from_err)?;
        if rec.phase != Phase::Running {
            return Err(failed(format!("container {} is not running", rec.id)));
        }
        let id = rec.id.clone();
        let process = d.exec_process(&id, cmd, io.tty).await.map_err(from_err)?;

        let exec_id = format!("exec-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let dir = d.shared.cfg.run_dir.join("exec").join(&exec_id);
        tokio::fs::create_dir_all(&dir).await.map_err(failed)?;
        let mut guard = ExecGuard {
            ctrd: d.shared.ctrd.clone(),
            container: id.clone(),
            exec: exec_id.clone(),
            dir: dir.clone(),
            done: false,
        };
        let StreamIo {
            stdin,
            stdout,
            stderr,
            tty,
            resize,
        } = io;
        let path = |name: &str| dir.join(name);
        let mut holds = Vec::new();
        let mut outs = Vec::new();
        for (name, w) in [
            ("stdout", stdout),
            ("stderr", if tty { None } else { stderr }),
        ] {
            if let Some(w) = w {
                mkfifo(&path(name))?;
                let r = pipe::OpenOptions::new()
                    .open_receiver(path(name))
                    .map_err(failed)?;
                // Our own writer until the shim has opened its end (no early EOF).
                holds.push(
                    pipe::OpenOptions::new()
                        .open_sender(path(name))
                        .map_err(failed)?,
                );
                outs.push((name, r, w));
            }
        }
        let stdin_w = match &stdin {
            Some(_) => {
                mkfifo(&path("stdin"))?;
                // Read-write: opening never blocks, and closing it is the process's EOF.
                Some(
                    pipe::OpenOptions::new()
                        .read_write(true)
                        .open_sender(path("stdin"))
                        .map_err(failed)?,
                )
            }
            None => None,
        };
        let p = |name: &str, present: bool| {
            if present {
                path(name).display().to_string()
            } else {
                String::new()
            }
        };
        let has_out = outs.iter().any(|(x, _, _)| *x == "stdout");
        let has_err = outs.iter().any(|(x, _, _)| *x == "stderr");
        let ctrd = &d.shared.ctrd;
        ctrd.exec(NewExec {
            container_id: id.clone(),
            exec_id: exec_id.clone(),
            process,
            io: Stdio {
                stdin: p("stdin", stdin_w.is_some()),
                stdout: p("stdout", has_out),
                stderr: p("stderr", has_err),
                terminal: tty,
            },
        })
        .await
        .map_err(failed)?;
        let copies: Vec<_> = outs
            .into_iter()
            .map(|(_, r, w)| tokio::spawn(copy_out(r, w)))
            .collect();
        ctrd.start(&id, Some(&exec_id)).await.map_err(failed)?;
        drop(holds);
        tracing::info!(container = %id, exec = %exec_id, tty, "streaming exec started");

        let mut stdin_copy = None;
        if let (Some(mut r), Some(mut w)) = (stdin, stdin_w) {
            let ctrd = ctrd.clone();
            let (c, e) = (id.clone(), exec_id.clone());
            stdin_copy = Some(tokio::spawn(async move {
                let _ = tokio::io::copy(&mut r, &mut w).await;
                drop(w);
                let _ = ctrd.close_stdin(&c, Some(&e)).await;
            }));
        }
        if let Some(rx) = resize {
            follow_resizes(ctrd.clone(), id.clone(), Some(exec_id.clone()), rx);
        }
        let code = ctrd.wait(&id, Some(&exec_id)).await.map_err(failed)?.code as i32;
        // Input the process never read: our own read end keeps the fifo from failing the
        // write, so a copy blocked on a full fifo would wait forever. The process is gone.
        if let Some(c) = stdin_copy {
            c.abort();
        }
        guard.done = true;
        for c in copies {
            let _ = tokio::time::timeout(Duration::from_secs(5), c).await;
        }
        Ok(code)
    }

    async fn attach(&self, container_id: &str, io: StreamIo) -> Result<(), StreamError> {
        let d = &self.0;
        let rec = d.store.find(container_id).await.map_err(from_err)?;
        if rec.phase != Phase::Running {
            return Err(failed(format!("container {} is not running", rec.id)));
        }
        if io.stdin.is_some() && !rec.stdin {
            return Err(failed(format!(
                "container {} was created without stdin",
                rec.id
            )));
        }
        if let Some(rx) = io.resize {
            follow_resizes(d.shared.ctrd.clone(), rec.id.clone(), None, rx);
        }
        // The live output, from the log driver that holds the container's pipes (not the log
        // file): joined before any stdin is passed on, so no answer to it can slip by.
        let sock = d.attach_socket(&rec.id);
        let mut live = tokio::net::UnixStream::connect(&sock).await.map_err(|e| {
            failed(format!(
                "container {}: its output cannot be joined ({}: {e})",
                rec.id,
                sock.display()
            ))
        })?;
        // connect() returns once the kernel queues us; the log driver registers us a moment later.
        // Its "joined" frame (stream 0, empty) comes first: only then is stdin passed on, or the
        // answer to it could be read before we are there to get it.
        let mut joined = [0u8; 5];
        match tokio::time::timeout(Duration::from_secs(5), live.read_exact(&mut joined)).await {
            Ok(Ok(_)) if joined == [0u8; 5] => {}
            _ => {
                return Err(failed(format!(
                    "container {}: its log driver did not let the attach join ({})",
                    rec.id,
                    sock.display()
                )))
            }
        }
        if let Some(mut r) = io.stdin {
            let (_, h) = d.open_stdin(&rec.id).await.map_err(from_err)?;
            let (ctrd, c, once) = (d.shared.ctrd.clone(), rec.id.clone(), rec.stdin_once);
            let logger = d.logger_pid(&rec.id);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match r.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let mut g = h.lock().await;
                    let Some(w) = g.as_mut() else { break };
                    if w.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                if once {
                    // stdin_once: the first attach's EOF is the process's EOF: no writer may
                    // be left on the fifo, criusd's nor the log driver's.
                    h.lock().await.take();
                    if let Some(pid) = logger {
                        let _ = crate::sys::kill(pid, nix::sys::signal::Signal::SIGUSR2);
                    }
                    let _ = ctrd.close_stdin(&c, None).await;
                }
            });
        }
        // Frames: stream (1 stdout, 2 stderr), u32 big-endian length, the bytes as written.
        let (mut out, mut err) = (io.stdout, io.stderr);
        let mut buf = Vec::new();
        loop {
            let mut head = [0u8; 5];
            if live.read_exact(&mut head).await.is_err() {
                // The output is over (the process ended) or the log driver went away.
                return Ok(());
            }
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            buf.resize(len, 0);
            if live.read_exact(&mut buf).await.is_err() {
                return Ok(());
            }
            let w = if head[0] == 2 && err.is_some() {
                err.as_mut()
            } else {
                out.as_mut()
            };
            if let Some(w) = w {
                if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
                    return Ok(());
                }
            }
        }
    }

    async fn port_forward(
        &self,
        pod_id: &str,
        port: u16,
        mut conn: DuplexStream,
    ) -> Result<(), StreamError> {
        let pod = self.0.shared.find_pod(pod_id).await.map_err(from_err)?;
        let netns = match (&pod.netns_path, pod.pause_pid) {
            (Some(p), _) => p.clone(),
            (None, Some(pid)) => PathBuf::from(format!("/proc/{pid}/ns/net")),
            (None, None) => return Err(failed(format!("pod {} has no network namespace", pod.id))),
        };
        let std = tokio::task::spawn_blocking(move || crate::sys::connect_in_netns(&netns, port))
            .await
            .map_err(failed)?
            .map_err(|e| failed(format!("connect to port {port} in pod {}: {e}", pod.id)))?;
        std.set_nonblocking(true).map_err(failed)?;
        let mut tcp = tokio::net::TcpStream::from_std(std).map_err(failed)?;
        let _ = tokio::io::copy_bidirectional(&mut conn, &mut tcp).await;
        Ok(())
    }
}
