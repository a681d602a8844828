//! criusctl's streaming client against containerd's CRI streaming server — kubelet's own library —
//! with real processes in runc containers, over both transports: WebSocket (v5/v4.channel.k8s.io,
//! channel framing for port-forward) and SPDY/3.1 (crius's framing, `--transport spdy`, against
//! Go's spdystream). Then the leak check.

mod criusctl_common;

use criusctl_common::{setup, Setup};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `criusctl run` a busybox container running `cmd`; its id.
fn run_ctr(s: &Setup, name: &str, cmd: &[&str], stdin: bool, tty: bool) -> String {
    let pod = s.pod_yaml(name);
    let ctr = s.ctr_json(name, cmd, stdin, tty);
    let id = s.ok(&["run", &ctr, &pod]).trim().to_string();
    assert_eq!(s.wait_state(&id, 1, 20)["status"]["state"], 1);
    id
}

/// Read `child`'s stdout until `want` shows up (or 20 s pass); what was read.
fn read_until(child: &mut Child, want: &str) -> String {
    let out = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
            if tx.send(std::mem::take(&mut line)).is_err() {
                return;
            }
        }
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains(want) && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push_str(&l);
        }
    }
    seen
}

#[test]
fn streaming_client_exec_attach_port_forward_websocket_and_spdy() {
    let Some(s) = setup("streaming_client_exec_attach_port_forward_websocket_and_spdy") else {
        return;
    };
    let ctr = run_ctr(&s, "sh", &["sleep", "300"], false, false);
    let echo = run_ctr(
        &s,
        "echo",
        &["sh", "-c", "echo ready; while read l; do echo got-$l; done"],
        true,
        false,
    );
    let web = s.pod_yaml("web");
    let httpd = s.ctr_json(
        "httpd",
        &[
            "sh",
            "-c",
            "mkdir -p /www && echo hello-pf > /www/index.html && exec httpd -f -p 80 -h /www",
        ],
        false,
        false,
    );
    let id = s.ok(&["run", &httpd, &web]).trim().to_string();
    s.wait_state(&id, 1, 20);
    let pod_id = s
        .ok(&["pods", "-q", "--label", "app=web"])
        .trim()
        .to_string();
    for transport in ["websocket", "spdy"] {
        exercise(&s, transport, &ctr, &echo, &pod_id);
    }
    s.finish();
}

fn exercise(s: &Setup, transport: &str, ctr: &str, echo: &str, pod_id: &str) {
    let t = ["--transport", transport];
    // exec: stdout and stderr apart, the exit code passed through.
    let out = s.run(&[
        "exec",
        t[0],
        t[1],
        ctr,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 4",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n", "{transport}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n", "{transport}");
    assert_eq!(out.status.code(), Some(4), "{transport}");
    assert_eq!(s.ok(&["exec", t[0], t[1], ctr, "true"]), "");

    // exec -i: stdin reaches the command.
    let mut child = s
        .cmd(&["exec", t[0], t[1], "-i", ctr, "head", "-n", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn exec -i");
    child
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"from-stdin\nmore\n")
        .expect("write stdin");
    let out = child.wait_with_output().expect("exec -i");
    assert!(out.status.success(), "{transport}: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from-stdin\n",
        "{transport}"
    );

    // exec -it under a pseudo-terminal (script): raw mode, and `stty size` follows our size (the
    // size is applied asynchronously by the server, hence the pause before asking).
    let bin = crius_test::paths::criusctl_bin();
    let inner = format!(
        "stty cols 123 rows 45; {} -r unix://{} exec --transport {transport} -it {ctr} sh -c \"sleep 1; stty size\"",
        bin.display(),
        s.socket.display()
    );
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .output()
        .expect("script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("45 123"),
        "{transport}: stty size inside: {text:?}"
    );
    assert!(out.status.success(), "{transport}: {text}");

    // attach -i: the container's stdin and output.
    let mut child = s
        .cmd(&["attach", t[0], t[1], "-i", echo])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn attach");
    let word = format!("ping-{transport}");
    child
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(format!("{word}\n").as_bytes())
        .expect("write");
    let seen = read_until(&mut child, &format!("got-{word}"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.contains(&format!("got-{word}")),
        "{transport}: attach saw: {seen:?}"
    );

    // port-forward: busybox httpd in the pod, reached from a local port.
    let mut pf = s
        .cmd(&["port-forward", t[0], t[1], pod_id, "0:80"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn port-forward");
    let banner = read_until(&mut pf, "-> 80");
    let port: u16 = banner
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {banner:?}"));
    // Two requests one after the other: every connection gets its own single-use token.
    for _ in 0..2 {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        tcp.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut resp = String::new();
        let _ = tcp.read_to_string(&mut resp);
        assert!(
            resp.starts_with("HTTP/1.") && resp.contains("hello-pf"),
            "{transport}: {resp:?}"
        );
    }
    let _ = pf.kill();
    let _ = pf.wait();
}
