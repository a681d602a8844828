//! criusctl against containerd's own CRI plugin (runc): the crictl workflow end to end —
//! runp → create → start → logs → ps/pods/inspect → exec -s → stop/rm/rmp, pull/images/rmi,
//! `run` + `debug pod`, one-line gRPC errors — then the leak check.

mod criusctl_common;

use crius_test::registry::BUSYBOX;
use criusctl_common::setup;

#[test]
fn criusctl_pod_and_container_lifecycle() {
    let Some(s) = setup("criusctl_pod_and_container_lifecycle") else {
        return;
    };
    let pod_cfg = s.pod_yaml("web");
    let ctr_cfg = s.ctr_json(
        "app",
        &[
            "sh",
            "-c",
            "echo hello-criusctl; echo to-stderr >&2; echo line2; sleep 300",
        ],
        false,
        false,
    );
    let pod = s.ok(&["runp", &pod_cfg]).trim().to_string();
    assert_eq!(pod.len(), 64, "runp prints the pod id: {pod:?}");

    let pods = s.ok(&["pods"]);
    assert!(pods.starts_with("POD ID"), "{pods}");
    assert!(pods.contains("web") && pods.contains("Ready"), "{pods}");
    let pods_json: serde_json::Value =
        serde_json::from_str(&s.ok(&["pods", "-o", "json"])).expect("json");
    assert_eq!(pods_json["items"][0]["id"], pod.as_str());
    assert_eq!(s.ok(&["pods", "-q", "--label", "app=web"]).trim(), pod);
    assert_eq!(s.ok(&["pods", "-q", "--label", "app=nope"]).trim(), "");

    // create pulls the missing image first (no --no-pull).
    let ctr = s
        .ok(&["create", &pod, &ctr_cfg, &pod_cfg])
        .trim()
        .to_string();
    assert_eq!(ctr.len(), 64, "{ctr:?}");
    let ps_a = s.ok(&["ps", "-a"]);
    assert!(ps_a.contains("Created") && ps_a.contains("app"), "{ps_a}");
    assert_eq!(s.ok(&["start", &ctr]).trim(), ctr);
    let st = s.wait_state(&ctr, 1, 20);
    assert_eq!(st["status"]["state"], 1, "{st}");

    let ps = s.ok(&["ps"]);
    assert!(
        ps.contains("Running") && ps.contains("web") && ps.contains(&ctr[..13]),
        "{ps}"
    );
    let ps_y = s.ok(&["ps", "-o", "yaml"]);
    assert!(ps_y.contains(&format!("id: {ctr}")), "{ps_y}");

    // logs: CRI log file, stdout and stderr apart, --tail.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = s.ok(&["logs", &ctr]);
        if logs.contains("line2") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(logs, "hello-criusctl\nline2\n", "stdout only on stdout");
    let both = s.run(&["logs", &ctr]);
    assert_eq!(String::from_utf8_lossy(&both.stderr), "to-stderr\n");
    // The two streams interleave in the file in whatever order the pipes were drained.
    let tail = s.run(&["logs", "--tail", "1", &ctr]);
    let one = format!(
        "{}{}",
        String::from_utf8_lossy(&tail.stdout),
        String::from_utf8_lossy(&tail.stderr)
    );
    assert!(one == "line2\n" || one == "to-stderr\n", "{one:?}");
    let ts = s.ok(&["logs", "-t", &ctr]);
    assert!(
        ts.lines().all(|l| l.starts_with("20")) && ts.contains("Z line2\n"),
        "{ts}"
    );
    let since = s.ok(&["logs", "--since", "1h", &ctr]);
    assert_eq!(since, "hello-criusctl\nline2\n");
    assert_eq!(s.ok(&["logs", "--since", "2099-01-01T00:00:00Z", &ctr]), "");

    let inspect: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", &ctr])).expect("json");
    assert_eq!(inspect["status"]["metadata"]["name"], "app");
    assert!(inspect["status"]["log_path"]
        .as_str()
        .is_some_and(|p| p.ends_with("app.log")));
    let inspectp: serde_json::Value =
        serde_json::from_str(&s.ok(&["inspectp", &pod])).expect("json");
    assert_eq!(inspectp["status"]["state"], 0);
    assert!(
        inspectp["status"]["network"]["ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.")),
        "{inspectp}"
    );

    // exec -s passes output and the exit code through.
    let out = s.run(&["exec", "-s", &ctr, "sh", "-c", "echo synced; exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "synced\n");

    // stats and version answer.
    assert!(s.ok(&["version"]).contains("RuntimeName:  containerd"));
    let stats = s.ok(&["stats"]);
    assert!(
        stats.starts_with("CONTAINER") && stats.contains("app"),
        "{stats}"
    );

    s.ok(&["stop", "-t", "1", &ctr]);
    assert_eq!(s.wait_state(&ctr, 2, 20)["status"]["state"], 2);
    assert!(s.ok(&["ps", "-a", "--state", "exited"]).contains("Exited"));
    s.ok(&["rm", &ctr]);
    assert_eq!(s.ok(&["ps", "-aq"]).trim(), "");
    assert!(s.ok(&["stopp", &pod]).contains("Stopped sandbox"));
    assert!(s.ok(&["pods"]).contains("NotReady"));
    assert!(s.ok(&["rmp", &pod]).contains("Removed sandbox"));
    assert_eq!(s.ok(&["pods", "-q"]).trim(), "");
    s.finish();
}

#[test]
fn criusctl_images_pull_list_inspect_remove() {
    let Some(s) = setup("criusctl_images_pull_list_inspect_remove") else {
        return;
    };
    let pulled = s.ok(&["pull", BUSYBOX]);
    assert!(
        pulled.starts_with("Image is up to date for sha256:"),
        "{pulled}"
    );
    let images = s.ok(&["images"]);
    assert!(images.starts_with("IMAGE"), "{images}");
    assert!(
        images.contains("127.0.0.1:5000/crius/busybox") && images.contains("latest"),
        "{images}"
    );
    let one = s.ok(&["images", "-q", BUSYBOX]);
    assert_eq!(one.lines().count(), 1, "{one}");
    let inspect: serde_json::Value =
        serde_json::from_str(&s.ok(&["inspecti", BUSYBOX])).expect("json");
    assert!(
        inspect["status"]["repo_tags"][0].as_str() == Some(BUSYBOX),
        "{inspect}"
    );
    assert!(
        inspect["status"]["size"].as_u64().is_some_and(|n| n > 0),
        "{inspect}"
    );
    let fs: serde_json::Value = serde_json::from_str(&s.ok(&["imagefsinfo"])).expect("json");
    assert!(
        fs["image_filesystems"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{fs}"
    );
    assert!(s
        .ok(&["rmi", BUSYBOX])
        .contains(&format!("Deleted: {BUSYBOX}")));
    assert!(!s.ok(&["images"]).contains("crius/busybox"));
    // A missing image: non-zero exit and one clear line.
    let out = s.run(&["inspecti", BUSYBOX]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("criusctl: no such image"), "{err}");
    s.finish();
}

#[test]
fn criusctl_errors_are_one_line_with_the_grpc_code() {
    let Some(s) = setup("criusctl_errors_are_one_line_with_the_grpc_code") else {
        return;
    };
    let out = s.run(&["inspect", "does-not-exist"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("criusctl: ContainerStatus does-not-exist: NotFound: "),
        "{err}"
    );
    let bad = s.file("bad.json", "{\"metadata\": 3}");
    let out = s.run(&["runp", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    // A socket nobody serves.
    let out = std::process::Command::new(crius_test::paths::criusctl_bin())
        .args(["-r", "unix:///nonexistent/cri.sock", "version"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("connecting to unix:///nonexistent/cri.sock")
    );
    s.finish();
}

#[test]
fn criusctl_run_then_debug_pod() {
    let Some(s) = setup("criusctl_run_then_debug_pod") else {
        return;
    };
    let pod_cfg = s.pod_yaml("dbg");
    let ctr_cfg = s.ctr_json("sleeper", &["sleep", "300"], false, false);
    let ctr = s.ok(&["run", &ctr_cfg, &pod_cfg]).trim().to_string();
    assert_eq!(s.wait_state(&ctr, 1, 20)["status"]["state"], 1);
    let pod = s.ok(&["pods", "-q"]).trim().to_string();
    let screen = s.ok(&["debug", "pod", &pod]);
    let line = |key: &str| {
        screen
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} line in:\n{screen}"))
            .to_string()
    };
    assert!(line("IPs").contains("10."), "{screen}");
    assert!(
        line("Netns").contains("/netns/") || line("Netns").contains("/proc/"),
        "{screen}"
    );
    let pause_pid: u32 = line("Pause pid")
        .split_whitespace()
        .last()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(std::path::Path::new(&format!("/proc/{pause_pid}")).exists());
    assert!(line("Shim ").contains("containerd-shim"), "{screen}");
    assert!(line("Shim sock").contains('/'), "{screen}");
    assert!(
        screen.contains("- sleeper") && screen.contains("state Running (runc: running)"),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("cgroup /{}/dbg", s.env.id())),
        "{screen}"
    );
    s.finish();
}
