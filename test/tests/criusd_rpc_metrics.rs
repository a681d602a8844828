//! The uniform RPC layer (issue 14): every CRI RPC is timed into criusd's Prometheus
//! endpoint (`metrics_address`, `GET /metrics`) as `crius_cri_rpc_duration_seconds{rpc,code}`,
//! and a failed one is logged once with its gRPC code and the container it named.

mod criusd_common;

use std::io::{Read, Write};

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::env_or_skip;
use criusd_common::{client, finish, rt, start_with_config};

/// A free local port (the tiny window before criusd binds it is the test's to lose).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// GET `path` on 127.0.0.1:`port`: (status line, body).
fn get(port: u16, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect metrics");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[test]
fn criusd_times_every_rpc_on_its_metrics_endpoint() {
    let mut env = env_or_skip!("criusd_times_every_rpc_on_its_metrics_endpoint");
    let port = free_port();
    let extra = format!("metrics_address = \"127.0.0.1:{port}\"");
    let Some(d) = start_with_config(&mut env, &extra) else {
        return;
    };
    rt().block_on(async {
        let mut c = client(&d).await;
        for _ in 0..3 {
            c.runtime
                .version(cri::VersionRequest::default())
                .await
                .expect("version");
        }
        c.runtime
            .list_containers(cri::ListContainersRequest { filter: None })
            .await
            .expect("list");
        let e = c
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: "no-such-container".into(),
                verbose: false,
            })
            .await
            .expect_err("unknown container");
        assert_eq!(e.code(), Code::NotFound);
    });
    let (status, body) = get(port, "/metrics");
    assert!(status.contains("200"), "{status}\n{body}");
    for want in [
        "# TYPE crius_cri_rpc_duration_seconds histogram",
        r#"crius_cri_rpc_duration_seconds_count{rpc="Version",code="Ok"} 3"#,
        r#"crius_cri_rpc_duration_seconds_count{rpc="ListContainers",code="Ok"} 1"#,
        r#"crius_cri_rpc_duration_seconds_count{rpc="ContainerStatus",code="NotFound"} 1"#,
    ] {
        assert!(body.contains(want), "missing {want:?} in\n{body}");
    }
    // Its buckets: the last (+Inf) holds all three Version calls.
    assert!(
        body.lines()
            .any(|l| l.starts_with("crius_cri_rpc_duration_seconds_bucket{")
                && l.contains(r#"le="+Inf""#)
                && l.contains(r#"rpc="Version""#)
                && l.ends_with(" 3")),
        "no +Inf bucket for Version in\n{body}"
    );
    let (status, _) = get(port, "/nothing");
    assert!(status.contains("404"), "{status}");
    // The failure is logged once, in the RPC's span with the container it named.
    let log = std::fs::read_to_string(&d.log).unwrap_or_default();
    let failed: Vec<_> = log
        .lines()
        .filter(|l| l.contains("ContainerStatus failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}\n{}", d.log_tail());
    assert!(
        failed[0].contains("no-such-container") && failed[0].contains("NotFound"),
        "{}",
        failed[0]
    );
    finish(env, &d);
}
