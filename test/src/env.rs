//! [`TestEnv`]: one test's private world — temp dir, containerd, CNI network, services — and the leak
//! check that runs when it ends.

use crate::containerd::{Containerd, ContainerdOptions};
use crate::leaks::{Leak, Marks, Snapshot};
use crate::{paths, process};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Tools every integration test needs.
const TOOLS: &[&str] = &["containerd", "ctr", "runc", "ip"];

/// A CNI network of the test's own (see `hack/containerd/cni.sh`).
#[derive(Debug, Clone)]
pub struct CniNetwork {
    /// Dir holding the conflist: give it to containerd's CRI plugin or the sandboxer.
    pub conf_dir: PathBuf,
    /// Network name in the conflist.
    pub name: String,
    /// Bridge name (≤ 15 bytes).
    pub bridge: String,
    /// IPv4 subnet, e.g. `10.123.45.0/24`.
    pub subnet: String,
    /// host-local's data dir: one file per leased IP.
    pub lease_dir: PathBuf,
}

/// One test's environment. See the crate docs.
pub struct TestEnv {
    name: String,
    dir: tempfile::TempDir,
    marks: Marks,
    baseline: Snapshot,
    containerd: Option<Containerd>,
    services: Vec<(String, Child)>,
    finished: bool,
}

impl TestEnv {
    /// A new env, or `None` with one `SKIP:` line when this machine cannot run the test.
    pub fn new(name: &str) -> Option<TestEnv> {
        if !nix::unistd::Uid::effective().is_root() {
            crate::skip(format!(
                "{name}: needs root (mounts, namespaces, containerd)"
            ));
            return None;
        }
        if let Some(tool) = TOOLS.iter().find(|t| !process::have_tool(t)) {
            crate::skip(format!("{name}: `{tool}` not found (run hack/setup.sh)"));
            return None;
        }
        // A containerd asked for by name must be there: a skip would hide that it was never tested.
        let version = paths::ContainerdVersion::selected();
        if let Some(dir) = version.bin_dir() {
            assert!(
                dir.join("containerd").is_file() && dir.join("ctr").is_file(),
                "{name}: CRIUS_CONTAINERD={} but {} lacks containerd/ctr: run hack/containerd/fetch-2.1.sh",
                version.as_str(),
                dir.display()
            );
        }
        if let Err(stale) = paths::check_binaries_fresh() {
            panic!("{name}: {stale}");
        }
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("info")
            .try_init();
        let dir = match tempfile::Builder::new()
            .prefix("crius-test-")
            .tempdir_in("/tmp")
        {
            Ok(d) => d,
            Err(e) => panic!("{name}: creating a temp dir: {e}"),
        };
        let id = format!("ct{:06x}", rand_u32() & 0xff_ffff);
        let marks = Marks {
            dirs: vec![dir.path().to_path_buf()],
            ids: vec![id],
            strict: std::env::var("CRIUS_LEAK_CHECK").is_ok_and(|v| v == "strict"),
            ..Default::default()
        };
        let baseline = Snapshot::take(&[]);
        Some(TestEnv {
            name: name.to_string(),
            dir,
            marks,
            baseline,
            containerd: None,
            services: Vec::new(),
            finished: false,
        })
    }

    /// The test's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A short id unique to this test (8 bytes): name what you make with it (netns, cgroup parents,
    /// links) and the leak check will know it as the test's.
    pub fn id(&self) -> &str {
        &self.marks.ids[0]
    }

    /// The test's temp dir (removed at the end).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Start the test's private containerd (one per env); later calls return the running one.
    pub fn containerd(&mut self, opts: ContainerdOptions) -> crate::Result<&mut Containerd> {
        if self.containerd.is_none() {
            let c = Containerd::start(self.dir.path().join("containerd"), &opts)?;
            self.containerd = Some(c);
        }
        self.containerd.as_mut().context("containerd")
    }

    /// The running containerd, if started.
    pub fn running_containerd(&mut self) -> Option<&mut Containerd> {
        self.containerd.as_mut()
    }

    /// A CNI network of the test's own: bridge + host-local + portmap + loopback, own bridge, a /24
    /// out of 10.100.0.0–10.199.255.0 and a lease dir in the temp dir.
    pub fn cni(&mut self) -> crate::Result<CniNetwork> {
        let n = rand_u32();
        let net = CniNetwork {
            conf_dir: self.dir.path().join("cni/net.d"),
            name: format!("crius-test-{}", self.id()),
            bridge: format!("cb{}", &self.id()[2..]),
            subnet: format!("10.{}.{}.0/24", 100 + (n % 100), (n >> 8) & 0xff),
            lease_dir: self.dir.path().join("cni/leases"),
        };
        process::output(
            Command::new(paths::hack("containerd/cni.sh"))
                .arg(&net.conf_dir)
                .arg(&net.name)
                .arg(&net.bridge)
                .arg(&net.subnet)
                .arg(&net.lease_dir),
        )?;
        self.marks.bridges.push(net.bridge.clone());
        self.marks.lease_dirs.push(net.lease_dir.clone());
        Ok(net)
    }

