//! The crius shim as containerd 2.x's pod sandboxer (`sandboxer = "shim"`, issue 13): containerd
//! 2.1's own CRI with the runtime handler `crius-sandboxer` (hack/containerd/config.sh) runs no pause
//! container and pulls no pause image; it calls the shim's `containerd.runtime.sandbox.v1.Sandbox`
//! service. Driven through containerd's CRI socket with the harness's CRI client and criusctl; the
//! bad-input and idle-exit cases speak ttrpc to the shim directly.

use containerd_shim_protos::{
    api::ConnectRequest, sandbox_api as sapi, sandbox_async::SandboxClient, shim_async::TaskClient,
    ttrpc,
};
use crius_proto::runtime as cri;
use crius_test::{
    cri as cri_client, leaks, paths, paths::ContainerdVersion, process, registry,
    ContainerdOptions, TestEnv,
};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const HANDLER: &str = "crius-sandboxer";
/// argv[1] of the shim's pause (only pods sharing a pid namespace have one).
const PAUSE_ARG: &str = "__crius-sandbox-pause";
const DNS_SERVER: &str = "10.96.0.10";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

struct Setup {
    env: TestEnv,
    socket: PathBuf,
    log_dir: PathBuf,
    /// containerd's own dir (root/, state/ inside).
    ctrd_dir: PathBuf,
}

/// containerd 2.1 with its CRI, a CNI network, busybox; no pause image anywhere.
fn setup(name: &str) -> Option<Setup> {
    let mut env = TestEnv::new(name)?;
    if !ContainerdVersion::V2_1.containerd().is_file() {
        crius_test::skip(format!(
            "{name}: containerd 2.1 missing (hack/containerd/fetch-2.1.sh)"
        ));
        return None;
    }
    registry::ensure().expect("registry");
    let net = env.cni().expect("cni");
    let log_dir = env.dir().join("pod-logs");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    let c = env
        .containerd(ContainerdOptions {
            cri: true,
            cni_conf_dir: Some(net.conf_dir.clone()),
            version: Some(ContainerdVersion::V2_1),
            ..Default::default()
        })
        .expect("containerd 2.1 with CRI");
    c.pull("k8s.io", registry::BUSYBOX).expect("pull busybox");
    let (socket, ctrd_dir) = (c.socket(), c.dir().to_path_buf());
    Some(Setup {
        env,
        socket,
        log_dir,
        ctrd_dir,
    })
}

