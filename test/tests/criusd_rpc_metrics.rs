//! The uniform RPC layer (issue 14): every CRI RPC is timed into criusd's Prometheus
//! endpoint (`metrics_address`, `GET /metrics`) as `crius_cri_rpc_duration_seconds{rpc,code}`,
//! and a failed one is logged once with its gRPC code and what it named or made (image, pod,
//! container).

mod criusd_common;

use std::io::{Read, Write};

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    client, container_config, finish, pod_config, pod_log_dir, pull, remove_pod, rt, run_pod,
    start, start_with_config, stop_pod, try_create, try_pull,
};

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

/// The 64-hex ids in a log line (pod and container ids are the only such runs criusd logs).
fn hex_ids(line: &str) -> Vec<&str> {
    line.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .collect()
}

/// Lines of criusd's log containing `what`.
fn lines_with(log: &str, what: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(what))
        .map(str::to_string)
        .collect()
}

#[test]
fn criusd_logs_a_failed_rpc_once_with_what_it_named_or_made() {
    let mut env = env_or_skip!("criusd_logs_a_failed_rpc_once_with_what_it_named_or_made");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let missing = format!("{}/crius/no-such-image:1", registry::REGISTRY);
    let cfg = pod_config(&env, "rpclog", &log_dir);
    let mut bad_pod = pod_config(&env, "rpclog-bad", &log_dir);
    // A sysctl of the pod's netns the kernel does not have: the pod fails at its pause, after
    // the sandboxer made its id.
    if let Some(l) = bad_pod.linux.as_mut() {
        l.sysctls
            .insert("net.ipv4.crius_no_such_sysctl".into(), "1".into());
    }
    let pod = rt().block_on(async {
        let mut c = client(&d).await;
        try_pull(&mut c, &missing).await.expect_err("no such image");
        pull(&mut c, registry::BUSYBOX).await;
        c.runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(bad_pod.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect_err("pod with an unknown sysctl");
        let pod = run_pod(&mut c, &d, &cfg).await;
        // A seccomp profile that is not there: refused while the spec is built, after the id.
        let mut ctr = container_config("rpclog-ctr", registry::BUSYBOX, &["sleep", "1d"]);
        ctr.linux = Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                seccomp: Some(cri::SecurityProfile {
                    profile_type: cri::security_profile::ProfileType::Localhost as i32,
                    localhost_ref: "/nonexistent/crius-seccomp.json".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let e = try_create(&mut c, &pod, ctr, &cfg)
            .await
            .expect_err("missing seccomp profile");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        stop_pod(&mut c, &pod).await.expect("stop pod");
        remove_pod(&mut c, &pod).await.expect("remove pod");
        pod
    });
    let log = std::fs::read_to_string(&d.log).unwrap_or_default();
    let tail = d.log_tail();

    let pulls = lines_with(&log, "PullImage failed");
    assert_eq!(pulls.len(), 1, "{pulls:?}\n{tail}");
    assert!(pulls[0].contains(&missing), "{}", pulls[0]);

    let runs = lines_with(&log, "RunPodSandbox failed");
    assert_eq!(runs.len(), 1, "{runs:?}\n{tail}");
    let pod_id = *hex_ids(&runs[0])
        .first()
        .unwrap_or_else(|| panic!("no pod id in {}", runs[0]));
    assert!(
        log.lines()
            .any(|l| l.contains("run failed") && l.contains(pod_id)),
        "the sandboxer's line names another pod\n{tail}"
    );

    let creates = lines_with(&log, "CreateContainer failed");
    assert_eq!(creates.len(), 1, "{creates:?}\n{tail}");
    // The span names the pod (its id) and the container the create made.
    let ctr_id = *hex_ids(&creates[0])
        .iter()
        .find(|id| **id != pod)
        .unwrap_or_else(|| panic!("no container id in {}", creates[0]));
    assert!(
        log.lines()
            .any(|l| l.contains("rpclog-ctr") && l.contains(ctr_id) && !l.contains("failed")),
        "the failure names another container than the create's first line\n{tail}"
    );
    finish(env, &d);
}
