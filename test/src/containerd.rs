//! A private containerd for one test: config from `hack/containerd/config.sh` (the same the dev stack
//! uses), root/state/socket in the test's dir, the crius shim from `target/debug` on its PATH. The
//! containerd version is [`ContainerdVersion::selected`] (`CRIUS_CONTAINERD`) unless the test names one.

use crate::paths::ContainerdVersion;
use crate::{paths, process};
use anyhow::{bail, Context};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to run the private containerd.
#[derive(Debug, Clone)]
pub struct ContainerdOptions {
    /// Enable containerd's own CRI plugin (slower start; needed to test the shim under it).
    pub cri: bool,
    /// CNI conflist dir for the CRI plugin.
    pub cni_conf_dir: Option<PathBuf>,
    /// The CRI plugin's default runtime: `crius` (io.containerd.crius.v2) or `runc` (io.containerd.runc.v2).
    pub default_runtime: String,
    /// This containerd whatever `CRIUS_CONTAINERD` says (tests of what only one version has, such
    /// as 2.x's Sandbox API); `None`: [`ContainerdVersion::selected`].
    pub version: Option<ContainerdVersion>,
    /// The CRI plugin's runtimes get `SystemdCgroup = true` (for systemd hosts).
    pub systemd_cgroup: bool,
}

impl Default for ContainerdOptions {
    fn default() -> Self {
        ContainerdOptions {
            cri: false,
            cni_conf_dir: None,
            default_runtime: "crius".into(),
            version: None,
            systemd_cgroup: false,
        }
    }
}

/// A running private containerd. Stopped, with everything it ran, by its [`crate::TestEnv`].
pub struct Containerd {
    dir: PathBuf,
    version: ContainerdVersion,
    child: Option<Child>,
}

