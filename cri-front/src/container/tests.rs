//! The container RPCs' logic over an in-memory containerd (crius_ctrd's fake): what each RPC
//! does with containerd's answers, without a containerd, a shim or a process.

use std::sync::Arc;

use crius_ctrd::fake::Fake;
use crius_ctrd::{
    Containers as _, Images as _, NewContainer, NewTask, Service as _, Snapshots as _, Tasks as _,
};
use crius_proto::runtime as cri;
use crius_proto::tonic::Code;

use super::record::{ContainerRecord, Phase};
use super::Containers;
use crate::config::{Config, LogMode};
use crate::daemon::Shared;
use crate::error::Error;

pub(crate) const POD: &str = "pod1";

pub(crate) struct Harness {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) fake: Fake,
    pub(crate) c: Arc<Containers>,
}

pub(crate) async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Config {
        state_dir: dir.path().join("state"),
        run_dir: dir.path().join("run"),
        cni_conf_dir: dir.path().join("cni"),
        registry_config_dir: dir.path().join("certs.d"),
        // The shim would start the log driver: nothing is spawned here.
        log_mode: LogMode::Binary,
        // Resolved at the first pod only: no pause binary needed.
        pause: crius_sandboxer::PauseSource::Image("registry.k8s.io/pause:3.10".into()),
        ..Config::default()
    };
    ready_pod(&cfg.state_dir.join("sandboxes"));
    let fake = Fake::new();
    let shared = Shared::new(cfg, Arc::new(fake.clone()))
        .await
        .expect("shared parts over the fake");
    let mut c = Containers::new(Arc::new(shared))
        .await
        .expect("container service");
    // The fake's pids name no real process: whether one exists is the fake's to say.
    let alive = fake.clone();
    c.known = super::known::Known::with_probe(Arc::new(move |pid| alive.process_alive(pid)));
    Harness {
        _dir: dir,
        fake,
        c: Arc::new(c),
    }
}

/// A pod record the sandboxer loads as READY: its "pause" is this test process.
fn ready_pod(sandboxes: &std::path::Path) {
    let dir = sandboxes.join(POD);
    std::fs::create_dir_all(&dir).unwrap();
    let rec = serde_json::json!({
        "version": 1, "id": POD, "phase": "running", "created_at_ns": 1,
        "config": {"metadata": {"name": "p", "namespace": "default", "uid": "u1", "attempt": 0}},
        "netns_path": null, "ips": [], "pause_pid": std::process::id(),
        "cgroup_parent": "", "hostname": "p", "shm_path": null,
    });
    std::fs::write(dir.join("pod.json"), rec.to_string()).unwrap();
}

/// An image criusd pulled (a record and its config; no layers, so no view to mount).
async fn busybox(fake: &Fake) {
    use crius_ctrd::{Content as _, Images as _};
    use sha2::Digest;
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(config)));
    let data: crius_ctrd::ByteStream = Box::pin(futures::stream::iter([Ok(
        bytes::Bytes::from_static(config),
    )]));
    fake.write_content(&digest, config.len() as i64, Default::default(), data)
        .await
        .unwrap();
    fake.put_image(crius_ctrd::Image {
        name: "docker.io/library/busybox:latest".into(),
        labels: [(crate::image::records::LABEL_ID.to_string(), digest)].into(),
        target: Default::default(),
    })
    .await
    .unwrap();
}

