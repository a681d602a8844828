//! Shared set-up of the sandboxer integration tests.
#![allow(dead_code)]

use crius_sandboxer::{DnsConfig, OomScorePolicy, PauseSource, PodConfig, SandboxerConfig};
use crius_test::{paths, CniNetwork, ContainerdOptions, TestEnv};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The pause runtime under test.
pub fn runtime() -> String {
    std::env::var("CRIUS_TEST_SANDBOX_RUNTIME").unwrap_or_else(|_| "io.containerd.crius.v2".into())
}

/// Start the env's containerd and CNI network; a sandboxer config pointing at both, with every
/// sandboxer path in the test dir. None (after a SKIP line) when the static pause is not built.
pub fn start(env: &mut TestEnv) -> Option<(SandboxerConfig, CniNetwork)> {
    let pause = paths::pause_bin();
    if !pause.exists() {
        crius_test::skip(format!(
            "{}: {} missing (hack/build.sh builds it)",
            env.name(),
            pause.display()
        ));
        return None;
    }
    let net = env.cni().expect("CNI network");
    let socket = env
        .containerd(ContainerdOptions::default())
        .expect("containerd")
        .socket();
    Some((config(env, &net, &socket), net))
}

pub fn config(env: &TestEnv, net: &CniNetwork, socket: &Path) -> SandboxerConfig {
    let d = env.dir().join("sb");
    SandboxerConfig {
        state_dir: d.join("state"),
        run_dir: d.join("run"),
        cni_conf_dir: net.conf_dir.clone(),
        cni_bin_dirs: vec!["/usr/lib/cni".into(), "/opt/cni/bin".into()],
        cni_cache_dir: d.join("cni-cache"),
        cni_timeout: Duration::from_secs(30),
        containerd_address: socket.to_path_buf(),
        containerd_namespace: "crius".into(),
        runtime: runtime(),
        pause: PauseSource::Binary(paths::pause_bin()),
        oom_score: OomScorePolicy::Auto,
        stop_grace: Duration::from_secs(3),
        // Marked with the test id: the leak check knows these cgroups as the test's.
        default_cgroup_parent: format!("/crius-{}", env.id()),
        cgroup_driver: crius_sandboxer::cgroup::CgroupDriver::Cgroupfs,
        snapshotter: "overlayfs".into(),
    }
}

pub fn pod(name: &str) -> PodConfig {
    let mut c = PodConfig::default();
    c.metadata.name = name.into();
    c.metadata.namespace = "default".into();
    c.metadata.uid = format!("uid-{name}");
    c.hostname = name.into();
    c.dns = Some(DnsConfig {
        servers: vec!["10.96.0.10".into()],
        searches: vec!["default.svc.cluster.local".into()],
        options: vec!["ndots:5".into()],
    });
    c
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// One ping from inside `netns` (host busybox, entered with nsenter).
pub fn ping(netns: &Path, ip: IpAddr) -> Result<(), String> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args(["busybox", "ping", "-c", "1", "-W", "2"])
        .arg(ip.to_string())
        .output()
        .map_err(|e| format!("nsenter: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ping {ip} from {}: {}{}",
            netns.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The sandboxer's default cgroup parent (`/crius-<test id>`) is made by runc for the first pod and,
/// like `/crius` on a node, outlives the pods: the test removes it before the leak check.
pub fn remove_cgroup_parent(env: &TestEnv) {
    let name = format!("crius-{}", env.id());
    let Ok(roots) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for root in roots.filter_map(|e| e.ok()) {
        let _ = std::fs::remove_dir(root.path().join(&name));
    }
}

/// Remove the cgroup parent, then run the env's leak check.
pub fn finish(mut env: TestEnv) {
    remove_cgroup_parent(&env);
    std::thread::sleep(Duration::from_millis(500));
    if !env.leaks_now().is_empty() {
        if let Some(c) = env.running_containerd() {
            eprintln!("containerd log (leaks ahead):\n{}", c.log_tail());
        }
    }
    env.finish().expect("no leaks");
}
