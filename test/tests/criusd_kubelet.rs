//! Rules kubelet relies on, as containerd and CRI-O keep them: stops of pods and containers
//! that do not exist (any more) are OK, and a run-as group without a run-as user is refused.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    client, container_config, create_and_start, finish, pod_config, pod_log_dir, pull, remove_pod,
    rt, run_pod, start, stop_pod, try_create,
};

#[test]
fn criusd_stops_of_unknown_ids_are_ok() {
    let mut env = env_or_skip!("criusd_stops_of_unknown_ids_are_ok");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let stop_ctr = |c: &mut crius_test::cri::CriClient, id: &str| {
            let mut c = c.clone();
            let id = id.to_string();
            async move {
                c.runtime
                    .stop_container(cri::StopContainerRequest {
                        container_id: id,
                        timeout: 0,
                    })
                    .await
                    .map(|_| ())
            }
        };
        // Never existed.
        stop_ctr(&mut c, "feedface")
            .await
            .expect("StopContainer of an unknown id");
        stop_pod(&mut c, "feedface")
            .await
            .expect("StopPodSandbox of an unknown id");

        // Existed, then removed: what kubelet re-issues after its restarts and GC.
        let pcfg = pod_config(&env, "gone", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let cfg = container_config("app", registry::BUSYBOX, &["sleep", "1000"]);
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "app").await;
        c.runtime
            .remove_container(cri::RemoveContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("remove container");
        stop_ctr(&mut c, &id)
            .await
            .expect("StopContainer of a removed container");
        remove_pod(&mut c, &pod).await.expect("remove pod");
        stop_pod(&mut c, &pod)
            .await
            .expect("StopPodSandbox of a removed pod");

        // An empty id is still a bad request.
        let e = stop_ctr(&mut c, "").await.expect_err("empty container id");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        let e = stop_pod(&mut c, "").await.expect_err("empty pod id");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    });
    let log = std::fs::read_to_string(&d.log).unwrap_or_default();
    assert!(
        log.contains("StopContainer: no such container")
            && log.contains("StopPodSandbox: no such pod"),
        "criusd logs the stops it skipped:\n{}",
        d.log_tail()
    );
    finish(env, &d);
}

#[test]
fn criusd_run_as_group_needs_a_user() {
    let mut env = env_or_skip!("criusd_run_as_group_needs_a_user");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;

        // Pod level: the sandbox's security context.
        let mut bad_pod = pod_config(&env, "grouponly", &log_dir);
        bad_pod.linux.as_mut().expect("linux").security_context =
            Some(cri::LinuxSandboxSecurityContext {
                run_as_group: Some(cri::Int64Value { value: 2000 }),
                ..Default::default()
            });
        let e = c
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(bad_pod),
                runtime_handler: String::new(),
            })
            .await
            .expect_err("pod with run_as_group only");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(e.message().contains("run_as_group"), "{e}");

        // Container level: refused, and with a user (by id or by name) accepted.
        let pcfg = pod_config(&env, "groups", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let with = |sc: cri::LinuxContainerSecurityContext, name: &str| {
            let mut cfg = container_config(name, registry::BUSYBOX, &["sleep", "1000"]);
            cfg.linux = Some(cri::LinuxContainerConfig {
                security_context: Some(sc),
                ..Default::default()
            });
            cfg
        };
        let group_only = cri::LinuxContainerSecurityContext {
            run_as_group: Some(cri::Int64Value { value: 2000 }),
            ..Default::default()
        };
        let e = try_create(&mut c, &pod, with(group_only.clone(), "bad"), &pcfg)
            .await
            .expect_err("container with run_as_group only");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(e.message().contains("run_as_group"), "{e}");
        for (name, sc) in [
            (
                "byid",
                cri::LinuxContainerSecurityContext {
                    run_as_user: Some(cri::Int64Value { value: 1000 }),
                    ..group_only.clone()
                },
            ),
            (
                "byname",
                cri::LinuxContainerSecurityContext {
                    run_as_username: "app".into(),
                    ..group_only.clone()
                },
            ),
        ] {
            let id = try_create(&mut c, &pod, with(sc, name), &pcfg)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}\n{}", d.log_tail()));
            let st = criusd_common::container_state(&mut c, &id).await;
            let u = st.user.and_then(|u| u.linux).expect("user");
            assert_eq!((u.uid, u.gid), (1000, 2000), "{name}");
        }
        let all = criusd_common::all_containers(&mut c).await;
        assert_eq!(all.len(), 2, "the refused create left nothing: {all:?}");
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
