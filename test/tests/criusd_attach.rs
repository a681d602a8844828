//! Attach joins the container's live stdio (through its log driver, not its log file), as
//! containerd's: output as written on stdout and stderr, several attachers at once, containers
//! without a log path, a terminal's output, stdin with `stdin_once` closing it after the first
//! attach ends.

mod criusd_common;

use crius_test::{env_or_skip, paths, registry};
use criusd_common::{
    client, container_config, create_and_start, exited, finish, pod_config, pod_log_dir, pull,
    remove_pod, rt, run_pod, start, wait_status,
};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn attach(d: &criusd_common::Criusd, id: &str, stdin: bool) -> Child {
    let mut c = Command::new(paths::criusctl_bin());
    c.arg("--runtime-endpoint")
        .arg(format!("unix://{}", d.socket.display()))
        .arg("--timeout")
        .arg("10s")
        .arg("attach");
    if stdin {
        c.arg("-i");
    }
    c.arg(id)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("criusctl attach")
}

/// Read `r` on a thread until `want` shows up (or EOF, or 10 s); what was read.
fn read_until(mut r: impl Read + Send + 'static, want: &str) -> std::thread::JoinHandle<String> {
    let want = want.to_string();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 256];
        while !seen.contains(&want) {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        seen
    })
}

fn wait_done(h: &std::thread::JoinHandle<String>, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !h.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

#[test]
fn criusd_attach_joins_the_live_streams() {
    let mut env = env_or_skip!("criusd_attach_joins_the_live_streams");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let rt = rt();
    let c = rt.block_on(async { client(&d).await });
    let pcfg = pod_config(&env, "attach", &log_dir);
    let (pod, echo, ticker, once) = rt.block_on(async {
        let mut c = c.clone();
        pull(&mut c, registry::BUSYBOX).await;
        let pod = run_pod(&mut c, &d, &pcfg).await;
        // No log path: attach does not need one.
        let mut cfg = container_config(
            "echo",
            registry::BUSYBOX,
            &[
                "sh",
                "-c",
                "while read l; do echo out:$l; echo err:$l >&2; done",
            ],
        );
        cfg.log_path = String::new();
        cfg.stdin = true;
        let echo = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "echo").await;
        let mut cfg = container_config(
            "ticker",
            registry::BUSYBOX,
            &["sh", "-c", "while true; do echo tick; sleep 0.2; done"],
        );
        cfg.log_path = String::new();
        cfg.tty = true;
        let ticker = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "ticker").await;
        let mut cfg = container_config("once", registry::BUSYBOX, &["sh", "-c", "cat; echo done"]);
        cfg.stdin = true;
        cfg.stdin_once = true;
        let once = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "once").await;
        (pod, echo, ticker, once)
    });

    // Two attachers: a watcher, and one that talks; both see stdout and stderr as written.
    let mut watcher = attach(&d, &echo, false);
    let w_out = read_until(watcher.stdout.take().expect("out"), "out:ping");
    let w_err = read_until(watcher.stderr.take().expect("err"), "err:ping");
    let mut talker = attach(&d, &echo, true);
    let mut t_in = talker.stdin.take().expect("in");
    let t_out = read_until(talker.stdout.take().expect("out"), "out:ping");
    // Until all three have theirs: an attach sees what is written after it joined, and the log
    // driver reads stdout and stderr on threads of their own, so the watcher may join between the
    // two halves of one ping and see only its stdout line (it did, in CI).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(t_out.is_finished() && w_out.is_finished() && w_err.is_finished())
        && Instant::now() < deadline
    {
        let _ = t_in.write_all(b"ping\n");
        std::thread::sleep(Duration::from_millis(300));
    }
    stop(talker);
    stop(watcher);
    let (t, w, we) = (
        t_out.join().unwrap_or_default(),
        w_out.join().unwrap_or_default(),
        w_err.join().unwrap_or_default(),
    );
    assert!(t.contains("out:ping"), "talker saw {t:?}\n{}", d.log_tail());
    assert!(
        w.contains("out:ping"),
        "watcher saw {w:?}\n{}",
        d.log_tail()
    );
    assert!(
        we.contains("err:ping") && !w.contains("err:"),
        "stderr apart: {we:?} / {w:?}"
    );

    // A terminal's output, with no log path either.
    let mut tw = attach(&d, &ticker, false);
    let seen = read_until(tw.stdout.take().expect("out"), "tick");
    wait_done(&seen, 10);
    stop(tw);
    let seen = seen.join().unwrap_or_default();
    assert!(
        seen.contains("tick"),
        "tty attach saw {seen:?}\n{}",
        d.log_tail()
    );

    // stdin_once: the first attach's end is the end of the container's input.
    let mut a = attach(&d, &once, true);
    let out = read_until(a.stdout.take().expect("out"), "done");
    let mut a_in = a.stdin.take().expect("in");
    a_in.write_all(b"hello\n").expect("write");
    drop(a_in);
    wait_done(&out, 10);
    stop(a);
    let out = out.join().unwrap_or_default();
    assert!(
        out.contains("hello") && out.contains("done"),
        "{out:?}\n{}",
        d.log_tail()
    );
    rt.block_on(async {
        let st = wait_status(&c, &once, 10, exited).await;
        assert!(st.is_some(), "stdin_once container ended\n{}", d.log_tail());
        let mut c = c.clone();
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    drop(rt);
    finish(env, &d);
}
