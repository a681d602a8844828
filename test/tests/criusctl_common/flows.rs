//! The criusctl flows, run against containerd's CRI plugin (criusctl_cri.rs) and against criusd
//! (criusctl_criusd.rs): the same commands must behave the same on both.

use super::Setup;
use crius_test::registry::BUSYBOX;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// runp → create (pulls) → start → logs → ps/pods/inspect → exec -s → stats → stop/rm/stopp/rmp.
pub fn lifecycle(s: &Setup) {
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
    assert_eq!(st["status"]["state"], "CONTAINER_RUNNING", "{st}");

    let ps = s.ok(&["ps"]);
    assert!(
        ps.contains("Running") && ps.contains("web") && ps.contains(&ctr[..13]),
        "{ps}"
    );
    // -o json is crictl's protojson: camelCase, enum names, int64 as strings.
    let ps_json: serde_json::Value =
        serde_json::from_str(&s.ok(&["ps", "-o", "json"])).expect("ps json");
    let listed = &ps_json["containers"][0];
    assert_eq!(listed["podSandboxId"], pod.as_str(), "{ps_json}");
    assert_eq!(listed["state"], "CONTAINER_RUNNING", "{ps_json}");
    assert!(
        listed["createdAt"]
            .as_str()
            .is_some_and(|t| t.parse::<i64>().is_ok()),
        "{ps_json}"
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
    assert!(inspect["status"]["logPath"]
        .as_str()
        .is_some_and(|p| p.ends_with("app.log")));
    let inspectp: serde_json::Value =
        serde_json::from_str(&s.ok(&["inspectp", &pod])).expect("json");
    assert_eq!(inspectp["status"]["state"], "SANDBOX_READY");
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
    let version = s.ok(&["version"]);
    assert!(
        version.contains(&format!("RuntimeName:  {}", s.runtime_name)),
        "{version}"
    );
    let stats = s.ok(&["stats"]);
    assert!(
        stats.starts_with("CONTAINER") && stats.contains("app"),
        "{stats}"
    );

    s.ok(&["stop", "-t", "1", &ctr]);
    assert_eq!(
        s.wait_state(&ctr, 2, 20)["status"]["state"],
        "CONTAINER_EXITED"
    );
    assert!(s.ok(&["ps", "-a", "--state", "exited"]).contains("Exited"));
    s.ok(&["rm", &ctr]);
    assert_eq!(s.ok(&["ps", "-aq"]).trim(), "");
    assert!(s.ok(&["stopp", &pod]).contains("Stopped sandbox"));
    assert!(s.ok(&["pods"]).contains("NotReady"));
    assert!(s.ok(&["rmp", &pod]).contains("Removed sandbox"));
    assert_eq!(s.ok(&["pods", "-q"]).trim(), "");
}

/// pull → images → inspecti → imagefsinfo → rmi, and a missing image's one-line error.
pub fn images(s: &Setup) {
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
        inspect["status"]["repoTags"][0].as_str() == Some(BUSYBOX),
        "{inspect}"
    );
    assert!(
        // protojson: uint64 as a string.
        inspect["status"]["size"]
            .as_str()
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0),
        "{inspect}"
    );
    let fs: serde_json::Value = serde_json::from_str(&s.ok(&["imagefsinfo"])).expect("json");
    assert!(
        fs["status"]["imageFilesystems"]
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
}

/// Errors: one line with the gRPC code, exit status 1 (unknown id, bad config, no server).
pub fn errors(s: &Setup) {
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
}

/// `run` (pod + container in one step), then `debug pod` shows the pod's host-side facts.
pub fn run_then_debug(s: &Setup) {
    let pod_cfg = s.pod_yaml("dbg");
    let ctr_cfg = s.ctr_json("sleeper", &["sleep", "300"], false, false);
    let ctr = s.ok(&["run", &ctr_cfg, &pod_cfg]).trim().to_string();
    assert_eq!(
        s.wait_state(&ctr, 1, 20)["status"]["state"],
        "CONTAINER_RUNNING"
    );
    let pod = s.ok(&["pods", "-q"]).trim().to_string();
    let screen = s.ok(&["debug", "pod", &pod]);
    println!("{screen}");
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
}

/// `criusctl run` a busybox container running `cmd`; its id.
pub fn run_ctr(s: &Setup, name: &str, cmd: &[&str], stdin: bool, tty: bool) -> String {
    let pod = s.pod_yaml(name);
    let ctr = s.ctr_json(name, cmd, stdin, tty);
    let id = s.ok(&["run", &ctr, &pod]).trim().to_string();
    assert_eq!(
        s.wait_state(&id, 1, 20)["status"]["state"],
        "CONTAINER_RUNNING"
    );
    id
}

