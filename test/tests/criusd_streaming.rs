//! criusd's streaming side end to end, driven by `criusctl` (a real client of the streaming
//! server): exec with stdin and exit code, exec with a terminal, port-forward into the pod's
//! network namespace.

mod criusd_common;

use crius_test::{env_or_skip, paths, registry};
use criusd_common::{
    client, container_config, create_and_start, finish, pod_config, pod_log_dir, pull, remove_pod,
    rt, run_pod, start,
};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn criusctl(sock: &std::path::Path) -> Command {
    let mut c = Command::new(paths::criusctl_bin());
    c.arg("--runtime-endpoint")
        .arg(format!("unix://{}", sock.display()))
        .arg("--timeout")
        .arg("10s");
    c
}

/// `criusctl attach -i`: send `ping` lines until `echo:<word>` comes back.
fn attach_ping(d: &criusd_common::Criusd, id: &str, word: &str) -> String {
    let mut att = criusctl(&d.socket)
        .args(["attach", "-i", id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("criusctl attach");
    let mut att_in = att.stdin.take().expect("attach stdin");
    let mut att_out = att.stdout.take().expect("attach stdout");
    let want = format!("echo:{word}");
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 256];
        while !seen.contains(&want) {
            match att_out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        seen
    });
    // The attach follows output from now on: keep sending until the echo shows up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.is_finished() && Instant::now() < deadline {
        let _ = att_in.write_all(format!("{word}\n").as_bytes());
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = att.kill();
    let _ = att.wait();
    reader.join().unwrap_or_default()
}

#[test]
fn criusd_streaming_exec_tty_and_port_forward() {
    let mut env = env_or_skip!("criusd_streaming_exec_tty_and_port_forward");
    if !paths::criusctl_bin().exists() {
        crius_test::skip("criusd_streaming_exec_tty_and_port_forward: criusctl not built");
        return;
    }
    let Some(mut d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let (pod, id) = rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "streams", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let script = "mkdir -p /tmp/www && echo served-from-the-pod > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www";
        let cfg = container_config("web", registry::BUSYBOX, &["sh", "-c", script]);
        let id = create_and_start(&mut c, &d, &pod, cfg, &pcfg, "").await;
        (pod, id)
    });

    // exec -i: stdin reaches the process, stdout/stderr come back, the exit code is criusctl's.
    let mut child = criusctl(&d.socket)
        .args([
            "exec",
            "-i",
            &id,
            "sh",
            "-c",
            "read x; echo got-$x; echo oops >&2; exit 4",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("criusctl exec");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hello\n")
        .expect("write stdin");
    let out = child.wait_with_output().expect("exec output");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "got-hello\n",
        "stderr: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log_tail()
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("oops"));
    assert_eq!(out.status.code(), Some(4));

    // exec -t: the process has a terminal.
    let out = criusctl(&d.socket)
        .args(["exec", "-t", &id, "tty"])
        .stdin(Stdio::null())
        .output()
        .expect("criusctl exec -t");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/"),
        "{:?} {}",
        out,
        d.log_tail()
    );

    // port-forward: a local port reaches httpd inside the pod's netns.
    let mut pf = criusctl(&d.socket)
        .args(["port-forward", &pod, "0:8080"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("criusctl port-forward");
    let mut stdout = pf.stdout.take().expect("pf stdout");
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 256];
    let port: u16 = loop {
        let n = stdout.read(&mut buf).unwrap_or(0);
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        // crictl's line: "Forwarding from 127.0.0.1:PORT -> 8080"
        if let Some(p) = seen
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
        {
            break p;
        }
        assert!(
            n > 0 && Instant::now() < deadline,
            "no forwarding line: {seen:?}"
        );
    };
    let mut body = String::new();
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read_to_string(&mut body);
            if body.contains("served-from-the-pod") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = pf.kill();
    let _ = pf.wait();
    assert!(
        body.contains("served-from-the-pod"),
        "{body:?}\n{}",
        d.log_tail()
    );

    // attach -i: a container created with stdin echoes what the client sends; its output
    // reaches the client.
    let talker = rt().block_on(async {
        let mut c = client(&d).await;
        let pcfg = pod_config(&env, "streams", &log_dir);
        let mut cfg = container_config(
            "talker",
            registry::BUSYBOX,
            &["sh", "-c", "while read l; do echo echo:$l; done"],
        );
        cfg.stdin = true;
        create_and_start(&mut c, &d, &pod, cfg, &pcfg, "talker").await
    });
    let seen = attach_ping(&d, &talker, "ping");
    assert!(
        seen.contains("echo:ping"),
        "attach saw {seen:?}\n{}",
        d.log_tail()
    );

    // kill -9 criusd: the container's stdin stays open (the log driver holds the fifo), and a
    // new criusd attaches to it again.
    env.stop_service(d.pid, true).expect("kill -9 criusd");
    std::thread::sleep(Duration::from_millis(500));
    criusd_common::spawn(&mut env, &mut d);
    rt().block_on(async { drop(client(&d).await) });
    let seen = attach_ping(&d, &talker, "again");
    assert!(
        seen.contains("echo:again"),
        "attach after restart saw {seen:?}\n{}",
        d.log_tail()
    );

    rt().block_on(async {
        let mut c = client(&d).await;
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
