//! The sandboxer library against a real containerd, the crius shim and the real CNI plugins:
//! pods get distinct IPs and reach each other, IPs match rtnetlink's view, hostNetwork pods
//! share the host's netns, bad input fails cleanly, and nothing leaks.
//!
//! The pause runtime is `io.containerd.crius.v2` unless `CRIUS_TEST_SANDBOX_RUNTIME` names
//! another (e.g. `io.containerd.runc.v2`).

mod sandboxer_common;

use crius_sandboxer::{ErrorKind, NamespaceMode, PodState, PortMapping, Protocol, Sandboxer};
use crius_test::env_or_skip;
use sandboxer_common::{finish, ping, pod, rt, start};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn sandboxer_two_pods_get_distinct_ips_and_ping_each_other() {
    let mut env = env_or_skip!("sandboxer_two_pods_get_distinct_ips_and_ping_each_other");
    let Some((cfg, net)) = start(&mut env) else {
        return;
    };
    rt().block_on(async {
        let sb = Sandboxer::new(cfg).await.expect("sandboxer");
        assert!(sb.network_status().ready, "{:?}", sb.network_status());
        let mut a_cfg = pod("a");
        a_cfg.port_mappings.push(PortMapping {
            protocol: Protocol::Tcp,
            container_port: 80,
            host_port: 0, // not mapped: exercised for the capability arg filter
            host_ip: String::new(),
        });
        let a = sb.run(a_cfg).await.expect("run a");
        let b = sb.run(pod("b")).await.expect("run b");
        assert_eq!(a.state, PodState::Ready);
        assert_eq!(b.state, PodState::Ready);
        assert_eq!(a.ips.len(), 1, "{:?}", a.ips);
        assert_ne!(a.ips, b.ips, "distinct IPs");
        let subnet_prefix = net.subnet.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
        assert!(
            a.ips[0].to_string().starts_with(subnet_prefix),
            "{:?} in {}",
            a.ips,
            net.subnet
        );

        // The IPs CNI reported are the ones rtnetlink reads in each pod's netns, on eth0.
        for p in [&a, &b] {
            let view = sb.netns_view(&p.id).await.expect("netns view");
            assert_eq!(view.global_ips(), p.ips, "{view:?}");
            let eth0 = view.links.iter().find(|l| l.name == "eth0").expect("eth0");
            assert!(eth0.up);
            assert!(view.links.iter().any(|l| l.name == "lo" && l.up), "lo up");
            assert!(
                view.routes.iter().any(|r| r.destination.is_none()),
                "default route: {view:?}"
            );
        }

        // Each pod reaches the other from inside its own netns.
        let (a_ns, b_ns) = (
            a.netns_path.clone().expect("netns"),
            b.netns_path.clone().expect("netns"),
        );
        ping(&a_ns, b.ips[0]).expect("a pings b");
        ping(&b_ns, a.ips[0]).expect("b pings a");

        // The pause holds the pod netns and its own uts namespace with the pod hostname.
        let pid = a.pause_pid.expect("pause pid");
        assert_eq!(
            ns_ino(&format!("/proc/{pid}/ns/net")),
            ns_ino(a_ns.to_str().unwrap_or(""))
        );
        assert_eq!(
            std::fs::read_to_string(&a.hostname_path).expect("hostname"),
            "a\n"
        );
        assert!(std::fs::read_to_string(&a.resolv_conf_path)
            .expect("resolv")
            .contains("nameserver 10.96.0.10"));
        sb.check_network(&a.id).await.expect("CNI CHECK");

        // Duplicate metadata → AlreadyExists naming the holder.
        let err = sb.run(pod("a")).await.expect_err("duplicate");
        assert_eq!(
            err.kind(),
            &ErrorKind::AlreadyExists {
                existing_id: a.id.clone()
            },
            "{err}"
        );

        assert_eq!(sb.list().await.expect("list").len(), 2);
        for p in [&a, &b] {
            sb.stop(&p.id).await.expect("stop");
            sb.stop(&p.id).await.expect("stop twice");
            assert_eq!(
                sb.status(&p.id).await.expect("status").state,
                PodState::NotReady
            );
            sb.remove(&p.id).await.expect("remove");
            sb.remove(&p.id).await.expect("remove twice");
            assert_eq!(
                sb.status(&p.id).await.expect_err("gone").kind(),
                &ErrorKind::NotFound
            );
        }
        assert!(sb.list().await.expect("list").is_empty());
    });
    finish(env);
}

