//! CDI devices through criusd: a spec in criusd's spec directories (`cdi_spec_dirs`, here the
//! test's `<criusd dir>/cdi-static` and `<criusd dir>/cdi`, the later overriding) gives a
//! container asking for its device — in `CDI_devices` or in a `cdi.k8s.io/` annotation — the
//! device node, mount, env, additional gid and hook it names; a device no spec offers is
//! INVALID_ARGUMENT naming it. Beside CDI, the CRI `devices` a container gets as containerd gives
//! them: a directory entry is every node under it, and a privileged container has the host's
//! `/dev` nodes.

mod criusd_common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    all_containers, client, container_config, container_user, create_and_start, exec_sh, finish,
    pod_config, pod_log_dir, pull, remove_pod, rt, run_pod, start, try_create,
};

fn out(r: &cri::ExecSyncResponse) -> String {
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

fn sleeper(name: &str) -> cri::ContainerConfig {
    container_config(name, registry::BUSYBOX, &["sleep", "1000"])
}

fn cdi(names: &[&str]) -> Vec<cri::CdiDevice> {
    names
        .iter()
        .map(|n| cri::CdiDevice {
            name: n.to_string(),
        })
        .collect()
}

/// The two spec files: the static dir's JSON (a device the dynamic dir overrides, one only it
/// has), the dynamic dir's YAML with spec-wide and device edits.
fn write_specs(static_dir: &Path, dynamic_dir: &Path, share: &Path) {
    std::fs::create_dir_all(static_dir).expect("static dir");
    std::fs::create_dir_all(dynamic_dir).expect("dynamic dir");
    std::fs::write(
        static_dir.join("crius-test.json"),
        r#"{
	"cdiVersion": "0.3.0",
	"kind": "crius.test/dev",
	"devices": [
		{"name": "zero", "containerEdits": {"env": ["CDI_FROM=static"]}},
		{"name": "static-only", "containerEdits": {"env": ["CDI_STATIC_ONLY=1"]}}
	]
}"#,
    )
    .expect("static spec");
    let share = share.display();
    std::fs::write(
        dynamic_dir.join("crius-test.yaml"),
        format!(
            r#"cdiVersion: "0.7.0"
kind: crius.test/dev
containerEdits:
  env: [CDI_SPEC_WIDE=1]
devices:
  - name: zero
    containerEdits:
      env: [CDI_FROM=dynamic]
      deviceNodes:
        - path: /dev/cdi-zero
          hostPath: /dev/zero
      mounts:
        - hostPath: {share}
          containerPath: /cdi-share
          options: [ro, rbind]
      additionalGids: [4242]
      hooks:
        - hookName: createRuntime
          path: /bin/sh
          args: [sh, -c, "echo hooked >> {share}/hook-ran"]
"#
        ),
    )
    .expect("dynamic spec");
}

/// A char or block node of the host's /dev that runc does not make itself (None: the host has
/// none besides those).
fn host_only_node() -> Option<(String, u64)> {
    let runc_makes = [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "console",
    ];
    let mut names: Vec<_> = std::fs::read_dir("/dev")
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| t.is_char_device() || t.is_block_device())
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !runc_makes.contains(&n.as_str()))
        .collect();
    names.sort();
    let name = names.into_iter().next()?;
    let rdev = std::fs::metadata(format!("/dev/{name}")).ok()?.rdev();
    Some((name, rdev))
}

