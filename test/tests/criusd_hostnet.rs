//! A hostNetwork pod through criusd: its container sees the host's interfaces and
//! hostname; a container with its own PID namespace is PID 1 in it, and one with pid mode
//! TARGET (kubectl debug --target) sees that namespace.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    client, container_config, create_and_start, exec_sh, finish, image_status, pod_config,
    pod_log_dir, pull, remove_pod, rt, run_pod, start, start_with, try_create,
};

async fn exec(c: &mut crius_test::cri::CriClient, id: &str, script: &str) -> String {
    let r = exec_sh(c, id, script).await;
    assert_eq!(r.exit_code, 0, "{}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8_lossy(&r.stdout).into_owned()
}

#[test]
fn criusd_pause_from_an_image_is_pulled_on_first_pod() {
    let mut env = env_or_skip!("criusd_pause_from_an_image_is_pulled_on_first_pod");
    if criusd_common::runtime() != "io.containerd.crius.v2" {
        // The sandboxer runs an image pause on a read-only view; runc cannot create /proc there.
        crius_test::skip("criusd_pause_from_an_image_is_pulled_on_first_pod: needs the crius shim");
        return;
    }
    if !registry::has_manifest("crius/pause") {
        crius_test::skip("criusd_pause_from_an_image_is_pulled_on_first_pod: no crius/pause image in the local registry");
        return;
    }
    let Some(d) = start_with(&mut env, Some(registry::PAUSE)) else {
        return;
    };
    let log_dir = env.dir().join("pod-logs");
    rt().block_on(async {
        let mut c = client(&d).await;
        let pcfg = pod_config(&env, "imgpause", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let img = image_status(&mut c, registry::PAUSE)
            .await
            .expect("status")
            .image;
        assert!(
            img.as_ref().is_some_and(|i| i.pinned),
            "the pause image was pulled, and is pinned: {img:?}"
        );
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}

#[test]
fn criusd_host_network_pod_and_container_pid_namespace() {
    let mut env = env_or_skip!("criusd_host_network_pod_and_container_pid_namespace");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let mut pcfg = pod_config(&env, "hostnet", &log_dir);
        pcfg.hostname = String::new();
        if let Some(l) = pcfg.linux.as_mut() {
            l.security_context = Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Node as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let mut cfg = container_config("probe", registry::BUSYBOX, &["sleep", "1000"]);
        cfg.linux = Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Node as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "").await;

        let mut host_ifaces: Vec<String> = std::fs::read_dir("/sys/class/net")
            .expect("host interfaces")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        host_ifaces.sort();
        let inside = exec(&mut c, &id, "ls /sys/class/net").await;
        let mut inside: Vec<String> = inside.split_whitespace().map(String::from).collect();
        inside.sort();
        // Interfaces may come and go on a busy machine; the host's main ones must be there.
        for i in host_ifaces
            .iter()
            .filter(|i| !i.starts_with("veth") && !i.starts_with("cb"))
        {
            assert!(inside.contains(i), "{i} missing inside: {inside:?}");
        }
        let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
        assert_eq!(exec(&mut c, &id, "hostname").await.trim(), host_name.trim());
        // Own PID namespace: sleep is PID 1.
        assert_eq!(exec(&mut c, &id, "cat /proc/1/comm").await.trim(), "sleep");

        // pid mode TARGET (kubectl debug --target): the debugger joins probe's pid namespace.
        let debugger = |name: &str, target: &str| {
            let mut cfg = container_config(name, registry::BUSYBOX, &["sleep", "1001"]);
            cfg.linux = Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: cri::NamespaceMode::Node as i32,
                        pid: cri::NamespaceMode::Target as i32,
                        target_id: target.to_string(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
            cfg
        };
        let dbg = create_and_start(&mut c, &d, &pod, debugger("debug", &id), &pcfg, "").await;
        assert_eq!(exec(&mut c, &dbg, "cat /proc/1/comm").await.trim(), "sleep");
        let seen = exec(&mut c, &dbg, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '").await;
        assert!(
            seen.contains("sleep 1000") && seen.contains("sleep 1001"),
            "{seen}"
        );
        for (target, code) in [("", Code::InvalidArgument), ("no-such-ctr", Code::NotFound)] {
            let e = try_create(
                &mut c,
                &pod,
                debugger(&format!("bad-{}", target.len()), target),
                &pcfg,
            )
            .await
            .expect_err("bad target");
            assert_eq!(e.code(), code, "{target:?}: {e}");
        }

        remove_pod(&mut c, &pod).await.expect("remove running pod");
    });
    finish(env, &d);
}