#[test]
fn sandboxer_host_network_pod_shares_the_host_netns() {
    let mut env = env_or_skip!("sandboxer_host_network_pod_shares_the_host_netns");
    let Some((cfg, _net)) = start(&mut env) else {
        return;
    };
    rt().block_on(async {
        let sb = Sandboxer::new(cfg).await.expect("sandboxer");
        let mut c = pod("hostnet");
        c.linux.namespaces.network = NamespaceMode::Node;
        let p = sb.run(c).await.expect("run");
        assert_eq!(p.state, PodState::Ready);
        assert!(p.netns_path.is_none());
        assert!(p.ips.is_empty());
        let pid = p.pause_pid.expect("pause pid");
        assert_eq!(
            ns_ino(&format!("/proc/{pid}/ns/net")),
            ns_ino("/proc/self/ns/net")
        );
        assert_ne!(
            ns_ino(&format!("/proc/{pid}/ns/pid")),
            ns_ino("/proc/self/ns/pid")
        );
        sb.remove(&p.id).await.expect("remove");
    });
    finish(env);
}

#[test]
fn sandboxer_without_cni_config_runs_only_host_network_pods() {
    let mut env = env_or_skip!("sandboxer_without_cni_config_runs_only_host_network_pods");
    let Some((mut cfg, _net)) = start(&mut env) else {
        return;
    };
    cfg.cni_conf_dir = env.dir().join("empty-net.d");
    rt().block_on(async {
        let sb = Sandboxer::new(cfg).await.expect("sandboxer");
        let st = sb.network_status();
        assert!(!st.ready);
        assert_eq!(st.reason, "NetworkPluginNotReady");
        let err = sb.run(pod("p")).await.expect_err("no network");
        assert_eq!(err.kind(), &ErrorKind::FailedPrecondition, "{err}");
        let mut c = pod("h");
        c.linux.namespaces.network = NamespaceMode::Node;
        let p = sb.run(c).await.expect("hostNetwork pod runs");
        sb.remove(&p.id).await.expect("remove");
    });
    finish(env);
}

#[test]
fn sandboxer_malformed_conflist_is_reported_with_file_and_field() {
    let mut env = env_or_skip!("sandboxer_malformed_conflist_is_reported_with_file_and_field");
    let Some((mut cfg, _net)) = start(&mut env) else {
        return;
    };
    let dir = env.dir().join("bad-net.d");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("05-bad.conflist"),
        r#"{"cniVersion":"1.0.0","name":"bad","plugins":[{"type":"bridge"},{"capabilities":{}}]}"#,
    )
    .expect("write");
    cfg.cni_conf_dir = dir;
    rt().block_on(async {
        let sb = Sandboxer::new(cfg).await.expect("sandboxer");
        let st = sb.network_status();
        assert!(!st.ready);
        assert!(
            st.message.contains("05-bad.conflist") && st.message.contains("plugins[1].type"),
            "{}",
            st.message
        );
        let err = sb.run(pod("p")).await.expect_err("bad network config");
        assert!(err.to_string().contains("plugins[1].type"), "{err}");
    });
    finish(env);
}