#[test]
fn criusd_cdi_devices() {
    let mut env = env_or_skip!("criusd_cdi");
    let Some(d) = start(&mut env) else { return };
    let share = env.dir().join("cdi-share");
    std::fs::create_dir_all(&share).expect("share dir");
    std::fs::write(share.join("marker"), "shared\n").expect("marker");
    // Written after criusd started: specs are read at each create.
    write_specs(&d.dir.join("cdi-static"), &d.dir.join("cdi"), &share);

    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "cdi", &pod_log_dir(&env));
        let pod = run_pod(&mut c, &d, &pcfg).await;

        // CDI_devices: the node, the mount, env (the later dir's device, its spec's edits), the
        // additional gid, and the hook ran before the container did.
        let mut cfg = sleeper("cdi-field");
        cfg.cdi_devices = cdi(&["crius.test/dev=zero"]);
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "cdi-field").await;
        let r = exec_sh(
            &mut c,
            &id,
            "stat -c '%F %t:%T' /dev/cdi-zero; head -c 3 /dev/cdi-zero | od -An -tx1; \
             cat /cdi-share/marker /cdi-share/hook-ran; echo $CDI_FROM $CDI_SPEC_WIDE; id -G",
        )
        .await;
        assert_eq!(r.exit_code, 0, "{r:?}");
        let lines: Vec<String> = out(&r).lines().map(|l| l.trim().to_string()).collect();
        assert_eq!(lines[0], "character special file 1:5", "{lines:?}");
        assert_eq!(lines[1], "00 00 00", "{lines:?}");
        assert_eq!(lines[2..4], ["shared", "hooked"], "{lines:?}");
        assert_eq!(lines[4], "dynamic 1", "{lines:?}");
        assert!(lines[5].split(' ').any(|g| g == "4242"), "{lines:?}");
        let groups = container_user(&mut c, &id).await.supplemental_groups;
        assert!(
            groups.contains(&4242),
            "ContainerStatus.user shows the CDI gid: {groups:?}"
        );

        // The annotation form, a device only the earlier dir has; asked twice, given once.
        let mut cfg = sleeper("cdi-annotation");
        cfg.annotations.insert(
            "cdi.k8s.io/crius-test".into(),
            "crius.test/dev=static-only,crius.test/dev=static-only".into(),
        );
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "cdi-annotation").await;
        let r = exec_sh(
            &mut c,
            &id,
            "echo $CDI_STATIC_ONLY; test -e /dev/cdi-zero || echo no-zero",
        )
        .await;
        assert_eq!(out(&r), "1\nno-zero", "{r:?}");

        // Unknown devices: INVALID_ARGUMENT naming them, nothing made.
        let mut cfg = sleeper("cdi-unknown-bad");
        cfg.cdi_devices = cdi(&["crius.test/dev=zero", "crius.test/dev=nope"]);
        let e = try_create(&mut c, &pod, cfg, &pcfg)
            .await
            .expect_err("unknown CDI device");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(e.message().contains("crius.test/dev=nope"), "{e}");
        let mut cfg = sleeper("cdi-ann-unknown-bad");
        cfg.annotations
            .insert("cdi.k8s.io/gpu".into(), "vendor.com/gpu=0".into());
        let e = try_create(&mut c, &pod, cfg, &pcfg)
            .await
            .expect_err("unknown annotated");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(e.message().contains("vendor.com/gpu=0"), "{e}");
        let mut cfg = sleeper("cdi-unqualified-bad");
        cfg.annotations
            .insert("cdi.k8s.io/gpu".into(), "gpu0".into());
        let e = try_create(&mut c, &pod, cfg, &pcfg)
            .await
            .expect_err("unqualified");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(e.message().contains("gpu0"), "{e}");
        let names: Vec<String> = all_containers(&mut c)
            .await
            .into_iter()
            .filter_map(|c| c.metadata.map(|m| m.name))
            .collect();
        assert!(names.iter().all(|n| !n.ends_with("-bad")), "{names:?}");

        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}

#[test]
fn criusd_device_dirs_and_privileged_host_devices() {
    let mut env = env_or_skip!("criusd_devices");
    let Some(d) = start(&mut env) else { return };
    // A directory of nodes (one in a subdirectory) as a CRI device entry.
    let devdir = env.dir().join("devdir");
    std::fs::create_dir_all(devdir.join("sub")).expect("devdir");
    for (p, minor) in [(devdir.join("zero"), 5), (devdir.join("sub/full"), 7)] {
        nix::sys::stat::mknod(
            &p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, minor),
        )
        .expect("mknod");
    }

    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "devices", &pod_log_dir(&env));
        let pod = run_pod(&mut c, &d, &pcfg).await;

        let mut cfg = sleeper("dev-dir");
        cfg.devices = vec![cri::Device {
            container_path: "/dev/mine".into(),
            host_path: devdir.display().to_string(),
            permissions: "rw".into(),
        }];
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "dev-dir").await;
        let r = exec_sh(
            &mut c,
            &id,
            "stat -c '%n %t:%T' /dev/mine/zero /dev/mine/sub/full; head -c 2 /dev/mine/sub/full | od -An -tx1",
        )
        .await;
        assert_eq!(r.exit_code, 0, "{r:?}");
        let lines: Vec<String> = out(&r).lines().map(|l| l.trim().to_string()).collect();
        assert_eq!(lines, ["/dev/mine/zero 1:5", "/dev/mine/sub/full 1:7", "00 00"]);

        // Privileged: the host's /dev nodes; unprivileged: not.
        {
            let (name, rdev) =
                host_only_node().expect("a node in the host's /dev besides runc's defaults");
            let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
            let probe = format!("stat -c '%t:%T' /dev/{name} 2>/dev/null || echo absent");
            let mut cfg = sleeper("privileged");
            cfg.linux = Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    privileged: true,
                    ..Default::default()
                }),
                ..Default::default()
            });
            let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "privileged").await;
            let r = exec_sh(&mut c, &id, &probe).await;
            assert_eq!(out(&r), format!("{major:x}:{minor:x}"), "/dev/{name}: {r:?}");
            let id = create_and_start(&mut c, &d, &pod, sleeper("plain"), &pcfg, "plain").await;
            let r = exec_sh(&mut c, &id, &probe).await;
            assert_eq!(out(&r), "absent", "/dev/{name} in an unprivileged container");
        }

        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
