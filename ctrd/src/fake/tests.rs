//! The fake behaves as containerd does where crius's logic depends on it.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;

use super::Fake;
use crate::*;

fn container(id: &str) -> NewContainer {
    NewContainer {
        id: id.into(),
        runtime: "io.containerd.crius.v2".into(),
        spec: b"{}".to_vec(),
        labels: HashMap::from([("io.crius.sandbox-id".into(), "p1".into())]),
        snapshot_key: id.into(),
        ..Default::default()
    }
}

async fn running(f: &Fake, id: &str) -> u32 {
    f.create_container(container(id)).await.unwrap();
    f.create_task(NewTask {
        container_id: id.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    f.start(id, None).await.unwrap()
}

#[tokio::test]
async fn containers_refuse_duplicates_and_report_absence() {
    let f = Fake::new();
    f.create_container(container("c1")).await.unwrap();
    assert!(f
        .create_container(container("c1"))
        .await
        .unwrap_err()
        .is_already_exists());
    assert!(f.container("nope").await.unwrap_err().is_not_found());
    assert_eq!(
        f.containers(&[("io.crius.sandbox-id", "p1")])
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(f
        .containers(&[("io.crius.sandbox-id", "p2")])
        .await
        .unwrap()
        .is_empty());
    f.update_container_spec("c1", b"{\"a\":1}".to_vec())
        .await
        .unwrap();
    assert_eq!(f.container("c1").await.unwrap().spec, b"{\"a\":1}");
    f.delete_container("c1").await.unwrap();
    f.delete_container("c1").await.unwrap();
}

#[tokio::test]
async fn a_task_runs_exits_on_a_signal_and_is_deleted() {
    let f = Fake::new();
    let mut events = f.subscribe_task_events().await.unwrap();
    let pid = running(&f, "c1").await;
    let t = f.task("c1").await.unwrap().unwrap();
    assert_eq!((t.pid, t.status), (pid, TaskStatus::Running));
    // A running task is neither deleted nor its container.
    assert_eq!(
        f.delete_task("c1").await.unwrap_err().code(),
        tonic_code::FailedPrecondition
    );
    assert!(f.delete_container("c1").await.is_err());
    f.kill("c1", None, 15, false).await.unwrap();
    let exit = f.wait("c1", None).await.unwrap();
    assert_eq!(exit.code, 143);
    assert!(matches!(
        events.next().await,
        Some(Ok(TaskEvent::Exit { ref container_id, .. })) if container_id == "c1"
    ));
    // Killing what has exited is fine, as with containerd.
    f.kill("c1", None, 9, true).await.unwrap();
    assert_eq!(f.task("c1").await.unwrap().unwrap().exit, Some(exit));
    assert_eq!(f.delete_task("c1").await.unwrap(), Some(exit));
    assert_eq!(f.delete_task("c1").await.unwrap(), None);
    assert!(f.wait("c1", None).await.unwrap_err().is_not_found());
    f.delete_container("c1").await.unwrap();
}

#[tokio::test]
async fn starts_need_a_created_task() {
    let f = Fake::new();
    assert!(f.start("c1", None).await.unwrap_err().is_not_found());
    f.create_container(container("c1")).await.unwrap();
    let t = NewTask {
        container_id: "c1".into(),
        ..Default::default()
    };
    f.create_task(t.clone()).await.unwrap();
    assert!(f.create_task(t).await.unwrap_err().is_already_exists());
    assert!(f.task("c1").await.unwrap().unwrap().created_only());
    f.start("c1", None).await.unwrap();
    assert_eq!(
        f.start("c1", None).await.unwrap_err().code(),
        tonic_code::FailedPrecondition
    );
}

#[tokio::test]
async fn a_stubborn_process_waits_for_sigkill() {
    let f = Fake::new();
    running(&f, "c1").await;
    f.ignore_term("c1");
    f.kill("c1", None, 15, false).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(50), f.wait("c1", None)).await;
    assert!(waited.is_err(), "SIGTERM ended a process that ignores it");
    let waiter = tokio::spawn({
        let f = f.clone();
        async move { f.wait("c1", None).await }
    });
    f.kill("c1", None, 9, true).await.unwrap();
    assert_eq!(waiter.await.unwrap().unwrap().code, 137);
}

#[tokio::test]
async fn exit_by_itself_and_execs() {
    let f = Fake::new();
    running(&f, "c1").await;
    f.set_exec_exit_code(3);
    let exec = NewExec {
        container_id: "c1".into(),
        exec_id: "e1".into(),
        process: b"{}".to_vec(),
        ..Default::default()
    };
    f.exec(exec.clone()).await.unwrap();
    assert!(f.exec(exec).await.unwrap_err().is_already_exists());
    f.start("c1", Some("e1")).await.unwrap();
    assert_eq!(f.wait("c1", Some("e1")).await.unwrap().code, 3);
    f.delete_process("c1", "e1").await.unwrap();
    f.delete_process("c1", "e1").await.unwrap();
    f.exit("c1", 0);
    assert_eq!(
        f.task("c1").await.unwrap().unwrap().status,
        TaskStatus::Stopped
    );
    assert_eq!(
        f.exec(NewExec {
            container_id: "c1".into(),
            exec_id: "e2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err()
        .code(),
        tonic_code::FailedPrecondition
    );
}

#[tokio::test]
async fn snapshots_keep_parents_and_filters() {
    let f = Fake::new();
    f.add_committed_snapshot("sha256:layer", "");
    assert!(f
        .prepare_snapshot("c1", "sha256:nope", HashMap::new())
        .await
        .unwrap_err()
        .is_not_found());
    let m = f
        .prepare_snapshot("c1", "sha256:layer", HashMap::new())
        .await
        .unwrap();
    assert_eq!(m.len(), 1);
    let labels = HashMap::from([("io.crius.image-volume".to_string(), "c1".to_string())]);
    f.view_snapshot("crius-view-1", "sha256:layer", labels)
        .await
        .unwrap();
    assert!(f
        .view_snapshot("crius-view-1", "sha256:layer", HashMap::new())
        .await
        .unwrap_err()
        .is_already_exists());
    let names = |v: Vec<SnapshotInfo>| v.into_iter().map(|s| s.name).collect::<Vec<_>>();
    assert_eq!(
        names(
            f.snapshots(vec!["name~=\"^crius-view-\"".into()])
                .await
                .unwrap()
        ),
        ["crius-view-1"]
    );
    assert_eq!(
        names(
            f.snapshots(vec!["labels.\"io.crius.image-volume\"==c1".into()])
                .await
                .unwrap()
        ),
        ["crius-view-1"]
    );
    assert_eq!(
        names(
            f.snapshots(vec!["labels.\"io.crius.image-volume\"".into()])
                .await
                .unwrap()
        ),
        ["crius-view-1"]
    );
    assert!(f.snapshots(vec!["kind==view".into()]).await.is_err());
    // A parent with children stays.
    assert!(f.remove_snapshot("sha256:layer").await.is_err());
    f.remove_snapshot("c1").await.unwrap();
    f.remove_snapshot("c1").await.unwrap();
    f.remove_snapshot("crius-view-1").await.unwrap();
    f.remove_snapshot("sha256:layer").await.unwrap();
    // Commit turns an active snapshot into a parent.
    f.prepare_snapshot("extract-1", "", HashMap::new())
        .await
        .unwrap();
    f.commit_snapshot("sha256:chain", "extract-1")
        .await
        .unwrap();
    assert_eq!(
        f.snapshot("sha256:chain").await.unwrap().unwrap().kind,
        SnapshotKind::Committed
    );
    assert!(f.snapshot("extract-1").await.unwrap().is_none());
}

#[tokio::test]
async fn content_is_checked_and_images_replaced() {
    let f = Fake::new();
    let blob = bytes::Bytes::from_static(b"hello");
    let digest = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let stream = |b: bytes::Bytes| -> ByteStream { Box::pin(futures::stream::iter([Ok(b)])) };
    let bad = f
        .write_content("sha256:00", 5, HashMap::new(), stream(blob.clone()))
        .await;
    assert!(bad.is_err());
    assert_eq!(
        f.write_content(digest, 5, HashMap::new(), stream(blob.clone()))
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        f.write_content(digest, 5, HashMap::new(), stream(blob))
            .await
            .unwrap(),
        0
    );
    assert!(f.content_exists(digest).await.unwrap());
    assert_eq!(f.read_content(digest).await.unwrap(), b"hello");
    let img = Image {
        name: "busybox".into(),
        ..Default::default()
    };
    f.put_image(img.clone()).await.unwrap();
    f.put_image(img).await.unwrap();
    assert_eq!(f.images().await.unwrap().len(), 1);
    f.delete_image("busybox", true).await.unwrap();
    assert!(f.image("busybox").await.unwrap().is_none());
}

#[tokio::test]
async fn injected_failures_hit_once_and_calls_are_logged() {
    let f = Fake::new();
    f.fail_next(
        "task",
        Error::new(tonic_code::Unavailable, "task get c1", "down"),
    );
    assert!(f.task("c1").await.unwrap_err().is_unavailable());
    assert!(f.task("c1").await.unwrap().is_none());
    assert_eq!(f.calls(), ["task c1", "task c1"]);
    // A leased client shares the store.
    f.create_lease("l1", HashMap::new()).await.unwrap();
    f.leased("l1")
        .create_container(container("c9"))
        .await
        .unwrap();
    assert!(f.container("c9").await.is_ok());
    assert_eq!(f.lease_ids(), ["l1"]);
}

use containerd_client::tonic::Code as tonic_code;
