//! Bad requests get the right gRPC codes, and nothing is left behind.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    all_containers, client, container_config, finish, pod_config, pod_log_dir, pull, remove_pod,
    rt, run_pod, start, try_create,
};

#[test]
fn criusd_bad_input_codes() {
    let mut env = env_or_skip!("criusd_bad_input_codes");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pcfg = pod_config(&env, "strict", &log_dir);

        let mut no_meta = pcfg.clone();
        no_meta.metadata = None;
        let e = c
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(no_meta),
                runtime_handler: String::new(),
            })
            .await
            .expect_err("no metadata");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        let e = c
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pcfg.clone()),
                runtime_handler: "no-such-handler".into(),
            })
            .await
            .expect_err("unknown handler");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        let e = try_create(
            &mut c,
            "0123456789abcdef",
            container_config("x", registry::BUSYBOX, &["true"]),
            &pcfg,
        )
        .await
        .expect_err("unknown pod");
        assert_eq!(e.code(), Code::NotFound, "{e}");

        let pod = run_pod(&mut c, &d, &pcfg).await;
        // The same pod again: ALREADY_EXISTS naming the holder.
        let e = c
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pcfg.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect_err("duplicate pod");
        assert_eq!(e.code(), Code::AlreadyExists, "{e}");
        assert!(e.message().contains(&pod), "{e}");

        let mut no_name = container_config("x", registry::BUSYBOX, &["true"]);
        no_name.metadata = None;
        let e = try_create(&mut c, &pod, no_name, &pcfg)
            .await
            .expect_err("no metadata");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        let e = try_create(
            &mut c,
            &pod,
            container_config("x", "127.0.0.1:5000/crius/not-pulled:1", &["true"]),
            &pcfg,
        )
        .await
        .expect_err("image not pulled");
        assert_eq!(e.code(), Code::NotFound, "{e}");
        let mut rel = container_config("x", registry::BUSYBOX, &["true"]);
        rel.mounts.push(cri::Mount {
            container_path: "relative/path".into(),
            host_path: "/tmp".into(),
            ..Default::default()
        });
        let e = try_create(&mut c, &pod, rel, &pcfg)
            .await
            .expect_err("relative mount");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        let id = try_create(
            &mut c,
            &pod,
            container_config("ok", registry::BUSYBOX, &["sleep", "1000"]),
            &pcfg,
        )
        .await
        .expect("create");
        let e = c
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec!["true".into()],
                timeout: 5,
            })
            .await
            .expect_err("exec in a created container");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        c.runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("start");
        let e = c
            .runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect_err("start twice");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        let e = c
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec![],
                timeout: 5,
            })
            .await
            .expect_err("empty cmd");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        let e = c
            .runtime
            .update_container_resources(cri::UpdateContainerResourcesRequest {
                container_id: id.clone(),
                linux: Some(cri::LinuxContainerResources {
                    memory_limit_in_bytes: -1,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect_err("negative memory");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");

        // Only the one good container exists; removing unknown things is fine.
        let all = all_containers(&mut c).await;
        assert_eq!(all.len(), 1, "{all:?}");
        c.runtime
            .remove_container(cri::RemoveContainerRequest {
                container_id: "feedface".into(),
            })
            .await
            .expect("remove unknown container");
        remove_pod(&mut c, &pod).await.expect("remove pod");
        remove_pod(&mut c, &pod).await.expect("remove pod twice");
    });
    finish(env, &d);
}

/// Exec, Attach and PortForward answer NOT_FOUND for what does not exist and
/// FAILED_PRECONDITION for what cannot be streamed to, before any URL is issued.
#[test]
fn criusd_streaming_needs_a_live_target() {
    let mut env = env_or_skip!("criusd_streaming_needs_a_live_target");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let exec = |id: &str| cri::ExecRequest {
            container_id: id.into(),
            cmd: vec!["true".into()],
            stdout: true,
            ..Default::default()
        };
        let attach = |id: &str| cri::AttachRequest {
            container_id: id.into(),
            stdout: true,
            ..Default::default()
        };
        let forward = |id: &str| cri::PortForwardRequest {
            pod_sandbox_id: id.into(),
            port: vec![80],
        };
        let e = c.runtime.exec(exec("feedface")).await.expect_err("exec");
        assert_eq!(e.code(), Code::NotFound, "{e}");
        let e = c
            .runtime
            .attach(attach("feedface"))
            .await
            .expect_err("attach");
        assert_eq!(e.code(), Code::NotFound, "{e}");
        let e = c
            .runtime
            .port_forward(forward("feedface"))
            .await
            .expect_err("port-forward");
        assert_eq!(e.code(), Code::NotFound, "{e}");

        let pcfg = pod_config(&env, "stream-target", &log_dir);
        let pod = run_pod(&mut c, &d, &pcfg).await;
        let id = try_create(
            &mut c,
            &pod,
            container_config("idle", registry::BUSYBOX, &["sleep", "1000"]),
            &pcfg,
        )
        .await
        .expect("create");
        // Created, never started.
        let e = c.runtime.exec(exec(&id)).await.expect_err("exec created");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        let e = c
            .runtime
            .attach(attach(&id))
            .await
            .expect_err("attach created");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        // Running: URLs, for the full id a prefix names.
        c.runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("start");
        let url = c
            .runtime
            .exec(exec(&id[..12]))
            .await
            .expect("exec running")
            .into_inner()
            .url;
        assert!(url.starts_with("http://"), "{url}");
        c.runtime
            .port_forward(forward(&pod))
            .await
            .expect("port-forward ready pod");
        // Exited, and a stopped pod.
        c.runtime
            .stop_container(cri::StopContainerRequest {
                container_id: id.clone(),
                timeout: 0,
            })
            .await
            .expect("stop");
        let e = c.runtime.exec(exec(&id)).await.expect_err("exec exited");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        let e = c
            .runtime
            .attach(attach(&id))
            .await
            .expect_err("attach exited");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        criusd_common::stop_pod(&mut c, &pod)
            .await
            .expect("stop pod");
        let e = c
            .runtime
            .port_forward(forward(&pod))
            .await
            .expect_err("port-forward stopped pod");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}

/// Requests with what cannot be passed on whole (NUL bytes, over-long values), enum values the
/// proto does not define, sysctls that are not namespaced and resource figures the kernel refuses
/// are INVALID_ARGUMENT up front, and leave nothing behind.
#[test]
fn criusd_refuses_bad_values_up_front() {
    let mut env = env_or_skip!("criusd_refuses_bad_values_up_front");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let base = pod_config(&env, "bad-values", &log_dir);
        type PodEdit = fn(&mut cri::PodSandboxConfig);
        let pod_cases: Vec<(&str, PodEdit)> = vec![
            ("NUL in name", |p| {
                p.metadata.as_mut().unwrap().name = "a\0b".into()
            }),
            ("';' in namespace", |p| {
                p.metadata.as_mut().unwrap().namespace = "a;K8S_POD_NAME=x".into()
            }),
            ("long uid", |p| {
                p.metadata.as_mut().unwrap().uid = "u".repeat(300)
            }),
            ("newline in hostname", |p| p.hostname = "a\nb".into()),
            ("NUL in label", |p| {
                p.labels.insert("k".into(), "v\0".into());
            }),
            ("huge annotations", |p| {
                p.annotations.insert("big".into(), "x".repeat(300 * 1024));
            }),
            ("relative log dir", |p| p.log_directory = "pods/x".into()),
            ("newline in dns search", |p| {
                p.dns_config.as_mut().unwrap().searches = vec!["a\nnameserver 6.6.6.6".into()]
            }),
            ("unknown protocol", |p| {
                p.port_mappings.push(cri::PortMapping {
                    protocol: 7,
                    container_port: 80,
                    host_port: 0,
                    host_ip: String::new(),
                })
            }),
            ("unknown network mode", |p| {
                sandbox_sc(p).namespace_options = Some(cri::NamespaceOption {
                    network: 9,
                    ..Default::default()
                })
            }),
            ("unknown seccomp type", |p| {
                sandbox_sc(p).seccomp = Some(cri::SecurityProfile {
                    profile_type: 5,
                    ..Default::default()
                })
            }),
            ("host sysctl", |p| {
                sysctls(p).insert("vm.swappiness".into(), "10".into());
            }),
            ("kernel sysctl", |p| {
                sysctls(p).insert("kernel.pid_max".into(), "4096".into());
            }),
            ("sysctls too long for the pause helper", |p| {
                for i in 0..4000 {
                    sysctls(p).insert(format!("net.ipv4.conf.x{i}.forwarding"), "1".repeat(40));
                }
            }),
        ];
        for (what, edit) in pod_cases {
            let mut p = base.clone();
            edit(&mut p);
            let e = c
                .runtime
                .run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(p),
                    runtime_handler: String::new(),
                })
                .await
                .expect_err(what);
            assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e}");
        }
        let pods = c
            .runtime
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .expect("list pods")
            .into_inner()
            .items;
        assert!(pods.is_empty(), "refused pods are not listed: {pods:?}");

        let pod = run_pod(&mut c, &d, &base).await;
        type CtrEdit = fn(&mut cri::ContainerConfig);
        let ctr_cases: Vec<(&str, CtrEdit)> = vec![
            ("NUL in arg", |k| k.args = vec!["a\0b".into()]),
            ("NUL in env", |k| {
                k.envs.push(cri::KeyValue {
                    key: "A".into(),
                    value: b"x\0y".to_vec(),
                })
            }),
            ("'=' in env name", |k| {
                k.envs.push(cri::KeyValue {
                    key: "A=B".into(),
                    value: b"x".to_vec(),
                })
            }),
            ("arg over execve's limit", |k| {
                k.args = vec!["x".repeat(200 * 1024)]
            }),
            ("NUL in mount", |k| {
                k.mounts.push(cri::Mount {
                    container_path: "/m\0".into(),
                    host_path: "/tmp".into(),
                    ..Default::default()
                })
            }),
            ("unknown propagation", |k| {
                k.mounts.push(cri::Mount {
                    container_path: "/m".into(),
                    host_path: "/tmp".into(),
                    propagation: 9,
                    ..Default::default()
                })
            }),
            ("log path out of the pod's dir", |k| {
                k.log_path = "../../escape.log".into()
            }),
            ("NUL in log path", |k| k.log_path = "a\0.log".into()),
            ("NUL in annotation", |k| {
                k.annotations.insert("a\0".into(), "v".into());
            }),
            ("unknown pid mode", |k| {
                container_sc(k).namespace_options = Some(cri::NamespaceOption {
                    pid: 42,
                    ..Default::default()
                })
            }),
            ("unknown apparmor type", |k| {
                container_sc(k).apparmor = Some(cri::SecurityProfile {
                    profile_type: 9,
                    ..Default::default()
                })
            }),
            ("unknown stop signal", |k| k.stop_signal = 999),
            ("1-byte memory limit", |k| {
                container_res(k).memory_limit_in_bytes = 1
            }),
        ];
        for (what, edit) in ctr_cases {
            let mut k = container_config("bad", registry::BUSYBOX, &["true"]);
            edit(&mut k);
            let e = try_create(&mut c, &pod, k, &base).await.expect_err(what);
            assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e}");
        }
        assert!(all_containers(&mut c).await.is_empty(), "nothing created");

        let id = try_create(
            &mut c,
            &pod,
            container_config("ok", registry::BUSYBOX, &["sleep", "1000"]),
            &base,
        )
        .await
        .expect("create");
        c.runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("start");
        type ResEdit = fn(&mut cri::LinuxContainerResources);
        let res_cases: Vec<(&str, ResEdit)> = vec![
            ("cpuset past the host's CPUs", |r| {
                r.cpuset_cpus = "0-100000".into()
            }),
            ("garbage cpuset", |r| r.cpuset_cpus = "zero-one".into()),
            ("garbage mems", |r| r.cpuset_mems = "0,,1".into()),
            ("1-byte memory limit", |r| r.memory_limit_in_bytes = 1),
            ("cpu quota under 1ms", |r| r.cpu_quota = 10),
            ("unknown unified key", |r| {
                r.unified.insert("bogus.key".into(), "1".into());
            }),
        ];
        for (what, edit) in res_cases {
            let mut r = cri::LinuxContainerResources::default();
            edit(&mut r);
            let e = c
                .runtime
                .update_container_resources(cri::UpdateContainerResourcesRequest {
                    container_id: id.clone(),
                    linux: Some(r),
                    ..Default::default()
                })
                .await
                .expect_err(what);
            assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e}");
        }
        let e = c
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.clone(),
                cmd: vec!["echo".into(), "a\0b".into()],
                timeout: 5,
            })
            .await
            .expect_err("NUL in exec arg");
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        // The container still runs, untouched.
        let s = criusd_common::container_state(&mut c, &id).await;
        assert_eq!(s.state, cri::ContainerState::ContainerRunning as i32);
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}

