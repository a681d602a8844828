//! Sandbox fast path: the shim starts a pod's pause itself instead of
//! through runc (~50 ms saved per pod). See `plan` for what is covered and
//! `helper` for the process that becomes the pause. The shim makes the pod's
//! cgroup and moves the helper into it while the helper starts up: cgroupfs
//! dirs, or under a systemd `cgroupsPath` a transient scope over D-Bus
//! (`crate::systemd`), as runc's systemd driver places its init.

pub mod helper;
pub mod plan;

use std::{
    fs::OpenOptions,
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    cgroups,
    error::{Error, Result},
    systemd::{self, ScopeName},
};

/// Env switch: `CRIUS_SHIM_SANDBOX_FASTPATH=0` sends every sandbox to runc.
pub const ENV_SWITCH: &str = "CRIUS_SHIM_SANDBOX_FASTPATH";

/// What `delete` (after a shim death) needs to clean a fast-path sandbox up.
pub const RECORD_FILE: &str = "crius-fastpath.json";

pub fn enabled() -> bool {
    std::env::var(ENV_SWITCH).map_or(true, |v| v != "0")
}

/// A fast-path task as the shim holds it.
pub struct FastTask {
    pub cgroups: Vec<PathBuf>,
    /// The systemd scope holding the pause, when its cgroup is one.
    pub scope: Option<String>,
    start: Option<ChildStdin>,
    report: Option<BufReader<ChildStdout>>,
}