#[test]
fn sandboxer_hanging_cni_plugin_times_out_and_leaks_nothing() {
    let mut env = env_or_skip!("sandboxer_hanging_cni_plugin_times_out_and_leaks_nothing");
    let Some((mut cfg, net)) = start(&mut env) else {
        return;
    };
    // The test's real network, with a plugin that hangs after the bridge plugin made the veth
    // and leased an IP: the sandboxer must kill it, DEL, and leave nothing.
    let script =
        "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] && exec sleep 600\nexit 0\n";
    add_plugin(&env, &net, &mut cfg, "crius-test-hang", script);
    cfg.cni_timeout = Duration::from_secs(2);
    rt().block_on(async {
        let sb = Sandboxer::new(cfg).await.expect("sandboxer");
        let t = std::time::Instant::now();
        let err = sb.run(pod("slow")).await.expect_err("timeout");
        assert!(err.to_string().contains("timed out"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
        assert!(
            sb.list().await.expect("list").is_empty(),
            "failed pod forgotten"
        );
    });
    finish(env);
}

#[test]
fn sandboxer_failing_cni_plugin_error_is_reported_and_nothing_leaks() {
    let mut env = env_or_skip!("sandboxer_failing_cni_plugin_error_is_reported_and_nothing_leaks");
    let Some((mut cfg, net)) = start(&mut env) else {
        return;
    };
    // Fails ADD (after bridge made the veth and leased an IP) with a CNI error object.
    let script = "#!/bin/sh\ncat >/dev/null\nif [ \"$CNI_COMMAND\" = ADD ]; then\n  echo '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"crius test says no\",\"details\":\"on purpose\"}'\n  exit 1\nfi\nexit 0\n";
    add_plugin(&env, &net, &mut cfg, "crius-test-fail", script);
    rt().block_on(async {
        let sb = Sandboxer::new(cfg).await.expect("sandboxer");
        let err = sb.run(pod("fails")).await.expect_err("plugin error");
        let msg = err.to_string();
        assert!(
            msg.contains("crius-test-fail")
                && msg.contains("code 7")
                && msg.contains("crius test says no"),
            "{msg}"
        );
        assert!(
            sb.list().await.expect("list").is_empty(),
            "failed pod forgotten"
        );
    });
    finish(env);
}

/// A pod whose CNI commands can never be started (a NUL byte in its name, which CNI_ARGS
/// carries) fails RunPodSandbox, and its teardown does not wait forever for a CNI DEL that can
/// never run: the pod is gone, not stuck listed with every Stop and Remove failing.
#[test]
fn sandboxer_pod_whose_cni_del_can_never_run_is_still_removed() {
    let mut env = env_or_skip!("sandboxer_pod_whose_cni_del_can_never_run_is_still_removed");
    let Some((cfg, _net)) = start(&mut env) else {
        return;
    };
    rt().block_on(async {
        let sb = Sandboxer::new(cfg).await.expect("sandboxer");
        let mut bad = pod("nul\0name");
        bad.hostname = "nul".into();
        let err = sb.run(bad).await.expect_err("CNI cannot run");
        assert!(err.to_string().contains("CNI ADD"), "{err}");
        for p in sb.list().await.expect("list") {
            sb.stop(&p.id).await.expect("stop the failed pod");
            sb.remove(&p.id).await.expect("remove the failed pod");
        }
        assert!(
            sb.list().await.expect("list").is_empty(),
            "failed pod forgotten"
        );
    });
    finish(env);
}

/// Put an executable `script` named `name` in a plugin dir of the test's and insert it into the
/// test network's chain right after the bridge plugin.
fn add_plugin(
    env: &crius_test::TestEnv,
    net: &crius_test::CniNetwork,
    cfg: &mut crius_sandboxer::SandboxerConfig,
    name: &str,
    script: &str,
) {
    let bin = env.dir().join("cni-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let path = bin.join(name);
    std::fs::write(&path, script).expect("write");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    edit_conflist(net, |v| {
        v["plugins"]
            .as_array_mut()
            .expect("plugins")
            .insert(1, serde_json::json!({ "type": name }))
    });
    cfg.cni_bin_dirs.insert(0, bin);
}

#[test]
fn sandboxer_create_remove_cycles_leak_nothing() {
    let mut env = env_or_skip!("sandboxer_create_remove_cycles_leak_nothing");
    let Some((cfg, _net)) = start(&mut env) else {
        return;
    };
    let n: usize = std::env::var("CRIUS_TEST_POD_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    rt().block_on(async {
        let sb = Sandboxer::new(cfg).await.expect("sandboxer");
        let mut seen: Vec<IpAddr> = Vec::new();
        for i in 0..n {
            let p = sb.run(pod(&format!("cycle{i}"))).await.expect("run");
            seen.extend(p.ips.iter().copied());
            sb.stop(&p.id).await.expect("stop");
            sb.remove(&p.id).await.expect("remove");
        }
        assert_eq!(seen.len(), n);
    });
    finish(env);
}

#[test]
fn sandboxer_pause_from_an_image_runs_on_a_view_snapshot() {
    let mut env = env_or_skip!("sandboxer_pause_from_an_image_runs_on_a_view_snapshot");
    let Some((mut cfg, _net)) = start(&mut env) else {
        return;
    };
    crius_test::registry::ensure().expect("local registry");
    let ctrd = env.running_containerd().expect("containerd");
    ctrd.pull("crius", crius_test::registry::PAUSE)
        .expect("pull pause image");
    cfg.pause = crius_sandboxer::PauseSource::Image(crius_test::registry::PAUSE.into());
    let socket = cfg.containerd_address.clone();
    let ctrd_version = ctrd.version();
    rt().block_on(async {
        let sb = Sandboxer::new(cfg).await.expect("sandboxer");
        let p = sb.run(pod("imgpause")).await.expect("run");
        assert_eq!(p.state, PodState::Ready);
        let pid = p.pause_pid.expect("pause pid");
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
        // The pause container sits on the pod's view snapshot of the image.
        let info = std::process::Command::new(ctrd_version.ctr())
            .arg("-a")
            .arg(&socket)
            .args(["-n", "crius", "containers", "info", &p.id])
            .output()
            .expect("ctr containers info");
        let info = String::from_utf8_lossy(&info.stdout);
        assert!(info.contains(&format!("crius-pause-{}", p.id)), "{info}");
        assert!(info.contains("crius/pause"), "{info}");
        sb.remove(&p.id).await.expect("remove");
    });
    let snaps = env
        .running_containerd()
        .expect("containerd")
        .ctr_output("crius", &["snapshots", "ls"])
        .expect("ctr snapshots ls");
    assert!(
        !snaps.contains("crius-pause-"),
        "pause snapshot left:\n{snaps}"
    );
    finish(env);
}

#[test]
fn sandboxer_pod_cidr_and_port_mappings_reach_the_plugins() {
    let mut env = env_or_skip!("sandboxer_pod_cidr_and_port_mappings_reach_the_plugins");
    let Some((cfg, net)) = start(&mut env) else {
        return;
    };
    // The test network, with the bridge plugin taking the ipRanges capability (host-local reads it)
    edit_conflist(&net, |v| {
        // host-local appends runtime ipRanges to static ranges: leave it only the pod CIDR, as a
        // node's kubelet-driven config does.
        v["plugins"][0]["capabilities"] = serde_json::json!({"ipRanges": true});
        v["plugins"][0]["ipam"]
            .as_object_mut()
            .expect("ipam")
            .remove("ranges");
    });
    let base = net.subnet.trim_end_matches(".0/24").to_string();
    let host_port = 20000 + (std::process::id() % 20000) as i32;
    rt().block_on(async {
        let sb = Sandboxer::new(cfg).await.expect("sandboxer");
        assert!(sb.update_pod_cidr("not-a-cidr").is_err());
        sb.update_pod_cidr(&format!("{base}.64/26"))
            .expect("pod cidr");
        let mut c = pod("ports");
        c.port_mappings.push(PortMapping {
            protocol: Protocol::Tcp,
            container_port: 80,
            host_port,
            host_ip: String::new(),
        });
        let p = sb.run(c).await.expect("run");
        let last: u8 = p.ips[0]
            .to_string()
            .rsplit('.')
            .next()
            .and_then(|o| o.parse().ok())
            .expect("octet");
        assert!((65..127).contains(&last), "{:?} not in {base}.64/26", p.ips);
        let nat = Command::new("iptables")
            .args(["-t", "nat", "-S"])
            .output()
            .expect("iptables");
        let nat = String::from_utf8_lossy(&nat.stdout);
        assert!(
            nat.contains(&format!("--dport {host_port}")) && nat.contains(&p.ips[0].to_string()),
            "no DNAT for {host_port} → {}:80",
            p.ips[0]
        );
        sb.remove(&p.id).await.expect("remove");
        let nat = Command::new("iptables")
            .args(["-t", "nat", "-S"])
            .output()
            .expect("iptables");
        assert!(!String::from_utf8_lossy(&nat.stdout).contains(&format!("--dport {host_port}")));
    });
    finish(env);
}

#[test]
fn sandboxer_bandwidth_annotations_shape_the_pod_traffic() {
    let mut env = env_or_skip!("sandboxer_bandwidth_annotations_shape_the_pod_traffic");
    let Some((cfg, net)) = start(&mut env) else {
        return;
    };
    edit_conflist(&net, |v| {
        v["plugins"]
            .as_array_mut()
            .expect("plugins")
            .push(serde_json::json!({"type": "bandwidth", "capabilities": {"bandwidth": true}}));
    });
    let qdiscs = || {
        let out = Command::new("tc")
            .args(["qdisc", "show"])
            .output()
            .expect("tc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    rt().block_on(async {
        let sb = Sandboxer::new(cfg).await.expect("sandboxer");
        let mut c = pod("shaped");
        c.annotations
            .insert("kubernetes.io/ingress-bandwidth".into(), "3M".into());
        let p = sb.run(c).await.expect("run");
        // Ingress to the pod: a token bucket on its host-side veth at 3 Mbit/s.
        let q = qdiscs();
        assert!(q.contains("tbf") && q.contains("rate 3Mbit"), "{q}");
        sb.remove(&p.id).await.expect("remove");
        assert!(!qdiscs().contains("rate 3Mbit"));
        let mut bad = pod("badly-shaped");
        bad.annotations
            .insert("kubernetes.io/egress-bandwidth".into(), "lots".into());
        let err = sb.run(bad).await.expect_err("bad quantity");
        assert_eq!(err.kind(), &ErrorKind::InvalidArgument, "{err}");
    });
    finish(env);
}

fn ns_ino(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(Path::new(path))
        .map(|m| m.ino())
        .unwrap_or(0)
}

/// Rewrite the test network's conflist (the only file in its conf dir) through `edit`.
fn edit_conflist(net: &crius_test::CniNetwork, edit: impl FnOnce(&mut serde_json::Value)) {
    let conf = std::fs::read_dir(&net.conf_dir)
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .next()
        .expect("conflist");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&conf).expect("read")).expect("json");
    edit(&mut v);
    std::fs::write(&conf, serde_json::to_vec(&v).expect("json")).expect("write");
}
