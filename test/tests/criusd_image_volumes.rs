//! Image volumes (CRI `Mount.image`, Kubernetes ImageVolume) through criusd: a pulled image
//! mounted read-only into a container, whole or by `image_sub_path`; refusals; the host
//! mounts and view snapshots gone after RemoveContainer / RemovePodSandbox; after a restart,
//! a lost host mount is made again before start, and a crash's leftovers are removed.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry, TestEnv};
use criusd_common::{
    client, container_config, container_state, create_container, exec_sh, finish, pod_config,
    pod_log_dir, pull, remove_pod, rt, run_pod, spawn, start, start_container, try_create, Criusd,
};
use std::path::Path;

const SEED: &str = "seeded by the image";

fn image_mount(path: &str, image: &str, sub_path: &str) -> cri::Mount {
    cri::Mount {
        container_path: path.into(),
        image: Some(cri::ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        image_sub_path: sub_path.into(),
        readonly: true,
        ..Default::default()
    }
}

/// criusd's image-volume host mounts (mount points under its run dir) of container `id`, or of
/// all containers when `id` is empty.
fn host_mounts(d: &Criusd, id: &str) -> Vec<String> {
    let base = d.dir.join("run/image-volumes").join(id);
    let base = base.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|mp| mp.starts_with(&base))
        .collect()
}

/// Image volume view snapshots in containerd (`ctr snapshots ls`), for `id` or all.
fn views(env: &mut TestEnv, id: &str) -> Vec<String> {
    let out = env
        .running_containerd()
        .expect("containerd")
        .ctr_output("crius", &["snapshots", "ls"])
        .expect("ctr snapshots ls");
    let prefix = format!("crius-iv-{id}");
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|k| k.starts_with(&prefix))
        .map(String::from)
        .collect()
}

async fn out(c: &mut crius_test::cri::CriClient, id: &str, script: &str) -> (i32, String) {
    let r = exec_sh(c, id, script).await;
    (
        r.exit_code,
        String::from_utf8_lossy(&r.stdout).trim().to_string(),
    )
}

