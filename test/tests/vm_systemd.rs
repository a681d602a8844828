//! Guest-only tests: cgroup v2 as the only hierarchy and systemd as PID 1, as on a kubeadm node.
//! They run in the Debian 12 guest of `hack/vm/test.sh` (`--ignored`); on the build machines
//! (cgroup v1, no systemd) they are ignored, as what they check does not exist there.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_test::registry;
use criusd_common::{
    client, container_config, create_and_start, exec_sh, finish, pod_config, pod_log_dir, pull,
    remove_pod, rt, run_pod, start,
};
use std::path::Path;

/// A fresh `TestEnv`, after checking that this really is the guest: a test of systemd scopes
/// that ran on a cgroup v1 machine would prove nothing, so it fails there instead of skipping.
fn guest_env(name: &str) -> crius_test::TestEnv {
    assert!(
        Path::new("/run/systemd/system").is_dir(),
        "{name}: systemd is not PID 1 here; run it through hack/vm/test.sh"
    );
    assert!(
        Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
        "{name}: /sys/fs/cgroup is not cgroup v2; run it through hack/vm/test.sh"
    );
    crius_test::TestEnv::new(name).expect("the guest runs the tests as root with every tool")
}

/// With the cgroupfs driver on a v2-only host, a pod's container runs in
/// `<parent>/<container id>` of the unified tree and its memory limit lands in memory.max.
#[test]
#[ignore = "guest only: systemd + cgroup v2 (hack/vm/test.sh)"]
fn vm_cgroupfs_pod_on_cgroup_v2() {
    let mut env = guest_env("vm_cgroupfs_pod_on_cgroup_v2");
    let Some(d) = start(&mut env) else {
        panic!("criusd binaries missing in the guest")
    };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "v2", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let mut cfg = container_config("app", registry::BUSYBOX, &["sleep", "600"]);
        cfg.linux = Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                ..Default::default()
            }),
            ..Default::default()
        });
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "app").await;
        let dir = format!("/sys/fs/cgroup/crius-{}/pod-v2/{id}", env.id());
        let max = std::fs::read_to_string(format!("{dir}/memory.max"))
            .unwrap_or_else(|e| panic!("{dir}/memory.max: {e}\n{}", d.log_tail()));
        assert_eq!(max.trim(), (64u64 << 20).to_string());
        let r = exec_sh(&mut c, &id, "cat /proc/self/cgroup").await;
        assert_eq!(r.exit_code, 0, "{r:?}");
        remove_pod(&mut c, &pod).await.expect("remove pod");
        assert!(
            !Path::new(&dir).exists(),
            "{dir} left after RemovePodSandbox"
        );
    });
    finish(env, &d);
}

