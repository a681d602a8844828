//! A pod with two containers through criusd as a process: pull from the local registry,
//! run, logs in CRI format at kubelet's path, ExecSync output and exit code, stats,
//! events, image-config merging, stop and remove leave nothing behind; CreateContainer and
//! StartContainer log their steps' timings (debug).

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    all_containers, client, container_config, container_state, create_and_start, create_container,
    eventually, exited, finish, pod_config, pod_log_dir, pull, remove_pod, rt, run_pod,
    runtime_status, start, start_container, stop_pod, try_create, wait_status,
};

#[test]
fn criusd_pod_with_two_containers_logs_exec_stats_events() {
    let mut env = env_or_skip!("criusd_pod_with_two_containers_logs_exec_stats_events");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        let st = runtime_status(&mut c).await;
        let conds = st.status.expect("conditions").conditions;
        assert!(conds.iter().all(|c| c.status), "{conds:?}");

        let mut events = c
            .runtime
            .get_container_events(cri::GetEventsRequest {})
            .await
            .expect("events")
            .into_inner();

        pull(&mut c, registry::BUSYBOX).await;
        pull(&mut c, registry::CONFIG_TEST).await;
        let pcfg = pod_config(&env, "web", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;

        // Container 1: output with a partial last line, then stays up.
        let script = "echo hello; echo to-stderr >&2; printf partial; sleep 1000";
        let app = container_config("app", registry::BUSYBOX, &["sh", "-c", script]);
        let c1 = create_container(&mut c, &d, &pod, app, &pcfg, "").await;
        // Same name again: ALREADY_EXISTS naming the holder.
        let dup = try_create(
            &mut c,
            &pod,
            container_config("app", registry::BUSYBOX, &["true"]),
            &pcfg,
        )
        .await
        .expect_err("duplicate name");
        assert_eq!(dup.code(), Code::AlreadyExists);
        assert!(dup.message().contains(&c1), "{dup}");

        start_container(&mut c, &d, &c1, "").await;
        // Each step's time, one debug line per RPC with the container's id (util::phases).
        let log = std::fs::read_to_string(&d.log).unwrap_or_default();
        for (what, steps) in [
            (
                "CreateContainer phases",
                &[
                    "resolve=",
                    "image_volumes=",
                    "image_files=",
                    "spec=",
                    "containerd=",
                    "record=",
                ][..],
            ),
            (
                "StartContainer phases",
                &["rootfs=", "stdio=", "task_create=", "task_start="][..],
            ),
        ] {
            let line = log
                .lines()
                .find(|l| l.contains(what) && l.contains(&c1))
                .unwrap_or_else(|| panic!("no {what:?} line for {c1}\n{}", d.log_tail()));
            for step in steps {
                assert!(line.contains(step), "no {step} in {line}");
            }
        }

        // Container 2: the image's Entrypoint/Cmd/Env/WorkingDir/User, exits 7.
        let mut cfg2 = container_config("cfg", registry::CONFIG_TEST, &[]);
        cfg2.args = vec![];
        let c2 = create_and_start(&mut c, &d, &pod, cfg2, &pcfg, "cfg").await;

        // Logs in CRI format, partial line flushed only at EOF (not yet).
        let log1 = log_dir.join("app/0.log");
        let text = eventually(10, || {
            let p = log1.clone();
            async move {
                let t = std::fs::read_to_string(&p).ok()?;
                (t.contains("hello") && t.contains("to-stderr")).then_some(t)
            }
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "log {}: {:?}\n{}",
                log1.display(),
                std::fs::read_to_string(&log1),
                d.log_tail()
            )
        });
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.iter().any(|l| l.ends_with(" stdout F hello")),
            "{text}"
        );
        assert!(
            lines.iter().any(|l| l.ends_with(" stderr F to-stderr")),
            "{text}"
        );
        for l in &lines {
            let ts = l.split(' ').next().unwrap_or("");
            assert!(
                ts.len() == 30 && ts.ends_with('Z') && ts.contains('T'),
                "{l}"
            );
        }

        // ExecSync: output and exit code; a timeout is DEADLINE_EXCEEDED.
        let ex = c
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: c1.clone(),
                cmd: vec![
                    "sh".into(),
                    "-c".into(),
                    "echo out; echo err >&2; cat /etc/hostname; exit 3".into(),
                ],
                timeout: 10,
            })
            .await
            .unwrap_or_else(|e| panic!("exec: {e}\n{}", d.log_tail()))
            .into_inner();
        assert_eq!(ex.exit_code, 3);
        assert_eq!(String::from_utf8_lossy(&ex.stdout), "out\nweb\n");
        assert_eq!(String::from_utf8_lossy(&ex.stderr), "err\n");
        let big = c
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: c1.clone(),
                cmd: vec!["sh".into(), "-c".into(), "head -c 300000 /dev/zero".into()],
                timeout: 10,
            })
            .await
            .expect("big exec")
            .into_inner();
        assert_eq!(big.stdout.len(), 300_000);
        let slow = c
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: c1.clone(),
                cmd: vec!["sleep".into(), "30".into()],
                timeout: 1,
            })
            .await
            .expect_err("timeout");
        assert_eq!(slow.code(), Code::DeadlineExceeded, "{slow}");

        // The config-test container ran with the image's settings and exited.
        let s2 = wait_status(&c, &c2, 15, exited)
            .await
            .unwrap_or_else(|| panic!("config-test container did not exit\n{}", d.log_tail()));
        let log2 = std::fs::read_to_string(log_dir.join("cfg/0.log")).unwrap_or_default();
        eprintln!(
            "config-test container: exit {} reason {}; log:\n{log2}",
            s2.exit_code, s2.reason
        );
        assert!(s2.finished_at >= s2.started_at && s2.started_at > 0);
        assert_eq!(
            s2.reason,
            if s2.exit_code == 0 {
                "Completed"
            } else {
                "Error"
            }
        );

        // Verbose status carries the live pid (crictl inspect / criusctl debug read it).
        let v = c
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: c1.clone(),
                verbose: true,
            })
            .await
            .expect("verbose status")
            .into_inner();
        let info: serde_json::Value =
            serde_json::from_str(v.info.get("info").map(String::as_str).unwrap_or("{}"))
                .expect("info JSON");
        assert!(info["pid"].as_u64().unwrap_or(0) > 0, "{info}");

        // Stats: the running container has CPU and memory figures.
        let stats = c
            .runtime
            .container_stats(cri::ContainerStatsRequest {
                container_id: c1.clone(),
            })
            .await
            .expect("stats")
            .into_inner()
            .stats
            .expect("stats");
        let mem = stats
            .memory
            .and_then(|m| m.working_set_bytes)
            .map(|v| v.value)
            .unwrap_or(0);
        let cpu = stats
            .cpu
            .and_then(|c| c.usage_core_nano_seconds)
            .map(|v| v.value)
            .unwrap_or(0);
        assert!(mem > 0 && cpu > 0, "mem {mem} cpu {cpu}");
        let pstats = c
            .runtime
            .list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest { filter: None })
            .await
            .expect("pod stats")
            .into_inner()
            .stats;
        assert_eq!(pstats.len(), 1);
        let net = pstats[0]
            .linux
            .as_ref()
            .and_then(|l| l.network.as_ref())
            .and_then(|n| n.default_interface.as_ref())
            .expect("pod network stats (eth0)");
        assert_eq!(net.name, "eth0");

        // Lists and filters.
        let running = c
            .runtime
            .list_containers(cri::ListContainersRequest {
                filter: Some(cri::ContainerFilter {
                    state: Some(cri::ContainerStateValue {
                        state: cri::ContainerState::ContainerRunning as i32,
                    }),
                    pod_sandbox_id: pod.clone(),
                    ..Default::default()
                }),
            })
            .await
            .expect("list")
            .into_inner()
            .containers;
        assert_eq!(
            running.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
            vec![c1.clone()]
        );
        let pods = c
            .runtime
            .list_pod_sandbox(cri::ListPodSandboxRequest {
                filter: Some(cri::PodSandboxFilter {
                    label_selector: [("app".to_string(), "web".to_string())]
                        .into_iter()
                        .collect(),
                    ..Default::default()
                }),
            })
            .await
            .expect("list pods")
            .into_inner()
            .items;
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].id, pod);
        let pst = c
            .runtime
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: pod.clone(),
                verbose: true,
            })
            .await
            .expect("pod status")
            .into_inner();
        let ip = pst
            .status
            .as_ref()
            .and_then(|s| s.network.as_ref())
            .map(|n| n.ip.clone())
            .unwrap_or_default();
        assert!(!ip.is_empty(), "{pst:?}");

        // Stop with a grace period: sleep dies on SIGTERM; the partial line is flushed as F.
        c.runtime
            .stop_container(cri::StopContainerRequest {
                container_id: c1.clone(),
                timeout: 5,
            })
            .await
            .expect("stop");
        let s1 = container_state(&mut c, &c1).await;
        assert_eq!(s1.state, cri::ContainerState::ContainerExited as i32);
        assert_ne!(s1.exit_code, 0);
        // (binary:// mode: containerd's shim keeps the pipes until the task is deleted, so
        // the partial line shows up at RemoveContainer instead.)
        if std::env::var("CRIUS_TEST_LOG_MODE").as_deref() != Ok("binary") {
            let text = eventually(5, || {
                let p = log1.clone();
                async move {
                    let t = std::fs::read_to_string(&p).ok()?;
                    t.contains("partial").then_some(t)
                }
            })
            .await
            .expect("partial line flushed");
            assert!(
                text.lines().any(|l| l.ends_with(" stdout F partial")),
                "{text}"
            );
        }

        // Bad input.
        let e = c
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: "nope".into(),
                verbose: false,
            })
            .await
            .expect_err("unknown id");
        assert_eq!(e.code(), Code::NotFound);
        // An Exec naming no container is refused (UNIMPLEMENTED when no streaming server runs).
        let e = c
            .runtime
            .exec(cri::ExecRequest::default())
            .await
            .expect_err("empty exec request");
        assert!(
            matches!(e.code(), Code::InvalidArgument | Code::Unimplemented),
            "{e}"
        );

        // Stop and remove the pod: containers go with it.
        stop_pod(&mut c, &pod).await.expect("stop pod");
        let e = try_create(
            &mut c,
            &pod,
            container_config("late", registry::BUSYBOX, &["true"]),
            &pcfg,
        )
        .await
        .expect_err("pod not ready");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        for _ in 0..2 {
            remove_pod(&mut c, &pod)
                .await
                .unwrap_or_else(|e| panic!("remove pod: {e}\n{}", d.log_tail()));
        }
        let left = all_containers(&mut c).await;
        assert!(left.is_empty(), "{left:?}");

        // The event stream saw the transitions, in order per container.
        let mut seen: Vec<(String, i32)> = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while let Ok(Ok(Some(ev))) = tokio::time::timeout_at(deadline, events.message()).await {
            seen.push((ev.container_id, ev.container_event_type));
            if seen.iter().filter(|(id, t)| *id == c1 && *t == 3).count() == 1
                && seen.iter().any(|(id, t)| *id == c2 && *t == 3)
            {
                break;
            }
        }
        let kinds = |id: &str| -> Vec<i32> {
            seen.iter()
                .filter(|(i, _)| i == id)
                .map(|(_, t)| *t)
                .collect()
        };
        assert_eq!(kinds(&c1), vec![0, 1, 2, 3], "{seen:?}");
        assert_eq!(kinds(&c2), vec![0, 1, 2, 3], "{seen:?}");
    });
    finish(env, &d);
}

#[test]
fn criusd_tty_container_logs_its_terminal() {
    let mut env = env_or_skip!("criusd_tty_container_logs_its_terminal");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "term", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let mut cfg = container_config(
            "tty",
            registry::BUSYBOX,
            &["sh", "-c", "tty; echo on-a-terminal"],
        );
        cfg.tty = true;
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "").await;
        let log = log_dir.join("tty/0.log");
        let text = eventually(10, || {
            let p = log.clone();
            async move {
                std::fs::read_to_string(&p)
                    .ok()
                    .filter(|t| t.contains("on-a-terminal"))
            }
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "tty log: {:?}\n{}",
                std::fs::read_to_string(&log),
                d.log_tail()
            )
        });
        assert!(text.contains(" stdout F /dev/pts/"), "{text}");
        let st = wait_status(&c, &id, 10, exited)
            .await
            .expect("tty container exits");
        assert_eq!(st.exit_code, 0);
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