/// Read `child`'s stdout until `want` shows up (or 20 s pass); what was read.
pub fn read_until(child: &mut Child, want: &str) -> String {
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

/// exec (output, exit code), exec -i, exec -it (raw mode, `stty size` follows the terminal), attach -i
/// and port-forward to busybox httpd, over WebSocket and over SPDY.
pub fn streaming(s: &Setup) {
    let ctr = run_ctr(s, "sh", &["sleep", "300"], false, false);
    let echo = run_ctr(
        s,
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
        exercise(s, transport, &ctr, &echo, &pod_id);
    }
}

pub fn exercise(s: &Setup, transport: &str, ctr: &str, echo: &str, pod_id: &str) {
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

    // Megabytes both ways: well past SPDY's and the pipes' windows.
    let big = s.ok(&[
        "exec",
        t[0],
        t[1],
        ctr,
        "head",
        "-c",
        "3000000",
        "/dev/zero",
    ]);
    assert_eq!(big.len(), 3_000_000, "{transport}");
    let mut child = s
        .cmd(&[
            "exec",
            t[0],
            t[1],
            "-i",
            ctr,
            "sh",
            "-c",
            "head -c 2000000 | wc -c",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn exec -i");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&vec![b'x'; 2_000_000]);
    });
    let out = child.wait_with_output().expect("exec -i big");
    let _ = writer.join();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2000000",
        "{transport}"
    );

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

    // exec -it under a pseudo-terminal (script): raw mode, and `stty size` follows our size — at
    // the start, and after the terminal is resized (SIGWINCH → resize message). Sizes are applied
    // asynchronously by the server, hence the pauses before asking.
    let bin = crius_test::paths::criusctl_bin();
    let inner = format!(
        "stty cols 123 rows 45; (sleep 2; stty cols 90 rows 20 </dev/tty) & \
         {} -r unix://{} exec --transport {transport} -it {ctr} sh -c \"sleep 1; stty size; sleep 2; stty size\"",
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
        text.contains("45 123") && text.contains("20 90"),
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

/// `events` (when the runtime has GetContainerEvents), `logs -f` to the container's end, `update`,
/// `statsp`, `info`.
pub fn events_follow_update(s: &Setup) {
    let mut events = s
        .cmd(&["events", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn events");
    let out = events.stdout.take().expect("stdout");
    // One indented protojson document per event, as crictl prints them.
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        let docs = serde_json::Deserializer::from_reader(BufReader::new(out)).into_iter();
        for doc in docs.map_while(Result::ok) {
            if tx.send(doc).is_err() {
                return;
            }
        }
    });
    // Let the stream open before anything happens.
    std::thread::sleep(Duration::from_millis(500));
    let pod_cfg = s.pod_yaml("ev");
    let counter = s.ctr_json(
        "counter",
        &["sh", "-c", "for i in 1 2 3; do echo n$i; sleep 0.3; done"],
        false,
        false,
    );
    let pod = s.ok(&["runp", &pod_cfg]).trim().to_string();
    let ctr = s
        .ok(&["create", &pod, &counter, &pod_cfg])
        .trim()
        .to_string();
    s.ok(&["start", &ctr]);
    // logs -f follows the file and returns once the container has exited.
    let started = Instant::now();
    let followed = s.ok(&["logs", "-f", &ctr]);
    assert_eq!(followed, "n1\nn2\nn3\n");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(s.wait_state(&ctr, 2, 10)["status"]["exitCode"], 0);

    let sleeper = s.ctr_json("sleeper", &["sleep", "300"], false, false);
    let busy = s
        .ok(&["create", &pod, &sleeper, &pod_cfg])
        .trim()
        .to_string();
    s.ok(&["start", &busy]);
    s.wait_state(&busy, 1, 20);
    assert_eq!(
        s.ok(&[
            "update",
            "--cpu-share",
            "512",
            "--memory",
            "67108864",
            &busy
        ])
        .trim(),
        busy
    );
    let statsp = s.ok(&["statsp"]);
    assert!(
        statsp.starts_with("POD") && statsp.contains("ev"),
        "{statsp}"
    );
    let info: serde_json::Value = serde_json::from_str(&s.ok(&["info"])).expect("info JSON");
    assert!(
        info["status"]["conditions"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{info}"
    );
    s.ok(&["rm", "-f", &busy]);
    s.ok(&["rm", &ctr]);
    s.ok(&["stopp", &pod]);
    s.ok(&["rmp", &pod]);

    // What the event stream saw of the counter container.
    std::thread::sleep(Duration::from_millis(500));
    let _ = events.kill();
    let mut err = String::new();
    if let Some(mut e) = events.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let _ = events.wait();
    if err.contains("Unimplemented") {
        println!(
            "note: this runtime has no GetContainerEvents: {}",
            err.trim()
        );
        return;
    }
    let kinds: Vec<String> = rx
        .try_iter()
        .filter(|v| v["containerId"] == ctr.as_str())
        .filter_map(|v| v["containerEventType"].as_str().map(str::to_string))
        .collect();
    for want in [
        "CONTAINER_CREATED_EVENT",
        "CONTAINER_STARTED_EVENT",
        "CONTAINER_STOPPED_EVENT",
        "CONTAINER_DELETED_EVENT",
    ] {
        assert!(
            kinds.iter().any(|k| k == want),
            "event type {want} missing for {ctr}: {kinds:?} (stderr: {err})"
        );
    }
}
