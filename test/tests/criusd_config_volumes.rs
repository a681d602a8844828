//! The image config's VOLUMEs, as containerd's default: each container gets a directory of its
//! own per volume, filled from the image (owners and modes kept), read-write even on a read-only
//! rootfs, replaced by a CRI mount at the same path, and removed with the container.

mod criusd_common;

use std::path::Path;
use std::process::Command;

use crius_proto::runtime as cri;
use crius_test::{env_or_skip, process, registry};
use criusd_common::{
    client, container_config, create_and_start, exec_sh, finish, pod_config, pod_log_dir, pull,
    remove_pod, rt, run_pod, start,
};

/// busybox plus a layer with `/data/hello` and `/data/sub` (uid 1000, mode 0750), its config
/// declaring VOLUMEs `/data` and `/empty`; pushed to the local registry under its own name.
const IMAGE: &str = "127.0.0.1:5000/crius-test/volumes:latest";

fn sh(cmd: &mut Command) {
    process::output(cmd).unwrap_or_else(|e| panic!("{e:#}"));
}

fn push_volume_image(dir: &Path) {
    let layout = dir.join("oci");
    let image = format!("{}:vol", layout.display());
    let bundle = dir.join("bundle");
    std::fs::create_dir_all(dir).expect("image dir");
    sh(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}", registry::BUSYBOX),
        &format!("oci:{image}"),
    ]));
    sh(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let data = bundle.join("rootfs/data");
    std::fs::create_dir_all(data.join("sub")).expect("data dir");
    std::fs::write(data.join("hello"), "from-image\n").expect("hello");
    std::os::unix::fs::chown(data.join("sub"), Some(1000), Some(1000)).expect("chown");
    sh(Command::new("chmod").arg("0750").arg(data.join("sub")));
    sh(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle));
    sh(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.volume",
        "/data",
        "--config.volume",
        "/empty",
    ]));
    sh(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{image}"),
        &format!("docker://{IMAGE}"),
    ]));
}

fn out(r: &cri::ExecSyncResponse) -> String {
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

#[test]
fn criusd_image_config_volumes() {
    let mut env = env_or_skip!("criusd_image_config_volumes");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    push_volume_image(&env.dir().join("volume-image"));
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, IMAGE).await;
        let pcfg = pod_config(&env, "vols", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let sleeper = |name: &str| container_config(name, IMAGE, &["sleep", "1000"]);

        let c1 = create_and_start(&mut c, &d, &pod, sleeper("one"), &pcfg, "one").await;
        let r = exec_sh(
            &mut c,
            &c1,
            "cat /data/hello; stat -c '%u %a' /data/sub; ls -A /empty | wc -l; echo mine > /data/new && echo wrote",
        )
        .await;
        assert_eq!(out(&r), "from-image\n1000 750\n0\nwrote", "{r:?}");
        // The write is in the container's own volume dir on the host.
        let host = d.dir.join(format!("lib/containers/{c1}/volumes/0"));
        assert_eq!(
            std::fs::read_to_string(host.join("new")).expect("the write on the host"),
            "mine\n"
        );

        // Another container gets its own copy, from the image, not the first one's.
        let c2 = create_and_start(&mut c, &d, &pod, sleeper("two"), &pcfg, "two").await;
        let r = exec_sh(&mut c, &c2, "cat /data/hello; test -e /data/new || echo fresh").await;
        assert_eq!(out(&r), "from-image\nfresh", "{r:?}");

        // A CRI mount at the volume's path wins.
        let src = env.dir().join("host-data");
        std::fs::create_dir_all(&src).expect("host dir");
        std::fs::write(src.join("host-file"), "host\n").expect("host file");
        let mut cfg = sleeper("mounted");
        cfg.mounts.push(cri::Mount {
            container_path: "/data".into(),
            host_path: src.display().to_string(),
            ..Default::default()
        });
        let c3 = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "mounted").await;
        let r = exec_sh(&mut c, &c3, "ls -A /data").await;
        assert_eq!(out(&r), "host-file", "{r:?}");

        // Read-only rootfs: the volumes stay writable.
        let mut cfg = sleeper("ro");
        cfg.linux = Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                readonly_rootfs: true,
                ..Default::default()
            }),
            ..Default::default()
        });
        let c4 = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "ro").await;
        let r = exec_sh(&mut c, &c4, "touch /data/x /empty/y && echo ok; touch /nope || echo ro").await;
        assert_eq!(out(&r), "ok\nro", "{r:?}");

        // The volumes go with the container.
        c.runtime
            .remove_container(cri::RemoveContainerRequest {
                container_id: c1.clone(),
            })
            .await
            .expect("remove one");
        // They go after the reply (the container is gone for every RPC at once).
        let gone = criusd_common::eventually(15, || async { (!host.exists()).then_some(()) }).await;
        assert!(gone.is_some(), "{} left", host.display());
        remove_pod(&mut c, &pod).await.expect("remove pod");
        let left = std::fs::read_dir(d.dir.join("lib/containers"))
            .map(|rd| rd.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "container dirs left");
    });
    finish(env, &d);
}