#[derive(Serialize, Deserialize)]
pub struct Record {
    pub pid: i32,
    pub starttime: u64,
    pub cgroups: Vec<PathBuf>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// Removes a gone pause's cgroup: its systemd scope, or the cgroupfs dirs the shim made.
pub async fn release(cgroups: &[PathBuf], scope: Option<&str>) {
    match scope {
        Some(unit) => {
            if let Err(e) = systemd::stop_scope(unit).await {
                tracing::warn!(unit, error = %e, "scope not stopped");
            }
        }
        None => cgroups::remove(cgroups).await,
    }
}

/// Start time of `pid` (field 22 of /proc/pid/stat), to recognise it later.
pub fn starttime(pid: i32) -> Option<u64> {
    starttime_of(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn starttime_of(stat: &str) -> Option<u64> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split(' ').nth(19)?.parse().ok()
}

/// Creates the pause: cgroup, helper, namespaces, everything up to the exec,
/// which waits for [`FastTask::start`]. Returns the task and the pause pid.
pub async fn create(
    id: &str,
    bundle: &Path,
    spec: &Value,
    oom_clamp: impl Fn(i64) -> i64,
) -> std::result::Result<Result<(FastTask, i32)>, String> {
    let (mut plan, cgroup_path, resources) = plan::plan(spec, bundle)?;
    plan.oom_score_adj = plan.oom_score_adj.map(oom_clamp);
    let scope = cgroup_path.as_deref().and_then(systemd::parse);
    if scope.is_some() && !cgroups::is_v2() {
        return Err("a systemd cgroup on a host that is not cgroup v2 only".into());
    }
    Ok(spawn(id, bundle, plan, cgroup_path, scope, resources).await)
}

/// Moves the helper `pid` into its new scope; returns the scope's cgroup directory.
async fn place(
    id: &str,
    scope: &ScopeName,
    pid: u32,
    resources: &plan::Resources,
) -> Result<PathBuf> {
    systemd::start_scope(scope, pid, &format!("crius sandbox {id}"), resources).await?;
    let dir = cgroups::v2_dir_of(pid)?;
    if !dir.ends_with(&scope.unit) {
        return Err(Error::FailedPrecondition(format!(
            "pause helper {pid} is in {}, not in {}",
            dir.display(),
            scope.unit
        )));
    }
    Ok(dir)
}

/// Makes the cgroupfs cgroup `path`, applies `resources` and moves the helper `pid` into it.
/// Returns its directories, also when the move failed (they are the caller's to remove, once
/// the helper is gone). Off the runtime's thread: the first move into a new cgroup waits for an
/// RCU grace period (milliseconds; `hack/bench/cgroup-join`).
async fn join_new(
    path: String,
    resources: plan::Resources,
    pid: u32,
) -> (Vec<PathBuf>, Result<()>) {
    let joined = tokio::task::spawn_blocking(move || {
        let dirs = cgroups::setup(&path, &resources)?;
        let joined = cgroups::join(&dirs, pid);
        Ok::<_, Error>((dirs, joined))
    })
    .await
    .map_err(|e| Error::Other(e.to_string()));
    match joined {
        Ok(Ok((dirs, joined))) => (dirs, joined),
        Ok(Err(e)) | Err(e) => (Vec::new(), Err(e)),
    }
}

/// Ends a helper that was not moved into its cgroup (it has not forked yet). If it had
/// failed on its own first, its reason is the error to give rather than `e`.
async fn abandon(mut child: Child, start: Option<ChildStdin>, out: ChildStdout, e: Error) -> Error {
    let _ = child.kill();
    drop(start);
    // It cannot have forked (it waits for the byte it was not sent): its report ends at its
    // `error` line or at its exit.
    let said = tokio::task::spawn_blocking(move || read_report(out).3)
        .await
        .ok()
        .flatten();
    match said {
        Some(why) => Error::FailedPrecondition(format!("sandbox fast path: {why}")),
        None => e,
    }
}

/// Reads the helper's report pipe until it has said both `pid <n>` and `ready`, or `error
/// <msg>`, or closed: (reader, pid, ready, error).
fn read_report(out: ChildStdout) -> (BufReader<ChildStdout>, Option<i32>, bool, Option<String>) {
    let mut reader = BufReader::new(out);
    let (mut pid, mut done, mut err) = (None, false, None);
    let mut line = String::new();
    while !(done && pid.is_some()) && err.is_none() {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let l = line.trim();
        if let Some(p) = l.strip_prefix("pid ") {
            pid = p.parse::<i32>().ok();
        } else if l == "ready" {
            done = true;
        } else if let Some(e) = l.strip_prefix("error ") {
            err = Some(e.to_string());
        }
    }
    (reader, pid, done, err)
}

async fn spawn(
    id: &str,
    bundle: &Path,
    mut plan: plan::Plan,
    cgroup_path: Option<String>,
    scope: Option<ScopeName>,
    resources: plan::Resources,
) -> Result<(FastTask, i32)> {
    plan.await_cgroup = scope.is_some() || cgroup_path.is_some();
    let json = serde_json::to_string(&plan).map_err(|e| Error::Other(e.to_string()))?;
    let exe = std::env::current_exe().map_err(Error::io("current exe"))?;
    // Read-write: the pause's stdin and stdout too, and the helper may not be able to open
    // it itself once the pod's device rules apply to it.
    let devnull = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(Error::io("open /dev/null"))?;
    let mut child = Command::new(exe)
        .arg(helper::HELPER_ARG)
        .arg(json)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(devnull)
        .spawn()
        .map_err(Error::io("spawn pause helper"))?;
    let mut start = child.stdin.take();
    let Some(out) = child.stdout.take() else {
        let _ = child.kill();
        return Err(Error::Other("helper has no stdout".into()));
    };
    // The helper starts up (exec, joined namespaces) while its cgroup is made and it is moved
    // in; it waits for the byte below before anything the cgroup matters to.
    let (dirs, moved) = match (&scope, cgroup_path) {
        (Some(s), _) => match place(id, s, child.id(), &resources).await {
            Ok(dir) => (vec![dir], Ok(())),
            Err(e) => (Vec::new(), Err(e)),
        },
        (None, Some(p)) => join_new(p, resources, child.id()).await,
        (None, None) => (Vec::new(), Ok(())),
    };
    let unit = scope.map(|s| s.unit);
    let moved = moved.and_then(|()| match (plan.await_cgroup, start.as_mut()) {
        (false, _) => Ok(()),
        (true, Some(s)) => s
            .write_all(b"p")
            .map_err(Error::io("let the pause helper go on")),
        (true, None) => Err(Error::Other("helper has no stdin".into())),
    });
    if let Err(e) = moved {
        // The helper first: its cgroup (dirs, or a scope) empties only once it is gone.
        let e = abandon(child, start, out, e).await;
        release(&dirs, unit.as_deref()).await;
        return Err(e);
    }
    // The helper's own exit (when it forked) is parked by the reaper and
    // expires; only the pause's pid is watched.
    let (reader, pid, done, err) = tokio::task::spawn_blocking(move || read_report(out))
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
    match (pid, done, err) {
        (Some(pid), true, None) => {
            let record = Record {
                pid,
                starttime: starttime(pid).unwrap_or(0),
                cgroups: dirs.clone(),
                scope: unit.clone(),
            };
            if let Ok(text) = serde_json::to_vec(&record) {
                let _ = std::fs::write(bundle.join(RECORD_FILE), text);
            }
            tracing::info!(container_id = id, pid, "sandbox created on the fast path");
            Ok((
                FastTask {
                    cgroups: dirs,
                    scope: unit,
                    start,
                    report: Some(reader),
                },
                pid,
            ))
        }
        (pid, _, err) => {
            if let Some(pid) = pid {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            drop(start);
            release(&dirs, unit.as_deref()).await;
            Err(Error::FailedPrecondition(format!(
                "sandbox fast path: {}",
                err.unwrap_or_else(|| "helper exited without report".into())
            )))
        }
    }
}

impl FastTask {
    /// Removes the pause's cgroup (scope or dirs); the pause must be gone.
    pub async fn release(&self) {
        release(&self.cgroups, self.scope.as_deref()).await;
    }

    /// Lets the pause exec; fails if the exec failed.
    pub async fn start(&mut self) -> Result<()> {
        let mut start = self
            .start
            .take()
            .ok_or_else(|| Error::FailedPrecondition("already started".into()))?;
        let reader = self.report.take();
        let res = tokio::task::spawn_blocking(move || {
            start
                .write_all(b"1")
                .map_err(Error::io("signal pause start"))?;
            drop(start);
            let mut rest = String::new();
            if let Some(mut r) = reader {
                let _ = r.read_to_string(&mut rest);
            }
            match rest.trim().strip_prefix("error ") {
                Some(e) => Err(Error::FailedPrecondition(e.to_string())),
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| Error::Other(e.to_string()))?;
        res
    }

    /// Drops the start pipe: a never-started pause then exits on its own.
    pub fn abandon(&mut self) {
        self.start.take();
        self.report.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starttime_field() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(starttime_of(stat), Some(987654));
        assert_eq!(starttime_of("42 (x)"), None);
        assert_eq!(starttime_of("garbage"), None);
    }
}