fn config(name: &str, attempt: u32) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt,
        }),
        image: Some(cri::ImageSpec {
            image: "busybox".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(crate) fn record(id: &str, name: &str, phase: Phase) -> ContainerRecord {
    ContainerRecord {
        pod_id: POD.into(),
        name: name.into(),
        phase,
        stop_signal: "SIGTERM".into(),
        // No cgroup: nothing for the leftover-process sweep to look at.
        ..super::record::tests::sample(id)
    }
}

impl Harness {
    /// A container as CreateContainer leaves it: record, containerd container, rootfs snapshot.
    async fn created(&self, id: &str) {
        self.fake
            .create_container(NewContainer {
                id: id.into(),
                runtime: "io.containerd.crius.v2".into(),
                spec: br#"{"process":{"args":["sleep","1d"],"cwd":"/"}}"#.to_vec(),
                snapshot_key: id.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        self.fake
            .prepare_snapshot(id, "", Default::default())
            .await
            .unwrap();
        self.c
            .store
            .put(&record(id, &format!("name-{id}"), Phase::Created))
            .await
            .unwrap();
    }

    /// A container whose task runs, recorded RUNNING.
    async fn running(&self, id: &str) {
        self.created(id).await;
        self.fake
            .create_task(NewTask {
                container_id: id.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        self.fake.start(id, None).await.unwrap();
        self.c
            .store
            .update(id, |r| {
                r.phase = Phase::Running;
                r.started_at_ns = 2;
                true
            })
            .await
            .unwrap();
    }

    async fn status(&self, id: &str) -> cri::ContainerStatus {
        self.c.status(id, false).await.unwrap().0.unwrap()
    }

    /// How many times containerd was asked for container `id`'s task.
    fn task_gets(&self, id: &str) -> usize {
        let call = format!("task {id}");
        self.fake.calls().iter().filter(|c| **c == call).count()
    }

    fn kills(&self) -> usize {
        self.fake
            .calls()
            .iter()
            .filter(|c| c.starts_with("kill "))
            .count()
    }
}

fn code(e: Error) -> Code {
    crius_proto::tonic::Status::from(e).code()
}

#[tokio::test]
async fn create_refuses_a_name_in_use() {
    let h = harness().await;
    busybox(&h.fake).await;
    let first = h.c.create_container(POD, config("web", 0)).await.unwrap();
    let c = h.fake.container(&first).await.unwrap();
    assert_eq!(c.labels["io.crius.container.name"], "web");
    assert!(h.fake.snapshot(&first).await.unwrap().is_some());
    let e =
        h.c.create_container(POD, config("web", 0))
            .await
            .unwrap_err();
    assert!(e.to_string().contains(&first), "{e}");
    assert_eq!(code(e), Code::AlreadyExists);
    // The next attempt of the name, and another name, are fine.
    h.c.create_container(POD, config("web", 1)).await.unwrap();
    h.c.create_container(POD, config("db", 0)).await.unwrap();
    assert_eq!(h.fake.containers(&[]).await.unwrap().len(), 3);
    // An unknown pod is NOT_FOUND, an image never pulled too.
    let e =
        h.c.create_container("nopod", config("x", 0))
            .await
            .unwrap_err();
    assert_eq!(code(e), Code::NotFound);
    let mut other = config("x", 0);
    other.image = Some(cri::ImageSpec {
        image: "nginx".into(),
        ..Default::default()
    });
    assert_eq!(
        code(h.c.create_container(POD, other).await.unwrap_err()),
        Code::NotFound
    );
}

#[tokio::test]
async fn a_create_containerd_refuses_leaves_nothing() {
    let h = harness().await;
    busybox(&h.fake).await;
    h.fake.fail_next(
        "prepare_snapshot",
        crius_ctrd::Error::new(Code::Internal, "snapshot prepare", "disk full"),
    );
    let e =
        h.c.create_container(POD, config("web", 0))
            .await
            .unwrap_err();
    assert_eq!(code(e), Code::Internal);
    assert!(h.fake.containers(&[]).await.unwrap().is_empty());
    assert!(h.c.store.all().await.is_empty());
    // The name is free again.
    h.c.create_container(POD, config("web", 0)).await.unwrap();
}

#[tokio::test]
async fn start_creates_and_starts_the_task() {
    let h = harness().await;
    h.created("c1").await;
    h.c.start_container("c1").await.unwrap();
    let t = h.fake.task("c1").await.unwrap().expect("a task");
    assert_eq!(t.status, crius_ctrd::TaskStatus::Running);
    // The shim starts the log driver from the binary:// URI, on both streams.
    let io = h.fake.stdio("c1", None).unwrap();
    assert!(io.stdout.starts_with("binary://") && io.stderr == io.stdout);
    let s = h.status("c1").await;
    assert_eq!(s.state(), cri::ContainerState::ContainerRunning);
    assert!(s.started_at > 0);
}

#[tokio::test]
async fn a_second_start_is_refused() {
    let h = harness().await;
    h.running("c1").await;
    let e = h.c.start_container("c1").await.unwrap_err();
    assert_eq!(code(e), Code::FailedPrecondition);
    // Only the harness made a task.
    let made = h
        .fake
        .calls()
        .iter()
        .filter(|c| c.starts_with("create_task"))
        .count();
    assert_eq!(made, 1);
}

#[tokio::test]
async fn a_start_containerd_cannot_do_records_the_failure() {
    let h = harness().await;
    h.created("c1").await;
    // containerd lost the container (its metadata was wiped): the task cannot be made.
    h.fake.delete_container("c1").await.unwrap();
    let e = h.c.start_container("c1").await.unwrap_err();
    assert_eq!(code(e), Code::NotFound);
    let s = h.status("c1").await;
    assert_eq!(s.state(), cri::ContainerState::ContainerExited);
    assert_eq!(s.reason, "StartError");
    assert!(h.fake.task("c1").await.unwrap().is_none());
}

#[tokio::test]
async fn start_of_a_task_a_crash_left_created_finishes_it() {
    let h = harness().await;
    h.created("c1").await;
    h.fake
        .create_task(NewTask {
            container_id: "c1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    h.c.start_container("c1").await.unwrap();
    assert_eq!(
        h.fake.task("c1").await.unwrap().unwrap().status,
        crius_ctrd::TaskStatus::Running
    );
    // Finished, not made again.
    assert_eq!(
        h.fake
            .calls()
            .iter()
            .filter(|c| c.starts_with("create_task"))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_start_cut_off_by_containerd_settles_from_the_task() {
    let h = harness().await;
    h.created("c1").await;
    // containerd goes away during Tasks.Start; the task was started nonetheless.
    h.fake.fail_next(
        "start",
        crius_ctrd::Error::new(Code::Unavailable, "task start c1", "transport error"),
    );
    let r = h.c.start_container("c1").await;
    // The start was redone from the created task (the fake's failed start did not start it).
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(
        h.status("c1").await.state(),
        cri::ContainerState::ContainerRunning
    );
}

#[tokio::test]
async fn stop_is_idempotent() {
    let h = harness().await;
    // Unknown: already stopped, as containerd and CRI-O say.
    h.c.stop_container("nope", 10).await.unwrap();
    h.running("c1").await;
    h.c.stop_container("c1", 10).await.unwrap();
    let s = h.status("c1").await;
    assert_eq!(s.state(), cri::ContainerState::ContainerExited);
    assert_eq!(s.exit_code, 128 + 15);
    let kills = h.kills();
    h.c.stop_container("c1", 10).await.unwrap();
    assert_eq!(
        h.kills(),
        kills,
        "a stopped container is not signalled again"
    );
    // A created container is not running: nothing to stop.
    h.created("c2").await;
    h.c.stop_container("c2", 10).await.unwrap();
    assert_eq!(h.kills(), kills);
}

#[tokio::test]
async fn stop_kills_what_ignores_the_stop_signal() {
    let h = harness().await;
    h.running("c1").await;
    h.fake.ignore_term("c1");
    h.c.stop_container("c1", 1).await.unwrap();
    assert_eq!(h.status("c1").await.exit_code, 128 + 9);
    // Timeout 0: no grace, straight to SIGKILL.
    h.running("c2").await;
    h.fake.ignore_term("c2");
    h.c.stop_container("c2", 0).await.unwrap();
    assert_eq!(h.status("c2").await.exit_code, 128 + 9);
}

#[tokio::test]
async fn remove_of_a_running_container_kills_and_deletes_everything() {
    let h = harness().await;
    h.running("c1").await;
    h.c.remove_container("c1").await.unwrap();
    // Killed before the reply; gone for every RPC from the reply on.
    assert!(!h
        .fake
        .process_alive(h.fake.task("c1").await.unwrap().map_or(0, |t| t.pid)));
    let e = h.c.status("c1", false).await.unwrap_err();
    assert_eq!(code(e), Code::NotFound);
    assert!(h.c.list(None).await.unwrap().is_empty());
    // The rest after the reply.
    h.c.removals_done(None, std::time::Duration::from_secs(5))
        .await;
    assert!(h.fake.task("c1").await.unwrap().is_none());
    assert!(h.fake.container("c1").await.unwrap_err().is_not_found());
    assert!(h.fake.snapshot("c1").await.unwrap().is_none());
    assert!(h.c.store.get("c1").await.is_none());
    let e = h.c.status("c1", false).await.unwrap_err();
    assert_eq!(code(e), Code::NotFound);
    // Again, and of an id never seen: fine.
    h.c.remove_container("c1").await.unwrap();
    h.c.remove_container("nope").await.unwrap();
}

#[tokio::test]
async fn remove_goes_on_when_containerd_forgot_the_container() {
    let h = harness().await;
    h.created("c1").await;
    h.fake.delete_container("c1").await.unwrap();
    h.fake.remove_snapshot("c1").await.unwrap();
    h.c.remove_container("c1").await.unwrap();
    h.c.removals_done(None, std::time::Duration::from_secs(5))
        .await;
    assert!(h.c.store.get("c1").await.is_none());
}

#[tokio::test]
async fn status_of_an_exited_task_records_its_exit() {
    let h = harness().await;
    h.running("c1").await;
    h.fake.exit("c1", 3);
    let s = h.status("c1").await;
    assert_eq!(s.state(), cri::ContainerState::ContainerExited);
    assert_eq!(s.exit_code, 3);
    assert_eq!(s.reason, "Error");
    assert!(s.finished_at >= s.started_at);
    // Recorded: later looks need no task.
    h.fake.delete_task("c1").await.unwrap();
    assert_eq!(h.status("c1").await.exit_code, 3);
}

#[tokio::test]
async fn status_of_a_vanished_task_says_so() {
    let h = harness().await;
    h.running("c1").await;
    // The shim and its state are gone (a reboot, a killed shim).
    h.fake.exit("c1", 0);
    h.fake.delete_task("c1").await.unwrap();
    let s = h.status("c1").await;
    assert_eq!(s.state(), cri::ContainerState::ContainerExited);
    assert_eq!(s.exit_code, 255);
    assert!(s.message.contains("task is gone"), "{}", s.message);
}

#[tokio::test]
async fn exit_events_are_recorded() {
    let h = harness().await;
    h.running("c1").await;
    let exit = crius_ctrd::Exit {
        code: 7,
        at_ns: Some(5_000_000_000),
    };
    // An exec's exit does not end the container.
    super::events::handle(
        &h.c,
        crius_ctrd::TaskEvent::Exit {
            container_id: "c1".into(),
            id: "exec-1".into(),
            exit,
        },
    )
    .await;
    assert_eq!(h.c.store.get("c1").await.unwrap().phase, Phase::Running);
    super::events::handle(
        &h.c,
        crius_ctrd::TaskEvent::Exit {
            container_id: "c1".into(),
            id: "c1".into(),
            exit,
        },
    )
    .await;
    let r = h.c.store.get("c1").await.unwrap();
    assert_eq!(
        (r.phase, r.exit_code, r.finished_at_ns),
        (Phase::Exited, 7, 5_000_000_000)
    );
    super::events::handle(
        &h.c,
        crius_ctrd::TaskEvent::Oom {
            container_id: "c1".into(),
        },
    )
    .await;
    assert_eq!(h.c.store.get("c1").await.unwrap().reason, "OOMKilled");
}

#[tokio::test]
async fn containerd_errors_keep_their_codes() {
    let h = harness().await;
    // Unknown ids.
    assert_eq!(
        code(h.c.start_container("nope").await.unwrap_err()),
        Code::NotFound
    );
    assert_eq!(
        code(h.c.status("nope", false).await.unwrap_err()),
        Code::NotFound
    );
    // containerd down while a status looks at the task (its init is gone, so containerd is
    // asked for the exit): UNAVAILABLE (kubelet retries), not INTERNAL, and the record is left
    // as it was.
    h.running("c1").await;
    h.fake.exit("c1", 0);
    h.fake.fail_next(
        "task",
        crius_ctrd::Error::new(Code::Unavailable, "task get c1", "connection refused"),
    );
    assert_eq!(
        code(h.c.status("c1", false).await.unwrap_err()),
        Code::Unavailable
    );
    assert_eq!(h.c.store.get("c1").await.unwrap().phase, Phase::Running);
    // The running task gone between the look and the update: NOT_FOUND from containerd.
    h.running("c2").await;
    h.fake.fail_next(
        "update_task_resources",
        crius_ctrd::Error::new(Code::NotFound, "task update c2", "task c2 not found"),
    );
    let e =
        h.c.update_resources("c2", &cri::LinuxContainerResources::default())
            .await
            .unwrap_err();
    assert_eq!(code(e), Code::NotFound);
    // Anything else from containerd is INTERNAL.
    h.fake.fail_next(
        "kill",
        crius_ctrd::Error::new(Code::Internal, "task kill c2", "runc did not answer"),
    );
    assert_eq!(
        code(h.c.stop_container("c2", 5).await.unwrap_err()),
        Code::Internal
    );
}

#[tokio::test]
async fn updates_go_to_the_task_or_the_stored_spec() {
    let h = harness().await;
    h.running("c1").await;
    let r = cri::LinuxContainerResources {
        cpu_shares: 512,
        ..Default::default()
    };
    h.c.update_resources("c1", &r).await.unwrap();
    let sent: serde_json::Value =
        serde_json::from_slice(&h.fake.task_resources("c1").unwrap()).unwrap();
    assert_eq!(sent["cpu"]["shares"], 512);
    // Created: the spec containerd keeps is changed, so the start uses it.
    h.created("c2").await;
    h.fake
        .update_container_spec(
            "c2",
            br#"{"linux":{"resources":{"devices":[{"allow":false}]}}}"#.to_vec(),
        )
        .await
        .unwrap();
    h.c.update_resources("c2", &r).await.unwrap();
    let spec: serde_json::Value =
        serde_json::from_slice(&h.fake.container("c2").await.unwrap().spec).unwrap();
    assert_eq!(spec["linux"]["resources"]["cpu"]["shares"], 512);
    assert_eq!(spec["linux"]["resources"]["devices"][0]["allow"], false);
}

#[tokio::test]
async fn exec_sync_runs_in_the_task_and_cleans_up() {
    let h = harness().await;
    h.running("c1").await;
    h.fake.set_exec_exit_code(2);
    let out = h.c.exec_sync("c1", vec!["false".into()], 5).await.unwrap();
    assert_eq!(out.exit_code, 2);
    let calls = h.fake.calls();
    let exec = calls
        .iter()
        .find_map(|c| c.strip_prefix("exec c1/"))
        .expect("an exec")
        .to_string();
    assert!(calls.contains(&format!("delete_process c1/{exec}")));
    // Not running: refused before containerd is asked.
    h.fake.exit("c1", 0);
    let e =
        h.c.exec_sync("c1", vec!["true".into()], 5)
            .await
            .unwrap_err();
    assert_eq!(code(e), Code::FailedPrecondition);
}

#[tokio::test]
async fn status_of_a_running_container_is_answered_from_memory() {
    let h = harness().await;
    h.created("c1").await;
    // Created by this criusd: the start needs no look at a task that cannot exist.
    h.c.known.created("c1");
    h.c.start_container("c1").await.unwrap();
    assert_eq!(h.task_gets("c1"), 0, "{:?}", h.fake.calls());
    for _ in 0..3 {
        assert_eq!(
            h.status("c1").await.state(),
            cri::ContainerState::ContainerRunning
        );
    }
    h.c.list(None).await.unwrap();
    assert_eq!(h.task_gets("c1"), 0, "{:?}", h.fake.calls());
    assert!(!h.fake.calls().iter().any(|c| c.starts_with("tasks")));
    // Its init ended (the exit event not seen yet): containerd is asked, the exit recorded.
    h.fake.exit("c1", 4);
    let s = h.status("c1").await;
    assert_eq!(
        (s.state(), s.exit_code),
        (cri::ContainerState::ContainerExited, 4)
    );
    assert_eq!(h.task_gets("c1"), 1);
}

#[tokio::test]
async fn a_running_record_from_before_a_restart_is_asked_once() {
    let h = harness().await;
    // Recorded RUNNING by an earlier criusd: no pid known yet.
    h.running("c1").await;
    h.status("c1").await;
    assert_eq!(h.task_gets("c1"), 1);
    // The Tasks.Get told the pid: from now on memory answers.
    h.status("c1").await;
    h.status("c1").await;
    assert_eq!(h.task_gets("c1"), 1);
    // A container not created by this criusd (or recovered) is asked before its start.
    h.created("c2").await;
    h.c.start_container("c2").await.unwrap();
    assert_eq!(h.task_gets("c2"), 1);
}

#[tokio::test]
async fn the_periodic_reconcile_asks_containerd_whatever_is_known() {
    let h = harness().await;
    h.created("c1").await;
    h.c.known.created("c1");
    h.c.start_container("c1").await.unwrap();
    h.c.all_refreshed().await.unwrap();
    assert!(!h.fake.calls().iter().any(|c| c.starts_with("tasks")));
    h.c.all_reconciled().await.unwrap();
    assert!(h.fake.calls().iter().any(|c| c.starts_with("tasks")));
}

#[tokio::test]
async fn a_removed_name_is_free_at_the_reply() {
    let h = harness().await;
    busybox(&h.fake).await;
    let first = h.c.create_container(POD, config("web", 0)).await.unwrap();
    h.c.remove_container(&first).await.unwrap();
    // The same name and attempt again, before the first removal need have finished.
    let second = h.c.create_container(POD, config("web", 0)).await.unwrap();
    h.c.removals_done(None, std::time::Duration::from_secs(5))
        .await;
    assert!(h.c.store.get(&first).await.is_none());
    assert!(h.fake.container(&first).await.unwrap_err().is_not_found());
    assert!(h.fake.container(&second).await.is_ok());
    assert_eq!(h.status(&second).await.metadata.unwrap().name, "web");
}

#[tokio::test]
async fn a_removal_containerd_refuses_stays_hidden_and_is_finished_later() {
    let h = harness().await;
    h.running("c1").await;
    h.fake.fail_next(
        "delete_container",
        crius_ctrd::Error::new(
            Code::Unavailable,
            "container delete c1",
            "connection refused",
        ),
    );
    // The caller saw the container go: the failure after the reply is criusd's to finish.
    h.c.remove_container("c1").await.unwrap();
    h.c.removals_done(None, std::time::Duration::from_secs(5))
        .await;
    let left = h.c.store.get("c1").await.expect("record kept, marked");
    assert!(left.removing);
    assert!(h.fake.container("c1").await.is_ok());
    // Every RPC agrees it is gone: status, list, a second remove, stop, start.
    assert_eq!(
        code(h.c.status("c1", false).await.unwrap_err()),
        Code::NotFound
    );
    assert!(h.c.list(None).await.unwrap().is_empty());
    h.c.remove_container("c1").await.unwrap();
    h.c.stop_container("c1", 1).await.unwrap();
    assert_eq!(
        code(h.c.start_container("c1").await.unwrap_err()),
        Code::NotFound
    );
    // The retry (periodic reconcile, RemovePodSandbox) finishes it.
    assert_eq!(h.c.finish_removals(Some(POD)).await.unwrap(), 1);
    assert!(h.c.store.get("c1").await.is_none());
    assert!(h.fake.container("c1").await.unwrap_err().is_not_found());
    assert!(h.fake.snapshot("c1").await.unwrap().is_none());
    assert_eq!(h.c.finish_removals(None).await.unwrap(), 0);
}

#[tokio::test]
async fn a_removal_cut_off_by_a_crash_is_finished_by_recovery() {
    let h = harness().await;
    h.running("c1").await;
    h.fake.exit("c1", 0);
    // What a crash right after the reply leaves: the record marked on disk, nothing else done.
    h.c.store
        .update("c1", |r| {
            r.phase = Phase::Exited;
            r.removing = true;
            true
        })
        .await
        .unwrap();
    // The next criusd loads the records from disk and recovers.
    let next = Containers::new(h.c.shared.clone()).await.unwrap();
    assert!(next.store.all().await.is_empty());
    let rep = next.recover_containers().await.unwrap();
    assert_eq!(rep.removals_finished, 1);
    assert!(next.store.get("c1").await.is_none());
    assert!(h.fake.task("c1").await.unwrap().is_none());
    assert!(h.fake.container("c1").await.unwrap_err().is_not_found());
    assert!(h.fake.snapshot("c1").await.unwrap().is_none());
    assert!(!next.store.dir_of("c1").exists());
}

#[tokio::test]
async fn a_remove_waits_for_a_stop_in_flight_and_then_wins() {
    let h = harness().await;
    h.running("c1").await;
    h.fake.ignore_term("c1");
    // The stop holds the guard through its grace period; the remove waits, then kills.
    let (c, c2) = (h.c.clone(), h.c.clone());
    let stop = tokio::spawn(async move { c.stop_container("c1", 1).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let remove = tokio::spawn(async move { c2.remove_container("c1").await });
    stop.await.unwrap().unwrap();
    remove.await.unwrap().unwrap();
    assert_eq!(
        code(h.c.status("c1", false).await.unwrap_err()),
        Code::NotFound
    );
    h.c.removals_done(None, std::time::Duration::from_secs(5))
        .await;
    assert!(h.c.store.get("c1").await.is_none());
    assert!(h.fake.container("c1").await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn images_are_listed_once_while_nothing_changes_them() {
    let h = harness().await;
    busybox(&h.fake).await;
    // The event watcher is up (it sets the cache live and feeds it the image events).
    h.c.shared.images.cache.set_live(true);
    let lists = |h: &Harness| h.fake.calls().iter().filter(|c| *c == "images ").count();
    let id = h.c.create_container(POD, config("web", 0)).await.unwrap();
    let configs_read = h
        .fake
        .calls()
        .iter()
        .filter(|c| c.starts_with("read_content"))
        .count();
    h.status(&id).await;
    h.status(&id).await;
    h.c.create_container(POD, config("db", 0)).await.unwrap();
    assert_eq!(lists(&h), 1, "{:?}", h.fake.calls());
    // The config (content addressed) is read once.
    assert_eq!(
        h.fake
            .calls()
            .iter()
            .filter(|c| c.starts_with("read_content"))
            .count(),
        configs_read
    );
    // A record changed beside criusd (containerd's /images/ event): listed again.
    let mut events = h.fake.subscribe_task_events().await.unwrap();
    h.fake
        .delete_image("docker.io/library/busybox:latest", false)
        .await
        .unwrap();
    let ev = futures::StreamExt::next(&mut events)
        .await
        .unwrap()
        .unwrap();
    super::events::handle(&h.c, ev).await;
    let s = h.status(&id).await;
    assert_eq!(lists(&h), 2);
    // The image is gone: the status shows what the record holds.
    assert_eq!(s.image.unwrap().image, "busybox");
    let e = h.c.create_container(POD, config("x", 0)).await.unwrap_err();
    assert_eq!(code(e), Code::NotFound);
}
