//! containerd-shim-crius-v2 under containerd's own CRI plugin (issue 4, item 2; on containerd 2.1
//! too, issue 13: runtime features through `-info` and recursive read-only mounts, StopContainer of
//! an exited container, StopPodSandbox of a pod whose pause died), and the pod-start benchmark that
//! `hack/bench/shim` runs (an ignored test).

use crius_proto::runtime as cri;
use crius_test::paths::ContainerdVersion;
use crius_test::{cri as cri_client, paths, registry, ContainerdOptions, TestEnv};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

fn pod_config(id: &str, name: &str, log_dir: &Path) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}-{id}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: log_dir.display().to_string(),
        linux: Some(cri::LinuxPodSandboxConfig {
            // Marked with the test id: the leak check knows these cgroups as the test's.
            cgroup_parent: format!("/{id}/{name}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A containerd with its CRI plugin (default runtime `runtime`), a CNI network, the pause image.
/// Returns the env, the CRI socket and a log dir.
fn setup(name: &str, runtime: &str) -> Option<(TestEnv, PathBuf, PathBuf)> {
    let mut env = TestEnv::new(name)?;
    if !paths::pause_bin().is_file() {
        crius_test::skip(format!("{name}: crius-pause is not built"));
        return None;
    }
    registry::ensure().expect("registry");
    let net = env.cni().expect("cni");
    let dir = env.dir().to_path_buf();
    let c = env
        .containerd(ContainerdOptions {
            cri: true,
            cni_conf_dir: Some(net.conf_dir.clone()),
            default_runtime: runtime.into(),
            ..Default::default()
        })
        .expect("containerd with CRI");
    c.import_pause(&dir).expect("pause image");
    c.pull("k8s.io", registry::BUSYBOX).expect("pull busybox");
    let socket = c.socket();
    let log_dir = dir.join("pod-logs");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    Some((env, socket, log_dir))
}

async fn stop_remove(c: &mut cri_client::CriClient, pod: &str) {
    c.runtime
        .stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.into(),
        })
        .await
        .expect("stop pod");
    c.runtime
        .remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod.into(),
        })
        .await
        .expect("remove pod");
}

async fn run_pod(c: &mut cri_client::CriClient, cfg: &cri::PodSandboxConfig) -> String {
    cri_client::run_pod(c, cfg, "")
        .await
        .unwrap_or_else(|e| panic!("run pod: {e:#}"))
}

/// Create and start a busybox container running `cmd` with `mounts`; its id.
async fn start_container(
    c: &mut cri_client::CriClient,
    pod: &str,
    pcfg: &cri::PodSandboxConfig,
    name: &str,
    cmd: &[&str],
    mounts: Vec<cri::Mount>,
) -> String {
    let ccfg = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: registry::BUSYBOX.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/0.log"),
        mounts,
        ..Default::default()
    };
    cri_client::create_and_start(c, pod, pcfg, ccfg)
        .await
        .unwrap_or_else(|e| panic!("create and start {name}: {e:#}"))
}

async fn wait_exited(c: &mut cri_client::CriClient, id: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st = c
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .expect("status")
            .into_inner()
            .status
            .expect("status");
        if st.state == cri::ContainerState::ContainerExited as i32 {
            return st.exit_code;
        }
        assert!(Instant::now() < deadline, "container {id} did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn exec(c: &mut cri_client::CriClient, id: &str, script: &str) -> i32 {
    c.runtime
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["sh".into(), "-c".into(), script.into()],
            timeout: 10,
        })
        .await
        .unwrap_or_else(|e| panic!("exec {script}: {e}"))
        .into_inner()
        .exit_code
}