fn pod_config(
    s: &Setup,
    name: &str,
    pid: cri::NamespaceMode,
    port: Option<i32>,
) -> cri::PodSandboxConfig {
    let id = s.env.id();
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}-{id}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: format!("{name}-host"),
        log_directory: s.log_dir.display().to_string(),
        dns_config: Some(cri::DnsConfig {
            servers: vec![DNS_SERVER.into()],
            searches: vec!["default.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        port_mappings: port
            .map(|host_port| cri::PortMapping {
                protocol: cri::Protocol::Tcp as i32,
                container_port: 8080,
                host_port,
                host_ip: String::new(),
            })
            .into_iter()
            .collect(),
        linux: Some(cri::LinuxPodSandboxConfig {
            // Marked with the test id: the leak check knows these cgroups as the test's.
            cgroup_parent: format!("/{id}/{name}"),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    pid: pid as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(name: &str, cmd: &[&str], pid: cri::NamespaceMode) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: registry::BUSYBOX.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    pid: pid as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn run_pod(c: &mut cri_client::CriClient, cfg: &cri::PodSandboxConfig) -> String {
    cri_client::run_pod(c, cfg, HANDLER)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

async fn run_container(
    c: &mut cri_client::CriClient,
    pod: &str,
    pcfg: &cri::PodSandboxConfig,
    ccfg: cri::ContainerConfig,
) -> String {
    cri_client::create_and_start(c, pod, pcfg, ccfg)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

async fn exec(c: &mut cri_client::CriClient, ctr: &str, cmd: &[&str]) -> String {
    let r = c
        .runtime
        .exec_sync(cri::ExecSyncRequest {
            container_id: ctr.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 10,
        })
        .await
        .unwrap_or_else(|e| panic!("ExecSync {cmd:?}: {e}"))
        .into_inner();
    assert_eq!(
        r.exit_code,
        0,
        "{cmd:?}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    String::from_utf8_lossy(&r.stdout).into_owned()
}

async fn try_pod_state(
    c: &mut cri_client::CriClient,
    pod: &str,
) -> Result<cri::PodSandboxStatus, tonic::Status> {
    let resp = c
        .runtime
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.into(),
            verbose: false,
        })
        .await?;
    resp.into_inner()
        .status
        .ok_or_else(|| tonic::Status::internal("no status"))
}

async fn pod_state(c: &mut cri_client::CriClient, pod: &str) -> cri::PodSandboxStatus {
    try_pod_state(c, pod)
        .await
        .unwrap_or_else(|e| panic!("PodSandboxStatus: {e}"))
}

/// Polls until the pod is in `want`. Errors on the way are waited out: containerd's CRI answers
/// UNAVAILABLE while it recovers after a restart, and passes on `ttrpc: closed` for a dead shim
/// until it has cleaned up after it.
async fn wait_pod_state(c: &mut cri_client::CriClient, pod: &str, want: cri::PodSandboxState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = try_pod_state(c, pod).await;
        if got.as_ref().is_ok_and(|st| st.state == want as i32) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pod {pod} not {want:?} within 30 s: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn stop_remove(c: &mut cri_client::CriClient, pod: &str) {
    for _ in 0..2 {
        c.runtime
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: pod.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("StopPodSandbox: {e}"));
    }
    for _ in 0..2 {
        c.runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("RemovePodSandbox: {e}"));
    }
}

/// The pod's shim processes (containerd starts one per sandbox, `-id <pod>`).
fn shims_of(pod: &str) -> Vec<process::ProcInfo> {
    let needle = format!("-id {pod}");
    process::all_processes()
        .into_iter()
        .filter(|p| p.cmdline.contains("containerd-shim-crius-v2") && p.cmdline.contains(&needle))
        .collect()
}

/// Pauses in the pod's cgroup parent.
fn pauses_of(cgroup_parent: &str) -> Vec<process::ProcInfo> {
    process::all_processes()
        .into_iter()
        .filter(|p| p.cmdline.contains(PAUSE_ARG) && p.cgroup.contains(cgroup_parent))
        .collect()
}

fn mounts_naming(needle: &str) -> Vec<String> {
    leaks::mounts()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| m.contains(needle))
        .collect()
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cri_dirs(ctrd_dir: &Path, pod: &str) -> [PathBuf; 2] {
    ["root", "state"].map(|d| {
        ctrd_dir
            .join(d)
            .join("io.containerd.grpc.v1.cri/sandboxes")
            .join(pod)
    })
}

fn http_get(port: i32, path: &str) -> String {
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port as u16))
        .unwrap_or_else(|e| panic!("connect 127.0.0.1:{port}: {e}"));
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("request");
    let mut resp = String::new();
    let _ = tcp.read_to_string(&mut resp);
    resp
}

fn criusctl(socket: &Path, args: &[&str]) -> String {
    let out = Command::new(paths::criusctl_bin())
        .arg("-r")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .output()
        .expect("criusctl");
    assert!(
        out.status.success(),
        "criusctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// containerd's CRI leaves the pods' cgroup parents it was given (kubelet's to remove).
fn finish(s: Setup) {
    leaks::remove_cgroup_tree(s.env.id());
    s.env.finish().expect("leak check");
}

#[test]
fn sandbox_api_pod_without_pause_runs_containers_logs_exec_and_ports() {
    let name = "sandbox_api_pod_without_pause_runs_containers_logs_exec_and_ports";
    let Some(s) = setup(name) else { return };
    let port = 20000 + (std::process::id() % 20000) as i32;
    rt().block_on(async {
        let mut c = cri_client::connect(&s.socket).await.expect("CRI");
        let pcfg = pod_config(&s, "web", cri::NamespaceMode::Container, Some(port));
        let cgroup_parent = pcfg.linux.as_ref().expect("linux").cgroup_parent.clone();
        let pod = run_pod(&mut c, &pcfg).await;
        let st = pod_state(&mut c, &pod).await;
        assert_eq!(st.state, cri::PodSandboxState::SandboxReady as i32);
        let pod_ip = st.network.expect("network").ip;
        assert!(!pod_ip.is_empty(), "pod has an IP");
        assert_eq!(shims_of(&pod).len(), 1, "one shim for the pod");
        assert!(pauses_of(&cgroup_parent).is_empty(), "no pause process");
        let ctr = Command::new(ContainerdVersion::V2_1.ctr())
            .arg("-a")
            .arg(&s.socket)
            .args(["-n", "k8s.io", "containers", "ls", "-q"])
            .output()
            .expect("ctr");
        assert!(
            !String::from_utf8_lossy(&ctr.stdout).contains(&pod),
            "no sandbox container in containerd"
        );

        let web = run_container(
            &mut c,
            &pod,
            &pcfg,
            container_config(
                "web",
                &[
                    "sh",
                    "-c",
                    "echo hello-from-$(hostname); exec httpd -f -p 8080 -h /etc",
                ],
                cri::NamespaceMode::Container,
            ),
        )
        .await;
        let side = run_container(
            &mut c,
            &pod,
            &pcfg,
            container_config("side", &["sleep", "3600"], cri::NamespaceMode::Container),
        )
        .await;

        // Logs, through the CRI log file and criusctl (containerd's streaming server for exec).
        let log = s.log_dir.join("web.log");
        wait_for("the web log", Duration::from_secs(10), || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("hello-from-web-host"))
        })
        .await;
        assert!(criusctl(&s.socket, &["logs", &web]).contains("hello-from-web-host"));
        assert_eq!(
            criusctl(&s.socket, &["exec", &web, "cat", "/etc/hostname"]).trim(),
            "web-host"
        );

        // The pod's files and namespaces, as containerd's CRI mounts and joins them.
        assert_eq!(exec(&mut c, &web, &["hostname"]).await.trim(), "web-host");
        let resolv = exec(&mut c, &web, &["cat", "/etc/resolv.conf"]).await;
        assert!(
            resolv.contains(&format!("nameserver {DNS_SERVER}"))
                && resolv.contains("search default.svc.cluster.local")
                && resolv.contains("options ndots:5"),
            "resolv.conf: {resolv}"
        );
        assert!(exec(&mut c, &web, &["cat", "/etc/hosts"])
            .await
            .contains("localhost"));
        let shm = exec(&mut c, &web, &["grep", " /dev/shm ", "/proc/mounts"]).await;
        assert!(shm.starts_with("shm /dev/shm tmpfs"), "/dev/shm: {shm}");
        let addr = exec(&mut c, &web, &["ip", "-4", "-o", "addr", "show", "eth0"]).await;
        assert!(addr.contains(&format!("{pod_ip}/")), "eth0: {addr}");
        let readlink = [
            "sh",
            "-c",
            "for k in net ipc uts; do readlink /proc/self/ns/$k; done",
        ];
        let web_ns = exec(&mut c, &web, &readlink).await;
        let side_ns = exec(&mut c, &side, &readlink).await;
        assert_eq!(web_ns, side_ns, "both containers in the pod's namespaces");
        for (k, line) in ["net", "ipc", "uts"].iter().zip(web_ns.lines()) {
            let host = std::fs::read_link(format!("/proc/self/ns/{k}")).expect("host ns");
            assert_ne!(Path::new(line), host, "pod {k} namespace is not the host's");
        }
        let pid1 = exec(&mut c, &side, &["cat", "/proc/1/cmdline"]).await;
        assert!(
            pid1.starts_with("sleep"),
            "own pid namespace, no pause: {pid1}"
        );
        let cg = exec(&mut c, &web, &["cat", "/proc/self/cgroup"]).await;
        assert!(cg.contains(&cgroup_parent), "in the pod's cgroup: {cg}");

        // Port mapping through CNI's portmap to the pod's netns.
        let resp = http_get(port, "/hostname");
        assert!(
            resp.starts_with("HTTP/1.") && resp.contains("web-host"),
            "port {port}: {resp:?}"
        );

        let dirs = cri_dirs(&s.ctrd_dir, &pod);
        assert!(dirs[0].join("hostname").is_file() && dirs[1].join("shm").is_dir());
        stop_remove(&mut c, &pod).await;
        wait_for("the pod's shim to exit", Duration::from_secs(10), || {
            shims_of(&pod).is_empty()
        })
        .await;
        assert!(mounts_naming(&pod).is_empty(), "{:?}", mounts_naming(&pod));
        assert!(!dirs[0].exists() && !dirs[1].exists(), "pod dirs removed");
    });
    finish(s);
}

#[test]
fn sandbox_api_shared_pid_namespace_gets_a_pause() {
    let name = "sandbox_api_shared_pid_namespace_gets_a_pause";
    let Some(s) = setup(name) else { return };
    rt().block_on(async {
        let mut c = cri_client::connect(&s.socket).await.expect("CRI");
        let pcfg = pod_config(&s, "shared", cri::NamespaceMode::Pod, None);
        let cgroup_parent = pcfg.linux.as_ref().expect("linux").cgroup_parent.clone();
        let pod = run_pod(&mut c, &pcfg).await;
        let pauses = pauses_of(&cgroup_parent);
        assert_eq!(pauses.len(), 1, "one pause for the shared pid namespace");
        assert!(
            pauses[0].cgroup.contains(&format!("{cgroup_parent}/{pod}")),
            "pause in <cgroup_parent>/<pod>: {}",
            pauses[0].cgroup
        );
        let ctr = run_container(
            &mut c,
            &pod,
            &pcfg,
            container_config("app", &["sleep", "3600"], cri::NamespaceMode::Pod),
        )
        .await;
        let pid1 = exec(&mut c, &ctr, &["cat", "/proc/1/cmdline"]).await;
        assert!(pid1.contains(PAUSE_ARG), "pid 1 is the pause: {pid1:?}");
        assert_eq!(
            exec(&mut c, &ctr, &["hostname"]).await.trim(),
            "shared-host"
        );
        stop_remove(&mut c, &pod).await;
        wait_for("the pause to exit", Duration::from_secs(10), || {
            pauses_of(&cgroup_parent).is_empty() && shims_of(&pod).is_empty()
        })
        .await;
    });
    finish(s);
}

#[test]
fn sandbox_api_survives_containerd_kill9_and_cleans_up_after_shim_kill9() {
    let name = "sandbox_api_survives_containerd_kill9_and_cleans_up_after_shim_kill9";
    let Some(mut s) = setup(name) else { return };
    let rt = rt();
    let pcfg = pod_config(&s, "crash", cri::NamespaceMode::Pod, None);
    let cgroup_parent = pcfg.linux.as_ref().expect("linux").cgroup_parent.clone();
    let (pod, ctr) = rt.block_on(async {
        let mut c = cri_client::connect(&s.socket).await.expect("CRI");
        let pod = run_pod(&mut c, &pcfg).await;
        let ctr = run_container(
            &mut c,
            &pod,
            &pcfg,
            container_config("app", &["sleep", "3600"], cri::NamespaceMode::Pod),
        )
        .await;
        (pod, ctr)
    });

    let containerd = s.env.running_containerd().expect("containerd");
    containerd.kill9().expect("kill -9 containerd");
    containerd.restart().expect("restart containerd");
    rt.block_on(async {
        let mut c = cri_client::connect(&s.socket)
            .await
            .expect("CRI after restart");
        // containerd's CRI asks SandboxStatus of the shim, which lived on.
        wait_pod_state(&mut c, &pod, cri::PodSandboxState::SandboxReady).await;
        assert_eq!(exec(&mut c, &ctr, &["hostname"]).await.trim(), "crash-host");

        let shim = shims_of(&pod);
        assert_eq!(shim.len(), 1, "the pod's shim");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(shim[0].pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill -9 shim");
        // containerd runs the shim's `delete`: the pause goes, and the pod's mounts with it.
        wait_for(
            "cleanup after the shim's death",
            Duration::from_secs(20),
            || pauses_of(&cgroup_parent).is_empty() && mounts_naming(&pod).is_empty(),
        )
        .await;
        wait_pod_state(&mut c, &pod, cri::PodSandboxState::SandboxNotready).await;
        stop_remove(&mut c, &pod).await;
        assert!(cri_dirs(&s.ctrd_dir, &pod).iter().all(|d| !d.exists()));
    });
    finish(s);
}

/// A bundle laid out as containerd's shim sandbox controller makes one.
fn controller_bundle(root: &Path, id: &str) -> PathBuf {
    let plugin = "io.containerd.sandbox.controller.v1.shim";
    let bundle = root.join("state").join(plugin).join("crius-test").join(id);
    let work = root.join("root").join(plugin).join("crius-test").join(id);
    std::fs::create_dir_all(&bundle).expect("bundle");
    std::fs::create_dir_all(&work).expect("work");
    std::os::unix::fs::symlink(&work, bundle.join("work")).expect("work link");
    bundle
}

/// Runs the shim's `start` in `bundle`, as containerd does; returns its ttrpc address.
fn start_shim(containerd_dir: &Path, bundle: &Path, id: &str, idle_exit: &str) -> String {
    let out = Command::new(paths::shim_bin())
        .args(["-namespace", "crius-test", "-id", id, "-address"])
        .arg(containerd_dir.join("containerd.sock"))
        .arg("start")
        .current_dir(bundle)
        .env(
            "TTRPC_ADDRESS",
            containerd_dir.join("containerd.sock.ttrpc"),
        )
        .env("CRIUS_SHIM_IDLE_EXIT", idle_exit)
        .output()
        .expect("shim start");
    assert!(
        out.status.success(),
        "shim start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn shim_pid(address: &str) -> i32 {
    let client = ttrpc::asynchronous::Client::connect(address)
        .await
        .expect("connect shim");
    TaskClient::new(client)
        .connect(ctx(), &ConnectRequest::default())
        .await
        .expect("Connect")
        .shim_pid as i32
}

fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_timeout(10_000_000_000)
}

fn code<T: std::fmt::Debug>(r: ttrpc::Result<T>) -> ttrpc::Code {
    match r {
        Err(ttrpc::Error::RpcStatus(s)) => s.code(),
        other => panic!("expected a ttrpc status, got {other:?}"),
    }
}

fn alive(pid: i32) -> bool {
    process::all_processes().iter().any(|p| p.pid == pid)
}

#[test]
fn sandbox_api_bad_input_is_refused_and_idle_shims_exit() {
    let name = "sandbox_api_bad_input_is_refused_and_idle_shims_exit";
    let Some(mut env) = TestEnv::new(name) else {
        return;
    };
    let ctrd = env
        .containerd(ContainerdOptions::default())
        .expect("containerd")
        .dir()
        .to_path_buf();
    let root = env.dir().join("ctrl");
    let id = format!("{}-sb", env.id());
    let bundle = controller_bundle(&root, &id);
    rt().block_on(async {
        let address = start_shim(&ctrd, &bundle, &id, "600");
        let pid = shim_pid(&address).await;
        let client = ttrpc::asynchronous::Client::connect(&address)
            .await
            .expect("connect");
        let sb = SandboxClient::new(client);
        let create = |netns: &str| sapi::CreateSandboxRequest {
            sandbox_id: id.clone(),
            bundle_path: bundle.display().to_string(),
            netns_path: netns.into(),
            ..Default::default()
        };
        let start = sapi::StartSandboxRequest {
            sandbox_id: id.clone(),
            ..Default::default()
        };
        assert_eq!(
            code(sb.start_sandbox(ctx(), &start).await),
            ttrpc::Code::NOT_FOUND,
            "Start before Create"
        );
        assert_eq!(
            code(sb.create_sandbox(ctx(), &create("")).await),
            ttrpc::Code::INVALID_ARGUMENT,
            "missing netns path"
        );
        assert_eq!(
            code(
                sb.create_sandbox(ctx(), &create("/nonexistent/netns"))
                    .await
            ),
            ttrpc::Code::INVALID_ARGUMENT,
            "netns path that does not exist"
        );
        assert!(
            mounts_naming(&id).is_empty(),
            "a refused Create mounts nothing"
        );
        // The shim's own netns stands in for the pod's: joining it changes nothing on the host.
        sb.create_sandbox(ctx(), &create("/proc/self/ns/net"))
            .await
            .expect("CreateSandbox");
        assert_eq!(
            code(sb.create_sandbox(ctx(), &create("/proc/self/ns/net")).await),
            ttrpc::Code::ALREADY_EXISTS,
            "second CreateSandbox"
        );
        let other = |sandbox_id: &str| sapi::StopSandboxRequest {
            sandbox_id: sandbox_id.into(),
            ..Default::default()
        };
        assert_eq!(
            code(sb.stop_sandbox(ctx(), &other("nope")).await),
            ttrpc::Code::NOT_FOUND,
            "unknown sandbox id"
        );
        let status = sb
            .sandbox_status(
                ctx(),
                &sapi::SandboxStatusRequest {
                    sandbox_id: id.clone(),
                    ..Default::default()
                },
            )
            .await
            .expect("SandboxStatus");
        assert_eq!(status.state, "SANDBOX_NOTREADY", "created, not started");
        assert!(!mounts_naming(&id).is_empty(), "pins and shm mounted");
        let shutdown = sapi::ShutdownSandboxRequest {
            sandbox_id: id.clone(),
            ..Default::default()
        };
        sb.shutdown_sandbox(ctx(), &shutdown)
            .await
            .expect("ShutdownSandbox");
        // The shim exits once it holds nothing; a repeat may still reach it, or find it gone.
        if let Err(e) = sb.shutdown_sandbox(ctx(), &shutdown).await {
            assert!(
                !matches!(e, ttrpc::Error::RpcStatus(_)),
                "a repeated ShutdownSandbox is answered: {e:?}"
            );
        }
        wait_for(
            "the shut-down shim to exit",
            Duration::from_secs(10),
            || !alive(pid),
        )
        .await;
        assert!(mounts_naming(&id).is_empty(), "{:?}", mounts_naming(&id));

        // Never given a task or a sandbox: gone after its grace period.
        let idle = format!("{}-idle", env.id());
        let idle_bundle = controller_bundle(&root, &idle);
        let pid = shim_pid(&start_shim(&ctrd, &idle_bundle, &idle, "1")).await;
        wait_for("the idle shim to exit", Duration::from_secs(10), || {
            !alive(pid)
        })
        .await;

        // SIGTERM ends an idle shim at once.
        let term = format!("{}-term", env.id());
        let term_bundle = controller_bundle(&root, &term);
        let pid = shim_pid(&start_shim(&ctrd, &term_bundle, &term, "600")).await;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        wait_for("the SIGTERMed shim to exit", Duration::from_secs(5), || {
            !alive(pid)
        })
        .await;
    });
    env.finish().expect("leak check");
}

/// RunPodSandbox through containerd 2.1's CRI with each way of running a pod, rounds interleaved:
/// `runc` (containerd's runc shim, pause container), `crius` (the crius shim, pause container
/// through its fast path), `crius-sandboxer` (the crius shim owning the pod, no pause). Run by
/// `hack/bench/sandbox`; BENCH_PODS pods per handler (default 30).
#[test]
#[ignore]
fn sandbox_api_bench_run_pod_sandbox() {
    let pods: usize = std::env::var("BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let name = "sandbox_api_bench_run_pod_sandbox";
    let Some(mut s) = setup(name) else { return };
    let work = s.env.dir().to_path_buf();
    s.env
        .running_containerd()
        .expect("containerd")
        .import_pause(&work)
        .expect("pause image");
    let handlers = ["runc", "crius", HANDLER];
    let times = rt().block_on(async {
        let mut c = cri_client::connect(&s.socket).await.expect("CRI");
        let mut times = vec![Vec::new(); handlers.len()];
        // One untimed pod each first: shim binaries paged in, pause image unpacked.
        for round in 0..=pods {
            // Each round in another order: a pod started right after another's removal shares the
            // machine with that teardown (a runc-v2 shim exiting, containerd's GC), so no handler
            // may always follow the same one.
            for k in 0..handlers.len() {
                let h = (round + k) % handlers.len();
                let handler = handlers[h];
                let cfg = pod_config(
                    &s,
                    &format!("b{round}-{h}"),
                    cri::NamespaceMode::Container,
                    None,
                );
                let t = Instant::now();
                let pod = cri_client::run_pod(&mut c, &cfg, handler)
                    .await
                    .unwrap_or_else(|e| panic!("{handler}: {e:#}"));
                let took = t.elapsed();
                if round > 0 {
                    times[h].push(took);
                }
                stop_remove(&mut c, &pod).await;
            }
        }
        times
    });
    let pct = |t: &[Duration], p: usize| {
        let mut t = t.to_vec();
        t.sort();
        t[(t.len() * p / 100).min(t.len() - 1)].as_secs_f64() * 1000.0
    };
    let base = (pct(&times[0], 50), pct(&times[0], 99));
    for (h, handler) in handlers.iter().enumerate() {
        let (p50, p99) = (pct(&times[h], 50), pct(&times[h], 99));
        println!(
            "RESULT handler={handler} pods={pods} run_pod_sandbox_ms p50={p50:.1} p99={p99:.1} \
             vs_runc p50={:.2} p99={:.2}",
            p50 / base.0,
            p99 / base.1
        );
    }
    finish(s);
}
