//! Shared set-up of the criusd integration tests: the test's containerd and CNI
//! network, criusd as a real process with every path in the test dir, CRI clients.
#![allow(dead_code)]

use crius_proto::runtime as cri;
use crius_proto::tonic::Status;
use crius_test::cri::CriClient;
use crius_test::{paths, registry, CniNetwork, ContainerdOptions, TestEnv};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The container runtime under test (`CRIUS_TEST_RUNTIME`, default the crius shim).
/// `CRIUS_TEST_LOG_MODE=binary` runs criusd's log driver from `binary://` URIs instead of
/// fifos (needs a shim that supports them, e.g. `io.containerd.runc.v2`).
pub fn runtime() -> String {
    std::env::var("CRIUS_TEST_RUNTIME").unwrap_or_else(|_| "io.containerd.crius.v2".into())
}

/// A running criusd of the test's.
pub struct Criusd {
    pub pid: u32,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    pub dir: PathBuf,
    pub net: CniNetwork,
}

impl Criusd {
    /// criusd's log tail plus each container's log-driver errors (for failure messages).
    pub fn log_tail(&self) -> String {
        let mut out = self.criusd_log_tail();
        if let Ok(rd) = std::fs::read_dir(self.dir.join("lib/containers")) {
            for e in rd.flatten() {
                let err = std::fs::read_to_string(e.path().join("logger.err")).unwrap_or_default();
                if !err.is_empty() {
                    out.push_str(&format!(
                        "\n--- logger.err of {} ---\n{err}",
                        e.file_name().to_string_lossy()
                    ));
                }
            }
        }
        out
    }