fn sandbox_sc(p: &mut cri::PodSandboxConfig) -> &mut cri::LinuxSandboxSecurityContext {
    p.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

fn sysctls(p: &mut cri::PodSandboxConfig) -> &mut std::collections::HashMap<String, String> {
    &mut p.linux.get_or_insert_with(Default::default).sysctls
}

fn container_sc(k: &mut cri::ContainerConfig) -> &mut cri::LinuxContainerSecurityContext {
    k.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

fn container_res(k: &mut cri::ContainerConfig) -> &mut cri::LinuxContainerResources {
    k.linux
        .get_or_insert_with(Default::default)
        .resources
        .get_or_insert_with(Default::default)
}

/// `cgroup_driver = "systemd"` where systemd is not PID 1 stops criusd at start-up with a message
/// that says so (exit 2, as for every config error); where systemd runs, it is accepted.
#[test]
fn criusd_systemd_driver_needs_systemd() {
    let env = env_or_skip!("criusd_systemd_driver_needs_systemd");
    let config = env.dir().join("systemd.toml");
    std::fs::write(&config, "cgroup_driver = \"systemd\"\n").expect("write config");
    let out = std::process::Command::new(crius_test::paths::criusd_bin())
        .arg("--config")
        .arg(&config)
        .arg("--print-config")
        .output()
        .expect("run criusd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if std::path::Path::new("/run/systemd/system").is_dir() {
        assert!(out.status.success(), "{stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("cgroup_driver = \"systemd\""));
    } else {
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("systemd is not running"), "{stderr}");
    }
    env.finish().expect("leaks");
}
