//! Property tests of request → validation → spec: for mutated requests, validation never panics;
//! whatever it lets through builds an OCI spec whose strings all reach runc whole (no NUL, env
//! names without `=`, known propagation), and pod metadata it lets through cannot break CNI_ARGS.

use proptest::prelude::*;

use crius_proto::runtime as cri;

use crate::container::spec::{self, BindMount, SpecInput};

/// Strings near the edges: NUL, control characters, separators, dots, non-ASCII, and now and
/// then one longer than execve or the file system takes.
fn edgy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("a".to_string()),
        Just("\0".to_string()),
        Just("\n".to_string()),
        Just("=".to_string()),
        Just(";".to_string()),
        Just("/".to_string()),
        Just("..".to_string()),
        Just("%2F".to_string()),
        Just("é".to_string()),
        Just("x".repeat(300)),
        "[a-z0-9._-]{1,8}",
    ];
    prop_oneof![
        8 => prop::collection::vec(piece, 0..6).prop_map(|v| v.concat()),
        1 => Just("y".repeat(140 * 1024)),
    ]
}

fn mount() -> impl Strategy<Value = cri::Mount> {
    (edgy(), edgy(), -2i32..6).prop_map(|(c, h, p)| cri::Mount {
        container_path: format!("/{c}"),
        host_path: format!("/{h}"),
        propagation: p,
        ..Default::default()
    })
}

fn container() -> impl Strategy<Value = cri::ContainerConfig> {
    (
        edgy(),
        prop::collection::vec(edgy(), 0..4),
        prop::collection::vec((edgy(), edgy()), 0..4),
        edgy(),
        prop::collection::vec(mount(), 0..3),
        edgy(),
        prop::collection::hash_map(edgy(), edgy(), 0..3),
        -2i32..70,
    )
        .prop_map(
            |(name, args, envs, cwd, mounts, log_path, annotations, stop_signal)| {
                cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata { name, attempt: 0 }),
                    args,
                    envs: envs
                        .into_iter()
                        .map(|(key, v)| cri::KeyValue {
                            key,
                            value: v.into_bytes(),
                        })
                        .collect(),
                    working_dir: format!("/{cwd}"),
                    mounts,
                    log_path,
                    annotations,
                    stop_signal,
                    ..Default::default()
                }
            },
        )
}

/// The spec criusd's build step makes of what validation let through.
fn spec_of(c: &cri::ContainerConfig) -> serde_json::Value {
    let input = SpecInput {
        args: c.args.clone(),
        env: c
            .envs
            .iter()
            .map(|kv| format!("{}={}", kv.key, String::from_utf8_lossy(&kv.value)))
            .collect(),
        cwd: c.working_dir.clone(),
        available_caps: u64::MAX,
        mounts: c
            .mounts
            .iter()
            .map(|m| BindMount {
                container_path: m.container_path.clone(),
                host_path: m.host_path.clone(),
                readonly: m.readonly,
                propagation: "rprivate",
                recursive_readonly: false,
                nosuid_nodev: false,
                idmap: false,
            })
            .collect(),
        annotations: c.annotations.clone().into_iter().collect(),
        ..Default::default()
    };
    let s = spec::build(&input).expect("a validated request builds a spec");
    serde_json::to_value(&s).expect("spec serialises")
}

fn no_nul_anywhere(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => !s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().all(no_nul_anywhere),
        serde_json::Value::Object(o) => o
            .iter()
            .all(|(k, v)| !k.contains('\0') && no_nul_anywhere(v)),
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn what_passes_container_validation_reaches_runc_whole(c in container()) {
        match super::container(&c) {
            Ok(()) => {
                prop_assert!(c.envs.iter().all(|kv| !kv.key.is_empty() && !kv.key.contains('=')));
                prop_assert!(c.mounts.iter().all(|m| cri::MountPropagation::try_from(m.propagation).is_ok()));
                prop_assert!(!c.log_path.split('/').any(|p| p == ".."));
                let spec = spec_of(&c);
                prop_assert!(no_nul_anywhere(&spec), "NUL in {spec}");
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn pod_metadata_that_passes_cannot_break_cni_args(
        name in edgy(), namespace in edgy(), uid in edgy(), hostname in edgy(), protocol in -1i32..5,
    ) {
        let c = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata { name: name.clone(), namespace: namespace.clone(), uid: uid.clone(), attempt: 0 }),
            hostname,
            port_mappings: vec![cri::PortMapping { protocol, container_port: 80, ..Default::default() }],
            ..Default::default()
        };
        if super::pod_sandbox(&c).is_ok() {
            // CNI_ARGS as the sandboxer builds it: K=V pairs joined by ';'.
            let args = format!("IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID=x;K8S_POD_UID={uid}");
            let pairs: Vec<&str> = args.split(';').collect();
            prop_assert_eq!(pairs.len(), 5);
            prop_assert!(pairs.iter().all(|p| p.matches('=').count() == 1));
            prop_assert!(!args.contains('\0'));
            prop_assert!(cri::Protocol::try_from(protocol).is_ok());
            prop_assert!(crate::pod::from_cri(c, "").is_ok() || name.is_empty() || namespace.is_empty() || uid.is_empty());
        }
    }

    #[test]
    fn resources_validation_never_panics(
        cpus in "[0-9,\\-a ]{0,12}", mems in "[0-9,\\-]{0,6}", memory in any::<i64>(),
        shares in any::<i64>(), quota in any::<i64>(), period in any::<i64>(),
    ) {
        let r = cri::LinuxContainerResources {
            cpuset_cpus: cpus, cpuset_mems: mems, memory_limit_in_bytes: memory,
            cpu_shares: shares, cpu_quota: quota, cpu_period: period, ..Default::default()
        };
        if super::resources(&r).is_ok() {
            prop_assert!(memory == 0 || memory >= super::resources::MIN_MEMORY);
            prop_assert!(crate::container::update::resources_json(&r).is_ok());
        }
    }
}
