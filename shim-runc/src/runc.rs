//! Runs the `runc` binary.
//!
//! runc is invoked directly rather than through the `runc` crate: that crate
//! waits on its children itself, which races with the shim's own reaper (the
//! shim must be the only `waitpid` caller, see `reaper`), and a plain
//! `Command` lets the container's stdio be handed to `runc create`/`exec`
//! as-is. Errors come from runc's JSON log (`--log`), which is the only place
//! runc writes them when its stdio belongs to the container.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use crate::{
    error::{Error, Result},
    reaper,
};

/// File in the bundle recording a non-default runc binary/root.
const SAVED: &str = "crius-runc.json";

#[derive(Clone, Debug)]
pub struct Runc {
    pub binary: PathBuf,
    pub root: PathBuf,
    /// `--systemd-cgroup`: runc asks systemd for the container's scope (`slice:prefix:name`
    /// cgroup paths); every call on that container must say so.
    pub systemd: bool,
}

/// Stdio for a runc invocation whose stdio the container inherits.
pub struct ProcStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl ProcStdio {
    pub fn null() -> Self {
        ProcStdio {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        }
    }
}

impl Runc {
    /// Same defaults as containerd's runc-v2: `runc` on PATH, state under
    /// `/run/containerd/runc/<namespace>`, overridable by runtime options.
    pub fn new(namespace: &str, binary: &str, root: &str) -> Self {
        let binary = if binary.is_empty() { "runc" } else { binary };
        let root = if root.is_empty() {
            "/run/containerd/runc"
        } else {
            root
        };
        Runc {
            binary: PathBuf::from(binary),
            root: Path::new(root).join(namespace),
            systemd: false,
        }
    }

    /// Records binary, root and cgroup manager in the bundle (see [`Runc::load`]).
    pub fn save(&self, bundle: &Path) {
        let v = serde_json::json!({ "binary": self.binary, "root": self.root, "systemd": self.systemd });
        if let Err(e) = std::fs::write(bundle.join(SAVED), v.to_string()) {
            tracing::warn!(bundle = %bundle.display(), error = %e, "cannot record runc options");
        }
    }

    /// The runc a bundle was created with, if it was not the default.
    pub fn load(bundle: &Path) -> Option<Self> {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bundle.join(SAVED)).ok()?).ok()?;
        Some(Runc {
            binary: PathBuf::from(v.get("binary")?.as_str()?),
            root: PathBuf::from(v.get("root")?.as_str()?),
            systemd: v.get("systemd").and_then(|s| s.as_bool()).unwrap_or(false),
        })
    }

    fn command(&self, log: Option<&Path>) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root);
        if self.systemd {
            cmd.arg("--systemd-cgroup");
        }
        if let Some(log) = log {
            cmd.arg("--log").arg(log).arg("--log-format").arg("json");
        }
        cmd
    }

    /// Runs a command whose output the shim reads (state, ps, kill, ...).
    pub async fn output(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Result<Vec<u8>> {
        let mut cmd = self.command(None);
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let name = self.cmd_name(args.first().copied().unwrap_or_default());
        let mut child = cmd.spawn().map_err(|e| self.spawn_error(e))?;
        let exited = reaper::watch(child.id() as i32);
        let input = child.stdin.take();
        let out = child.stdout.take();
        let err = child.stderr.take();
        let io = tokio::task::spawn_blocking(move || {
            if let (Some(mut w), Some(data)) = (input, stdin) {
                use std::io::Write;
                let _ = w.write_all(&data);
            }
            let mut o = Vec::new();
            let mut e = Vec::new();
            if let Some(mut out) = out {
                let _ = out.read_to_end(&mut o);
            }
            if let Some(mut err) = err {
                let _ = err.read_to_end(&mut e);
            }
            (o, e)
        });
        let exit = bounded(&name, child.id() as i32, exited, OUTPUT_TIMEOUT).await?;
        let (stdout, stderr) = io.await.map_err(|e| Error::Other(format!("{name}: {e}")))?;
        if exit.status != 0 {
            return Err(Error::Runc {
                cmd: name,
                msg: last_error(&String::from_utf8_lossy(&stderr)),
            });
        }
        Ok(stdout)
    }

    /// Runs `create`/`exec`/`run`-like commands whose stdio is the container's.
    /// Returns once runc itself has exited.
    pub async fn detached(&self, args: &[String], stdio: ProcStdio, log: &Path) -> Result<()> {
        let _ = std::fs::remove_file(log);
        let mut cmd = self.command(Some(log));
        cmd.args(args)
            .stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        let name = self.cmd_name(args.first().map(String::as_str).unwrap_or_default());
        let child = cmd.spawn().map_err(|e| self.spawn_error(e))?;
        // Dropping our copies of the container's pipe ends now matters: the
        // output copies only see EOF once the container alone holds them.
        drop(cmd);
        let pid = child.id() as i32;
        let exit = bounded(&name, pid, reaper::watch(pid), DETACHED_TIMEOUT).await?;
        if exit.status != 0 {
            let log_text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(Error::Runc {
                cmd: name,
                msg: last_json_error(&log_text)
                    .unwrap_or_else(|| format!("exit status {}", exit.status)),
            });
        }
        Ok(())
    }

    /// `runc create`, `crun kill`: errors name the binary that failed (runc or a handler's).
    fn cmd_name(&self, subcommand: &str) -> String {
        let bin = self.binary.file_name().unwrap_or(self.binary.as_os_str());
        format!("{} {subcommand}", bin.to_string_lossy())
    }

    fn spawn_error(&self, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::FailedPrecondition(format!("OCI runtime binary {:?} not found", self.binary))
        } else {
            Error::Io {
                context: format!("spawn {:?}", self.binary),
                source: e,
            }
        }
    }
}

