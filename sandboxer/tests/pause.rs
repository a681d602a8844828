//! The pause program on its own: exits 0 on SIGTERM and SIGINT, and as PID 1 of a PID namespace
//! reaps the orphans re-parented to it. Needs root (a PID namespace) for the reaping part.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PAUSE: &str = env!("CARGO_BIN_EXE_crius-pause");

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).expect("kill");
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        assert!(Instant::now() < deadline, "pause did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until the program sits in sigwaitinfo (a signal before that kills it, as it should).
fn started(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        if wchan.contains("sigtimedwait") {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("pause {pid} never reached sigwaitinfo");
}

/// Kills what it holds when a failed assertion unwinds.
struct Reap(Vec<u32>);

impl Drop for Reap {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[test]
fn exits_zero_on_sigterm_and_sigint() {
    for sig in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        let mut child = Command::new(PAUSE)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pause");
        let _reap = Reap(vec![child.id()]);
        started(child.id());
        signal(child.id(), sig);
        assert_eq!(wait_exit(&mut child).code(), Some(0), "{sig:?}");
    }
}

#[test]
fn reaps_orphans_as_pid_1() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIP: reaps_orphans_as_pid_1: needs root (PID namespace)");
        return;
    }
    // unshare forks; its child (PID 1 of the new namespace) execs the pause.
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", PAUSE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn unshare");
    let mut reap = Reap(vec![unshare.id()]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let pause = loop {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id()))
                .unwrap_or_default();
        if let Some(pid) = children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse::<u32>().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "no pause under unshare");
        std::thread::sleep(Duration::from_millis(10));
    };
    reap.0.push(pause);
    started(pause);
    // A shell in the pause's PID namespace leaves an orphan that exits: the orphan is
    // re-parented to the pause, which must reap it.
    let st = Command::new("nsenter")
        .args([
            "-t",
            &pause.to_string(),
            "-p",
            "sh",
            "-c",
            "sleep 0.2 & exit 0",
        ])
        .status()
        .expect("nsenter");
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(800));
    let children =
        std::fs::read_to_string(format!("/proc/{pause}/task/{pause}/children")).unwrap_or_default();
    assert!(
        children.trim().is_empty(),
        "pause left children: {children}"
    );
    signal(pause, nix::sys::signal::Signal::SIGTERM);
    assert!(wait_exit(&mut unshare).success());
}
