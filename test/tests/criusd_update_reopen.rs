//! UpdateContainerResources reaches the container's cgroup; UpdatePodSandboxResources reaches
//! the pod's cgroup and is recorded in the pod's config; ReopenContainerLog makes the log driver start a new file after
//! kubelet-style rotation; a failed Create (bad user) leaves nothing behind.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    all_containers, client, container_config, create_and_start, eventually, finish, pod_config,
    pod_log_dir, pull, remove_pod, rt, run_pod, start, stop_pod, try_create,
};

#[test]
fn criusd_update_resources_and_reopen_log() {
    let mut env = env_or_skip!("criusd_update_resources_and_reopen_log");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let cgroup_top = format!("/sys/fs/cgroup/memory/crius-{}", env.id());
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "tuned", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;

        // A user the image does not have: INVALID_ARGUMENT, and no container is left.
        let mut bad = container_config("bad", registry::BUSYBOX, &["true"]);
        bad.linux = Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                run_as_username: "no-such-user".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        let e = try_create(&mut c, &pod, bad, &pcfg)
            .await
            .expect_err("unknown user");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        let none = all_containers(&mut c).await;
        assert!(none.is_empty(), "{none:?}");

        let mut cfg = container_config(
            "tick",
            registry::BUSYBOX,
            &[
                "sh",
                "-c",
                "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
            ],
        );
        cfg.linux = Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                cpu_shares: 256,
                ..Default::default()
            }),
            ..Default::default()
        });
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "").await;
        let limit_file = format!("{cgroup_top}/pod-tuned/{id}/memory.limit_in_bytes");
        let read_limit = || {
            std::fs::read_to_string(&limit_file)
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        assert_eq!(read_limit(), (64u64 << 20).to_string(), "{limit_file}");

        c.runtime
            .update_container_resources(cri::UpdateContainerResourcesRequest {
                container_id: id.clone(),
                linux: Some(cri::LinuxContainerResources {
                    memory_limit_in_bytes: 96 << 20,
                    cpu_shares: 512,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("update: {e}\n{}", d.log_tail()));
        assert_eq!(read_limit(), (96u64 << 20).to_string());
        let st = criusd_common::container_state(&mut c, &id).await;
        let res = st
            .resources
            .and_then(|r| r.linux)
            .expect("resources in status");
        assert_eq!((res.memory_limit_in_bytes, res.cpu_shares), (96 << 20, 512));

        // UpdatePodSandboxResources: the pod's recorded config follows; unknown pods and
        // negative figures are refused.
        let pod_update = |id: &str, memory: i64| cri::UpdatePodSandboxResourcesRequest {
            pod_sandbox_id: id.to_string(),
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: memory,
                cpu_shares: 1024,
                ..Default::default()
            }),
            overhead: None,
        };
        c.runtime
            .update_pod_sandbox_resources(pod_update(&pod, 128 << 20))
            .await
            .unwrap_or_else(|e| panic!("update pod: {e}\n{}", d.log_tail()));
        let info = c
            .runtime
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: pod.clone(),
                verbose: true,
            })
            .await
            .expect("pod status")
            .into_inner()
            .info;
        let v: serde_json::Value = serde_json::from_str(&info["info"]).expect("verbose info");
        let recorded = &v["config"]["linux"]["resources"];
        assert_eq!(recorded["memory_limit_in_bytes"], 128 << 20, "{v}");
        assert_eq!(recorded["cpu_shares"], 1024, "{v}");
        // And it lands on the pod's own cgroup (its parent), as kubelet sizes it.
        let pod_file = |controller: &str, file: &str| {
            let top = format!("/sys/fs/cgroup/{controller}/crius-{}", env.id());
            let path = format!("{top}/pod-tuned/{file}");
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .trim()
                .to_string()
        };
        assert_eq!(
            pod_file("memory", "memory.limit_in_bytes"),
            (128u64 << 20).to_string()
        );
        assert_eq!(pod_file("cpu", "cpu.shares"), "1024");
        let e = c
            .runtime
            .update_pod_sandbox_resources(pod_update("no-such-pod", 1 << 20))
            .await
            .expect_err("unknown pod");
        assert_eq!(e.code(), Code::NotFound, "{e}");
        let e = c
            .runtime
            .update_pod_sandbox_resources(pod_update(&pod, -1))
            .await
            .expect_err("negative");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        // Rotation as kubelet does it: rename, then ReopenContainerLog.
        let log = log_dir.join("tick/0.log");
        let rotated = log_dir.join("tick/0.log.1");
        eventually(5, || {
            let p = log.clone();
            async move {
                std::fs::read_to_string(&p)
                    .ok()
                    .filter(|t| t.contains("tick 3"))
            }
        })
        .await
        .expect("first log fills");
        std::fs::rename(&log, &rotated).expect("rotate");
        c.runtime
            .reopen_container_log(cri::ReopenContainerLogRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("reopen: {e}\n{}", d.log_tail()));
        let fresh = eventually(5, || {
            let p = log.clone();
            async move {
                std::fs::read_to_string(&p)
                    .ok()
                    .filter(|t| t.lines().count() >= 3)
            }
        })
        .await
        .expect("new log file after reopen");
        let last_old: u64 = std::fs::read_to_string(&rotated)
            .expect("rotated")
            .lines()
            .filter_map(|l| l.rsplit_once(" tick ").and_then(|(_, n)| n.parse().ok()))
            .max()
            .expect("numbers");
        let first_new: u64 = fresh
            .lines()
            .filter_map(|l| l.rsplit_once(" tick ").and_then(|(_, n)| n.parse().ok()))
            .min()
            .expect("numbers");
        assert_eq!(
            first_new,
            last_old + 1,
            "no line lost or repeated across the reopen"
        );

        stop_pod(&mut c, &pod).await.expect("stop pod");
        let e = c
            .runtime
            .reopen_container_log(cri::ReopenContainerLogRequest {
                container_id: id.clone(),
            })
            .await
            .expect_err("not running");
        assert_eq!(e.code(), Code::FailedPrecondition);
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
