//! criusd crashes and restarts while a pod runs: kill -9, then a restart finds the same
//! pods and containers, reports the exit that happened while it was down, and the log
//! has no gap; SIGTERM stops criusd but leaves the containers running.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    client, container_config, container_state, create_and_start, eventually, finish, pod_config,
    pod_log_dir, pull, remove_pod, rt, run_pod, spawn, start, stop_pod,
};
use std::time::Duration;

async fn ids(c: &mut crius_test::cri::CriClient) -> (Vec<String>, Vec<(String, i32)>) {
    let mut pods: Vec<String> = c
        .runtime
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .expect("list pods")
        .into_inner()
        .items
        .into_iter()
        .map(|p| p.id)
        .collect();
    pods.sort();
    let mut ctrs: Vec<(String, i32)> = c
        .runtime
        .list_containers(cri::ListContainersRequest { filter: None })
        .await
        .expect("list containers")
        .into_inner()
        .containers
        .into_iter()
        .map(|c| (c.id, c.state))
        .collect();
    ctrs.sort();
    (pods, ctrs)
}

/// The numbers of `line N` records in a CRI log, in file order.
fn numbers(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| {
            l.rsplit_once(" F line ")
                .and_then(|(_, n)| n.trim().parse().ok())
        })
        .collect()
}

#[test]
fn criusd_kill9_restart_keeps_pods_containers_exits_and_logs() {
    let mut env = env_or_skip!("criusd_kill9_restart_keeps_pods_containers_exits_and_logs");
    let Some(mut d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let runtime = rt();
    let (pod, ticker, quitter) = runtime.block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "survivor", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let mut ids = Vec::new();
        for (name, script) in [
            (
                "ticker",
                "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done",
            ),
            ("quitter", "sleep 3; echo bye; exit 5"),
        ] {
            let cfg = container_config(name, registry::BUSYBOX, &["sh", "-c", script]);
            ids.push(create_and_start(&mut c, &d, &pod, cfg, &pcfg, name).await);
        }
        (pod, ids[0].clone(), ids[1].clone())
    });

    let before = runtime.block_on(async { ids(&mut client(&d).await).await });
    assert_eq!(before.0, vec![pod.clone()]);
    assert_eq!(before.1.len(), 2);

    // kill -9 while everything runs; the quitter exits while criusd is down.
    env.stop_service(d.pid, true).expect("kill -9 criusd");
    std::thread::sleep(Duration::from_secs(4));
    spawn(&mut env, &mut d);

    runtime.block_on(async {
        let mut c = client(&d).await;
        let after = ids(&mut c).await;
        assert_eq!(after.0, before.0, "pods unchanged\n{}", d.log_tail());
        let after_ids: Vec<&String> = after.1.iter().map(|(i, _)| i).collect();
        let before_ids: Vec<&String> = before.1.iter().map(|(i, _)| i).collect();
        assert_eq!(after_ids, before_ids, "containers unchanged");
        let q = container_state(&mut c, &quitter).await;
        assert_eq!(
            q.state,
            cri::ContainerState::ContainerExited as i32,
            "{q:?}"
        );
        assert_eq!(q.exit_code, 5);
        assert_eq!(q.reason, "Error");
        let t = container_state(&mut c, &ticker).await;
        assert_eq!(
            t.state,
            cri::ContainerState::ContainerRunning as i32,
            "{t:?}"
        );
        let pst = c
            .runtime
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: pod.clone(),
                verbose: false,
            })
            .await
            .expect("pod status")
            .into_inner();
        assert_eq!(
            pst.status.map(|s| s.state),
            Some(cri::PodSandboxState::SandboxReady as i32)
        );
        // ExecSync still reaches the container.
        let ex = c
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: ticker.clone(),
                cmd: vec!["echo".into(), "alive".into()],
                timeout: 10,
            })
            .await
            .expect("exec after restart")
            .into_inner();
        assert_eq!(String::from_utf8_lossy(&ex.stdout), "alive\n");
    });

    // SIGTERM: criusd goes (promptly, even with an event stream open, as kubelet keeps one),
    // the containers stay.
    let events = runtime.block_on(async {
        let mut c = client(&d).await;
        c.runtime
            .get_container_events(cri::GetEventsRequest {})
            .await
            .expect("events")
            .into_inner()
    });
    let t = std::time::Instant::now();
    env.stop_service(d.pid, false).expect("SIGTERM criusd");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "SIGTERM took {:?}",
        t.elapsed()
    );
    drop(events);
    assert!(!d.socket.exists(), "socket removed on clean shutdown");
    let log = log_dir.join("ticker/0.log");
    let n0 = numbers(&std::fs::read_to_string(&log).unwrap_or_default()).len();
    std::thread::sleep(Duration::from_secs(1));
    let n1 = numbers(&std::fs::read_to_string(&log).unwrap_or_default()).len();
    assert!(
        n1 > n0,
        "ticker keeps logging while criusd is down ({n0} → {n1})"
    );
    spawn(&mut env, &mut d);

    runtime.block_on(async {
        let mut c = client(&d).await;
        let t = container_state(&mut c, &ticker).await;
        assert_eq!(
            t.state,
            cri::ContainerState::ContainerRunning as i32,
            "{t:?}\n{}",
            d.log_tail()
        );
        c.runtime
            .stop_container(cri::StopContainerRequest {
                container_id: ticker.clone(),
                timeout: 2,
            })
            .await
            .expect("stop ticker");
        // The whole log: consecutive numbers from 0, none lost across two criusd restarts.
        let text = eventually(5, || {
            let p = log.clone();
            async move { std::fs::read_to_string(&p).ok() }
        })
        .await
        .unwrap_or_default();
        let nums = numbers(&text);
        assert!(nums.len() > 40, "{} lines", nums.len());
        for (i, n) in nums.iter().enumerate() {
            assert_eq!(*n, i as u64, "gap in the log at record {i}");
        }
        stop_pod(&mut c, &pod).await.expect("stop pod");
        remove_pod(&mut c, &pod).await.expect("remove pod");
        let (pods, ctrs) = ids(&mut c).await;
        assert!(pods.is_empty() && ctrs.is_empty(), "{pods:?} {ctrs:?}");
    });
    finish(env, &d);
}