#[test]
fn shim_under_containerd_cri_runs_pod_and_container() {
    let name = "shim_under_containerd_cri_runs_pod_and_container";
    let Some((mut env, socket, log_dir)) = setup(name, "crius") else {
        return;
    };
    let id = env.id().to_string();
    rt().block_on(async {
        let mut c = cri_client::connect(&socket).await.expect("CRI");
        let pcfg = pod_config(&id, "web", &log_dir);
        let pod = run_pod(&mut c, &pcfg).await;
        let ctr = start_container(
            &mut c,
            &pod,
            &pcfg,
            "app",
            &["sh", "-c", "echo hello-cri; exit 3"],
            vec![],
        )
        .await;
        assert_eq!(wait_exited(&mut c, &ctr).await, 3);
        let log = std::fs::read_to_string(log_dir.join("app/0.log")).unwrap_or_default();
        assert!(log.contains("hello-cri"), "log: {log:?}");
        c.runtime
            .remove_container(cri::RemoveContainerRequest {
                container_id: ctr.clone(),
            })
            .await
            .expect("remove container");
        stop_remove(&mut c, &pod).await;
    });
    let c = env.running_containerd().expect("containerd");
    let log = std::fs::read_to_string(c.dir().join("containerd.log")).unwrap_or_default();
    assert!(
        log.contains("sandbox created on the fast path"),
        "the CRI sandbox should take the fast path:\n{}",
        c.log_tail()
    );
    std::thread::sleep(Duration::from_millis(500));
    crius_test::leaks::remove_cgroup_tree(&id);
    env.finish().expect("no leaks");
}

/// containerd 2.1's CRI learns the crius shim's runtime features from `containerd-shim-crius-v2
/// -info` (runc's `features`), so it offers recursive read-only mounts for the crius handler as for
/// runc, and such a mount is read-only down to its submounts inside the container. containerd 1.6's
/// CRI knows no runtime features: it reports none for any handler.
#[test]
fn shim_under_containerd_cri_reports_runtime_features_and_honours_rro_mounts() {
    let name = "shim_under_containerd_cri_reports_runtime_features_and_honours_rro_mounts";
    let Some((mut env, socket, log_dir)) = setup(name, "crius") else {
        return;
    };
    let version = env.running_containerd().expect("containerd").version();
    let id = env.id().to_string();
    let vol = env.dir().join("vol");
    std::fs::create_dir_all(vol.join("sub")).expect("vol");
    sh(Command::new("mount")
        .args(["-t", "tmpfs", "crius-test-sub"])
        .arg(vol.join("sub")));
    // Unmounted even when an assertion below fails.
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _sub = Unmount(vol.join("sub"));
    rt().block_on(async {
        let mut c = cri_client::connect(&socket).await.expect("CRI");
        let status = c
            .runtime
            .status(cri::StatusRequest { verbose: false })
            .await
            .expect("status")
            .into_inner();
        let rro = |handler: &str| {
            status
                .runtime_handlers
                .iter()
                .find(|h| h.name == handler)
                .and_then(|h| h.features.as_ref())
                .is_some_and(|f| f.recursive_read_only_mounts)
        };
        if version == ContainerdVersion::V1_6 {
            assert!(
                !rro("crius") && !rro("runc"),
                "containerd 1.6 reports no runtime features: {:?}",
                status.runtime_handlers
            );
            return;
        }
        assert!(rro("runc"), "runc handler: {:?}", status.runtime_handlers);
        assert!(
            rro("crius"),
            "crius handler should report rro like runc: {:?}",
            status.runtime_handlers
        );
        assert!(rro(""), "the default handler is crius");

        let pcfg = pod_config(&id, "rro", &log_dir);
        let pod = run_pod(&mut c, &pcfg).await;
        let v = vol.display().to_string();
        let bind = |path: &str, rro: bool| cri::Mount {
            container_path: path.into(),
            host_path: v.clone(),
            readonly: true,
            recursive_read_only: rro,
            propagation: cri::MountPropagation::PropagationPrivate as i32,
            ..Default::default()
        };
        let ctr = start_container(
            &mut c,
            &pod,
            &pcfg,
            "vols",
            &["sleep", "1000"],
            vec![bind("/ro", false), bind("/rro", true)],
        )
        .await;
        assert_ne!(exec(&mut c, &ctr, "touch /ro/nope").await, 0, "ro mount");
        assert_eq!(
            exec(&mut c, &ctr, "touch /ro/sub/yes").await,
            0,
            "a plain read-only bind leaves submounts writable"
        );
        assert_ne!(exec(&mut c, &ctr, "touch /rro/nope").await, 0, "rro mount");
        assert_ne!(
            exec(&mut c, &ctr, "touch /rro/sub/nope").await,
            0,
            "recursive read-only covers submounts"
        );
        stop_remove(&mut c, &pod).await;
    });
    drop(_sub);
    std::thread::sleep(Duration::from_millis(500));
    crius_test::leaks::remove_cgroup_tree(&id);
    env.finish().expect("no leaks");
}