impl Containerd {
    pub(crate) fn start(dir: PathBuf, opts: &ContainerdOptions) -> crate::Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let certs_d = dir.join("certs.d");
        process::output(Command::new(paths::hack("containerd/certs.sh")).arg(&certs_d))?;
        let version = opts.version.unwrap_or_else(ContainerdVersion::selected);
        let mut cfg = Command::new(paths::hack("containerd/config.sh"));
        cfg.env("CRIUS_CONTAINERD", version.as_str())
            .env("CTRD_CRIUS_SHIM", paths::shim_bin())
            .env("CTRD_DIR", &dir)
            .env("CTRD_CRI", if opts.cri { "1" } else { "0" })
            .env(
                "CTRD_SYSTEMD_CGROUP",
                if opts.systemd_cgroup { "1" } else { "0" },
            )
            .env("CTRD_CERTS_D", &certs_d)
            .env("CTRD_DEFAULT_RUNTIME", &opts.default_runtime);
        if let Some(cni) = &opts.cni_conf_dir {
            cfg.env("CTRD_CNI_CONF_DIR", cni);
        }
        let config = process::output(&mut cfg)?;
        std::fs::write(dir.join("config.toml"), config).context("writing containerd config")?;
        let mut me = Containerd {
            dir,
            version,
            child: None,
        };
        me.spawn()?;
        Ok(me)
    }

    fn spawn(&mut self) -> crate::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .context("opening containerd.log")?;
        // The crius shim first, then this version's own runc shim, then the system's tools (runc).
        let mut dirs = vec![paths::bin_dir()];
        dirs.extend(self.version.bin_dir());
        let system =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
        dirs.extend(std::env::split_paths(&system));
        let path = std::env::join_paths(dirs).context("joining PATH")?;
        let child = Command::new(self.version.containerd())
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: a ^C of the test run must not reach it before teardown does.
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawning {}", self.version.containerd().display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.socket().exists()
                && self
                    .ctr("default")
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "containerd exited at start ({status}):\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "containerd did not answer within 30 s:\n{}",
            self.log_tail()
        )
    }

    /// The instance dir (config, root, state, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Which containerd this is.
    pub fn version(&self) -> ContainerdVersion {
        self.version
    }

    /// The gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// The registry hosts dir this containerd pulls with (plain http to the local registry).
    pub fn certs_d(&self) -> PathBuf {
        self.dir.join("certs.d")
    }

    /// containerd's pid while it runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// `ctr -a <socket> -n <namespace>`, ready for more args.
    pub fn ctr(&self, namespace: &str) -> Command {
        let mut c = Command::new(self.version.ctr());
        c.arg("-a").arg(self.socket()).arg("-n").arg(namespace);
        c
    }

    /// Run `ctr` with `args`; its stdout, or an error with its stderr.
    pub fn ctr_output(&self, namespace: &str, args: &[&str]) -> crate::Result<String> {
        process::output(self.ctr(namespace).args(args))
    }

    /// Pull `image` from the local registry into `namespace`, the real distribution path.
    pub fn pull(&self, namespace: &str, image: &str) -> crate::Result<()> {
        let hosts = self.certs_d();
        let hosts = hosts.to_string_lossy();
        self.ctr_output(
            namespace,
            &[
                "images",
                "pull",
                "--plain-http",
                "--hosts-dir",
                &hosts,
                image,
            ],
        )
        .map(|_| ())
    }

    /// Build crius's static pause (`paths::pause_bin`) into an OCI image with umoci under `work` and
    /// import it into `k8s.io` as the CRI plugin's sandbox image (the local registry has that image
    /// only after a release build, and tests must not push to it).
    pub fn import_pause(&self, work: &Path) -> crate::Result<()> {
        let dir = work.join("pause-image");
        let (layout, bundle) = (dir.join("oci"), dir.join("bundle"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let image = format!("{}:latest", layout.display());
        process::output(
            Command::new("umoci")
                .args(["init", "--layout"])
                .arg(&layout),
        )?;
        process::output(Command::new("umoci").args(["new", "--image", &image]))?;
        process::output(
            Command::new("umoci")
                .args(["unpack", "--image", &image])
                .arg(&bundle),
        )?;
        std::fs::copy(paths::pause_bin(), bundle.join("rootfs/pause")).context("copying pause")?;
        process::output(
            Command::new("umoci")
                .args(["repack", "--image", &image])
                .arg(&bundle),
        )?;
        process::output(Command::new("umoci").args([
            "config",
            "--image",
            &image,
            "--config.entrypoint",
            "/pause",
        ]))?;
        let tar = dir.join("pause.tar");
        process::output(
            Command::new("tar")
                .arg("-C")
                .arg(&layout)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        )?;
        let name = crate::registry::PAUSE.trim_end_matches(":latest");
        process::output(
            self.ctr("k8s.io")
                .args(["images", "import", "--base-name", name])
                .arg(&tar),
        )
        .map(|_| ())
    }

    /// The last lines of containerd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Crash containerd (SIGKILL), leaving its shims and containers running.
    pub fn kill9(&mut self) -> crate::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("killing containerd")?;
            child.wait().context("reaping containerd")?;
        }
        Ok(())
    }

    /// Start containerd again with the same config (after [`Containerd::kill9`]).
    pub fn restart(&mut self) -> crate::Result<()> {
        if self.child.is_some() {
            bail!("containerd is still running");
        }
        self.spawn()
    }

    /// Kill and delete every task and container in every namespace (so shims exit).
    pub(crate) fn remove_everything(&self) {
        let Ok(namespaces) = self.ctr_output("default", &["namespaces", "ls", "-q"]) else {
            return;
        };
        for ns in namespaces.lines().map(str::trim).filter(|s| !s.is_empty()) {
            let tasks = self
                .ctr_output(ns, &["tasks", "ls", "-q"])
                .unwrap_or_default();
            for task in tasks.lines().filter(|s| !s.is_empty()) {
                let _ = self.ctr_output(ns, &["tasks", "kill", "-a", "-s", "SIGKILL", task]);
            }
            for task in tasks.lines().filter(|s| !s.is_empty()) {
                let _ = self.ctr_output(ns, &["tasks", "delete", "-f", task]);
            }
            let containers = self
                .ctr_output(ns, &["containers", "ls", "-q"])
                .unwrap_or_default();
            for c in containers.lines().filter(|s| !s.is_empty()) {
                let _ = self.ctr_output(ns, &["containers", "delete", c]);
            }
        }
    }

    /// Stop containerd (SIGTERM, then SIGKILL), kill shims that still name its socket, unmount what
    /// is left under its dir.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        process::kill_matching(&self.socket().to_string_lossy());
        process::unmount_under(&self.dir);
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
    }
}
