//! Concurrent RPCs on one container end in one consistent state (issue 14, the container
//! state machine): CreateContainer ×6 with one name → one container, the rest
//! ALREADY_EXISTS naming it; StartContainer ×6 → one start, the rest FAILED_PRECONDITION,
//! the container RUNNING; StopContainer ×3 with RemoveContainer ×3 → all OK, the container
//! and its task gone; StartContainer ×3 racing RemoveContainer → nothing left running;
//! CreateContainer on different names at once → all made.

mod criusd_common;

use std::future::Future;

use crius_proto::runtime as cri;
use crius_proto::tonic::{Code, Status};
use crius_test::cri::CriClient;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    all_containers, client, container_config, container_state, finish, pod_config, pod_log_dir,
    pull, remove_pod, rt, run_pod, start, stop_pod, try_create,
};

/// Run `n` copies of `f(i, client)` at once; their results in order.
async fn at_once<T, F, Fut>(c: &CriClient, n: usize, f: F) -> Vec<Result<T, Status>>
where
    T: Send + 'static,
    F: Fn(usize, CriClient) -> Fut,
    Fut: Future<Output = Result<T, Status>> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i, c.clone()))).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("join"));
    }
    out
}

async fn start_rpc(mut c: CriClient, id: String) -> Result<(), Status> {
    c.runtime
        .start_container(cri::StartContainerRequest { container_id: id })
        .await
        .map(|_| ())
}

async fn stop_rpc(mut c: CriClient, id: String) -> Result<(), Status> {
    c.runtime
        .stop_container(cri::StopContainerRequest {
            container_id: id,
            timeout: 2,
        })
        .await
        .map(|_| ())
}

async fn remove_rpc(mut c: CriClient, id: String) -> Result<(), Status> {
    c.runtime
        .remove_container(cri::RemoveContainerRequest { container_id: id })
        .await
        .map(|_| ())
}

fn codes<T>(rs: &[Result<T, Status>]) -> Vec<Code> {
    rs.iter()
        .map(|r| r.as_ref().err().map_or(Code::Ok, |e| e.code()))
        .collect()
}

#[test]
fn criusd_concurrent_rpcs_on_one_container_end_in_one_state() {
    let mut env = env_or_skip!("criusd_concurrent_rpcs_on_one_container_end_in_one_state");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "race", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let app = container_config("app", registry::BUSYBOX, &["sleep", "1000"]);

        // One name, six creates: one wins, the others name it.
        let made = at_once(&c, 6, |_, mut c| {
            let (pod, cfg, pcfg) = (pod.clone(), app.clone(), pcfg.clone());
            async move { try_create(&mut c, &pod, cfg, &pcfg).await }
        })
        .await;
        let ids: Vec<String> = made.iter().filter_map(|r| r.clone().ok()).collect();
        assert_eq!(ids.len(), 1, "creates: {made:?}\n{}", d.log_tail());
        let id = ids[0].clone();
        for e in made.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(e.code(), Code::AlreadyExists, "{e}");
            assert!(e.message().contains(&id), "{e}");
        }
        let named: Vec<_> = all_containers(&mut c)
            .await
            .into_iter()
            .filter(|x| x.metadata.as_ref().is_some_and(|m| m.name == "app"))
            .collect();
        assert_eq!(named.len(), 1, "{named:?}");
        assert_eq!(named[0].id, id);

        // Six starts: one starts it, the others find it running.
        let started = at_once(&c, 6, |_, c| start_rpc(c, id.clone())).await;
        let got = codes(&started);
        assert_eq!(
            got.iter().filter(|c| **c == Code::Ok).count(),
            1,
            "starts: {started:?}\n{}",
            d.log_tail()
        );
        assert!(
            got.iter()
                .all(|c| *c == Code::Ok || *c == Code::FailedPrecondition),
            "starts: {started:?}"
        );
        let st = container_state(&mut c, &id).await;
        assert_eq!(
            st.state,
            cri::ContainerState::ContainerRunning as i32,
            "{st:?}"
        );

        // Stops and removes at once: all OK, and the container is gone.
        let mixed = at_once(&c, 6, |i, c| {
            let id = id.clone();
            async move {
                if i % 2 == 0 {
                    stop_rpc(c, id).await
                } else {
                    remove_rpc(c, id).await
                }
            }
        })
        .await;
        assert!(
            codes(&mixed).iter().all(|c| *c == Code::Ok),
            "stop/remove: {mixed:?}\n{}",
            d.log_tail()
        );
        let gone = c
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
            .expect_err("removed container");
        assert_eq!(gone.code(), Code::NotFound, "{gone}");

        // Starts racing a remove: whatever order, nothing is left (the leak check below
        // sees a process a late start would have left running).
        let late = try_create(
            &mut c,
            &pod,
            container_config("late", registry::BUSYBOX, &["sleep", "1000"]),
            &pcfg,
        )
        .await
        .expect("create late");
        let raced = at_once(&c, 4, |i, c| {
            let id = late.clone();
            async move {
                if i == 1 {
                    remove_rpc(c, id).await
                } else {
                    start_rpc(c, id).await
                }
            }
        })
        .await;
        let got = codes(&raced);
        assert_eq!(got[1], Code::Ok, "remove: {raced:?}");
        assert!(
            got.iter()
                .all(|c| matches!(c, Code::Ok | Code::NotFound | Code::FailedPrecondition)),
            "start/remove: {raced:?}\n{}",
            d.log_tail()
        );
        assert!(
            all_containers(&mut c).await.iter().all(|x| x.id != late),
            "removed container still listed"
        );

        // Different names at once: each made.
        let many = at_once(&c, 4, |i, mut c| {
            let (pod, pcfg) = (pod.clone(), pcfg.clone());
            let cfg = container_config(&format!("n{i}"), registry::BUSYBOX, &["true"]);
            async move { try_create(&mut c, &pod, cfg, &pcfg).await }
        })
        .await;
        assert!(
            many.iter().all(|r| r.is_ok()),
            "creates of different names: {many:?}"
        );

        stop_pod(&mut c, &pod).await.expect("stop pod");
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
