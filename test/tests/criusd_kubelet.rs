//! Rules kubelet relies on, as containerd and CRI-O keep them: stops of pods and containers
//! that do not exist (any more) are OK, a run-as group without a run-as user is refused, and
//! ContainerStatus and GetContainerEvents say what kubelet's PLEG builds the pod from.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    client, container_config, create_and_start, create_container, finish, pod_config, pod_log_dir,
    pull, remove_pod, rt, run_pod, runtime_status, start, start_container, stop_container,
    stop_pod, try_create, try_run_pod,
};

#[test]
fn criusd_stops_of_unknown_ids_are_ok() {
    let mut env = env_or_skip!("criusd_stops_of_unknown_ids_are_ok");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        // Never existed.
        stop_container(&mut c, "feedface", 0)
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
        stop_container(&mut c, &id, 0)
            .await
            .expect("StopContainer of a removed container");
        remove_pod(&mut c, &pod).await.expect("remove pod");
        stop_pod(&mut c, &pod)
            .await
            .expect("StopPodSandbox of a removed pod");

        // An empty id is still a bad request.
        let e = stop_container(&mut c, "", 0)
            .await
            .expect_err("empty container id");
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
        let e = try_run_pod(&mut c, &bad_pod)
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
            let u = criusd_common::container_user(&mut c, &id).await;
            assert_eq!((u.uid, u.gid), (1000, 2000), "{name}");
        }
        let all = criusd_common::all_containers(&mut c).await;
        assert_eq!(all.len(), 2, "the refused create left nothing: {all:?}");
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}

/// The next event from `events` matching `want`, within 10 s.
async fn next_event(
    events: &mut crius_proto::tonic::Streaming<cri::ContainerEventResponse>,
    want: impl Fn(&cri::ContainerEventResponse) -> bool,
) -> cri::ContainerEventResponse {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.message()).await {
            Ok(Ok(Some(ev))) if want(&ev) => return ev,
            Ok(Ok(Some(ev))) => seen.push((ev.container_id, ev.container_event_type)),
            other => panic!("no such event: {other:?}; seen {seen:?}"),
        }
    }
}

fn ids_of(ev: &cri::ContainerEventResponse) -> Vec<&str> {
    let mut v: Vec<&str> = ev
        .containers_statuses
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    v.sort();
    v
}

