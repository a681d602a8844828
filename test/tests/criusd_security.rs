//! Security context through criusd, checked from inside real containers: read-only rootfs,
//! capabilities add/drop, privileged, RuntimeDefault seccomp, run-as user and groups, and
//! oom_score_adj (raised as asked, lowered only as far as criusd's own score allows), and
//! supplemental groups merged from the image or not (SupplementalGroupsPolicy Strict).

mod criusd_common;

use crius_proto::runtime as cri;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    client, container_config, create_and_start, exec_sh, finish, pod_config, pod_log_dir, pull,
    remove_pod, rt, run_pod, start,
};

async fn exec(c: &mut crius_test::cri::CriClient, id: &str, script: &str) -> (i32, String) {
    let r = exec_sh(c, id, script).await;
    (
        r.exit_code,
        String::from_utf8_lossy(&r.stdout).trim().to_string(),
    )
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn criusd_security_context_reaches_the_container() {
    let mut env = env_or_skip!("criusd_security_context_reaches_the_container");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let own_score: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        pull(&mut c, registry::CONFIG_TEST).await;
        let pcfg = pod_config(&env, "secure", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;

        let variants: Vec<(&str, cri::LinuxContainerSecurityContext, i64)> = vec![
            (
                "locked",
                cri::LinuxContainerSecurityContext {
                    readonly_rootfs: true,
                    no_new_privs: true,
                    capabilities: Some(cri::Capability {
                        drop_capabilities: vec!["ALL".into()],
                        add_capabilities: vec!["NET_BIND_SERVICE".into()],
                        ..Default::default()
                    }),
                    seccomp: Some(cri::SecurityProfile {
                        profile_type: cri::security_profile::ProfileType::RuntimeDefault as i32,
                        localhost_ref: String::new(),
                    }),
                    run_as_user: Some(cri::Int64Value { value: 1234 }),
                    run_as_group: Some(cri::Int64Value { value: 2345 }),
                    supplemental_groups: vec![3456],
                    ..Default::default()
                },
                500,
            ),
            (
                "privileged",
                cri::LinuxContainerSecurityContext {
                    privileged: true,
                    ..Default::default()
                },
                -500,
            ),
        ];
        let mut ids = Vec::new();
        for (name, mut sc, oom) in variants {
            // kubelet's default: each container its own PID namespace (so sleep is PID 1).
            sc.namespace_options = Some(cri::NamespaceOption {
                pid: cri::NamespaceMode::Container as i32,
                ..Default::default()
            });
            let mut cfg = container_config(name, registry::BUSYBOX, &["sleep", "1000"]);
            cfg.linux = Some(cri::LinuxContainerConfig {
                security_context: Some(sc),
                resources: Some(cri::LinuxContainerResources {
                    oom_score_adj: oom,
                    ..Default::default()
                }),
            });
            ids.push(create_and_start(&mut c, &d, &pod, cfg, &pcfg, name).await);
        }

        // locked: read-only rootfs, one capability, seccomp filter on, user/groups, score raised.
        let locked = &ids[0];
        let (code, _) = exec(&mut c, locked, "touch /should-fail").await;
        assert_ne!(code, 0, "rootfs is read-only");
        let (_, st) = exec(&mut c, locked, "cat /proc/self/status").await;
        // A non-root user keeps the set as its bounding set (effective is empty after exec).
        assert_eq!(status_field(&st, "CapBnd:"), "0000000000000400", "{st}");
        assert_eq!(status_field(&st, "Seccomp:"), "2", "{st}");
        assert_eq!(status_field(&st, "NoNewPrivs:"), "1", "{st}");
        let (_, id_out) = exec(&mut c, locked, "id -u; id -g; id -G").await;
        let lines: Vec<&str> = id_out.lines().collect();
        assert_eq!(lines[0], "1234");
        assert_eq!(lines[1], "2345");
        assert!(lines[2].split_whitespace().any(|g| g == "3456"), "{id_out}");
        let (_, score) = exec(&mut c, locked, "cat /proc/1/oom_score_adj").await;
        assert_eq!(score, "500");

        // privileged: every capability, no seccomp, score lowered only to criusd's own.
        let privileged = &ids[1];
        let (_, st) = exec(&mut c, privileged, "cat /proc/self/status").await;
        assert_eq!(status_field(&st, "Seccomp:"), "0", "{st}");
        let cap_eff = u64::from_str_radix(&status_field(&st, "CapEff:"), 16).unwrap_or(0);
        assert!(cap_eff & (1 << 21) != 0, "CAP_SYS_ADMIN: {st}");
        let (_, score) = exec(&mut c, privileged, "cat /proc/1/oom_score_adj").await;
        let score: i32 = score.parse().expect("score");
        if has_cap_sys_resource() {
            assert_eq!(score, -500);
        } else {
            // Clamped: never below criusd's own score (the shim may sit a little higher still,
            // and a child cannot go below its parent's score without CAP_SYS_RESOURCE either).
            assert!(
                score >= own_score && score < 500,
                "score {score}, own {own_score}"
            );
        }

        // Supplemental groups: the primary gid first (as containerd sets them), then by default
        // the image's /etc/group memberships of its user (app is in staff, gid 50);
        // SupplementalGroupsPolicy Strict leaves those out. ContainerStatus reports exactly the
        // groups the process has (/proc/self/status `Groups:`).
        let (_, st) = exec(&mut c, locked, "cat /proc/self/status").await;
        assert_eq!(status_field(&st, "Groups:"), "2345 3456", "{st}");
        let user = criusd_common::container_user(&mut c, locked).await;
        assert_eq!(
            (user.uid, user.gid, user.supplemental_groups),
            (1234, 2345, vec![2345, 3456])
        );
        for (name, policy, want) in [
            (
                "merge",
                cri::SupplementalGroupsPolicy::Merge,
                vec![1000, 50, 3456],
            ),
            (
                "strict",
                cri::SupplementalGroupsPolicy::Strict,
                vec![1000, 3456],
            ),
        ] {
            let mut cfg = container_config(name, registry::CONFIG_TEST, &["sleep", "1000"]);
            cfg.linux = Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    supplemental_groups: vec![3456],
                    supplemental_groups_policy: policy as i32,
                    ..Default::default()
                }),
                ..Default::default()
            });
            let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, name).await;
            let (_, st) = exec(&mut c, &id, "cat /proc/self/status").await;
            let groups: Vec<i64> = status_field(&st, "Groups:")
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect();
            let mut sorted = want.clone();
            sorted.sort();
            assert_eq!(groups, sorted, "{name}: the process's groups");
            let user = criusd_common::container_user(&mut c, &id).await;
            assert_eq!(
                (user.uid, user.gid, user.supplemental_groups),
                (1000, 1000, want),
                "{name}"
            );
        }

        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}

fn has_cap_sys_resource() -> bool {
    let st = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    u64::from_str_radix(&status_field(&st, "CapEff:"), 16).is_ok_and(|c| c & (1 << 24) != 0)
}
