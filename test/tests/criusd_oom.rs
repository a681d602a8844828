//! A container that outgrows its memory limit is OOM-killed and reported as `OOMKilled`.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    client, container_config, container_state, eventually, finish, pod_config, pull, rt, start,
};

#[test]
fn criusd_reports_oom_killed() {
    let mut env = env_or_skip!("criusd_reports_oom_killed");
    let Some(d) = start(&mut env) else { return };
    let log_dir = env.dir().join("pod-logs");
    std::fs::create_dir_all(&log_dir).expect("log dir");
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "hungry", &log_dir);
        let pod = c
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pcfg.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("run pod: {e}\n{}", d.log_tail()))
            .into_inner()
            .pod_sandbox_id;
        // dd allocates its 256 MiB block at once: far over the 32 MiB limit.
        let mut cfg = container_config(
            "hog",
            registry::BUSYBOX,
            &[
                "dd",
                "if=/dev/zero",
                "of=/dev/null",
                "bs=268435456",
                "count=4",
            ],
        );
        cfg.linux = Some(cri::LinuxContainerConfig {
            resources: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: 32 << 20,
                ..Default::default()
            }),
            ..Default::default()
        });
        let id = c
            .runtime
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(cfg),
                sandbox_config: Some(pcfg.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("create: {e}\n{}", d.log_tail()))
            .into_inner()
            .container_id;
        c.runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("start: {e}\n{}", d.log_tail()));
        let st = eventually(20, || {
            let mut c = c.clone();
            let id = id.clone();
            async move {
                let s = container_state(&mut c, &id).await;
                (s.state == cri::ContainerState::ContainerExited as i32 && s.reason == "OOMKilled")
                    .then_some(s)
            }
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "not OOMKilled: {:?}\n{}",
                std::fs::read_to_string(log_dir.join("hog/0.log")),
                d.log_tail()
            )
        });
        assert_eq!(st.exit_code, 137, "{st:?}");
        c.runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await
            .expect("remove pod");
    });
    finish(env, &d);
}