#[test]
fn criusd_image_volumes_mount_read_only_and_clean_up() {
    let mut env = env_or_skip!("criusd_image_volumes_mount_read_only_and_clean_up");
    let Some(mut d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let runtime = rt();

    let (pod, pcfg, first, waiting, orphan) = runtime.block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        // kubelet mounts by the image_ref PullImage returned.
        let image_ref = pull(&mut c, registry::CONFIG_TEST).await;
        let pcfg = pod_config(&env, "ivols", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;

        // Refusals leave nothing behind.
        let refusals = [
            (
                image_mount("/iv", "127.0.0.1:5000/crius/never-pulled:latest", ""),
                Code::NotFound,
            ),
            (
                image_mount("/iv", registry::CONFIG_TEST, "../etc"),
                Code::InvalidArgument,
            ),
            (
                image_mount("/iv", registry::CONFIG_TEST, "home/app/none"),
                Code::InvalidArgument,
            ),
            (
                image_mount("/iv", registry::CONFIG_TEST, "home/app/data/seed.txt"),
                Code::InvalidArgument,
            ),
        ];
        for (m, code) in refusals {
            let mut cfg = container_config("bad", registry::BUSYBOX, &["true"]);
            cfg.mounts = vec![image_mount("/ok", registry::CONFIG_TEST, ""), m.clone()];
            let e = try_create(&mut c, &pod, cfg, &pcfg)
                .await
                .expect_err("refused");
            assert_eq!(e.code(), code, "{m:?}: {e}");
        }

        let mut cfg = container_config("iv", registry::BUSYBOX, &["sleep", "1000"]);
        cfg.mounts = vec![
            image_mount("/iv", &image_ref, ""),
            image_mount("/iv2", registry::CONFIG_TEST, "home/app"),
        ];
        let first = create_container(&mut c, &d, &pod, cfg.clone(), &pcfg, "iv").await;
        start_container(&mut c, &d, &first, "iv").await;

        assert_eq!(
            out(&mut c, &first, "cat /iv/home/app/data/seed.txt").await,
            (0, SEED.into())
        );
        assert_eq!(
            out(&mut c, &first, "cat /iv2/data/seed.txt").await,
            (0, SEED.into())
        );
        assert_ne!(out(&mut c, &first, "ls /iv2/home").await.0, 0);
        assert_ne!(
            out(&mut c, &first, "touch /iv/new").await.0,
            0,
            "image volume is read-only"
        );
        assert_ne!(out(&mut c, &first, "touch /iv2/data/new").await.0, 0);
        assert_eq!(
            out(
                &mut c,
                &first,
                "grep ' /iv ' /proc/mounts | grep -c 'ro,nosuid,nodev'"
            )
            .await,
            (0, "1".into()),
            "mounted ro, nosuid, nodev"
        );

        let st = container_state(&mut c, &first).await;
        let iv2 = st
            .mounts
            .iter()
            .find(|m| m.container_path == "/iv2")
            .expect("/iv2 in status");
        assert_eq!(
            iv2.image.as_ref().map(|i| i.image.as_str()),
            Some(registry::CONFIG_TEST)
        );
        assert_eq!(iv2.image_sub_path, "home/app");
        assert!(iv2.readonly);

        // Two more with the same mounts: one left Created (for the restart), one whose record
        // will vanish as in a crash mid-create.
        cfg.metadata = Some(cri::ContainerMetadata {
            name: "waiting".into(),
            attempt: 0,
        });
        let waiting = create_container(&mut c, &d, &pod, cfg.clone(), &pcfg, "waiting").await;
        cfg.metadata = Some(cri::ContainerMetadata {
            name: "orphan".into(),
            attempt: 0,
        });
        let orphan = create_container(&mut c, &d, &pod, cfg, &pcfg, "orphan").await;
        (pod, pcfg, first, waiting, orphan)
    });
    let _ = pcfg;

    assert_eq!(host_mounts(&d, &first).len(), 2, "two host mounts");
    assert_eq!(views(&mut env, &first).len(), 2, "two views");
    assert_eq!(
        views(&mut env, "").len(),
        6,
        "only the three containers' views"
    );

    // RemoveContainer takes the mounts and views.
    runtime.block_on(async {
        let mut c = client(&d).await;
        c.runtime
            .remove_container(cri::RemoveContainerRequest {
                container_id: first.clone(),
            })
            .await
            .expect("remove");
    });
    // They go after the reply (RemoveContainer answers once the container is gone for every
    // RPC), within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !(host_mounts(&d, &first).is_empty() && views(&mut env, &first).is_empty())
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(host_mounts(&d, &first).is_empty(), "host mounts gone");
    assert!(views(&mut env, &first).is_empty(), "views gone");

    // criusd stops; a "reboot" takes the waiting container's host mounts, a "crash" the
    // orphan's record.
    env.stop_service(d.pid, false).expect("stop criusd");
    for mp in host_mounts(&d, &waiting) {
        let st = std::process::Command::new("umount")
            .arg(&mp)
            .status()
            .expect("umount");
        assert!(st.success(), "umount {mp}");
    }
    std::fs::remove_dir_all(d.dir.join("lib/containers").join(&orphan)).expect("drop record");
    // A "crash" mid-Create also leaves the short-lived view it reads /etc/passwd through.
    let snapshots = |env: &mut TestEnv| {
        env.running_containerd()
            .expect("containerd")
            .ctr_output("crius", &["snapshots", "ls"])
            .expect("ctr snapshots ls")
    };
    let committed = snapshots(&mut env)
        .lines()
        .find(|l| l.split_whitespace().last() == Some("Committed"))
        .and_then(|l| l.split_whitespace().next())
        .expect("a committed snapshot")
        .to_string();
    env.running_containerd()
        .expect("containerd")
        .ctr_output(
            "crius",
            &["snapshots", "view", "crius-view-stale", &committed],
        )
        .expect("ctr snapshots view");
    // containerd's GC may take that view first; the mount it was read through only criusd can undo.
    let stale_mount = d.dir.join("run/tmpmounts/stale");
    std::fs::create_dir_all(&stale_mount).expect("tmpmounts dir");
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "crius-test-stale"])
        .arg(&stale_mount)
        .status()
        .expect("mount");
    assert!(st.success(), "mount tmpfs on {}", stale_mount.display());
    spawn(&mut env, &mut d);

    runtime.block_on(async {
        let mut c = client(&d).await;
        // Recovery ran before criusd serves: the orphan is gone, with its views.
        start_container(&mut c, &d, &waiting, "waiting after restart").await;
        assert_eq!(
            out(&mut c, &waiting, "cat /iv2/data/seed.txt").await,
            (0, SEED.into()),
            "view mounted again before start"
        );
    });
    assert!(
        !snapshots(&mut env).contains("crius-view-stale"),
        "a crash's user-files view is swept"
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(
        !stale_mount.exists() && !mountinfo.contains(&stale_mount.display().to_string()),
        "and the mount it was read through"
    );
    assert!(host_mounts(&d, &orphan).is_empty(), "orphan's mounts gone");
    assert!(views(&mut env, &orphan).is_empty(), "orphan's views gone");
    assert!(!Path::new(&d.dir.join("run/image-volumes").join(&orphan)).exists());
    assert_eq!(host_mounts(&d, &waiting).len(), 2);

    // RemovePodSandbox takes the rest.
    runtime.block_on(async {
        let mut c = client(&d).await;
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    assert!(
        host_mounts(&d, "").is_empty(),
        "no image volume mounts left"
    );
    assert!(views(&mut env, "").is_empty(), "no image volume views left");
    finish(env, &d);
}
