//! Shared set-up of the criusctl and streaming integration tests: a containerd with its own CRI plugin
//! (runc runtime, the test's CNI network, crius's pause imported as the sandbox image), config files
//! in crictl's format, and `criusctl` run as a process against the CRI socket.
#![allow(dead_code)]

pub mod flows;

use crius_test::{paths, registry, ContainerdOptions, TestEnv};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The test's env, the CRI socket and a dir for config files and logs.
pub struct Setup {
    pub env: TestEnv,
    pub socket: PathBuf,
    pub dir: PathBuf,
    /// What `version` names the runtime.
    pub runtime_name: String,
    /// The server's log, shown when the leak check fails (criusd's).
    pub log: Option<PathBuf>,
}

/// crius's static pause as an OCI image (umoci), imported under the CRI plugin's sandbox image name:
/// tests never push to the shared registry.
/// containerd + CRI plugin (runc) + CNI + pause, or None after a SKIP line.
pub fn setup(name: &str) -> Option<Setup> {
    let mut env = TestEnv::new(name)?;
    for bin in [paths::criusctl_bin(), paths::pause_bin()] {
        if !bin.exists() {
            crius_test::skip(format!(
                "{name}: {} missing (hack/build.sh builds it)",
                bin.display()
            ));
            return None;
        }
    }
    for tool in ["umoci", "tar"] {
        if Command::new(tool).arg("--version").output().is_err() {
            crius_test::skip(format!("{name}: `{tool}` not found (run hack/setup.sh)"));
            return None;
        }
    }
    registry::ensure().expect("local registry");
    let net = env.cni().expect("CNI network");
    let dir = env.dir().join("ctl");
    std::fs::create_dir_all(dir.join("logs")).expect("dirs");
    let c = env
        .containerd(ContainerdOptions {
            cri: true,
            cni_conf_dir: Some(net.conf_dir.clone()),
            default_runtime: "runc".into(),
            ..Default::default()
        })
        .expect("containerd with CRI");
    c.import_pause(&dir).expect("pause image");
    let socket = c.socket();
    Some(Setup {
        env,
        socket,
        dir,
        runtime_name: "containerd".into(),
        log: None,
    })
}

/// A Setup on a CRI server the caller started (criusd): config files and logs go to `<env>/ctl`.
pub fn on_server(env: TestEnv, socket: PathBuf, runtime_name: &str, log: PathBuf) -> Setup {
    let dir = env.dir().join("ctl");
    std::fs::create_dir_all(dir.join("logs")).expect("dirs");
    Setup {
        env,
        socket,
        dir,
        runtime_name: runtime_name.into(),
        log: Some(log),
    }
}

impl Setup {
    /// `criusctl -r unix://<socket> --timeout 10s <args>`, not yet run.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(paths::criusctl_bin());
        c.arg("-r")
            .arg(format!("unix://{}", self.socket.display()))
            .args(["--timeout", "10s"])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Run criusctl; its output whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .output()
            .unwrap_or_else(|e| panic!("criusctl {args:?}: {e}"))
    }

    /// Run criusctl, insist on success, return stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "criusctl {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Write a file into the test's dir; its path as text.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).expect("write config");
        p.display().to_string()
    }

    /// A pod config (YAML, crictl's format) named `name`, its cgroups under the test's id.
    pub fn pod_yaml(&self, name: &str) -> String {
        let id = self.env.id();
        self.file(
            &format!("pod-{name}.yaml"),
            &format!(
                "metadata:\n  name: {name}\n  namespace: default\n  uid: uid-{name}-{id}\n  attempt: 0\nhostname: {name}\nlog_directory: {logs}\nlabels:\n  app: {name}\nlinux:\n  cgroup_parent: /{id}/{name}\n",
                logs = self.dir.join("logs").display()
            ),
        )
    }

    /// A container config (JSON, crictl's format) running `cmd` in busybox.
    pub fn ctr_json(&self, name: &str, cmd: &[&str], stdin: bool, tty: bool) -> String {
        let v = serde_json::json!({
            "metadata": {"name": name},
            "image": {"image": registry::BUSYBOX},
            "command": cmd,
            "log_path": format!("{name}.log"),
            "stdin": stdin,
            "tty": tty,
            "labels": {"ctr": name},
        });
        self.file(&format!("ctr-{name}.json"), &v.to_string())
    }

    /// Poll `criusctl inspect` until the container's state is `state` (0 created, 1 running,
    /// 2 exited); its status JSON (protojson: the state by name).
    pub fn wait_state(&self, ctr: &str, state: i64, secs: u64) -> serde_json::Value {
        let names = [
            "CONTAINER_CREATED",
            "CONTAINER_RUNNING",
            "CONTAINER_EXITED",
            "CONTAINER_UNKNOWN",
        ];
        let want = usize::try_from(state)
            .ok()
            .and_then(|i| names.get(i).copied());
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v: serde_json::Value =
                serde_json::from_str(&self.ok(&["inspect", ctr])).expect("inspect JSON");
            if v["status"]["state"].as_str() == want || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stop and remove every pod (with its containers), drop the cgroup parents, run the leak check.
    pub fn finish(self) {
        for pod in self.ok(&["pods", "-q"]).lines().filter(|l| !l.is_empty()) {
            self.ok(&["stopp", pod]);
            self.ok(&["rmp", pod]);
        }
        crius_test::leaks::remove_cgroup_tree(self.env.id());
        let log = self.log.clone();
        if let Err(e) = self.env.finish() {
            let tail = log
                .and_then(|l| std::fs::read_to_string(l).ok())
                .map(|t| {
                    t.lines()
                        .rev()
                        .take(40)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            panic!("{e:#}\n--- server log tail ---\n{tail}");
        }
    }
}