#[test]
fn criusd_survives_a_containerd_restart() {
    let mut env = env_or_skip!("criusd_survives_a_containerd_restart");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let runtime = rt();
    let (pod, id) = runtime.block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "steady", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        // Exits on its own once /tmp/go exists (created by an exec after the restart).
        let script = "while [ ! -e /tmp/go ]; do sleep 0.2; done; exit 7";
        let cfg = container_config("waiter", registry::BUSYBOX, &["sh", "-c", script]);
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "").await;
        (pod, id)
    });

    let ctrd = env.running_containerd().expect("containerd");
    ctrd.kill9().expect("kill -9 containerd");
    std::thread::sleep(Duration::from_millis(500));
    ctrd.restart().expect("restart containerd");

    runtime.block_on(async {
        let mut c = client(&d).await;
        // The same criusd reconnects: the container still runs and takes an exec.
        let st = eventually(10, || {
            let mut c = c.clone();
            let id = id.clone();
            async move {
                let r = c
                    .runtime
                    .container_status(cri::ContainerStatusRequest {
                        container_id: id,
                        verbose: false,
                    })
                    .await
                    .ok()?;
                r.into_inner().status
            }
        })
        .await
        .unwrap_or_else(|| panic!("no status after containerd restart\n{}", d.log_tail()));
        assert_eq!(
            st.state,
            cri::ContainerState::ContainerRunning as i32,
            "{st:?}"
        );
        let mut events = c
            .runtime
            .get_container_events(cri::GetEventsRequest {})
            .await
            .expect("events")
            .into_inner();
        let ex = c
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec!["touch".into(), "/tmp/go".into()],
                timeout: 10,
            })
            .await
            .unwrap_or_else(|e| panic!("exec after containerd restart: {e}\n{}", d.log_tail()))
            .into_inner();
        assert_eq!(ex.exit_code, 0);
        // Its exit arrives through criusd's re-made event subscription.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut stopped = false;
        while let Ok(Ok(Some(ev))) = tokio::time::timeout_at(deadline, events.message()).await {
            if ev.container_id == id
                && ev.container_event_type == cri::ContainerEventType::ContainerStoppedEvent as i32
            {
                stopped = true;
                break;
            }
        }
        assert!(stopped, "no stopped event\n{}", d.log_tail());
        let st = container_state(&mut c, &id).await;
        assert_eq!(st.exit_code, 7, "{st:?}\n{}", d.log_tail());
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