    /// Count anything that carries `mark` as the test's own in the leak check.
    pub fn mark(&mut self, mark: impl Into<String>) {
        self.marks.ids.push(mark.into());
    }

    /// Start a long-running process of the test's (criusd, say); it gets SIGTERM, then SIGKILL after
    /// 10 s, before the leak check runs. Returns its pid.
    pub fn spawn_service(&mut self, name: &str, cmd: &mut Command) -> crate::Result<u32> {
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {name}: {cmd:?}"))?;
        let pid = child.id();
        self.services.push((name.to_string(), child));
        Ok(pid)
    }

    /// Stop a service started with [`TestEnv::spawn_service`] now (SIGTERM, or SIGKILL when
    /// `kill9`), and forget it.
    pub fn stop_service(&mut self, pid: u32, kill9: bool) -> crate::Result<()> {
        let Some(pos) = self.services.iter().position(|(_, c)| c.id() == pid) else {
            bail!("no service with pid {pid}");
        };
        let (_, child) = self.services.remove(pos);
        terminate(
            child,
            if kill9 {
                Duration::ZERO
            } else {
                Duration::from_secs(10)
            },
        );
        Ok(())
    }

    /// Stop everything, then run the leak check; leaks are the error. Everything found is removed
    /// either way, so one failing test does not poison the next.
    pub fn finish(mut self) -> crate::Result<()> {
        self.finished = true;
        let leaks = self.check_and_clean();
        if leaks.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = leaks.iter().map(|l| format!("  - {l}")).collect();
        bail!(
            "{}: the test left {} thing(s) behind:\n{}",
            self.name,
            leaks.len(),
            list.join("\n")
        )
    }

    /// Leak check only, no teardown: what the test has left so far (for tests of the check itself).
    pub fn leaks_now(&self) -> Vec<Leak> {
        self.leaks(self.marks.strict)
    }

    fn leaks(&self, strict: bool) -> Vec<Leak> {
        let mut marks = self.marks.clone();
        marks.allowed_pids = self.live_pids();
        marks.strict = strict;
        Snapshot::take(&self.marks.lease_dirs).leaks_since(&self.baseline, &marks)
    }

    /// Shims exit a moment after their last task is deleted, and CNI and the kernel tear links down
    /// asynchronously: give what is going away a few seconds before calling it a leak.
    fn settled_leaks(&self) -> Vec<Leak> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let leaks = self.leaks_now();
            if leaks.is_empty() || Instant::now() >= deadline {
                return leaks;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn live_pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.services.iter().map(|(_, c)| c.id() as i32).collect();
        pids.extend(self.containerd.as_ref().and_then(Containerd::pid));
        pids.push(std::process::id() as i32);
        pids
    }

    fn check_and_clean(&mut self) -> Vec<Leak> {
        for (_, child) in self.services.drain(..) {
            terminate(child, Duration::from_secs(10));
        }
        let leaks = self.settled_leaks();
        if let Some(c) = self.containerd.as_mut() {
            c.remove_everything();
            c.stop();
        }
        self.containerd = None;
        // Remove only what carries the test's marks: in strict mode the check also reports
        // unmarked newcomers, but those may belong to someone else on a shared machine.
        force_clean(&self.leaks(false));
        for bridge in &self.marks.bridges {
            let _ = Command::new("ip").args(["link", "del", bridge]).output();
        }
        process::unmount_under(self.dir.path());
        leaks
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let leaks = self.check_and_clean();
        if !leaks.is_empty() {
            eprintln!(
                "{}: (after a failure) removed {} leftover(s):",
                self.name,
                leaks.len()
            );
            for l in leaks {
                eprintln!("  - {l}");
            }
        }
    }
}

/// SIGTERM, wait up to `grace`, then SIGKILL.
fn terminate(mut child: Child, grace: Duration) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    if !grace.is_zero() {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Remove what the leak check found, so the machine is clean for the next test.
fn force_clean(leaks: &[Leak]) {
    for leak in leaks {
        if let Leak::Process(p) = leak {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    for leak in leaks {
        match leak {
            Leak::Mount(m) => {
                let _ =
                    nix::mount::umount2(m.mount_point.as_str(), nix::mount::MntFlags::MNT_DETACH);
                if m.fstype == "nsfs" {
                    let _ = std::fs::remove_file(&m.mount_point);
                }
            }
            Leak::Link(l) => {
                let _ = Command::new("ip").args(["link", "del", &l.name]).output();
            }
            Leak::Lease(f) => {
                let _ = std::fs::remove_file(f);
            }
            Leak::Process(_) | Leak::Cgroup(_) => {}
        }
    }
    // Deepest cgroups first; a cgroup can only go once its processes and children are gone.
    let mut cgroups: Vec<&PathBuf> = leaks
        .iter()
        .filter_map(|l| {
            if let Leak::Cgroup(c) = l {
                Some(c)
            } else {
                None
            }
        })
        .collect();
    cgroups.sort_by_key(|c| std::cmp::Reverse(c.components().count()));
    std::thread::sleep(Duration::from_millis(100));
    for c in cgroups {
        let _ = std::fs::remove_dir(c);
    }
}

/// Enough randomness for test names and subnets, without a crate for it.
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish() as u32
}
