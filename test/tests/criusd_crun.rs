//! The runtime handler `crun` (a RuntimeClass whose handler names crun as the OCI runtime the
//! shim runs): Status lists it, and a pod's container under it runs with crun — crun knows its
//! state, runc does not — logs, answers exec, stops and is removed, its crun state gone.
//!
//! crun 1.8 refuses hosts in cgroup hybrid mode whose v2 hierarchy has controllers (cgroup v1 with
//! `/sys/fs/cgroup/unified` holding one, as these dev machines boot: hugetlb). There StartContainer
//! must fail with crun's own refusal — the handler did reach crun — and the container and pod
//! are removed cleanly.
//!
//! A handler whose binary is missing: criusd still starts, and StartContainer fails naming the
//! binary (no hang, no panic); the container and pod are removed cleanly.

mod criusd_common;

use std::process::Command;

use crius_proto::runtime as cri;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    client, container_config, container_state, create_and_start, create_container, eventually,
    exec_sh, exited, finish, pod_config, pod_log_dir, pull, remove_pod, rt, run_pod_with, runtime,
    runtime_status, start_with_config, stop_container, stop_pod,
};

/// crun 1.8's "cgroups in hybrid mode not supported": a cgroup v1 host whose v2 mount beside it
/// has controllers.
fn crun_refuses_this_host() -> bool {
    let v1 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(" - cgroup2 ") && l.contains(" /sys/fs/cgroup/unified "));
    v1 && !std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .unwrap_or_default()
        .trim()
        .is_empty()
}

/// The OCI runtime's own view of container `id` (`<binary> --root <shim's root> state <id>`):
/// its status, or None when that runtime does not know the container.
fn oci_state(binary: &str, id: &str) -> Option<String> {
    // The shims keep every OCI runtime's state under containerd's default root, per namespace.
    let out = Command::new(binary)
        .args(["--root", "/run/containerd/runc/crius", "state", id])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["status"].as_str().map(str::to_string)
}

/// RemoveContainer `id`, which must succeed.
async fn remove_container(c: &mut crius_test::cri::CriClient, id: &str) {
    c.runtime
        .remove_container(cri::RemoveContainerRequest {
            container_id: id.into(),
        })
        .await
        .expect("remove");
}

#[test]
fn criusd_crun_handler_runs_containers_with_crun() {
    let mut env = env_or_skip!("criusd_crun_handler_runs_containers_with_crun");
    if Command::new("crun").arg("--version").output().is_err() {
        crius_test::skip("crun is not installed (hack/setup.sh installs it)");
        return;
    }
    // A sub-table ahead of the harness's `[runtime_handlers]` (TOML allows the parent later).
    let handlers = format!(
        "[runtime_handlers.crun]\nruntime = \"{}\"\nbinary_name = \"crun\"",
        runtime()
    );
    let Some(d) = start_with_config(&mut env, &handlers) else {
        return;
    };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        let status = runtime_status(&mut c).await;
        let names: Vec<&str> = status
            .runtime_handlers
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert!(names.contains(&"crun"), "{names:?}");

        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "crun", &log_dir);
        let pod = run_pod_with(&mut c, &d, &pcfg, "crun").await;
        let mut cfg = container_config(
            "app",
            registry::BUSYBOX,
            &["sh", "-c", "echo hello from crun; exec sleep 3600"],
        );
        cfg.log_path = "app.log".into();
        if crun_refuses_this_host() {
            let id = create_container(&mut c, &d, &pod, cfg, &pcfg, "app").await;
            let e = c
                .runtime
                .start_container(cri::StartContainerRequest {
                    container_id: id.clone(),
                })
                .await
                .expect_err("crun refuses hybrid cgroups with v2 controllers");
            eprintln!("StartContainer (crun on hybrid cgroups): {}", e.message());
            assert!(
                e.message().contains("cgroups in hybrid mode not supported"),
                "not crun's refusal: {e}"
            );
            remove_container(&mut c, &id).await;
            stop_pod(&mut c, &pod).await.expect("stop pod");
            remove_pod(&mut c, &pod).await.expect("remove pod");
            return;
        }
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "app").await;

        assert_eq!(
            oci_state("crun", &id).as_deref(),
            Some("running"),
            "crun does not know the container as running\n{}",
            d.log_tail()
        );
        assert_eq!(oci_state("runc", &id), None, "runc knows the container");

        let log = log_dir.join("app.log");
        let logged = eventually(10, || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.contains("hello from crun").then_some(text)
        })
        .await;
        assert!(logged.is_some(), "no output in {}", log.display());

        let out = exec_sh(&mut c, &id, "echo exec-ok; cat /proc/1/cmdline >/dev/null").await;
        assert_eq!(out.exit_code, 0, "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "exec-ok\n");

        stop_container(&mut c, &id, 5).await.expect("stop");
        let st = container_state(&mut c, &id).await;
        assert!(exited(&st), "{st:?}");
        remove_container(&mut c, &id).await;
        let gone = eventually(10, || async {
            oci_state("crun", &id).is_none().then_some(())
        })
        .await;
        assert!(gone.is_some(), "crun still has state for {id}");

        stop_pod(&mut c, &pod).await.expect("stop pod");
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}

#[test]
fn criusd_missing_oci_binary_fails_start_by_name() {
    let mut env = env_or_skip!("criusd_missing_oci_binary_fails_start_by_name");
    let handlers = format!(
        "[runtime_handlers.gone]\nruntime = \"{}\"\nbinary_name = \"/nonexistent/crun\"",
        runtime()
    );
    let Some(d) = start_with_config(&mut env, &handlers) else {
        return;
    };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        let status = runtime_status(&mut c).await;
        let gone = status
            .runtime_handlers
            .iter()
            .find(|h| h.name == "gone")
            .unwrap_or_else(|| panic!("no handler gone: {:?}", status.runtime_handlers));
        // Its `features` probe could not run the binary: no optional features.
        assert!(
            !gone
                .features
                .as_ref()
                .expect("features")
                .recursive_read_only_mounts,
            "{gone:?}"
        );

        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "gone", &log_dir);
        let pod = run_pod_with(&mut c, &d, &pcfg, "gone").await;
        let cfg = container_config("app", registry::BUSYBOX, &["sleep", "3600"]);
        let id = create_container(&mut c, &d, &pod, cfg, &pcfg, "app").await;
        let e = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            c.runtime.start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            }),
        )
        .await
        .expect("StartContainer answers")
        .expect_err("no such binary");
        eprintln!("StartContainer (missing binary): {}", e.message());
        assert!(
            e.message().contains("\"/nonexistent/crun\" not found"),
            "not the missing binary: {e}"
        );
        remove_container(&mut c, &id).await;
        stop_pod(&mut c, &pod).await.expect("stop pod");
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
