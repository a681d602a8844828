//! RemoveContainer answers once the container is marked removing on disk and finishes the rest
//! (task, containerd container, snapshot, record) after the reply: the container is gone for
//! every RPC at once and its name is free; a removal cut off by a crash is finished by the
//! next criusd at start; RemovePodSandbox waits for its containers' removals (the leak check).

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    all_containers, client, container_config, create_and_start, eventually, finish, pod_config,
    pod_log_dir, pull, remove_pod, rt, run_pod, spawn, start, stop_container, stop_pod,
};

async fn remove(c: &mut crius_test::cri::CriClient, id: &str) {
    c.runtime
        .remove_container(cri::RemoveContainerRequest {
            container_id: id.into(),
        })
        .await
        .expect("remove");
}

#[test]
fn criusd_remove_answers_first_and_recovery_finishes_a_cut_off_removal() {
    let mut env =
        env_or_skip!("criusd_remove_answers_first_and_recovery_finishes_a_cut_off_removal");
    let Some(mut d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let records = d.dir.join("lib/containers");
    let (pod, pcfg, cut) = rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "removals", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let cfg = || container_config("app", registry::BUSYBOX, &["sleep", "3600"]);

        // Removed while running: gone at the reply, its name free for the next one.
        let first = create_and_start(&mut c, &d, &pod, cfg(), &pcfg, "first").await;
        remove(&mut c, &first).await;
        let e = c
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: first.clone(),
                verbose: false,
            })
            .await
            .expect_err("removed");
        assert_eq!(e.code(), Code::NotFound, "{e}");
        assert!(all_containers(&mut c).await.is_empty());
        remove(&mut c, &first).await; // idempotent
        let second = create_and_start(&mut c, &d, &pod, cfg(), &pcfg, "second").await;
        let gone = eventually(20, || async {
            (!records.join(&first).exists()).then_some(())
        })
        .await;
        assert!(
            gone.is_some(),
            "the first container's record stayed\n{}",
            d.log_tail()
        );
        stop_container(&mut c, &second, 5).await.expect("stop");
        (pod, pcfg, second)
    });

    // A crash right after the reply: the record says removing, nothing else is done.
    env.stop_service(d.pid, true).expect("kill -9 criusd");
    let file = records.join(&cut).join("container.json");
    let mut rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("record")).expect("record json");
    rec["removing"] = serde_json::json!(true);
    std::fs::write(&file, rec.to_string()).expect("mark removing");
    spawn(&mut env, &mut d);

    rt().block_on(async {
        let mut c = client(&d).await;
        let gone = eventually(30, || async {
            (!records.join(&cut).exists()).then_some(())
        })
        .await;
        assert!(
            gone.is_some(),
            "recovery left the removing record\n{}",
            d.log_tail()
        );
        assert!(all_containers(&mut c).await.is_empty());
        // The name is free and the pod works on.
        let cfg = container_config("app", registry::BUSYBOX, &["sleep", "3600"]);
        let third = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "third").await;
        // A running container removed and its pod removed at once: the pod waits for the
        // removal still finishing (the leak check below finds nothing left).
        remove(&mut c, &third).await;
        stop_pod(&mut c, &pod).await.expect("stop pod");
        remove_pod(&mut c, &pod).await.expect("remove pod");
        assert!(
            !records.join(&third).exists(),
            "the pod went before its container's record"
        );
    });
    finish(env, &d);
}
