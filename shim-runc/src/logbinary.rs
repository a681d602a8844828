//! containerd's logging-binary protocol (`binary://` stdio URIs): a log
//! driver started with the process's stdout on fd 3, its stderr on fd 4 and
//! a ready pipe on fd 5, which it closes once it is ready.
//!
//! std's `Command` only places fds 0-2, and no Rust code may run between
//! fork and exec in the threaded shim, so the driver is started through this
//! binary re-executed as `__crius-logger-exec` (single-threaded, before any
//! runtime): it gets the three pipes as its stdin/stdout/stderr, moves them
//! to 3/4/5 and execs the driver.

use std::{
    ffi::CString,
    os::fd::{AsRawFd, OwnedFd},
    path::PathBuf,
    process::{Command, Stdio as CmdStdio},
    time::Duration,
};

use nix::{fcntl::OFlag, unistd::pipe2};
use tokio::{io::AsyncReadExt, net::unix::pipe, sync::oneshot};

use crate::{
    error::{Error, Result},
    reaper::{self, Exit},
    sys,
};

pub const HELPER_ARG: &str = "__crius-logger-exec";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

fn unhex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (unhex(b[i + 1]), unhex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The driver's path and arguments: each query pair as `key value`, as
/// containerd passes them.
pub fn parse(uri: &str) -> Result<(PathBuf, Vec<String>)> {
    let rest = uri
        .strip_prefix("binary://")
        .ok_or_else(|| Error::InvalidArgument(format!("not a binary URI: {uri}")))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = unescape(path);
    if !path.starts_with('/') {
        return Err(Error::InvalidArgument(format!(
            "binary log URI needs an absolute path: {uri}"
        )));
    }
    let mut args = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        args.push(unescape(k));
        if !v.is_empty() {
            args.push(unescape(v));
        }
    }
    Ok((PathBuf::from(path), args))
}

/// A running log driver.
pub struct Logger {
    pid: i32,
    exit: oneshot::Receiver<Exit>,
}

impl Logger {
    /// Waits for the driver to drain and exit after the process ended;
    /// kills it if it does not.
    pub async fn finish(self, id: &str) {
        if tokio::time::timeout(EXIT_TIMEOUT, self.exit).await.is_err() {
            tracing::warn!(
                container_id = id,
                pid = self.pid,
                "log driver did not exit, killing it"
            );
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    Ok(pipe2(OFlag::O_CLOEXEC)?)
}

/// Starts the driver of `uri`; returns the process's stdout and stderr.
pub async fn start(uri: &str, id: &str, namespace: &str) -> Result<(CmdStdio, CmdStdio, Logger)> {
    let (bin, args) = parse(uri)?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let exe = std::env::current_exe().map_err(Error::io("current exe"))?;
    let mut cmd = Command::new(exe);
    cmd.arg(HELPER_ARG)
        .arg(&bin)
        .args(&args)
        .env_clear()
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(CmdStdio::from(out_r))
        .stdout(CmdStdio::from(err_r))
        .stderr(CmdStdio::from(ready_w));
    let child = cmd
        .spawn()
        .map_err(Error::io(format!("start log driver {}", bin.display())))?;
    // Our copies of the driver's ends go now, or its EOFs would never come.
    drop(cmd);
    let pid = child.id() as i32;
    let exit = reaper::watch(pid);
    let mut ready = pipe::Receiver::from_owned_fd(ready_r).map_err(Error::io("ready pipe"))?;
    let mut buf = Vec::new();
    match tokio::time::timeout(READY_TIMEOUT, ready.read_to_end(&mut buf)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(Error::io("wait for log driver")(e)),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(Error::Other(format!(
                "log driver {} not ready within {READY_TIMEOUT:?}",
                bin.display()
            )));
        }
    }
    tracing::debug!(container_id = id, pid, driver = %bin.display(), "log driver ready");
    Ok((
        CmdStdio::from(out_w),
        CmdStdio::from(err_w),
        Logger { pid, exit },
    ))
}

/// Helper mode: stdin/stdout/stderr become fds 3/4/5, then exec the driver.
pub fn helper_main(args: &[String]) -> ! {
    let Some(bin) = args.first() else {
        sys::exit_now(127)
    };
    let run = || -> std::io::Result<std::convert::Infallible> {
        for (from, to) in [(0, 3), (1, 4), (2, 5)] {
            sys::dup2_raw(from, to)?;
        }
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        for fd in 0..3 {
            sys::dup2_raw(null.as_raw_fd(), fd)?;
        }
        drop(null);
        let argv = args
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(std::io::Error::other)?;
        let path = CString::new(bin.as_str()).map_err(std::io::Error::other)?;
        Ok(nix::unistd::execv(&path, &argv)?)
    };
    let _ = run();
    sys::exit_now(127)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_crius_logger_uri() {
        let (bin, args) = parse(
            "binary:///usr/bin/crius-logger?path=/var/log/pods/a%20b/c%26d.log&pidfile=/run/x.pid&max-line=16384",
        )
        .unwrap();
        assert_eq!(bin, PathBuf::from("/usr/bin/crius-logger"));
        assert_eq!(
            args,
            vec![
                "path",
                "/var/log/pods/a b/c&d.log",
                "pidfile",
                "/run/x.pid",
                "max-line",
                "16384"
            ]
        );
        assert!(parse("binary://relative/x").is_err());
        assert_eq!(parse("binary:///bin/l?flag").unwrap().1, vec!["flag"]);
        assert_eq!(unescape("100%"), "100%");
    }
}
