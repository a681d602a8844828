//! The foundation itself: a private containerd and the local registry work end to end, and the leak
//! check catches what a test leaves behind.

use crius_test::registry::{self, BUSYBOX, CONFIG_TEST};
use crius_test::{env_or_skip, ContainerdOptions, Leak};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn busybox_pulled_from_local_registry_runs_under_stock_runc_shim() {
    let mut env = env_or_skip!("busybox_pulled_from_local_registry_runs_under_stock_runc_shim");
    registry::ensure().expect("local registry");
    // Its own namespace: the stock runc shim makes the cgroup parent /<namespace> and never removes
    // it, so "default" would leave /sys/fs/cgroup/*/default behind on a fresh machine.
    let ns = env.id().to_string();
    let ctrd = env
        .containerd(ContainerdOptions::default())
        .expect("containerd");
    ctrd.pull(&ns, BUSYBOX).expect("pull busybox");
    let out = ctrd
        .ctr_output(
            &ns,
            &[
                "run",
                "--rm",
                "--runtime",
                "io.containerd.runc.v2",
                BUSYBOX,
                "t1",
                "sh",
                "-c",
                "echo hello; exit 0",
            ],
        )
        .expect("ctr run");
    assert_eq!(out.trim(), "hello");

    // A failing command's exit code comes back through ctr.
    let status = ctrd
        .ctr(&ns)
        .args([
            "run",
            "--rm",
            "--runtime",
            "io.containerd.runc.v2",
            BUSYBOX,
            "t2",
            "sh",
            "-c",
            "exit 3",
        ])
        .status()
        .expect("ctr run exit 3");
    assert_eq!(status.code(), Some(3));
    crius_test::leaks::remove_cgroup_tree(&ns);
    env.finish().expect("no leaks");
}

#[test]
fn config_test_image_carries_user_env_workdir_entrypoint_and_cmd() {
    let mut env = env_or_skip!("config_test_image_carries_user_env_workdir_entrypoint_and_cmd");
    registry::ensure().expect("local registry");
    // Its own namespace: the stock runc shim makes the cgroup parent /<namespace> and never removes
    // it, so "default" would leave /sys/fs/cgroup/*/default behind on a fresh machine.
    let ns = env.id().to_string();
    let ctrd = env
        .containerd(ContainerdOptions::default())
        .expect("containerd");
    ctrd.pull(&ns, CONFIG_TEST).expect("pull config-test");
    // ctr applies the image config as-is: what the image says is what runs.
    let out = ctrd
        .ctr_output(
            &ns,
            &[
                "run",
                "--rm",
                "--runtime",
                "io.containerd.runc.v2",
                CONFIG_TEST,
                "c1",
            ],
        )
        .expect("ctr run");
    assert_eq!(
        out.trim(),
        "uid=1000 gid=1000 cwd=/home/app greeting=hello-from-image mode=image"
    );
    crius_test::leaks::remove_cgroup_tree(&ns);
    env.finish().expect("no leaks");
}

#[test]
fn leak_check_fails_when_a_test_leaves_a_netns_behind() {
    let env = env_or_skip!("leak_check_fails_when_a_test_leaves_a_netns_behind");
    let netns = format!("{}-leak", env.id());
    let made = Command::new("ip")
        .args(["netns", "add", &netns])
        .status()
        .expect("ip netns add");
    assert!(made.success());

    let leaks = env.leaks_now();
    assert!(
        leaks.iter().any(
            |l| matches!(l, Leak::Mount(m) if m.fstype == "nsfs" && m.mount_point.ends_with(&netns))
        ),
        "the netns should be reported: {leaks:?}"
    );
    let err = env
        .finish()
        .expect_err("finish must fail when a netns is left behind");
    let msg = err.to_string();
    assert!(msg.contains("netns mount") && msg.contains(&netns), "{msg}");
    // The check also cleaned up after the test.
    let left = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(
        !left.contains(&netns),
        "the harness should have removed the leaked netns"
    );
    let _ = std::fs::remove_file(format!("/run/netns/{netns}"));
}

#[test]
fn leak_check_fails_when_a_test_leaves_a_process_behind() {
    let env = env_or_skip!("leak_check_fails_when_a_test_leaves_a_process_behind");
    // A detached process that names the test's dir, as a leaked shim names its containerd's socket.
    let marker = env.dir().join("fake-shim.log");
    std::fs::write(&marker, "").expect("marker file");
    let mut child = Command::new("tail")
        .arg("-f")
        .arg(&marker)
        .spawn()
        .expect("spawn");
    // spawn() returns once the child is inside exec, before the kernel has set its new command
    // line: until then /proc shows it empty or the parent's, without the test's dir, so a check
    // that ran now could miss it (it did, in CI).
    let cmdline = format!("/proc/{}/cmdline", child.id());
    let named = marker.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read(&cmdline).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&named))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let err = env.finish().expect_err("a leftover process is a leak");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("process {} tail", child.id())),
        "{msg}"
    );
    // finish() killed it.
    let status = child.wait().expect("wait");
    assert!(!status.success());
}