    fn criusd_log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// Start containerd, a CNI network and criusd. None (after a SKIP line) when binaries are missing.
pub fn start(env: &mut TestEnv) -> Option<Criusd> {
    start_with(env, None)
}

/// As [`start`], with the pods' pause run from `pause_image` instead of the static binary.
pub fn start_with(env: &mut TestEnv, pause_image: Option<&str>) -> Option<Criusd> {
    start_full(env, pause_image, Some("cgroupfs"), "")
}

/// As [`start`], with `cgroup_driver` set to `driver` (None: unset, criusd detects it). The
/// other starts pin `cgroupfs`, which every host has, so their `/crius-<id>/…` parents are valid.
pub fn start_with_driver(env: &mut TestEnv, driver: Option<&str>) -> Option<Criusd> {
    start_full(env, None, driver, "")
}

/// As [`start`], with `extra` top-level config lines (e.g. `metrics_address = "…"`).
pub fn start_with_config(env: &mut TestEnv, extra: &str) -> Option<Criusd> {
    start_full(env, None, Some("cgroupfs"), extra)
}

fn start_full(
    env: &mut TestEnv,
    pause_image: Option<&str>,
    driver: Option<&str>,
    extra: &str,
) -> Option<Criusd> {
    for bin in [
        paths::criusd_bin(),
        paths::pause_bin(),
        paths::bin_dir().join("crius-logger"),
    ] {
        if !bin.exists() {
            crius_test::skip(format!(
                "{}: {} missing (hack/build.sh builds it)",
                env.name(),
                bin.display()
            ));
            return None;
        }
    }
    registry::ensure().expect("local registry");
    let net = env.cni().expect("CNI network");
    let (socket, certs_d, root) = {
        let c = env
            .containerd(ContainerdOptions::default())
            .expect("containerd");
        (c.socket(), c.certs_d(), c.dir().join("root"))
    };
    let dir = env.dir().join("criusd");
    std::fs::create_dir_all(&dir).expect("criusd dir");
    let config = dir.join("config.toml");
    let text = format!(
        r#"listen = "{sock}"
containerd_address = "{ctrd}"
containerd_root = "{root}"
state_dir = "{dir}/lib"
run_dir = "{dir}/run"
cni_conf_dir = "{cni}"
cni_bin_dirs = ["/usr/lib/cni", "/opt/cni/bin"]
registry_config_dir = "{certs}"
log_level = "info,crius_cri_front=debug"
pod_stop_grace_secs = 3
cdi_spec_dirs = ["{dir}/cdi-static", "{dir}/cdi"]
log_mode = "{log_mode}"
{driver}
{extra}

[pause]
{pause}

[runtime_handlers]
"" = "{rt}"
"#,
        sock = dir.join("crius.sock").display(),
        ctrd = socket.display(),
        root = root.display(),
        dir = dir.display(),
        cni = net.conf_dir.display(),
        certs = certs_d.display(),
        pause = match pause_image {
            Some(i) => format!("image = \"{i}\""),
            None => format!("binary = \"{}\"", paths::pause_bin().display()),
        },
        rt = runtime(),
        log_mode = std::env::var("CRIUS_TEST_LOG_MODE").unwrap_or_else(|_| "fifo".into()),
        driver = driver
            .map(|d| format!("cgroup_driver = \"{d}\""))
            .unwrap_or_default(),
    );
    std::fs::write(&config, text).expect("write criusd config");
    let mut d = Criusd {
        pid: 0,
        socket: dir.join("crius.sock"),
        config,
        log: dir.join("criusd.log"),
        dir,
        net,
    };
    spawn(env, &mut d);
    Some(d)
}

/// (Re)start the criusd process of `d`.
pub fn spawn(env: &mut TestEnv, d: &mut Criusd) {
    let _ = std::fs::remove_file(&d.socket);
    let log = File::options()
        .create(true)
        .append(true)
        .open(&d.log)
        .expect("criusd log");
    let pid = env
        .spawn_service(
            "criusd",
            Command::new(paths::criusd_bin())
                .arg("--config")
                .arg(&d.config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log),
        )
        .expect("spawn criusd");
    d.pid = pid;
}

pub async fn client(d: &Criusd) -> CriClient {
    crius_test::cri::connect(&d.socket)
        .await
        .unwrap_or_else(|e| panic!("connect to criusd: {e:#}\n{}", d.log_tail()))
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn pod_config(env: &TestEnv, name: &str, log_dir: &Path) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}-{}", env.id()),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: log_dir.display().to_string(),
        dns_config: Some(cri::DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["default.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        labels: [("app".to_string(), name.to_string())]
            .into_iter()
            .collect(),
        linux: Some(cri::LinuxPodSandboxConfig {
            // Marked with the test id: the leak check knows these cgroups as the test's.
            cgroup_parent: format!("/crius-{}/pod-{name}", env.id()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn container_config(name: &str, image: &str, cmd: &[&str]) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/0.log"),
        labels: [("ctr".to_string(), name.to_string())]
            .into_iter()
            .collect(),
        ..Default::default()
    }
}

/// Poll `f` until it returns Some, up to `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The test's pod log directory (`<test dir>/pod-logs`), created.
pub fn pod_log_dir(env: &TestEnv) -> PathBuf {
    let log_dir = env.dir().join("pod-logs");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    log_dir
}

/// PullImage `image`; its image ref, or the server's error.
pub async fn try_pull(c: &mut CriClient, image: &str) -> Result<String, Status> {
    c.image
        .pull_image(cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().image_ref)
}

/// PullImage `image`; its image ref (panics "pull <image>: …" on error).
pub async fn pull(c: &mut CriClient, image: &str) -> String {
    try_pull(c, image)
        .await
        .unwrap_or_else(|e| panic!("pull {image}: {e}"))
}

/// ImageStatus of `image`, not verbose.
pub async fn image_status(
    c: &mut CriClient,
    image: &str,
) -> Result<cri::ImageStatusResponse, Status> {
    c.image
        .image_status(cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .map(|r| r.into_inner())
}

/// The runtime's Status (not verbose): conditions and runtime handlers.
pub async fn runtime_status(c: &mut CriClient) -> cri::StatusResponse {
    c.runtime
        .status(cri::StatusRequest { verbose: false })
        .await
        .expect("status")
        .into_inner()
}

/// RunPodSandbox `cfg` with the default handler: the pod's id, or criusd's status (for the
/// bad-input cases).
pub async fn try_run_pod(c: &mut CriClient, cfg: &cri::PodSandboxConfig) -> Result<String, Status> {
    c.runtime
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(cfg.clone()),
            runtime_handler: String::new(),
        })
        .await
        .map(|r| r.into_inner().pod_sandbox_id)
}

/// RunPodSandbox `cfg` under runtime handler `handler`; the pod's id (panics with criusd's log
/// tail).
pub async fn run_pod_with(
    c: &mut CriClient,
    d: &Criusd,
    cfg: &cri::PodSandboxConfig,
    handler: &str,
) -> String {
    c.runtime
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(cfg.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("run pod ({handler}): {e}\n{}", d.log_tail()))
        .into_inner()
        .pod_sandbox_id
}

/// RunPodSandbox `cfg` with the default handler; the pod's id (panics "run pod: …" with
/// criusd's log tail).
pub async fn run_pod(c: &mut CriClient, d: &Criusd, cfg: &cri::PodSandboxConfig) -> String {
    try_run_pod(c, cfg)
        .await
        .unwrap_or_else(|e| panic!("run pod: {e}\n{}", d.log_tail()))
}

/// StopPodSandbox `pod`.
pub async fn stop_pod(c: &mut CriClient, pod: &str) -> Result<(), Status> {
    c.runtime
        .stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.into(),
        })
        .await
        .map(|_| ())
}

/// RemovePodSandbox `pod`.
pub async fn remove_pod(c: &mut CriClient, pod: &str) -> Result<(), Status> {
    c.runtime
        .remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod.into(),
        })
        .await
        .map(|_| ())
}

/// `verb` for a failure message, followed by `what` unless that is empty ("create app").
fn step(verb: &str, what: &str) -> String {
    if what.is_empty() {
        verb.to_string()
    } else {
        format!("{verb} {what}")
    }
}

