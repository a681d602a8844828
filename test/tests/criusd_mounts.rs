//! Bind mounts through criusd, checked from inside a real container: read-write, read-only
//! (submounts stay writable, as in every runtime), recursive read-only (submounts too), and
//! propagation: host-to-container (a mount made on the host after start shows up inside, one
//! made inside stays there), bidirectional (both ways), the rootfs propagation that carries
//! them, and a source on a private mount refused as containerd refuses it.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    client, container_config, create_and_start, exec_sh, finish, pod_config, pod_log_dir, pull,
    remove_pod, rt, run_pod, runtime_status, start, try_create,
};
use std::path::Path;
use std::process::Command;

fn sh(script: &str) {
    let st = Command::new("sh")
        .args(["-c", script])
        .status()
        .expect("sh");
    assert!(st.success(), "{script}");
}

/// Unmounts what the test mounted on the host, even when an assertion failed.
struct HostMounts(Vec<String>);

impl Drop for HostMounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            // Some were never mounted (they must not have propagated): quietly.
            let _ = Command::new("umount")
                .args(["-l", m])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

fn mount(
    host: &str,
    container: &str,
    readonly: bool,
    rro: bool,
    prop: cri::MountPropagation,
) -> cri::Mount {
    cri::Mount {
        container_path: container.into(),
        host_path: host.into(),
        readonly,
        recursive_read_only: rro,
        propagation: prop as i32,
        ..Default::default()
    }
}

