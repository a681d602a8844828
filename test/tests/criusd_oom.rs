//! A container that outgrows its memory limit is OOM-killed and reported as `OOMKilled`.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    client, container_config, create_and_start, exited, finish, pod_config, pod_log_dir, pull,
    remove_pod, rt, run_pod, start, wait_status,
};

#[test]
fn criusd_reports_oom_killed() {
    let mut env = env_or_skip!("criusd_reports_oom_killed");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "hungry", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
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
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "").await;
        let st = wait_status(&c, &id, 20, |s| exited(s) && s.reason == "OOMKilled")
            .await
            .unwrap_or_else(|| {
                panic!(
                    "not OOMKilled: {:?}\n{}",
                    std::fs::read_to_string(log_dir.join("hog/0.log")),
                    d.log_tail()
                )
            });
        assert_eq!(st.exit_code, 137, "{st:?}");
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
