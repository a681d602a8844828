//! Bad requests get the right gRPC codes, and nothing is left behind.

mod criusd_common;

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::{env_or_skip, registry};
use criusd_common::{
    all_containers, client, container_config, finish, pod_config, pod_log_dir, pull, remove_pod,
    rt, run_pod, start, try_create, try_run_pod,
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
        let e = try_run_pod(&mut c, &no_meta)
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
        let e = try_run_pod(&mut c, &pcfg).await.expect_err("duplicate pod");
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
            let e = try_run_pod(&mut c, &p).await.expect_err(what);
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

        let id = criusd_common::create_and_start(
            &mut c,
            &d,
            &pod,
            container_config("ok", registry::BUSYBOX, &["sleep", "1000"]),
            &base,
            "ok",
        )
        .await;
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

/// xorshift64*, for reproducible mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A string near the edges; `true` when no runtime could accept it (a NUL byte).
    fn string(&mut self) -> (String, bool) {
        let s = match self.below(12) {
            0 => "\0".to_string(),
            1 => "a\0b".to_string(),
            2 => "x".repeat(300),
            3 => "x".repeat(70_000),
            4 => "a\nb".to_string(),
            5 => "a;K8S_POD_NAME=b".to_string(),
            6 => "../../x".to_string(),
            7 => "run%2Fx".to_string(),
            8 => "é☃".to_string(),
            9 => String::new(),
            _ => (0..1 + self.below(20))
                .map(|_| (b' ' + self.below(95) as u8) as char)
                .collect(),
        };
        let invalid = s.contains('\0');
        (s, invalid)
    }
    fn int(&mut self) -> i64 {
        match self.below(6) {
            0 => -1,
            1 => 0,
            2 => i64::MAX,
            3 => i64::MIN,
            4 => self.below(100) as i64,
            _ => self.next() as i64,
        }
    }
}