/// CreateContainer `cfg` in `pod` (sandbox config `pcfg`); the container's id (panics
/// "create[ <what>]: …" with criusd's log tail).
pub async fn create_container(
    c: &mut CriClient,
    d: &Criusd,
    pod: &str,
    cfg: cri::ContainerConfig,
    pcfg: &cri::PodSandboxConfig,
    what: &str,
) -> String {
    try_create(c, pod, cfg, pcfg)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", step("create", what), d.log_tail()))
}

/// CreateContainer in `pod`: the container id, or criusd's status (for the bad-input cases).
pub async fn try_create(
    c: &mut CriClient,
    pod: &str,
    cfg: cri::ContainerConfig,
    pcfg: &cri::PodSandboxConfig,
) -> Result<String, Status> {
    c.runtime
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(cfg),
            sandbox_config: Some(pcfg.clone()),
        })
        .await
        .map(|r| r.into_inner().container_id)
}

/// StartContainer `id` (panics "start[ <what>]: …" with criusd's log tail).
pub async fn start_container(c: &mut CriClient, d: &Criusd, id: &str, what: &str) {
    c.runtime
        .start_container(cri::StartContainerRequest {
            container_id: id.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", step("start", what), d.log_tail()));
}

/// [`create_container`] then [`start_container`]; the running container's id.
pub async fn create_and_start(
    c: &mut CriClient,
    d: &Criusd,
    pod: &str,
    cfg: cri::ContainerConfig,
    pcfg: &cri::PodSandboxConfig,
    what: &str,
) -> String {
    let id = create_container(c, d, pod, cfg, pcfg, what).await;
    start_container(c, d, &id, what).await;
    id
}

/// ExecSync `sh -c script` in container `id` with a 10 s timeout (panics "exec: …").
pub async fn exec_sh(c: &mut CriClient, id: &str, script: &str) -> cri::ExecSyncResponse {
    c.runtime
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["sh".into(), "-c".into(), script.into()],
            timeout: 10,
        })
        .await
        .expect("exec")
        .into_inner()
}

/// Every container criusd lists (no filter).
pub async fn all_containers(c: &mut CriClient) -> Vec<cri::Container> {
    c.runtime
        .list_containers(cri::ListContainersRequest { filter: None })
        .await
        .expect("list")
        .into_inner()
        .containers
}

pub async fn container_state(c: &mut CriClient, id: &str) -> cri::ContainerStatus {
    c.runtime
        .container_status(cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        })
        .await
        .expect("container status")
        .into_inner()
        .status
        .expect("status")
}

/// ContainerStatus.user.linux of container `id`: the identity criusd reports.
pub async fn container_user(c: &mut CriClient, id: &str) -> cri::LinuxContainerUser {
    container_state(c, id)
        .await
        .user
        .and_then(|u| u.linux)
        .expect("ContainerStatus.user")
}

/// StopContainer `id` with `timeout` seconds of grace.
pub async fn stop_container(c: &mut CriClient, id: &str, timeout: i64) -> Result<(), Status> {
    c.runtime
        .stop_container(cri::StopContainerRequest {
            container_id: id.into(),
            timeout,
        })
        .await
        .map(|_| ())
}

/// Whether the container has exited.
pub fn exited(s: &cri::ContainerStatus) -> bool {
    s.state == cri::ContainerState::ContainerExited as i32
}

/// Poll container `id`'s status until `want` holds, up to `secs`; that status.
pub async fn wait_status(
    c: &CriClient,
    id: &str,
    secs: u64,
    want: impl Fn(&cri::ContainerStatus) -> bool,
) -> Option<cri::ContainerStatus> {
    eventually(secs, || {
        let mut c = c.clone();
        let want = &want;
        async move {
            let s = container_state(&mut c, id).await;
            want(&s).then_some(s)
        }
    })
    .await
}

/// Run `ctr` in criusd's containerd namespace (`crius`), behind criusd's back; its stdout
/// (panics with the command and its stderr when it fails).
pub fn ctr(env: &mut TestEnv, args: &[&str]) -> String {
    env.running_containerd()
        .expect("containerd")
        .ctr_output("crius", args)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// The test's leak check, printing criusd's log on failure.
pub fn finish(env: TestEnv, d: &Criusd) {
    let tail = d.log_tail();
    remove_pod_cgroups(&env);
    if let Err(e) = env.finish() {
        panic!("{e:#}\n--- criusd log tail ---\n{tail}");
    }
}

/// Remove the pod cgroup parents the test named (`/crius-<id>/...`), deepest first, as
/// kubelet does: it owns pod cgroups; runtimes only remove their containers' own.
pub fn remove_pod_cgroups(env: &TestEnv) {
    crius_test::leaks::remove_cgroup_tree(&format!("crius-{}", env.id()));
}
