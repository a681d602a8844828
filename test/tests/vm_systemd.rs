//! Guest-only tests: cgroup v2 as the only hierarchy and systemd as PID 1, as on a kubeadm node.
//! They run in the Debian 12 guest of `hack/vm/test.sh` (`--ignored`); on the build machines
//! (cgroup v1, no systemd) they are ignored, as what they check does not exist there.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_test::cri::CriClient;
use crius_test::registry;
use criusd_common::{
    client, container_config, create_and_start, exec_sh, finish, pod_config, pod_log_dir, pull,
    remove_pod, rt, run_pod, start, try_run_pod,
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
/// `<parent>/<container id>` of the unified tree and its memory limit lands in memory.max; the
/// pod's resources plus overhead land in the parent's cpu.max and memory.max.
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
        let mut pcfg = pod_config(&env, "v2", &log_dir);
        if let Some(l) = pcfg.linux.as_mut() {
            l.resources = Some(pod_resources(40_000, 256 << 20));
            l.overhead = Some(pod_resources(5_000, 8 << 20));
        }
        let pod = run_pod(&mut c, &d, &pcfg).await;
        // Pod-level resources plus overhead on the pod's cgroup.
        let pod_dir = format!("/sys/fs/cgroup/crius-{}/pod-v2", env.id());
        assert_eq!(read_file(&format!("{pod_dir}/cpu.max")), "45000 100000");
        assert_eq!(
            read_file(&format!("{pod_dir}/memory.max")),
            (264u64 << 20).to_string()
        );
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
/// `crius-<id>.scope` under that slice, as `systemctl` shows (the pause's made by the shim's fast
/// path over D-Bus, the container's by runc); the container has a private cgroup namespace;
/// removing the pod removes both scopes.
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
        // The pause took the shim's fast path: its scope is the shim's own (made over D-Bus),
        // not runc's ("libcontainer container <id>").
        let pause_unit = format!("crius-{pod}.scope");
        assert_eq!(
            unit_prop(&pause_unit, "Description"),
            format!("crius sandbox {pod}"),
            "{}",
            d.log_tail()
        );
        assert_eq!(unit_prop(&pause_unit, "Delegate"), "yes");
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
            let e = try_run_pod(&mut c, &pcfg).await.expect_err(bad);
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

/// A pod of the test under the systemd driver: criusd, a client, the pod's slice and the pod.
struct ScopedPod {
    d: criusd_common::Criusd,
    pcfg: cri::PodSandboxConfig,
    pod: String,
    slice_dir: String,
}

async fn scoped_pod(env: &mut crius_test::TestEnv, name: &str) -> (ScopedPod, CriClient) {
    let d = criusd_common::start_with_driver(env, Some("systemd"))
        .expect("criusd binaries in the guest");
    let log_dir = pod_log_dir(env);
    let slice = format!("kubepods-burstable-pod{}{name}.slice", env.id());
    let mut c = client(&d).await;
    pull(&mut c, registry::BUSYBOX).await;
    let mut pcfg = pod_config(env, name, &log_dir);
    if let Some(l) = pcfg.linux.as_mut() {
        l.cgroup_parent = slice.clone();
    }
    let pod = run_pod(&mut c, &d, &pcfg).await;
    let slice_dir = format!("/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/{slice}");
    (
        ScopedPod {
            d,
            pcfg,
            pod,
            slice_dir,
        },
        c,
    )
}

/// Pod-level resources with a 100 ms CPU period.
fn pod_resources(cpu_quota: i64, memory: i64) -> cri::LinuxContainerResources {
    cri::LinuxContainerResources {
        cpu_period: 100_000,
        cpu_quota,
        memory_limit_in_bytes: memory,
        ..Default::default()
    }
}

fn read_file(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_string()
}

/// CreateContainer's memory, swap, CPU and `unified` resources land in the scope's cgroup v2
/// files; UpdateContainerResources rewrites cpu.max, memory.max and memory.swap.max; stats come
/// from the v2 files (working set = memory.current − inactive_file); io.stat's bytes are in the
/// container's metrics.
#[test]
#[ignore = "guest only: systemd + cgroup v2 (hack/vm/test.sh)"]
fn vm_systemd_resources_and_stats() {
    let mut env = guest_env("vm_systemd_resources_and_stats");
    let d = rt().block_on(async {
        let (p, mut c) = scoped_pod(&mut env, "res").await;
        // On the guest's disk (its /tmp, where the container's rootfs is, is a tmpfs: no block I/O).
        let data = format!("/var/tmp/crius-io-{}", env.id());
        std::fs::create_dir_all(&data).expect("data dir");
        let mut cfg = container_config(
            "app",
            registry::BUSYBOX,
            // Some page cache and anonymous memory to count, and 8 MiB written through.
            &[
                "sh",
                "-c",
                "dd if=/dev/zero of=/data/f bs=1M count=8 conv=fsync; exec sleep 600",
            ],
        );
        cfg.mounts = vec![cri::Mount {
            container_path: "/data".into(),
            host_path: data.clone(),
            ..Default::default()
        }];
        cfg.linux = Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                memory_swap_limit_in_bytes: 96 << 20,
                cpu_quota: 50_000,
                cpu_period: 100_000,
                unified: [
                    ("memory.high".to_string(), (48u64 << 20).to_string()),
                    ("pids.max".to_string(), "100".to_string()),
                ]
                .into_iter()
                .collect(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let id = create_and_start(&mut c, &p.d, &p.pod, cfg, &p.pcfg, "app").await;
        let dir = format!("{}/crius-{id}.scope", p.slice_dir);
        assert_eq!(
            read_file(&format!("{dir}/memory.max")),
            (64u64 << 20).to_string()
        );
        // OCI's swap is memory + swap; v2's memory.swap.max is the swap alone.
        assert_eq!(
            read_file(&format!("{dir}/memory.swap.max")),
            (32u64 << 20).to_string()
        );
        assert_eq!(read_file(&format!("{dir}/cpu.max")), "50000 100000");
        assert_eq!(
            read_file(&format!("{dir}/memory.high")),
            (48u64 << 20).to_string()
        );
        assert_eq!(read_file(&format!("{dir}/pids.max")), "100");

        c.runtime
            .update_container_resources(cri::UpdateContainerResourcesRequest {
                container_id: id.clone(),
                linux: Some(cri::LinuxContainerResources {
                    memory_limit_in_bytes: 80 << 20,
                    memory_swap_limit_in_bytes: 100 << 20,
                    cpu_quota: 20_000,
                    cpu_period: 100_000,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("update: {e}\n{}", p.d.log_tail()));
        assert_eq!(read_file(&format!("{dir}/cpu.max")), "20000 100000");
        assert_eq!(
            read_file(&format!("{dir}/memory.max")),
            (80u64 << 20).to_string()
        );
        assert_eq!(
            read_file(&format!("{dir}/memory.swap.max")),
            (20u64 << 20).to_string()
        );

        // Let dd finish, then compare the stats with the files read right after.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let stats = c
            .runtime
            .container_stats(cri::ContainerStatsRequest {
                container_id: id.clone(),
            })
            .await
            .expect("ContainerStats")
            .into_inner()
            .stats
            .expect("stats");
        let current: u64 = read_file(&format!("{dir}/memory.current"))
            .parse()
            .expect("current");
        let inactive: u64 = read_file(&format!("{dir}/memory.stat"))
            .lines()
            .find_map(|l| {
                l.strip_prefix("inactive_file ")
                    .and_then(|v| v.parse().ok())
            })
            .expect("inactive_file");
        let ws = stats
            .memory
            .and_then(|m| m.working_set_bytes)
            .map(|v| v.value)
            .expect("working set");
        let want = current.saturating_sub(inactive);
        assert!(
            ws.abs_diff(want) <= 1 << 20,
            "working set {ws} vs memory.current − inactive_file = {want}"
        );
        assert!(
            stats
                .cpu
                .as_ref()
                .and_then(|c| c.usage_core_nano_seconds)
                .is_some(),
            "CPU usage from cpu.stat"
        );
        // Pressure stall information from the scope's *.pressure files, swap from memory.swap.*.
        assert!(stats.cpu.and_then(|c| c.psi).is_some(), "cpu.pressure");
        assert!(stats.io.and_then(|i| i.psi).is_some(), "io.pressure");
        let swap = stats.swap.expect("swap usage from memory.swap.current");
        assert_eq!(
            swap.swap_available_bytes.map(|v| v.value),
            Some((20u64 << 20) - swap.swap_usage_bytes.map(|v| v.value).unwrap_or(0))
        );
        // dd's 8 MiB, written through (fsync), are in the scope's io.stat and in the container's
        // metrics as cAdvisor names them (container_fs_writes_bytes_total per device).
        let io_stat = read_file(&format!("{dir}/io.stat"));
        let wbytes: u64 = io_stat
            .split_whitespace()
            .filter_map(|f| f.strip_prefix("wbytes="))
            .filter_map(|v| v.parse::<u64>().ok())
            .sum();
        assert!(wbytes >= 8 << 20, "io.stat: {io_stat}");
        let pods = c
            .runtime
            .list_pod_sandbox_metrics(cri::ListPodSandboxMetricsRequest {})
            .await
            .expect("ListPodSandboxMetrics")
            .into_inner()
            .pod_metrics;
        let written: u64 = pods
            .iter()
            .flat_map(|p| &p.container_metrics)
            .filter(|cm| cm.container_id == id)
            .flat_map(|cm| &cm.metrics)
            .filter(|m| m.name == "container_fs_writes_bytes_total")
            .filter_map(|m| m.value.map(|v| v.value))
            .sum();
        assert!(
            written >= 8 << 20,
            "container_fs_writes_bytes_total {written} (io.stat: {io_stat})"
        );
        remove_pod(&mut c, &p.pod).await.expect("remove pod");
        let _ = std::fs::remove_dir_all(&data);
        p.d
    });
    stop_slice("kubepods.slice");
    finish(env, &d);
}

/// Pod-level resources (LinuxPodSandboxConfig `resources` plus `overhead`) go on the pod's slice
/// as unit properties (`systemctl show`) and so into its cgroup files; UpdatePodSandboxResources
/// changes them (the overhead kept).
#[test]
#[ignore = "guest only: systemd + cgroup v2 (hack/vm/test.sh)"]
fn vm_systemd_pod_resources_on_slice() {
    let mut env = guest_env("vm_systemd_pod_resources_on_slice");
    let d = criusd_common::start_with_driver(&mut env, Some("systemd"))
        .expect("criusd binaries in the guest");
    let log_dir = pod_log_dir(&env);
    let slice = format!("kubepods-burstable-pod{}podres.slice", env.id());
    let slice_dir = format!("/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/{slice}");
    rt().block_on(async {
        let mut c = client(&d).await;
        let mut pcfg = pod_config(&env, "podres", &log_dir);
        if let Some(l) = pcfg.linux.as_mut() {
            l.cgroup_parent = slice.clone();
            l.resources = Some(pod_resources(50_000, 128 << 20));
            l.overhead = Some(pod_resources(10_000, 16 << 20));
        }
        let pod = run_pod(&mut c, &d, &pcfg).await;
        assert_eq!(read_file(&format!("{slice_dir}/cpu.max")), "60000 100000");
        assert_eq!(
            read_file(&format!("{slice_dir}/memory.max")),
            (144u64 << 20).to_string()
        );
        assert_eq!(unit_prop(&slice, "MemoryMax"), (144u64 << 20).to_string());
        assert_eq!(unit_prop(&slice, "CPUQuotaPerSecUSec"), "600ms");
        c.runtime
            .update_pod_sandbox_resources(cri::UpdatePodSandboxResourcesRequest {
                pod_sandbox_id: pod.clone(),
                overhead: None,
                resources: Some(pod_resources(20_000, 256 << 20)),
            })
            .await
            .unwrap_or_else(|e| panic!("UpdatePodSandboxResources: {e}\n{}", d.log_tail()));
        assert_eq!(read_file(&format!("{slice_dir}/cpu.max")), "30000 100000");
        assert_eq!(
            read_file(&format!("{slice_dir}/memory.max")),
            (272u64 << 20).to_string()
        );
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    stop_slice("kubepods.slice");
    finish(env, &d);
}

/// A container in a scope with a 16 MiB limit that allocates more is OOM-killed: EXITED, reason
/// OOMKilled (from the scope's memory.events), exit code 137.
#[test]
#[ignore = "guest only: systemd + cgroup v2 (hack/vm/test.sh)"]
fn vm_systemd_oom_killed() {
    let mut env = guest_env("vm_systemd_oom_killed");
    let d = rt().block_on(async {
        let (p, mut c) = scoped_pod(&mut env, "oom").await;
        let mut cfg = container_config(
            "hog",
            registry::BUSYBOX,
            &[
                "dd",
                "if=/dev/zero",
                "of=/dev/null",
                "bs=67108864",
                "count=4",
            ],
        );
        cfg.linux = Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: 16 << 20,
                // No swap to spill into: memory + swap = memory.
                memory_swap_limit_in_bytes: 16 << 20,
                ..Default::default()
            }),
            ..Default::default()
        });
        let id = create_and_start(&mut c, &p.d, &p.pod, cfg, &p.pcfg, "hog").await;
        let st = criusd_common::wait_status(&c, &id, 60, |s| {
            criusd_common::exited(s) && s.reason == "OOMKilled"
        })
        .await;
        let Some(st) = st else {
            let now = criusd_common::container_state(&mut c, &id).await;
            panic!("not OOMKilled: {now:?}\n{}", p.d.log_tail());
        };
        assert_eq!(st.exit_code, 137, "{st:?}");
        remove_pod(&mut c, &p.pod).await.expect("remove pod");
        p.d
    });
    stop_slice("kubepods.slice");
    finish(env, &d);
}

/// kill -9 of criusd while RunPodSandbox runs, then a restart: the pod (or what was made of it)
/// is stopped and removed through CRI, and no scope, netns or process is left (the strict leak
/// check covers netns, mounts, processes and cgroups, so scopes too).
#[test]
#[ignore = "guest only: systemd + cgroup v2 (hack/vm/test.sh)"]
fn vm_systemd_criusd_kill9_mid_run_pod() {
    let mut env = guest_env("vm_systemd_criusd_kill9_mid_run_pod");
    let mut d = criusd_common::start_with_driver(&mut env, Some("systemd"))
        .expect("criusd binaries in the guest");
    let log_dir = pod_log_dir(&env);
    let slice = format!("kubepods-besteffort-pod{}crash.slice", env.id());
    let mut pcfg = pod_config(&env, "crash", &log_dir);
    if let Some(l) = pcfg.linux.as_mut() {
        l.cgroup_parent = slice;
    }
    rt().block_on(async {
        let c = client(&d).await;
        let mut run = c.clone();
        let cfg = pcfg.clone();
        let call = tokio::spawn(async move { try_run_pod(&mut run, &cfg).await });
        // Under TCG a RunPodSandbox takes seconds: this lands in the middle of it.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        env.stop_service(d.pid, true).expect("kill -9 criusd");
        let _ = call.await;
    });
    criusd_common::spawn(&mut env, &mut d);
    rt().block_on(async {
        let mut c = client(&d).await;
        let pods = c
            .runtime
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .expect("list pods")
            .into_inner()
            .items;
        for p in &pods {
            criusd_common::stop_pod(&mut c, &p.id)
                .await
                .expect("stop pod");
            remove_pod(&mut c, &p.id).await.expect("remove pod");
        }
        let left = crius_scopes();
        assert!(
            left.is_empty(),
            "scopes left: {left:?} (pods were {pods:?})\n{}",
            d.log_tail()
        );
    });
    stop_slice("kubepods.slice");
    finish(env, &d);
}

/// The pod's shim killed with -9 while its fast-path pause runs in the shim's scope: containerd's
/// cleanup (`shim delete`) and StopPodSandbox/RemovePodSandbox end the pause and stop its scope.
#[test]
#[ignore = "guest only: systemd + cgroup v2 (hack/vm/test.sh)"]
fn vm_systemd_shim_kill9_leaves_no_scope() {
    let mut env = guest_env("vm_systemd_shim_kill9_leaves_no_scope");
    let d = rt().block_on(async {
        let (p, mut c) = scoped_pod(&mut env, "shimkill").await;
        let unit = format!("crius-{}.scope", p.pod);
        let procs = read_file(&format!("{}/{unit}/cgroup.procs", p.slice_dir));
        let pause: i32 = procs
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no pause in {unit}: {procs:?}"));
        let stat = read_file(&format!("/proc/{pause}/stat"));
        let shim: i32 = stat[stat.rfind(')').expect("stat") + 2..]
            .split(' ')
            .nth(1)
            .and_then(|f| f.parse().ok())
            .expect("ppid");
        let comm = read_file(&format!("/proc/{shim}/comm"));
        assert!(
            comm.starts_with("containerd-shim"),
            "pause's parent {shim} is {comm}"
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(shim),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill -9 the shim");
        criusd_common::stop_pod(&mut c, &p.pod)
            .await
            .unwrap_or_else(|e| panic!("stop pod: {e}\n{}", p.d.log_tail()));
        remove_pod(&mut c, &p.pod).await.expect("remove pod");
        let state = unit_prop(&unit, "ActiveState");
        assert!(state == "inactive" || state.is_empty(), "{unit}: {state}");
        assert!(
            !Path::new(&format!("/proc/{pause}")).exists()
                || read_file(&format!("/proc/{pause}/stat")).contains(") Z"),
            "pause {pause} still runs"
        );
        p.d
    });
    stop_slice("kubepods.slice");
    finish(env, &d);
}

/// The crius shim under containerd's own CRI plugin with `SystemdCgroup = true`: a pod with a
/// slice parent runs, its pause and container in containerd's `cri-containerd-<id>.scope` units
/// under that slice (the shim runs runc with --systemd-cgroup); removing the pod removes them.
#[test]
#[ignore = "guest only: systemd + cgroup v2 (hack/vm/test.sh)"]
fn vm_shim_under_containerd_cri_systemd_cgroup() {
    let mut env = guest_env("vm_shim_under_containerd_cri_systemd_cgroup");
    registry::ensure().expect("registry");
    let net = env.cni().expect("cni");
    let socket = {
        let c = env
            .containerd(crius_test::ContainerdOptions {
                cri: true,
                cni_conf_dir: Some(net.conf_dir.clone()),
                default_runtime: "crius".into(),
                systemd_cgroup: true,
                ..Default::default()
            })
            .expect("containerd with CRI");
        // From the local registry: the guest has no umoci for import_pause.
        c.pull("k8s.io", registry::PAUSE).expect("pull pause");
        c.pull("k8s.io", registry::BUSYBOX).expect("pull busybox");
        c.socket()
    };
    let log_dir = pod_log_dir(&env);
    let slice = format!("kubepods-besteffort-pod{}ctrd.slice", env.id());
    rt().block_on(async {
        let mut c = crius_test::cri::connect(&socket).await.expect("CRI");
        let mut pcfg = pod_config(&env, "ctrd", &log_dir);
        if let Some(l) = pcfg.linux.as_mut() {
            l.cgroup_parent = slice.clone();
        }
        let pod = try_run_pod(&mut c, &pcfg)
            .await
            .unwrap_or_else(|e| panic!("run pod: {e}"));
        let id = c
            .runtime
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(container_config(
                    "app",
                    registry::BUSYBOX,
                    &["sleep", "600"],
                )),
                sandbox_config: Some(pcfg.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("create: {e}"))
            .into_inner()
            .container_id;
        c.runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("start: {e}"));
        for (what, unit_id) in [("pause", &pod), ("container", &id)] {
            let unit = format!("cri-containerd-{unit_id}.scope");
            assert_eq!(unit_prop(&unit, "ActiveState"), "active", "{what} {unit}");
            assert_eq!(unit_prop(&unit, "Slice"), slice, "{what} {unit}");
        }
        c.runtime
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await
            .expect("stop pod");
        c.runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await
            .expect("remove pod");
        for unit_id in [&pod, &id] {
            let unit = format!("cri-containerd-{unit_id}.scope");
            let state = unit_prop(&unit, "ActiveState");
            assert!(state == "inactive" || state.is_empty(), "{unit}: {state}");
        }
    });
    stop_slice("kubepods.slice");
    env.finish().expect("leaks");
}