#[test]
fn criusd_status_and_events_as_kubelet_builds_on_them() {
    use cri::ContainerEventType as Ev;
    let mut env = env_or_skip!("criusd_status_and_events_as_kubelet_builds_on_them");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        let mut events = c
            .runtime
            .get_container_events(cri::GetEventsRequest {})
            .await
            .expect("events")
            .into_inner();
        let image_id = pull(&mut c, registry::BUSYBOX).await;
        let img = criusd_common::image_status(&mut c, registry::BUSYBOX)
            .await
            .expect("image status")
            .image
            .expect("image");
        let digest = img.repo_digests.first().expect("a repo digest").clone();

        let pcfg = pod_config(&env, "events", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        // Sandbox events carry the pod's id as container id, as containerd's.
        for kind in [Ev::ContainerCreatedEvent, Ev::ContainerStartedEvent] {
            let ev = next_event(&mut events, |e| {
                e.container_id == pod && e.container_event_type == kind as i32
            })
            .await;
            let ps = ev.pod_sandbox_status.expect("pod status");
            assert_eq!(ps.state, cri::PodSandboxState::SandboxReady as i32);
        }

        // Containers are created by image id, as kubelet does.
        let c1 = create_and_start(
            &mut c,
            &d,
            &pod,
            container_config("one", &image_id, &["sleep", "1000"]),
            &pcfg,
            "one",
        )
        .await;
        let mut cfg2 = container_config("two", &image_id, &["sleep", "1000"]);
        cfg2.stop_signal = cri::Signal::Sigint as i32;
        let c2 = create_container(&mut c, &d, &pod, cfg2, &pcfg, "two").await;
        // c2's created event: the pod's other container is in it too.
        let ev = next_event(&mut events, |e| {
            e.container_id == c2 && e.container_event_type == Ev::ContainerCreatedEvent as i32
        })
        .await;
        let mut both = vec![c1.as_str(), c2.as_str()];
        both.sort();
        assert_eq!(ids_of(&ev), both, "{ev:?}");
        assert!(ev.pod_sandbox_status.is_some());
        start_container(&mut c, &d, &c2, "two").await;
        let ev = next_event(&mut events, |e| {
            e.container_id == c2 && e.container_event_type == Ev::ContainerStartedEvent as i32
        })
        .await;
        assert_eq!(ids_of(&ev), both, "{ev:?}");
        assert!(ev
            .containers_statuses
            .iter()
            .all(|s| s.state == cri::ContainerState::ContainerRunning as i32));

        // ContainerStatus: image = the tag, image_ref = the repo digest (kubelet's imageID),
        // image_id = the config digest; the stop signal as given, else SIGTERM.
        for (id, signal) in [(&c1, cri::Signal::Sigterm), (&c2, cri::Signal::Sigint)] {
            let st = criusd_common::container_state(&mut c, id).await;
            assert_eq!(st.image_ref, digest, "{st:?}");
            assert_eq!(st.image_id, image_id, "{st:?}");
            assert_eq!(
                st.image.as_ref().expect("image").image,
                registry::BUSYBOX,
                "{st:?}"
            );
            assert_eq!(st.stop_signal, signal as i32, "{st:?}");
        }
        // ListContainers keeps the config digest in image_ref, as containerd does.
        for ctr in criusd_common::all_containers(&mut c).await {
            assert_eq!(
                (ctr.image_ref.as_str(), ctr.image_id.as_str()),
                (image_id.as_str(), image_id.as_str())
            );
        }
        let ps = c
            .runtime
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: pod.clone(),
                verbose: false,
            })
            .await
            .expect("pod status")
            .into_inner();
        assert!(ps.containers_statuses.iter().all(|s| s.image_ref == digest));

        // One container exits: its stopped event still shows the other, running.
        stop_container(&mut c, &c1, 5).await.expect("stop one");
        let ev = next_event(&mut events, |e| {
            e.container_id == c1 && e.container_event_type == Ev::ContainerStoppedEvent as i32
        })
        .await;
        assert_eq!(ids_of(&ev), both, "{ev:?}");
        let other = ev
            .containers_statuses
            .iter()
            .find(|s| s.id == c2)
            .expect("two");
        assert_eq!(other.state, cri::ContainerState::ContainerRunning as i32);

        // The pod stops: a sandbox stopped event, the pod NotReady; then deleted.
        stop_pod(&mut c, &pod).await.expect("stop pod");
        let ev = next_event(&mut events, |e| {
            e.container_id == pod && e.container_event_type == Ev::ContainerStoppedEvent as i32
        })
        .await;
        let ps = ev.pod_sandbox_status.as_ref().expect("pod status");
        assert_eq!(ps.state, cri::PodSandboxState::SandboxNotready as i32);
        remove_pod(&mut c, &pod).await.expect("remove pod");
        let ev = next_event(&mut events, |e| {
            e.container_id == pod && e.container_event_type == Ev::ContainerDeletedEvent as i32
        })
        .await;
        assert!(
            ev.pod_sandbox_status.is_none() && ev.containers_statuses.is_empty(),
            "{ev:?}"
        );
    });
    finish(env, &d);
}

#[test]
fn criusd_user_namespace_shapes_are_refused() {
    use cri::NamespaceMode as M;
    let mut env = env_or_skip!("criusd_user_namespace_shapes_are_refused");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        let st = runtime_status(&mut c).await;
        // The crius shim makes the id-mapped mounts: its handlers claim user namespaces
        // (criusd_userns runs such pods).
        let crius = criusd_common::runtime() == "io.containerd.crius.v2";
        assert!(
            st.runtime_handlers.iter().all(|h| h
                .features
                .as_ref()
                .is_some_and(|f| f.user_namespaces == crius)),
            "handlers claim user namespaces exactly under the crius shim: {:?}",
            st.runtime_handlers
        );
        let map = |container_id: u32| cri::IdMapping {
            host_id: 100_000,
            container_id,
            length: 65536,
        };
        let userns = |mode: M, uids: Vec<cri::IdMapping>| cri::UserNamespace {
            mode: mode as i32,
            uids,
            gids: vec![map(0)],
        };
        let with = |name: &str, u: cri::UserNamespace| {
            let mut p = pod_config(&env, name, &log_dir);
            p.linux.as_mut().expect("linux").security_context =
                Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        userns_options: Some(u),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            p
        };
        for (name, u, code) in [
            (
                "ctr",
                userns(M::Container, vec![map(0)]),
                Code::InvalidArgument,
            ),
            (
                "target",
                userns(M::Target, vec![map(0)]),
                Code::InvalidArgument,
            ),
            (
                "two",
                userns(M::Pod, vec![map(0), map(70000)]),
                Code::InvalidArgument,
            ),
            (
                "no-root",
                userns(M::Pod, vec![map(1)]),
                Code::InvalidArgument,
            ),
        ] {
            let e = try_run_pod(&mut c, &with(name, u)).await.expect_err(name);
            assert_eq!(e.code(), code, "{name}: {e}");
        }
        // NODE is the host's user namespace: runs.
        let pcfg = with("node", userns(M::Node, vec![]));
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let pods = c
            .runtime
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .expect("list")
            .into_inner()
            .items;
        assert_eq!(pods.len(), 1, "refused pods left nothing: {pods:?}");
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