/// How long a runc command may take before the shim gives up on it. runc normally answers in
/// milliseconds; one stuck on a hung filesystem or a frozen cgroup would otherwise hold the
/// request — and the pod's other containers waiting behind it — forever.
const OUTPUT_TIMEOUT: Duration = Duration::from_secs(60);
/// create/exec/start set the process up and return: the same bound, doubled for a loaded node.
const DETACHED_TIMEOUT: Duration = Duration::from_secs(120);

/// Wait for runc's exit for at most `limit`; past it, SIGKILL runc and fail the call.
async fn bounded(
    name: &str,
    pid: i32,
    exited: tokio::sync::oneshot::Receiver<reaper::Exit>,
    limit: Duration,
) -> Result<reaper::Exit> {
    match tokio::time::timeout(limit, exited).await {
        Ok(Ok(exit)) => Ok(exit),
        Ok(Err(_)) => Err(Error::Other(format!("{name}: exit lost"))),
        Err(_) => {
            tracing::error!(
                cmd = name,
                pid,
                ?limit,
                "OCI runtime did not finish in time; killing it"
            );
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            Err(Error::Other(format!(
                "{name} did not finish within {}s; killed",
                limit.as_secs()
            )))
        }
    }
}

/// The last non-empty line of runc's stderr, which carries its error.
fn last_error(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| "no output".into())
}

/// The last `"level":"error"` message of runc's JSON log.
pub fn last_json_error(log: &str) -> Option<String> {
    log.lines().rev().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        if v.get("level")?.as_str()? == "error" {
            Some(v.get("msg")?.as_str()?.to_string())
        } else {
            None
        }
    })
}

/// Whether a runc error says the container is already gone.
pub fn is_not_exist(e: &Error) -> bool {
    matches!(e, Error::Runc { msg, .. } if names_missing_container(msg))
}

/// The OCI runtime's "no such container": runc's "container does not exist"; crun's failure to
/// open the container's state ("error opening file `<root>/<id>/status`: No such file or
/// directory", "cannot open directory '<root>/<id>': No such file or directory").
pub fn names_missing_container(msg: &str) -> bool {
    let lower = msg.to_lowercase();
    lower.contains("not exist")
        || (lower.contains("no such file or directory")
            && (lower.contains("error opening file") || lower.contains("cannot open directory")))
}

#[cfg(test)]
mod tests {

    #[test]
    fn runc_and_crun_say_no_such_container() {
        use super::names_missing_container as gone;
        assert!(gone("container does not exist"));
        assert!(gone(
            "error opening file `/run/containerd/runc/crius/c1/status`: No such file or directory"
        ));
        assert!(gone(
            "cannot open directory '/run/containerd/runc/crius/c1': No such file or directory"
        ));
        // The container's own binary missing is not the container missing.
        assert!(!gone("exec: \"app\": executable file not found in $PATH"));
        assert!(!gone("open /x/config.json: no such file or directory"));
    }

    #[tokio::test]
    async fn a_stuck_runc_is_killed_after_the_limit() {
        use std::os::unix::process::ExitStatusExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        // The exit is never reported: the limit must end the wait.
        let (_report, exited) = tokio::sync::oneshot::channel();
        let e = bounded(
            "state",
            child.id() as i32,
            exited,
            Duration::from_millis(50),
        )
        .await
        .expect_err("past the limit");
        assert!(e.to_string().contains("did not finish"), "{e}");
        let st = child.wait().expect("wait");
        assert_eq!(st.signal(), Some(9), "{st:?}");
    }

    use super::*;

    #[test]
    fn json_log_error() {
        let log = r#"{"level":"info","msg":"x"}
{"level":"error","msg":"container_linux.go:380: starting container process caused: exec: \"nope\": executable file not found in $PATH"}
"#;
        assert!(last_json_error(log)
            .unwrap()
            .contains("executable file not found"));
        assert_eq!(last_json_error("garbage"), None);
    }

    #[test]
    fn saved_options_round_trip() {
        let d = tempfile::tempdir().unwrap();
        assert!(Runc::load(d.path()).is_none());
        let mut r = Runc::new("k8s.io", "/opt/runc", "/run/x");
        r.save(d.path());
        let back = Runc::load(d.path()).unwrap();
        assert_eq!(back.binary, PathBuf::from("/opt/runc"));
        assert_eq!(back.root, PathBuf::from("/run/x/k8s.io"));
        assert!(!back.systemd);
        r.systemd = true;
        r.save(d.path());
        let back = Runc::load(d.path()).unwrap();
        assert!(back.systemd);
        let args: Vec<_> = back
            .command(None)
            .get_args()
            .map(|a| a.to_owned())
            .collect();
        assert!(args.iter().any(|a| a == "--systemd-cgroup"), "{args:?}");
    }

    #[test]
    fn stderr_error() {
        assert_eq!(last_error("a\nb\n\n"), "b");
        assert_eq!(last_error(""), "no output");
    }
}