/// Stopping what has already exited succeeds through containerd's CRI with the crius shim: a
/// container that exited by itself (StopContainer, then again), one stopped while it exits, and a
/// pod whose pause was killed behind containerd's back (StopPodSandbox kills the dead pause: the
/// shim answers NotFound, "already finished", as containerd's runc shim does).
#[test]
fn shim_under_containerd_cri_stops_what_already_exited() {
    let name = "shim_under_containerd_cri_stops_what_already_exited";
    let Some((env, socket, log_dir)) = setup(name, "crius") else {
        return;
    };
    let id = env.id().to_string();
    rt().block_on(async {
        let mut c = cri_client::connect(&socket).await.expect("CRI");
        let pcfg = pod_config(&id, "exited", &log_dir);
        let pod = run_pod(&mut c, &pcfg).await;
        let cc = c.clone();
        let stop = |id: String, timeout: i64| {
            let mut c = cc.clone();
            async move {
                c.runtime
                    .stop_container(cri::StopContainerRequest {
                        container_id: id.clone(),
                        timeout,
                    })
                    .await
                    .unwrap_or_else(|e| panic!("stop {id} (timeout {timeout}): {e}"));
            }
        };
        let done = start_container(&mut c, &pod, &pcfg, "done", &["true"], vec![]).await;
        assert_eq!(wait_exited(&mut c, &done).await, 0);
        stop(done.clone(), 0).await;
        stop(done.clone(), 5).await;
        // Exits on its own while the stop is under way.
        for i in 0..5 {
            let quick = start_container(
                &mut c,
                &pod,
                &pcfg,
                &format!("quick{i}"),
                &["sh", "-c", "usleep 30000"],
                vec![],
            )
            .await;
            tokio::time::sleep(Duration::from_millis(25)).await;
            stop(quick.clone(), 0).await;
            wait_exited(&mut c, &quick).await;
        }

        // The pod's pause dies behind containerd's back; StopPodSandbox must still succeed.
        let pause = c
            .runtime
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: pod.clone(),
                verbose: true,
            })
            .await
            .expect("pod status")
            .into_inner()
            .info
            .get("info")
            .and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok())
            .and_then(|v| v["pid"].as_i64())
            .expect("pause pid in the verbose pod status");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pause as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{pause}/stat")).exists()
            && std::fs::read_to_string(format!("/proc/{pause}/stat"))
                .is_ok_and(|s| !s.contains(") Z "))
        {
            assert!(Instant::now() < deadline, "pause {pause} did not die");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A second stop finds nothing left to kill and succeeds too.
        for _ in 0..2 {
            c.runtime
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: pod.clone(),
                })
                .await
                .expect("stop pod whose pause died");
        }
        stop_remove(&mut c, &pod).await;
    });
    std::thread::sleep(Duration::from_millis(500));
    crius_test::leaks::remove_cgroup_tree(&id);
    env.finish().expect("no leaks");
}

/// RunPodSandbox latency under containerd's CRI plugin; run by `hack/bench/shim` with
/// `BENCH_RUNTIME=crius|runc BENCH_PODS=n`. Prints one `RESULT` line.
#[test]
#[ignore]
fn shim_bench_run_pod_sandbox() {
    let runtime = std::env::var("BENCH_RUNTIME").unwrap_or_else(|_| "crius".into());
    let pods: usize = std::env::var("BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let Some((env, socket, log_dir)) = setup("shim_bench_run_pod_sandbox", &runtime) else {
        return;
    };
    let id = env.id().to_string();
    let mut times = rt().block_on(async {
        let mut c = cri_client::connect(&socket).await.expect("CRI");
        let mut times = Vec::new();
        for i in 0..pods {
            let cfg = pod_config(&id, &format!("p{i}"), &log_dir);
            let t = Instant::now();
            let pod = c
                .runtime
                .run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(cfg),
                    runtime_handler: String::new(),
                })
                .await
                .unwrap_or_else(|e| panic!("run pod: {e}"))
                .into_inner()
                .pod_sandbox_id;
            times.push(t.elapsed());
            stop_remove(&mut c, &pod).await;
        }
        times
    });
    times.sort();
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "RESULT runtime={runtime} pods={pods} run_pod_sandbox_ms p50={:.1} p99={:.1}",
        pct(50),
        pct(99)
    );
    std::thread::sleep(Duration::from_millis(500));
    crius_test::leaks::remove_cgroup_tree(&id);
    env.finish().expect("no leaks");
}
