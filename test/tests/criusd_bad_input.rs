//! Bad requests get the right gRPC codes, and nothing is left behind.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    all_containers, client, container_config, finish, pod_config, pod_log_dir, pull, remove_pod,
    rt, run_pod, start, try_create,
};

#[test]
fn criusd_bad_input_codes() {
    let mut env = env_or_skip!("criusd_bad_input_codes");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "strict", &log_dir);

        let mut no_meta = pcfg.clone();
        no_meta.metadata = None;
        let e = c
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(no_meta),
                runtime_handler: String::new(),
            })
            .await
            .expect_err("no metadata");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        let e = c
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pcfg.clone()),
                runtime_handler: "no-such-handler".into(),
            })
            .await
            .expect_err("unknown handler");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        let e = try_create(
            &mut c,
            "0123456789abcdef",
            container_config("x", registry::BUSYBOX, &["true"]),
            &pcfg,
        )
        .await
        .expect_err("unknown pod");
        assert_eq!(e.code(), Code::NotFound, "{e}");

        let pod = run_pod(&mut c, &d, &pcfg).await;
        // The same pod again: ALREADY_EXISTS naming the holder.
        let e = c
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pcfg.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect_err("duplicate pod");
        assert_eq!(e.code(), Code::AlreadyExists, "{e}");
        assert!(e.message().contains(&pod), "{e}");

        let mut no_name = container_config("x", registry::BUSYBOX, &["true"]);
        no_name.metadata = None;
        let e = try_create(&mut c, &pod, no_name, &pcfg)
            .await
            .expect_err("no metadata");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        let e = try_create(
            &mut c,
            &pod,
            container_config("x", "127.0.0.1:5000/crius/not-pulled:1", &["true"]),
            &pcfg,
        )
        .await
        .expect_err("image not pulled");
        assert_eq!(e.code(), Code::NotFound, "{e}");
        let mut rel = container_config("x", registry::BUSYBOX, &["true"]);
        rel.mounts.push(cri::Mount {
            container_path: "relative/path".into(),
            host_path: "/tmp".into(),
            ..Default::default()
        });
        let e = try_create(&mut c, &pod, rel, &pcfg)
            .await
            .expect_err("relative mount");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        let id = try_create(
            &mut c,
            &pod,
            container_config("ok", registry::BUSYBOX, &["sleep", "1000"]),
            &pcfg,
        )
        .await
        .expect("create");
        let e = c
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec!["true".into()],
                timeout: 5,
            })
            .await
            .expect_err("exec in a created container");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        c.runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("start");
        let e = c
            .runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect_err("start twice");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        let e = c
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec![],
                timeout: 5,
            })
            .await
            .expect_err("empty cmd");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        let e = c
            .runtime
            .update_container_resources(cri::UpdateContainerResourcesRequest {
                container_id: id.clone(),
                linux: Some(cri::LinuxContainerResources {
                    memory_limit_in_bytes: -1,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect_err("negative memory");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        // Only the one good container exists; removing unknown things is fine.
        let all = all_containers(&mut c).await;
        assert_eq!(all.len(), 1, "{all:?}");
        c.runtime
            .remove_container(cri::RemoveContainerRequest {
                container_id: "feedface".into(),
            })
            .await
            .expect("remove unknown container");
        remove_pod(&mut c, &pod).await.expect("remove pod");
        remove_pod(&mut c, &pod).await.expect("remove pod twice");
    });
    finish(env, &d);
}

/// Exec, Attach and PortForward answer NOT_FOUND for what does not exist and
/// FAILED_PRECONDITION for what cannot be streamed to, before any URL is issued.
#[test]
fn criusd_streaming_needs_a_live_target() {
    let mut env = env_or_skip!("criusd_streaming_needs_a_live_target");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let exec = |id: &str| cri::ExecRequest {
            container_id: id.into(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        };
        let attach = |id: &str| cri::AttachRequest {
            container_id: id.into(),
            stdout: true,
            ..Default::default()
        };
        let forward = |id: &str| cri::PortForwardRequest {
            pod_sandbox_id: id.into(),
            port: vec![80],
        };
        let e = c.runtime.exec(exec("feedface")).await.expect_err("exec");
        assert_eq!(e.code(), Code::NotFound, "{e}");
        let e = c
            .runtime
            .attach(attach("feedface"))
            .await
            .expect_err("attach");
        assert_eq!(e.code(), Code::NotFound, "{e}");
        let e = c
            .runtime
            .port_forward(forward("feedface"))
            .await
            .expect_err("port-forward");
        assert_eq!(e.code(), Code::NotFound, "{e}");

        let pcfg = pod_config(&env, "stream-target", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let id = try_create(
            &mut c,
            &pod,
            container_config("idle", registry::BUSYBOX, &["sleep", "1000"]),
            &pcfg,
        )
        .await
        .expect("create");
        // Created, never started.
        let e = c.runtime.exec(exec(&id)).await.expect_err("exec created");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        let e = c
            .runtime
            .attach(attach(&id))
            .await
            .expect_err("attach created");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        // Running: URLs, for the full id a prefix names.
        c.runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("start");
        let url = c
            .runtime
            .exec(exec(&id[..12]))
            .await
            .expect("exec running")
            .into_inner()
            .url;
        assert!(url.starts_with("http://"), "{url}");
        c.runtime
            .port_forward(forward(&pod))
            .await
            .expect("port-forward ready pod");
        // Exited, and a stopped pod.
        c.runtime
            .stop_container(cri::StopContainerRequest {
                container_id: id.clone(),
                timeout: 0,
            })
            .await
            .expect("stop");
        let e = c.runtime.exec(exec(&id)).await.expect_err("exec exited");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        let e = c
            .runtime
            .attach(attach(&id))
            .await
            .expect_err("attach exited");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        criusd_common::stop_pod(&mut c, &pod)
            .await
            .expect("stop pod");
        let e = c
            .runtime
            .port_forward(forward(&pod))
            .await
            .expect_err("port-forward stopped pod");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
