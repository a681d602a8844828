//! Running one CNI plugin binary per the CNI spec: env vars in, config JSON on
//! stdin, result (or a CNI error object) on stdout, bounded by a timeout.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// What a plugin invocation needs besides its stdin config.
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    pub command: &'a str,
    pub container_id: &'a str,
    /// Empty for DEL when the netns is gone.
    pub netns: &'a str,
    pub ifname: &'a str,
    pub args: &'a str,
    pub bin_dirs: &'a [PathBuf],
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("plugin {0} not found in CNI_PATH {1}")]
    NotFound(String, String),
    #[error("plugin {plugin} {command}: {msg}")]
    Io {
        plugin: String,
        command: String,
        msg: String,
    },
    /// The plugin cannot be started with these arguments at all (a NUL byte, too long): trying
    /// again can never succeed.
    #[error("plugin {plugin} {command} cannot be run with this pod's arguments: {msg}")]
    Unrunnable {
        plugin: String,
        command: String,
        msg: String,
    },
    #[error("plugin {plugin} {command} timed out after {secs:.1}s (killed)")]
    Timeout {
        plugin: String,
        command: String,
        secs: f64,
    },
    #[error("plugin {plugin} {command} failed (code {code}): {msg}{details}")]
    Plugin {
        plugin: String,
        command: String,
        code: i64,
        msg: String,
        details: String,
    },
}

fn cni_path(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

pub fn find_plugin(plugin: &str, dirs: &[PathBuf]) -> Result<PathBuf, ExecError> {
    // A plugin type is a bare name; never let it walk out of the plugin dirs.
    if !plugin.contains('/') {
        for d in dirs {
            let p = d.join(plugin);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(ExecError::NotFound(plugin.to_string(), cni_path(dirs)))
}

/// Run `plugin` with `stdin` config. Returns parsed stdout (Null when empty, as
/// for DEL/CHECK).
pub async fn run(plugin: &str, inv: &Invocation<'_>, stdin: &Value) -> Result<Value, ExecError> {
    let bin = find_plugin(plugin, inv.bin_dirs)?;
    let io_err = |msg: String| ExecError::Io {
        plugin: plugin.to_string(),
        command: inv.command.to_string(),
        msg,
    };
    let input = serde_json::to_vec(stdin).map_err(|e| io_err(e.to_string()))?;
    let started = std::time::Instant::now();
    let mut child = spawn(&bin, inv).map_err(|e| {
        let msg = format!("spawn {}: {e}", bin.display());
        // Bad bytes in the environment, or argv/env over execve's limits: fixed for this pod.
        if e.kind() == std::io::ErrorKind::InvalidInput || e.raw_os_error() == Some(libc::E2BIG) {
            ExecError::Unrunnable {
                plugin: plugin.to_string(),
                command: inv.command.to_string(),
                msg,
            }
        } else {
            io_err(msg)
        }
    })?;
    let pgid = child.id();
    let mut pipe = child
        .stdin
        .take()
        .ok_or_else(|| io_err("no stdin pipe".into()))?;
    let fut = async move {
        // A plugin may exit without reading stdin; a broken pipe is then not our error.
        let _ = pipe.write_all(&input).await;
        drop(pipe);
        child.wait_with_output().await
    };
    // On timeout the future (and with it the child, kill_on_drop) is dropped: killed and reaped.
    let out = match tokio::time::timeout(inv.timeout, fut).await {
        Err(_) => {
            // The plugin leads its own process group: take its helpers down too.
            if let Some(pgid) = pgid {
                crate::sys::kill_process_group(pgid);
            }
            return Err(ExecError::Timeout {
                plugin: plugin.to_string(),
                command: inv.command.to_string(),
                secs: inv.timeout.as_secs_f64(),
            });
        }
        Ok(r) => r.map_err(|e| io_err(e.to_string()))?,
    };
    let stdout: Value = if out.stdout.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&out.stdout).map_err(|e| {
            io_err(format!(
                "bad output ({e}): {}",
                String::from_utf8_lossy(&out.stdout).trim()
            ))
        })?
    };
    tracing::debug!(
        plugin,
        command = inv.command,
        pod = inv.container_id,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        ok = out.status.success(),
        "CNI plugin ran"
    );
    if out.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    Err(ExecError::Plugin {
        plugin: plugin.to_string(),
        command: inv.command.to_string(),
        code: stdout.get("code").and_then(Value::as_i64).unwrap_or(-1),
        msg: stdout
            .get("msg")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("exit status {}; stderr: {stderr}", out.status)),
        details: stdout
            .get("details")
            .and_then(Value::as_str)
            .map(|d| format!(" ({d})"))
            .unwrap_or_default(),
    })
}

fn spawn(bin: &Path, inv: &Invocation<'_>) -> std::io::Result<tokio::process::Child> {
    Command::new(bin)
        .env("CNI_COMMAND", inv.command)
        .env("CNI_CONTAINERID", inv.container_id)
        .env("CNI_NETNS", inv.netns)
        .env("CNI_IFNAME", inv.ifname)
        .env("CNI_ARGS", inv.args)
        .env("CNI_PATH", cni_path(inv.bin_dirs))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
}
