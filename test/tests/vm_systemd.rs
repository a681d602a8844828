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
