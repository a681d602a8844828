//! User-namespaced pods (`hostUsers: false`) through criusd, on Debian's runc 1.1 (which makes
//! no id-mapped mounts: the crius shim makes them). A pod with a 65536-id mapping at a high host
//! id runs a root container whose uid_map/gid_map read `0 <host> 65536`, whose image files are
//! owned by root inside, which writes to its rootfs, to its pod's /etc/hosts and /dev/shm and to
//! an id-mapped volume (files there owned by root on the host too), with the pause started by
//! the shim's fast path and by runc; nothing is left after removal (leak check, and no
//! id-mapped mount anywhere).

mod criusd_common;

use crius_proto::runtime as cri;
use crius_test::{env_or_skip, registry, TestEnv};
use criusd_common::{
    client, container_config, create_and_start, exec_sh, finish, pod_config, pod_log_dir, pull,
    remove_pod, rt, run_pod, runtime_status, start, try_run_pod, Criusd,
};
use std::os::unix::fs::MetadataExt;

/// Well above any id a host hands out, with room for the 65536 ids.
const HOST_ID: u32 = 1_000_000_000;

fn userns() -> cri::UserNamespace {
    let map = vec![cri::IdMapping {
        host_id: HOST_ID,
        container_id: 0,
        length: 65536,
    }];
    cri::UserNamespace {
        mode: cri::NamespaceMode::Pod as i32,
        uids: map.clone(),
        gids: map,
    }
}

/// The test's pod config, in a user namespace of its own.
fn userns_pod(env: &TestEnv, log_dir: &std::path::Path) -> cri::PodSandboxConfig {
    let mut pcfg = pod_config(env, "userns", log_dir);
    pcfg.linux.as_mut().expect("linux").security_context = Some(cri::LinuxSandboxSecurityContext {
        namespace_options: Some(cri::NamespaceOption {
            userns_options: Some(userns()),
            ..Default::default()
        }),
        ..Default::default()
    });
    pcfg
}

/// Mounts on the host that are id-mapped, or hang where the shim attaches its id-mapped copies
/// (the rootfs overlay names them as its layers: that one is fine while the container lives).
fn idmapped_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.get(4).is_some_and(|at| at.contains("/crius-idmap"))
                || f.get(5)
                    .is_some_and(|o| o.split(',').any(|o| o == "idmapped"))
        })
        .map(str::to_string)
        .collect()
}

/// One user-namespaced pod end to end; `what` names the pause's way in messages.
fn run_userns_pod(env: TestEnv, d: Criusd, what: &str) {
    let log_dir = pod_log_dir(&env);
    let vol = env.dir().join("vol");
    std::fs::create_dir_all(&vol).expect("vol");
    std::fs::write(vol.join("from-host"), "hi\n").expect("host file");
    rt().block_on(async {
        let mut c = client(&d).await;
        let st = runtime_status(&mut c).await;
        if criusd_common::runtime() != "io.containerd.crius.v2" {
            // runc alone (1.1 here) makes no id-mapped mounts: refused, not run unmapped.
            let pcfg = userns_pod(&env, &log_dir);
            let e = try_run_pod(&mut c, &pcfg)
                .await
                .expect_err("userns pod without the crius shim");
            assert_eq!(e.code(), crius_proto::tonic::Code::Unimplemented, "{e}");
            return;
        }
        let default = st.runtime_handlers.iter().find(|h| h.name.is_empty());
        assert!(
            default.is_some_and(|h| h.features.as_ref().is_some_and(|f| f.user_namespaces)),
            "the default handler claims user namespaces: {:?}",
            st.runtime_handlers
        );
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = userns_pod(&env, &log_dir);
        let nso = cri::NamespaceOption {
            userns_options: Some(userns()),
            ..Default::default()
        };
        let pod = run_pod(&mut c, &d, &pcfg).await;

        // As kubelet sends it: the pod's namespace options, and the pod's mapping on the volume.
        let mut cfg = container_config("app", registry::BUSYBOX, &["sleep", "1000"]);
        cfg.linux = Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(nso.clone()),
                run_as_user: Some(cri::Int64Value { value: 0 }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let u = userns();
        cfg.mounts = vec![cri::Mount {
            container_path: "/data".into(),
            host_path: vol.display().to_string(),
            uid_mappings: u.uids.clone(),
            gid_mappings: u.gids.clone(),
            ..Default::default()
        }];
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "app").await;
        let checks = [
            ("uid_map", "cat /proc/self/uid_map", format!("0 {HOST_ID} 65536")),
            ("gid_map", "cat /proc/self/gid_map", format!("0 {HOST_ID} 65536")),
            ("id", "id -u; id -g", "0 0".to_string()),
            ("image files", "stat -c '%u:%g' / /bin/busybox /etc", "0:0 0:0 0:0".into()),
            ("rootfs write", "echo w > /new && stat -c '%u:%g' /new", "0:0".into()),
            ("volume", "stat -c '%u:%g' /data /data/from-host", "0:0 0:0".into()),
            ("volume write", "echo v > /data/new && stat -c '%u:%g' /data/new", "0:0".into()),
            ("pod files", "echo '10.0.0.1 x' >> /etc/hosts && stat -c '%u:%g' /etc/hosts /etc/resolv.conf /etc/hostname /dev/shm", "0:0 0:0 0:0 0:0".into()),
            ("shm write", "echo s > /dev/shm/s && cat /dev/shm/s", "s".into()),
        ];
        for (name, script, want) in checks {
            let r = exec_sh(&mut c, &id, script).await;
            let out = String::from_utf8_lossy(&r.stdout);
            let got = out.split_whitespace().collect::<Vec<_>>().join(" ");
            assert_eq!(
                (r.exit_code, got.as_str()),
                (0, want.as_str()),
                "{what}: {name}: `{script}`: stderr {}",
                String::from_utf8_lossy(&r.stderr)
            );
        }
        // Through the mapping, the volume's new file is the host's root's.
        let md = std::fs::metadata(vol.join("new")).expect("file written in the container");
        assert_eq!((md.uid(), md.gid()), (0, 0), "{what}: volume file on the host");
        assert_eq!(
            idmapped_mounts(),
            Vec::<String>::new(),
            "{what}: the shim's id-mapped copies are detached once the container is created"
        );

        remove_pod(&mut c, &pod).await.expect("remove pod");
        assert_eq!(idmapped_mounts(), Vec::<String>::new(), "{what}: after removal");
    });
    finish(env, &d);
}

#[test]
fn criusd_user_namespaced_pod_fast_path_pause() {
    let mut env = env_or_skip!("criusd_user_namespaced_pod_fast_path_pause");
    let Some(d) = start(&mut env) else { return };
    run_userns_pod(env, d, "fast-path pause");
}

#[test]
fn criusd_user_namespaced_pod_runc_pause() {
    let mut env = env_or_skip!("criusd_user_namespaced_pod_runc_pause");
    // containerd (and so the shim) inherits this process's environment; tests of this binary
    // run one at a time (--test-threads=1), and the variable goes right after the start.
    std::env::set_var("CRIUS_SHIM_SANDBOX_FASTPATH", "0");
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| start(&mut env)));
    std::env::remove_var("CRIUS_SHIM_SANDBOX_FASTPATH");
    let Some(d) = started.expect("start") else {
        return;
    };
    run_userns_pod(env, d, "runc pause");
}
