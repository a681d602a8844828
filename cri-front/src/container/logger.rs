//! Starting crius-logger in fifo mode (see `bin/crius-logger.rs` for why it is a
//! process of its own): two fifos per container under `<run_dir>/io/<id>/`, the logger
//! detached from criusd so it outlives a criusd crash or restart.

use std::path::PathBuf;
use std::process::Stdio;

use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::net::unix::pipe;
use tokio::sync::Mutex;

use super::record::ContainerRecord;
use super::Containers;
use crate::error::{Error, IoContext, Result};

impl Containers {
    pub(crate) fn io_dir(&self, id: &str) -> PathBuf {
        self.shared.cfg.run_dir.join("io").join(id)
    }

    /// The log driver's attach socket (CRI Attach joins the live output there). Short, for
    /// the unix socket path limit: 64 bits of the id are unique enough on one node.
    pub(crate) fn attach_socket(&self, id: &str) -> PathBuf {
        self.shared
            .cfg
            .run_dir
            .join("attach")
            .join(format!("{}.sock", &id[..id.len().min(16)]))
    }

    pub(crate) fn logger_pidfile(&self, id: &str) -> PathBuf {
        self.store.dir_of(id).join("logger.pid")
    }

    /// Make the fifos and start the logger on them; returns the task's stdout/stderr paths.
    pub(crate) async fn spawn_logger(&self, rec: &ContainerRecord) -> Result<(String, String)> {
        let dir = self.io_dir(&rec.id);
        let _ = tokio::fs::remove_dir_all(&dir).await;
        tokio::fs::create_dir_all(&dir)
            .await
            .ctx(|| format!("create {}", dir.display()))?;
        let (out, err) = (dir.join("stdout"), dir.join("stderr"));
        // A terminal has one stream: no stderr fifo (the logger would wait for a writer forever).
        let fifos: Vec<&PathBuf> = if rec.tty {
            vec![&out]
        } else {
            vec![&out, &err]
        };
        let stdin = dir.join("stdin");
        for p in fifos.into_iter().chain(rec.stdin.then_some(&stdin)) {
            crate::sys::mkfifo(p)
                .map_err(|e| Error::Internal(format!("mkfifo {}: {e}", p.display())))?;
        }
        let logger = self.shared.cfg.logger_path();
        let errlog = std::fs::File::create(self.store.dir_of(&rec.id).join("logger.err"))
            .ctx(|| format!("create logger.err for {}", rec.id))?;
        let mut cmd = tokio::process::Command::new(&logger);
        cmd.arg("path")
            .arg(&rec.log_path)
            .arg("stdout")
            .arg(&out)
            .arg("stderr")
            .arg(if rec.tty { PathBuf::new() } else { err.clone() })
            .arg("pidfile")
            .arg(self.logger_pidfile(&rec.id))
            // Holding the stdin fifo open too keeps a container's stdin from reaching EOF
            // while criusd (which writes to it) restarts.
            .arg("stdin-hold")
            .arg(if rec.stdin {
                dir.join("stdin")
            } else {
                PathBuf::new()
            })
            .arg("max-line")
            .arg(self.shared.cfg.max_log_line_bytes.to_string())
            .arg("attach")
            .arg(self.attach_socket(&rec.id))
            .env("CONTAINER_ID", &rec.id)
            .env("CONTAINER_NAMESPACE", &self.shared.cfg.containerd_namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(errlog)
            // Its own process group: a signal to criusd's group never reaches it.
            .process_group(0)
            .kill_on_drop(false);
        let mut child = cmd.spawn().ctx(|| format!("start {}", logger.display()))?;
        let pid = child.id().unwrap_or(0);
        tracing::debug!(container = %rec.id, logger_pid = pid, "log driver started");
        // Reap it while criusd lives; after a restart init does.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        // The pidfile is written by the logger itself; until then remember the pid here.
        let _ = tokio::fs::write(self.logger_pidfile(&rec.id), pid.to_string()).await;
        let err = if rec.tty {
            String::new()
        } else {
            err.display().to_string()
        };
        Ok((out.display().to_string(), err))
    }

    /// The container's stdin fifo, created if needed and held open read-write by criusd (so
    /// opening never blocks and the process sees EOF only when criusd closes it). Its path.
    pub(crate) async fn open_stdin(
        &self,
        id: &str,
    ) -> Result<(String, Arc<Mutex<Option<pipe::Sender>>>)> {
        let dir = self.io_dir(id);
        tokio::fs::create_dir_all(&dir)
            .await
            .ctx(|| format!("create {}", dir.display()))?;
        let path = dir.join("stdin");
        let mut map = self.stdin_pipes.lock().await;
        if let Some(h) = map.get(id) {
            return Ok((path.display().to_string(), h.clone()));
        }
        if !path.exists() {
            crate::sys::mkfifo(&path)
                .map_err(|e| Error::Internal(format!("mkfifo {}: {e}", path.display())))?;
        }
        let w = pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(&path)
            .ctx(|| format!("open {}", path.display()))?;
        let h = Arc::new(Mutex::new(Some(w)));
        map.insert(id.to_string(), h.clone());
        Ok((path.display().to_string(), h))
    }

    /// The pid of the container's log driver, from its pidfile.
    pub(crate) fn logger_pid(&self, id: &str) -> Option<i32> {
        std::fs::read_to_string(self.logger_pidfile(id))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
    }

    /// Stop a logger whose task never came up.
    pub(crate) fn kill_logger(&self, id: &str) {
        if let Some(pid) = self.logger_pid(id) {
            let _ = crate::sys::kill(pid, Signal::SIGKILL);
        }
    }
}