/// `systemctl show -p <prop> --value <unit>`.
fn unit_prop(unit: &str, prop: &str) -> String {
    let out = std::process::Command::new("systemctl")
        .args(["show", "-p", prop, "--value", unit])
        .output()
        .expect("systemctl show");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Loaded `crius-*.scope` units, whatever their state.
fn crius_scopes() -> Vec<String> {
    let out = std::process::Command::new("systemctl")
        .args([
            "list-units",
            "--all",
            "--plain",
            "--no-legend",
            "--type=scope",
            "crius-*",
        ])
        .output()
        .expect("systemctl list-units");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Stop a slice the test's pods lived in (kubelet owns pod slices, runtimes their scopes).
fn stop_slice(slice: &str) {
    let _ = std::process::Command::new("systemctl")
        .args(["stop", slice])
        .status();
}

/// The systemd driver (detected: systemd is PID 1 on cgroup v2), a kubelet-style slice parent:
/// RuntimeConfig says systemd; the pause and the container each run in a transient scope
/// `crius-<id>.scope` under that slice, as `systemctl` shows; the container has a private cgroup
/// namespace; removing the pod removes both scopes.
#[test]
#[ignore = "guest only: systemd + cgroup v2 (hack/vm/test.sh)"]
fn vm_systemd_pod_in_scopes() {
    let mut env = guest_env("vm_systemd_pod_in_scopes");
    let Some(d) = criusd_common::start_with_driver(&mut env, None) else {
        panic!("criusd binaries missing in the guest")
    };
    let log_dir = pod_log_dir(&env);
    let slice = format!("kubepods-besteffort-pod{}.slice", env.id());
    let slice_dir = format!("/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/{slice}");
    rt().block_on(async {
        let mut c = client(&d).await;
        let rc = c
            .runtime
            .runtime_config(cri::RuntimeConfigRequest {})
            .await
            .expect("RuntimeConfig")
            .into_inner();
        assert_eq!(
            rc.linux.map(|l| l.cgroup_driver),
            Some(cri::CgroupDriver::Systemd as i32)
        );
        pull(&mut c, registry::BUSYBOX).await;
        let mut pcfg = pod_config(&env, "scoped", &log_dir);
        if let Some(l) = pcfg.linux.as_mut() {
            l.cgroup_parent = slice.clone();
        }
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let cfg = container_config("app", registry::BUSYBOX, &["sleep", "600"]);
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "app").await;
        for (what, unit_id) in [("pause", &pod), ("container", &id)] {
            let unit = format!("crius-{unit_id}.scope");
            assert_eq!(unit_prop(&unit, "ActiveState"), "active", "{what} {unit}");
            assert_eq!(unit_prop(&unit, "Slice"), slice, "{what} {unit}");
            let dir = format!("{slice_dir}/{unit}");
            let procs = std::fs::read_to_string(format!("{dir}/cgroup.procs"))
                .unwrap_or_else(|e| panic!("{what}: {dir}: {e}\n{}", d.log_tail()));
            assert!(!procs.trim().is_empty(), "{what}: no process in {dir}");
            let status = std::process::Command::new("systemctl")
                .args(["status", "--no-pager", &unit])
                .output()
                .expect("systemctl status");
            let status = String::from_utf8_lossy(&status.stdout);
            assert!(status.contains(&slice), "{what}: {status}");
        }
        let r = exec_sh(&mut c, &id, "cat /proc/self/cgroup").await;
        assert_eq!(
            String::from_utf8_lossy(&r.stdout).trim(),
            "0::/",
            "a private cgroup namespace: {r:?}"
        );
        remove_pod(&mut c, &pod).await.expect("remove pod");
        let left: Vec<String> = crius_scopes()
            .into_iter()
            .filter(|u| u.contains(&pod) || u.contains(&id))
            .collect();
        assert!(
            left.is_empty(),
            "scopes left after RemovePodSandbox: {left:?}"
        );
    });
    stop_slice("kubepods.slice");
    finish(env, &d);
}

/// Under the systemd driver a cgroup parent that is not a slice name is INVALID_ARGUMENT, and
/// nothing is left of the refused pod.
#[test]
#[ignore = "guest only: systemd + cgroup v2 (hack/vm/test.sh)"]
fn vm_systemd_refuses_bad_slices() {
    let mut env = guest_env("vm_systemd_refuses_bad_slices");
    let Some(d) = criusd_common::start_with_driver(&mut env, Some("systemd")) else {
        panic!("criusd binaries missing in the guest")
    };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        for (i, bad) in ["/kubepods/burstable", "kube--pods.slice", "-pods.slice"]
            .iter()
            .enumerate()
        {
            let mut pcfg = pod_config(&env, &format!("bad{i}"), &log_dir);
            if let Some(l) = pcfg.linux.as_mut() {
                l.cgroup_parent = bad.to_string();
            }
            let e = c
                .runtime
                .run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(pcfg),
                    runtime_handler: String::new(),
                })
                .await
                .expect_err(bad);
            assert_eq!(
                e.code(),
                crius_proto::tonic::Code::InvalidArgument,
                "{bad}: {e}"
            );
        }
        let pods = c
            .runtime
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .expect("list")
            .into_inner()
            .items;
        assert!(pods.is_empty(), "{pods:?}");
    });
    finish(env, &d);
}
