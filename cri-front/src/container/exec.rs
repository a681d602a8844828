//! ExecSync: a process in a running container through containerd's Tasks.Exec,
//! stdout/stderr over fifos criusd reads (capped), with a timeout.

use std::path::Path;
use std::time::Duration;

use crius_ctrd::{NewExec, Stdio};
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;

use super::record::Phase;
use super::Containers;
use crate::error::{Error, IoContext, Result};

/// What ExecSync returns.
#[derive(Debug, Default)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// Read to EOF, keeping at most `cap` bytes (the rest is drained so the process never blocks).
async fn read_capped(mut r: pipe::Receiver, cap: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut truncated = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(out.len());
                if room < n {
                    truncated = true;
                }
                out.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (out, truncated)
}

impl Containers {
    #[tracing::instrument(level = "debug", skip_all, fields(container = %id))]
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout_secs: i64,
    ) -> Result<ExecOutput> {
        if cmd.is_empty() {
            return Err(Error::InvalidArgument("exec cmd is empty".into()));
        }
        let rec = self.store.find(id).await?;
        let rec = self.refreshed(rec).await?;
        if rec.phase != Phase::Running {
            return Err(Error::FailedPrecondition(format!(
                "container {} is not running",
                rec.id
            )));
        }
        let id = rec.id.clone();
        let process_json = self.exec_process(&id, cmd, false).await?;

        let exec_id = format!("exec-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let dir = self.shared.cfg.run_dir.join("exec").join(&exec_id);
        let res = self
            .exec_in(&id, &exec_id, &dir, process_json, timeout_secs)
            .await;
        if let Err(e) = self.shared.ctrd.delete_process(&id, &exec_id).await {
            tracing::debug!(container = %id, exec = %exec_id, error = %e, "exec delete");
        }
        let _ = tokio::fs::remove_dir_all(&dir).await;
        res
    }

    /// The OCI process of an exec in container `id`: the container's own process (env, user,
    /// cwd, capabilities) running `cmd`.
    pub(crate) async fn exec_process(
        &self,
        id: &str,
        cmd: Vec<String>,
        tty: bool,
    ) -> Result<Vec<u8>> {
        let container = self.shared.ctrd.container(id).await?;
        let spec: serde_json::Value = if container.spec.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&container.spec)
                .map_err(|e| Error::Internal(format!("container {id} spec: {e}")))?
        };
        let mut process = spec.get("process").cloned().unwrap_or_default();
        process["args"] = serde_json::json!(cmd);
        process["terminal"] = serde_json::json!(tty);
        serde_json::to_vec(&process)
            .map_err(|e| Error::Internal(format!("encode exec process: {e}")))
    }

    async fn exec_in(
        &self,
        id: &str,
        exec_id: &str,
        dir: &Path,
        process_json: Vec<u8>,
        timeout_secs: i64,
    ) -> Result<ExecOutput> {
        tokio::fs::create_dir_all(dir)
            .await
            .ctx(|| format!("create {}", dir.display()))?;
        let out_path = dir.join("stdout");
        let err_path = dir.join("stderr");
        for p in [&out_path, &err_path] {
            crate::sys::mkfifo(p)
                .map_err(|e| Error::Internal(format!("mkfifo {}: {e}", p.display())))?;
        }
        let out_r = pipe::OpenOptions::new()
            .open_receiver(&out_path)
            .ctx(|| format!("open {}", out_path.display()))?;
        let err_r = pipe::OpenOptions::new()
            .open_receiver(&err_path)
            .ctx(|| format!("open {}", err_path.display()))?;
        // Hold a writer of our own until the shim has its own open, so an early read
        // never sees EOF just because the shim has not opened the fifo yet.
        let hold_out = pipe::OpenOptions::new()
            .open_sender(&out_path)
            .ctx(|| format!("open {}", out_path.display()))?;
        let hold_err = pipe::OpenOptions::new()
            .open_sender(&err_path)
            .ctx(|| format!("open {}", err_path.display()))?;
        let cap = self.shared.cfg.exec_sync_max_output_bytes;
        let out_task = tokio::spawn(read_capped(out_r, cap));
        let err_task = tokio::spawn(read_capped(err_r, cap));

        let ctrd = &self.shared.ctrd;
        ctrd.exec(NewExec {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            process: process_json,
            io: Stdio {
                stdout: out_path.display().to_string(),
                stderr: err_path.display().to_string(),
                ..Default::default()
            },
        })
        .await?;
        let started = ctrd.start(id, Some(exec_id)).await;
        drop(hold_out);
        drop(hold_err);
        if let Err(e) = started {
            out_task.abort();
            err_task.abort();
            return Err(e.into());
        }
        let limit = if timeout_secs > 0 {
            Duration::from_secs(timeout_secs as u64)
        } else {
            Duration::from_secs(u32::MAX as u64)
        };
        // The shim keeps an exited exec's status until DeleteProcess, so waiting after Start loses nothing.
        let exit = match tokio::time::timeout(limit, ctrd.wait(id, Some(exec_id))).await {
            Ok(r) => r?.code as i32,
            Err(_) => {
                let _ = ctrd.kill(id, Some(exec_id), 9, false).await;
                // Let the kill land so DeleteProcess (by the caller) finds it exited.
                let _ = tokio::time::timeout(Duration::from_secs(2), ctrd.wait(id, Some(exec_id)))
                    .await;
                out_task.abort();
                err_task.abort();
                return Err(Error::DeadlineExceeded(format!(
                    "exec in container {id} timed out after {timeout_secs}s"
                )));
            }
        };
        // The output ends when the shim closes the fifos; a child left in the background
        // holding them open must not hang ExecSync.
        let grace = Duration::from_secs(5);
        let (stdout, t1) = tokio::time::timeout(grace, out_task)
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let (stderr, t2) = tokio::time::timeout(grace, err_task)
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        if t1 || t2 {
            tracing::info!(container = %id, exec = %exec_id, cap, "ExecSync output truncated");
        }
        Ok(ExecOutput {
            stdout,
            stderr,
            exit_code: exit,
        })
    }
}