/// Mutated requests (a field at a time, seeded) to a live criusd: every answer is OK or a clear
/// code — never UNKNOWN or INTERNAL — and never OK for what no runtime could take (NUL bytes).
/// `CRIUS_TEST_FUZZ_ROUNDS` (default 150) and `CRIUS_TEST_FUZZ_SEED` for long runs by hand.
#[test]
fn criusd_mutated_requests_get_clear_codes() {
    let mut env = env_or_skip!("criusd_mutated_requests_get_clear_codes");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let var = |n: &str, dflt: u64| {
        std::env::var(n)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(dflt)
    };
    let rounds = var("CRIUS_TEST_FUZZ_ROUNDS", 150);
    let seed = var("CRIUS_TEST_FUZZ_SEED", 16).max(1);
    eprintln!("fuzz: {rounds} requests, seed {seed}");
    let mut rng = Rng(seed);
    rt().block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let base = pod_config(&env, "fuzz", &log_dir);
        let pod = run_pod(&mut c, &d, &base).await;
        let ctr = criusd_common::create_and_start(
            &mut c,
            &d,
            &pod,
            container_config("target", registry::BUSYBOX, &["sleep", "1000"]),
            &base,
            "target",
        )
        .await;
        for round in 0..rounds {
            let (s, invalid) = rng.string();
            let (n, e) = (rng.int(), rng.int() as i32);
            let field = rng.below(16);
            let kind = rng.below(4);
            // Fields set from the numbers, not the string: a NUL in `s` does not reach them.
            let numeric = matches!((kind, field), (0, 10) | (0, 12) | (1, 8) | (1, 9) | (1, 11))
                || (kind == 2 && matches!(field % 6, 2..=4));
            let uses_s = !numeric;
            let invalid = invalid && uses_s;
            let (what, answer) = match kind {
                0 => {
                    let mut p = base.clone();
                    p.metadata.as_mut().unwrap().attempt = round as u32 + 1;
                    let m = p.metadata.as_mut().unwrap();
                    match field {
                        0 => m.name = s.clone(),
                        1 => m.namespace = s.clone(),
                        2 => m.uid = s.clone(),
                        3 => p.hostname = s.clone(),
                        4 => p.log_directory = s.clone(),
                        5 => drop(p.labels.insert(s.clone(), "v".into())),
                        6 => drop(p.annotations.insert("a".into(), s.clone())),
                        7 => p.dns_config.as_mut().unwrap().searches = vec![s.clone()],
                        8 => drop(sysctls(&mut p).insert(s.clone(), "1".into())),
                        9 => drop(sysctls(&mut p).insert("net.core.somaxconn".into(), s.clone())),
                        10 => p.port_mappings.push(cri::PortMapping {
                            protocol: e,
                            container_port: 80,
                            ..Default::default()
                        }),
                        11 => p.port_mappings.push(cri::PortMapping {
                            host_ip: s.clone(),
                            container_port: e,
                            ..Default::default()
                        }),
                        12 => {
                            sandbox_sc(&mut p).namespace_options = Some(cri::NamespaceOption {
                                network: e % 6,
                                pid: (e >> 8) % 6,
                                ..Default::default()
                            })
                        }
                        13 => {
                            sandbox_sc(&mut p).seccomp = Some(cri::SecurityProfile {
                                profile_type: e % 5,
                                localhost_ref: s.clone(),
                            })
                        }
                        _ => {
                            p.linux.get_or_insert_with(Default::default).cgroup_parent =
                                format!("/crius-{}/{s}", env.id())
                        }
                    }
                    let what = format!("RunPodSandbox field {field} = {:.60?} / {e}", s);
                    let r = try_run_pod(&mut c, &p).await;
                    if let Ok(id) = &r {
                        remove_pod(&mut c, id).await.expect("remove a fuzzed pod");
                    }
                    (what, r.map(|_| ()))
                }
                1 => {
                    let mut k =
                        container_config(&format!("f{round}"), registry::BUSYBOX, &["true"]);
                    match field {
                        0 => k.metadata.as_mut().unwrap().name = s.clone(),
                        1 => k.args = vec![s.clone()],
                        2 => k.envs.push(cri::KeyValue {
                            key: s.clone(),
                            value: b"v".to_vec(),
                        }),
                        3 => k.envs.push(cri::KeyValue {
                            key: "K".into(),
                            value: s.clone().into_bytes(),
                        }),
                        4 => k.working_dir = format!("/{s}"),
                        5 => k.mounts.push(cri::Mount {
                            container_path: format!("/{s}"),
                            host_path: env.dir().join("mnt").display().to_string(),
                            propagation: e % 4,
                            ..Default::default()
                        }),
                        6 => k.log_path = s.clone(),
                        7 => drop(k.annotations.insert(s.clone(), "v".into())),
                        8 => k.stop_signal = e,
                        9 => {
                            container_sc(&mut k).namespace_options = Some(cri::NamespaceOption {
                                pid: e % 6,
                                ipc: (e >> 8) % 4,
                                ..Default::default()
                            })
                        }
                        10 => {
                            container_sc(&mut k).apparmor = Some(cri::SecurityProfile {
                                profile_type: e % 5,
                                localhost_ref: s.clone(),
                            })
                        }
                        11 => container_res(&mut k).memory_limit_in_bytes = n,
                        12 => container_res(&mut k).cpuset_cpus = s.clone(),
                        13 => container_sc(&mut k).run_as_username = s.clone(),
                        _ => k.image.as_mut().unwrap().image = s.clone(),
                    }
                    let what = format!("CreateContainer field {field} = {:.60?} / {e} / {n}", s);
                    let r = try_create(&mut c, &pod, k, &base).await;
                    if let Ok(id) = &r {
                        c.runtime
                            .remove_container(cri::RemoveContainerRequest {
                                container_id: id.clone(),
                            })
                            .await
                            .expect("remove a fuzzed container");
                    }
                    (what, r.map(|_| ()))
                }
                2 => {
                    let mut r = cri::LinuxContainerResources::default();
                    match field % 6 {
                        0 => r.cpuset_cpus = s.clone(),
                        1 => r.cpuset_mems = s.clone(),
                        2 => r.memory_limit_in_bytes = n,
                        3 => r.cpu_shares = n,
                        4 => r.cpu_quota = n,
                        _ => drop(r.unified.insert(s.clone(), "1".into())),
                    }
                    let what = format!("UpdateContainerResources {r:.80?}");
                    let a = c
                        .runtime
                        .update_container_resources(cri::UpdateContainerResourcesRequest {
                            container_id: ctr.clone(),
                            linux: Some(r),
                            ..Default::default()
                        })
                        .await
                        .map(|_| ());
                    (what, a)
                }
                _ => {
                    let what = format!("ExecSync echo {:.60?}", s);
                    let a = c
                        .runtime
                        .exec_sync(cri::ExecSyncRequest {
                            container_id: ctr.clone(),
                            cmd: vec!["echo".into(), s.clone()],
                            timeout: 10,
                        })
                        .await
                        .map(|_| ());
                    (what, a)
                }
            };
            match answer {
                Ok(()) => assert!(
                    !invalid,
                    "round {round} (seed {seed}): {what}: OK for a NUL byte"
                ),
                Err(st) => assert!(
                    !matches!(st.code(), Code::Unknown | Code::Internal | Code::DataLoss),
                    "round {round} (seed {seed}): {what}: {st}\n{}",
                    d.log_tail()
                ),
            }
        }
        // The target still runs, the fuzzed requests left nothing else.
        let s = criusd_common::container_state(&mut c, &ctr).await;
        assert_eq!(s.state, cri::ContainerState::ContainerRunning as i32);
        assert_eq!(all_containers(&mut c).await.len(), 1);
        remove_pod(&mut c, &pod).await.expect("remove pod");
    });
    finish(env, &d);
}
