//! The criusctl flows of `criusctl_cri.rs` and `streaming_client.rs`, against criusd (with the
//! crius shim, or `CRIUS_TEST_RUNTIME`): crictl's workflow must work the same on crius. The
//! streaming flow skips with one line while criusd serves no streaming server.

mod criusctl_common;
#[path = "criusd_common/mod.rs"]
mod criusd_common;

use crius_test::{paths, TestEnv};
use criusctl_common::{flows, on_server, Setup};
use std::time::{Duration, Instant};

fn setup(name: &str) -> Option<Setup> {
    let mut env = TestEnv::new(name)?;
    if !paths::criusctl_bin().exists() {
        crius_test::skip(format!(
            "{name}: criusctl missing (hack/build.sh builds it)"
        ));
        return None;
    }
    let d = criusd_common::start(&mut env)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !d.socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(on_server(env, d.socket.clone(), "crius", d.log.clone()))
}

#[test]
fn criusctl_criusd_pod_and_container_lifecycle() {
    let Some(s) = setup("criusctl_criusd_pod_and_container_lifecycle") else {
        return;
    };
    flows::lifecycle(&s);
    s.finish();
}

#[test]
fn criusctl_criusd_images() {
    let Some(s) = setup("criusctl_criusd_images") else {
        return;
    };
    flows::images(&s);
    s.finish();
}

#[test]
fn criusctl_criusd_errors() {
    let Some(s) = setup("criusctl_criusd_errors") else {
        return;
    };
    flows::errors(&s);
    s.finish();
}

#[test]
fn criusctl_criusd_run_then_debug_pod() {
    let Some(s) = setup("criusctl_criusd_run_then_debug_pod") else {
        return;
    };
    flows::run_then_debug(&s);
    s.finish();
}

#[test]
fn criusctl_criusd_streaming() {
    let Some(s) = setup("criusctl_criusd_streaming") else {
        return;
    };
    let probe = s.run(&["exec", "nonexistent-container", "true"]);
    if String::from_utf8_lossy(&probe.stderr).contains("Unimplemented") {
        crius_test::skip("criusctl_criusd_streaming: criusd serves no streaming server yet");
        s.finish();
        return;
    }
    flows::streaming(&s);
    s.finish();
}

#[test]
fn criusctl_criusd_events_logs_follow_update() {
    let Some(s) = setup("criusctl_criusd_events_logs_follow_update") else {
        return;
    };
    flows::events_follow_update(&s);
    s.finish();
}

/// A raw HTTP request to the streaming server; the status line.
fn http_status(url: &str, extra_headers: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut tcp = std::net::TcpStream::connect(host).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra_headers}\r\n");
    tcp.write_all(req.as_bytes()).expect("request");
    let mut resp = String::new();
    let _ = tcp.read_to_string(&mut resp);
    resp.lines().next().unwrap_or("").to_string()
}

#[test]
fn criusctl_criusd_streaming_tokens_are_single_use() {
    let Some(s) = setup("criusctl_criusd_streaming_tokens_are_single_use") else {
        return;
    };
    let pod = s.pod_yaml("tok");
    let ctr_cfg = s.ctr_json("sleeper", &["sleep", "300"], false, false);
    let ctr = s.ok(&["run", &ctr_cfg, &pod]).trim().to_string();
    s.wait_state(&ctr, 1, 20);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let url = rt.block_on(async {
        let mut c = crius_test::cri::connect(&s.socket).await.expect("CRI");
        let r = c
            .runtime
            .exec(crius_proto::runtime::ExecRequest {
                container_id: ctr.clone(),
                cmd: vec!["touch".into(), "/tmp/ran".into()],
                stdout: true,
                ..Default::default()
            })
            .await;
        match r {
            Ok(r) => Some(r.into_inner().url),
            Err(st) if st.code() == crius_proto::tonic::Code::Unimplemented => None,
            Err(st) => panic!("Exec: {st}"),
        }
    });
    let Some(url) = url else {
        crius_test::skip("criusd serves no streaming server yet");
        s.finish();
        return;
    };
    let base = &url[..url.find("/exec/").expect("exec URL")];
    assert!(http_status(&format!("{base}/exec/0123456789abcdef"), "").contains(" 404 "));
    // Used as an attach URL: refused, and the token is spent.
    assert!(http_status(&url.replace("/exec/", "/attach/"), "").contains(" 404 "));
    // The real URL is dead now: even a proper WebSocket upgrade gets 404.
    let ws = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n";
    assert!(http_status(&url, ws).contains(" 404 "));
    // Nothing ran.
    let out = s.run(&["exec", "-s", &ctr, "ls", "/tmp/ran"]);
    assert_ne!(out.status.code(), Some(0), "the exec must not have run");
    s.finish();
}