#[test]
fn criusd_bind_mounts_readonly_recursive_and_propagation() {
    let mut env = env_or_skip!("criusd_bind_mounts_readonly_recursive_and_propagation");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let vol = env.dir().join("vol");
    let shared = env.dir().join("shared");
    let bidir = env.dir().join("bidir");
    let private = env.dir().join("private");
    let (v, s) = (vol.display().to_string(), shared.display().to_string());
    let (b, p) = (bidir.display().to_string(), private.display().to_string());
    std::fs::create_dir_all(vol.join("sub")).expect("vol");
    std::fs::create_dir_all(&shared).expect("shared");
    std::fs::create_dir_all(&bidir).expect("bidir");
    std::fs::create_dir_all(&private).expect("private");
    std::fs::write(vol.join("hello"), "hi\n").expect("hello");
    // vol/sub is a mount of its own; `shared` is a shared mount point, so host mounts under it
    // propagate to slaves.
    let mut host = HostMounts(Vec::new());
    sh(&format!("mount -t tmpfs crius-test-sub {v}/sub"));
    host.0.push(format!("{v}/sub"));
    sh(&format!("mount --bind {s} {s} && mount --make-shared {s}"));
    host.0.push(s.clone());
    sh(&format!("mount --bind {b} {b} && mount --make-shared {b}"));
    host.0.push(b.clone());
    sh(&format!("mount --bind {p} {p} && mount --make-private {p}"));
    host.0.push(p.clone());

    rt().block_on(async {
        let mut c = client(&d).await;
        let status = runtime_status(&mut c).await;
        let rro_ok = status.runtime_handlers.iter().all(|h| {
            h.features
                .as_ref()
                .is_some_and(|f| f.recursive_read_only_mounts)
        });
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "mounts", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        use cri::MountPropagation::{
            PropagationHostToContainer as Slave, PropagationPrivate as Private,
        };

        // Recursive read-only must be read-only and private; and supported.
        let mut bad = container_config("bad", registry::BUSYBOX, &["true"]);
        bad.mounts = vec![mount(&v, "/rro", false, true, Private)];
        let e = try_create(&mut c, &pod, bad, &pcfg)
            .await
            .expect_err("rro without readonly");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        let mut cfg = container_config("vols", registry::BUSYBOX, &["sleep", "1000"]);
        cfg.mounts = vec![
            mount(&v, "/rw", false, false, Private),
            mount(&v, "/ro", true, false, Private),
            mount(&s, "/slave", true, false, Slave),
        ];
        if rro_ok {
            cfg.mounts.push(mount(&v, "/rro", true, true, Private));
        }
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "vols").await;
        let run = |script: &'static str| {
            let mut c = c.clone();
            let id = id.clone();
            async move {
                let r = exec_sh(&mut c, &id, script).await;
                (
                    r.exit_code,
                    String::from_utf8_lossy(&r.stdout).trim().to_string(),
                )
            }
        };

        assert_eq!(run("cat /rw/hello").await, (0, "hi".into()));
        assert_eq!(
            run("echo w > /rw/written && echo ok").await,
            (0, "ok".into())
        );
        assert!(
            Path::new(&format!("{v}/written")).exists(),
            "write reached the host"
        );
        assert_ne!(
            run("touch /ro/nope").await.0,
            0,
            "read-only mount refused a write"
        );
        assert_eq!(
            run("touch /ro/sub/yes && echo ok").await,
            (0, "ok".into()),
            "a plain read-only bind leaves submounts writable"
        );
        if rro_ok {
            assert_ne!(run("touch /rro/nope").await.0, 0);
            assert_ne!(
                run("touch /rro/sub/nope").await.0,
                0,
                "recursive read-only covers submounts"
            );
        }

        // A mount made on the host now propagates into the container.
        std::fs::create_dir_all(shared.join("late")).expect("late dir");
        sh(&format!(
            "mount -t tmpfs crius-test-late {s}/late && echo there > {s}/late/file"
        ));
        host.0.push(format!("{s}/late"));
        assert_eq!(run("cat /slave/late/file").await, (0, "there".into()));

        // Bidirectional (privileged, as kubelet allows it only there): both ways. HostToContainer
        // beside it: what the container mounts there stays in the container.
        use cri::MountPropagation::PropagationBidirectional as Shared;
        let mut cfg = container_config("bidir", registry::BUSYBOX, &["sleep", "1000"]);
        cfg.mounts = vec![
            mount(&b, "/bidir", false, false, Shared),
            mount(&s, "/slave", false, false, Slave),
        ];
        cfg.linux = Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                privileged: true,
                ..Default::default()
            }),
            ..Default::default()
        });
        let bid = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "bidir").await;
        host.0.push(format!("{b}/in"));
        host.0.push(format!("{s}/cin"));
        let r = exec_sh(
            &mut c,
            &bid,
            "mkdir -p /bidir/in /slave/cin && mount -t tmpfs crius-test-in /bidir/in && echo from-ctr > /bidir/in/f && mount -t tmpfs crius-test-cin /slave/cin && touch /slave/cin/f",
        )
        .await;
        assert_eq!(r.exit_code, 0, "{r:?}");
        assert_eq!(
            std::fs::read_to_string(bidir.join("in/f")).expect("the container's mount on the host"),
            "from-ctr\n"
        );
        assert!(
            !shared.join("cin/f").exists(),
            "a mount made under a HostToContainer volume stays in the container"
        );
        std::fs::create_dir_all(bidir.join("out")).expect("out dir");
        sh(&format!(
            "mount -t tmpfs crius-test-out {b}/out && echo from-host > {b}/out/f"
        ));
        host.0.push(format!("{b}/out"));
        let r = exec_sh(&mut c, &bid, "cat /bidir/out/f").await;
        assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "from-host", "{r:?}");

        // A source on a private mount cannot propagate: refused, naming the mount to fix.
        for prop in [Shared, Slave] {
            let mut cfg = container_config("private", registry::BUSYBOX, &["true"]);
            cfg.mounts = vec![mount(&p, "/p", false, false, prop)];
            let e = try_create(&mut c, &pod, cfg, &pcfg)
                .await
                .expect_err("propagation from a private mount");
            assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
            assert!(e.message().contains(&p), "{e}");
        }

        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    drop(host);
    finish(env, &d);
}
