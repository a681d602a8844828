//! Crash safety: the process holding the sandboxer is killed with SIGKILL while it creates (and,
//! in later rounds, removes) pods; a new sandboxer's `recover()` keeps the finished pods (Ready),
//! tears the half-made or half-removed one down, and after removing the rest nothing is left: no
//! netns, veth, IP lease, pause or shim.

mod sandboxer_common;

use crius_sandboxer::{PodState, Sandboxer, SandboxerConfig};
use crius_test::{env_or_skip, CniNetwork};
use sandboxer_common::{finish, pod, rt, start};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD_ENV: &str = "CRIUS_SB_CRASH_CHILD_CONFIG";

/// Not a test of its own: the child the crash test runs (and kills). Creates pods until killed.
#[test]
#[ignore]
fn sandboxer_crash_child() {
    let Ok(cfg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let cfg: SandboxerConfig = serde_json::from_str(&cfg).expect("child config");
    rt().block_on(async {
        let sb = Sandboxer::new(cfg).await.expect("sandboxer");
        // CHURN=1: each pod is removed again right away, so kills land in remove too.
        let churn = std::env::var("CRIUS_SB_CRASH_CHILD_CHURN").is_ok();
        for i in 0.. {
            let p = sb.run(pod(&format!("crash{i}"))).await.expect("run");
            if churn {
                sb.remove(&p.id).await.expect("remove");
            }
        }
    });
}

#[test]
fn sandboxer_kill9_mid_run_then_recover_leaves_nothing() {
    let mut env = env_or_skip!("sandboxer_kill9_mid_run_then_recover_leaves_nothing");
    let Some((cfg, net)) = start(&mut env) else {
        return;
    };
    let exe = std::env::current_exe().expect("test binary");
    // Kill at a few different moments, each time into the same state: recovery must cope with
    // whatever step the crash hit, and with the leftovers of earlier rounds.
    for (round, delay_ms) in [350u64, 520, 610, 777, 430, 555, 690, 820]
        .into_iter()
        .enumerate()
    {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "sandboxer_crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, serde_json::to_string(&cfg).expect("config json"))
            // The second half of the rounds also removes pods: crashes mid-remove.
            .env(
                if round >= 4 {
                    "CRIUS_SB_CRASH_CHILD_CHURN"
                } else {
                    "CRIUS_SB_NO_CHURN"
                },
                "1",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        // No grace: a CNI plugin the child had running is still going; recover() must stop it
        // before its DEL.

        let cfg = cfg.clone();
        rt().block_on(async {
            let sb = Sandboxer::new(cfg).await.expect("sandboxer");
            let report = sb.recover().await.expect("recover");
            eprintln!("round {round}: {report:?}");
            assert!(report.errors.is_empty(), "{report:?}");
            // Finished pods remain, Ready; a pod the crash caught between stop and remove
            // stays too, stopped (NotReady), for kubelet to remove. Half-made ones are gone.
            let pods = sb.list().await.expect("list");
            assert_eq!(
                pods.len(),
                report.ready.len() + report.not_ready.len(),
                "{report:?}"
            );
            assert!(report.not_ready.len() <= 1, "{report:?}");
            for p in &pods {
                let want = if report.ready.contains(&p.id) {
                    PodState::Ready
                } else {
                    PodState::NotReady
                };
                assert_eq!(p.state, want, "{p:?}");
            }
            // A second recover finds nothing more to do.
            let again = sb.recover().await.expect("recover again");
            assert!(
                again.cleaned.is_empty() && again.orphans_removed.is_empty(),
                "{again:?}"
            );
            for p in pods {
                sb.remove(&p.id).await.expect("remove");
            }
        });
        let leases = leases_left(&net);
        assert!(
            leases.is_empty(),
            "round {round}: IP leases left: {leases:?}"
        );
    }
    finish(env);
}

/// The window behind a lease once left by the test above, hit on purpose: the crash lands while the
/// pod's IPAM plugin (host-local, behind a wrapper that pauses before or after it) is inside ADD.
/// Recovery must let that plugin finish and then DEL, never kill it mid-ADD (host-local killed between
/// creating a lease file and writing its owner into it leaves an IP no DEL frees).
#[test]
fn sandboxer_kill9_mid_cni_add_lets_the_plugin_finish_and_frees_the_lease() {
    let mut env =
        env_or_skip!("sandboxer_kill9_mid_cni_add_lets_the_plugin_finish_and_frees_the_lease");
    let Some((mut cfg, net)) = start(&mut env) else {
        return;
    };
    let bin = env.dir().join("cni-bin");
    let marks = env.dir().join("cni-marks");
    std::fs::create_dir_all(&bin).expect("cni-bin");
    std::fs::create_dir_all(&marks).expect("cni-marks");
    let host_local = cfg
        .cni_bin_dirs
        .iter()
        .map(|d| d.join("host-local"))
        .find(|p| p.exists())
        .expect("host-local plugin");
    // PAUSE_AT=before: sleep, then host-local; after: host-local, sleep, then its result.
    let wrapper = format!(
        r#"#!/bin/sh
[ "$CNI_COMMAND" = ADD ] || exec {hl}
touch {m}/started
if [ "$(cat {m}/pause_at)" = before ]; then sleep 0.6; {hl} > {m}/out || exit $?
else {hl} > {m}/out || exit $?; sleep 0.6; fi
touch {m}/finished
cat {m}/out
"#,
        hl = host_local.display(),
        m = marks.display()
    );
    let script = bin.join("host-local");
    std::fs::write(&script, wrapper).expect("wrapper");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod wrapper");
    cfg.cni_bin_dirs.insert(0, bin);
    let exe = std::env::current_exe().expect("test binary");
    for pause_at in ["before", "after"] {
        for f in ["started", "finished", "out"] {
            let _ = std::fs::remove_file(marks.join(f));
        }
        std::fs::write(marks.join("pause_at"), pause_at).expect("pause_at");
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "sandboxer_crash_child",
                "--ignored",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, serde_json::to_string(&cfg).expect("config json"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let mut started = false;
        for _ in 0..600 {
            if marks.join("started").exists() {
                started = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        assert!(started, "{pause_at}: the IPAM plugin never started");
        assert!(
            !marks.join("finished").exists(),
            "{pause_at}: the crash must land inside ADD"
        );

        let cfg = cfg.clone();
        rt().block_on(async {
            let sb = Sandboxer::new(cfg).await.expect("sandboxer");
            let report = sb.recover().await.expect("recover");
            assert!(report.errors.is_empty(), "{pause_at}: {report:?}");
            assert_eq!(report.cleaned.len(), 1, "{pause_at}: {report:?}");
            for p in sb.list().await.expect("list") {
                sb.remove(&p.id).await.expect("remove");
            }
        });
        assert!(
            marks.join("finished").exists(),
            "{pause_at}: recovery killed the IPAM plugin mid-ADD instead of letting it finish"
        );
        let leases = leases_left(&net);
        assert!(leases.is_empty(), "{pause_at}: IP leases left: {leases:?}");
    }
    finish(env);
}

/// host-local's lease files (`<dataDir>/<network>/<ip>`) still there.
fn leases_left(net: &CniNetwork) -> Vec<String> {
    std::fs::read_dir(net.lease_dir.join(&net.name))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains('.') && !n.starts_with("last_reserved_ip"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sandboxer_recover_marks_pod_with_dead_pause_not_ready() {
    let mut env = env_or_skip!("sandboxer_recover_marks_pod_with_dead_pause_not_ready");
    let Some((cfg, _net)) = start(&mut env) else {
        return;
    };
    rt().block_on(async {
        let sb = Sandboxer::new(cfg.clone()).await.expect("sandboxer");
        let p = sb.run(pod("victim")).await.expect("run");
        let pid = p.pause_pid.expect("pause pid");
        drop(sb);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill pause");
        let mut gone = false;
        for _ in 0..100 {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone, "pause {pid} still there");
        let sb = Sandboxer::new(cfg).await.expect("sandboxer again");
        let report = sb.recover().await.expect("recover");
        assert_eq!(report.not_ready, vec![p.id.clone()], "{report:?}");
        assert_eq!(
            sb.status(&p.id).await.expect("status").state,
            PodState::NotReady
        );
        sb.stop(&p.id).await.expect("stop");
        sb.remove(&p.id).await.expect("remove");
    });
    finish(env);
}
