//! CRI fields criusd once dropped without a word are applied, or refused with
//! INVALID_ARGUMENT where this node cannot apply them: `unified` and
//! `memory_swap_limit_in_bytes` at create, `add_ambient_capabilities`, an AppArmor profile on a
//! host without AppArmor, and containerd 2.x's default pod sysctls.

mod criusd_common;

use std::path::Path;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    all_containers, client, container_config, create_and_start, exec_sh, finish, pod_config,
    pod_log_dir, pull, remove_pod, rt, run_pod, start, try_create,
};

fn out(r: &cri::ExecSyncResponse) -> String {
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

fn with_linux(
    name: &str,
    sc: cri::LinuxContainerSecurityContext,
    res: cri::LinuxContainerResources,
) -> cri::ContainerConfig {
    let mut cfg = container_config(name, registry::BUSYBOX, &["sleep", "1000"]);
    cfg.linux = Some(cri::LinuxContainerConfig {
        security_context: Some(sc),
        resources: Some(res),
    });
    cfg
}

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

/// A cgroup file of container `id` in pod config `pcfg`, read on the host.
fn cgroup_file(pcfg: &cri::PodSandboxConfig, id: &str, v1_controller: &str, file: &str) -> String {
    let parent = pcfg
        .linux
        .as_ref()
        .expect("linux")
        .cgroup_parent
        .trim_start_matches('/');
    let dir = if cgroup_v2() {
        format!("/sys/fs/cgroup/{parent}/{id}")
    } else {
        format!("/sys/fs/cgroup/{v1_controller}/{parent}/{id}")
    };
    std::fs::read_to_string(format!("{dir}/{file}"))
        .unwrap_or_else(|e| panic!("{dir}/{file}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn criusd_fields_are_applied_or_refused() {
    let mut env = env_or_skip!("criusd_fields_are_applied_or_refused");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "fields", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let sleeper = container_config("sysctls", registry::BUSYBOX, &["sleep", "1000"]);
        let id = create_and_start(&mut c, &d, &pod, sleeper, &pcfg, "sysctls").await;

        // containerd 2.x's default pod sysctls (enable_unprivileged_ports / _icmp).
        let r = exec_sh(
            &mut c,
            &id,
            "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range",
        )
        .await;
        let got: Vec<String> = out(&r)
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(got, vec!["0", "0 2147483647"], "{r:?}");

        // add_ambient_capabilities: a non-root process keeps the capability across exec.
        let ambient = cri::LinuxContainerSecurityContext {
            run_as_user: Some(cri::Int64Value { value: 1000 }),
            capabilities: Some(cri::Capability {
                add_capabilities: vec!["NET_BIND_SERVICE".into()],
                drop_capabilities: vec!["ALL".into()],
                add_ambient_capabilities: vec!["NET_BIND_SERVICE".into()],
            }),
            ..Default::default()
        };
        let amb = create_and_start(
            &mut c,
            &d,
            &pod,
            with_linux("ambient", ambient.clone(), Default::default()),
            &pcfg,
            "ambient",
        )
        .await;
        let st = out(&exec_sh(&mut c, &amb, "grep -E '^Cap(Amb|Eff)' /proc/self/status").await);
        assert!(st.contains("CapAmb:\t0000000000000400"), "{st}");
        assert!(st.contains("CapEff:\t0000000000000400"), "{st}");
        let mut not_held = ambient.clone();
        not_held
            .capabilities
            .as_mut()
            .expect("caps")
            .add_ambient_capabilities = vec!["SYS_ADMIN".into()];
        let e = try_create(
            &mut c,
            &pod,
            with_linux("amb-bad", not_held, Default::default()),
            &pcfg,
        )
        .await
        .expect_err("ambient capability not held");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(e.message().contains("CAP_SYS_ADMIN"), "{e}");

        // memory_swap_limit_in_bytes (memory + swap) at create.
        let mib = 1 << 20;
        let swap = cri::LinuxContainerResources {
            memory_limit_in_bytes: 64 * mib,
            memory_swap_limit_in_bytes: 128 * mib,
            ..Default::default()
        };
        let v1_swap = Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
        if cgroup_v2() || v1_swap {
            let sw = create_and_start(
                &mut c,
                &d,
                &pod,
                with_linux("swap", Default::default(), swap.clone()),
                &pcfg,
                "swap",
            )
            .await;
            if cgroup_v2() {
                assert_eq!(
                    cgroup_file(&pcfg, &sw, "memory", "memory.swap.max"),
                    (64 * mib).to_string()
                );
            } else {
                assert_eq!(
                    cgroup_file(&pcfg, &sw, "memory", "memory.memsw.limit_in_bytes"),
                    (128 * mib).to_string()
                );
            }
        } else {
            let e = try_create(
                &mut c,
                &pod,
                with_linux("swap", Default::default(), swap.clone()),
                &pcfg,
            )
            .await
            .expect_err("no swap accounting");
            assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        }
        let below = cri::LinuxContainerResources {
            memory_swap_limit_in_bytes: 32 * mib,
            ..swap
        };
        let e = try_create(
            &mut c,
            &pod,
            with_linux("swap-low", Default::default(), below),
            &pcfg,
        )
        .await
        .expect_err("swap below memory");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        // unified: applied on cgroup v2, refused on v1 (runc could not apply it there).
        let unified = cri::LinuxContainerResources {
            unified: [("memory.high".to_string(), (96 * mib).to_string())]
                .into_iter()
                .collect(),
            ..Default::default()
        };
        if cgroup_v2() {
            let u = create_and_start(
                &mut c,
                &d,
                &pod,
                with_linux("unified", Default::default(), unified),
                &pcfg,
                "unified",
            )
            .await;
            assert_eq!(
                cgroup_file(&pcfg, &u, "memory", "memory.high"),
                (96 * mib).to_string()
            );
        } else {
            let e = try_create(
                &mut c,
                &pod,
                with_linux("unified", Default::default(), unified),
                &pcfg,
            )
            .await
            .expect_err("unified on cgroup v1");
            assert_eq!(e.code(), Code::InvalidArgument, "{e}");
            assert!(e.message().contains("cgroup v2"), "{e}");
        }

        // AppArmor on a host without it: refused (as containerd), unconfined is fine.
        if !apparmor_enabled() {
            use cri::security_profile::ProfileType as T;
            for (name, t, r) in [
                ("aa-default", T::RuntimeDefault, ""),
                ("aa-local", T::Localhost, "my-profile"),
            ] {
                let sc = cri::LinuxContainerSecurityContext {
                    apparmor: Some(cri::SecurityProfile {
                        profile_type: t as i32,
                        localhost_ref: r.into(),
                    }),
                    ..Default::default()
                };
                let e = try_create(
                    &mut c,
                    &pod,
                    with_linux(name, sc, Default::default()),
                    &pcfg,
                )
                .await
                .expect_err("AppArmor without AppArmor");
                assert_eq!(e.code(), Code::InvalidArgument, "{name}: {e}");
                assert!(e.message().contains("AppArmor"), "{e}");
            }
            let sc = cri::LinuxContainerSecurityContext {
                apparmor: Some(cri::SecurityProfile {
                    profile_type: T::Unconfined as i32,
                    localhost_ref: String::new(),
                }),
                ..Default::default()
            };
            try_create(
                &mut c,
                &pod,
                with_linux("aa-unconfined", sc, Default::default()),
                &pcfg,
            )
            .await
            .expect("unconfined AppArmor");
        }

        // Nothing half-made from the refusals.
        let names: Vec<String> = all_containers(&mut c)
            .await
            .into_iter()
            .filter_map(|c| c.metadata.map(|m| m.name))
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.ends_with("-bad") && n != "swap-low" && n != "aa-default"),
            "{names:?}"
        );
        remove_pod(&mut c, &pod).await.expect("remove pod");

        // The pod's own value wins over the default.
        let mut own = pod_config(&env, "own-sysctl", &log_dir);
        own.linux.as_mut().expect("linux").sysctls =
            [("net.ipv4.ping_group_range".to_string(), "1 1".to_string())]
                .into_iter()
                .collect();
        let pod = run_pod(&mut c, &d, &own).await;
        let sleeper = container_config("own", registry::BUSYBOX, &["sleep", "1000"]);
        let id = create_and_start(&mut c, &d, &pod, sleeper, &own, "own").await;
        let r = exec_sh(&mut c, &id, "cat /proc/sys/net/ipv4/ping_group_range").await;
        assert_eq!(
            out(&r).split_whitespace().collect::<Vec<_>>(),
            vec!["1", "1"],
            "{r:?}"
        );
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
