//! CRI ↔ sandboxer types for pods: PodSandboxConfig in, PodSandbox/PodSandboxStatus out,
//! and kubelet's pod filter.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crius_proto::runtime as cri;
use crius_sandboxer::{
    DnsConfig, LinuxPodConfig, NamespaceMode, NamespaceOptions, PodConfig, PodMetadata,
    PodResources, PodState, PodStatus, PortMapping, Protocol, SecurityProfile,
};

use crate::error::{Error, Result};

fn ns_mode(v: i32) -> NamespaceMode {
    match cri::NamespaceMode::try_from(v) {
        Ok(cri::NamespaceMode::Node) => NamespaceMode::Node,
        Ok(cri::NamespaceMode::Container) => NamespaceMode::Container,
        _ => NamespaceMode::Pod,
    }
}

fn ns_mode_cri(m: NamespaceMode) -> i32 {
    (match m {
        NamespaceMode::Pod => cri::NamespaceMode::Pod,
        NamespaceMode::Node => cri::NamespaceMode::Node,
        NamespaceMode::Container => cri::NamespaceMode::Container,
    }) as i32
}

fn profile(p: Option<&cri::SecurityProfile>, legacy: &str) -> Option<SecurityProfile> {
    use cri::security_profile::ProfileType as T;
    match p {
        Some(p) => match T::try_from(p.profile_type) {
            Ok(T::RuntimeDefault) => Some(SecurityProfile::RuntimeDefault),
            Ok(T::Localhost) => Some(SecurityProfile::Localhost(p.localhost_ref.clone())),
            _ => Some(SecurityProfile::Unconfined),
        },
        None => match legacy {
            "" => None,
            "runtime/default" | "docker/default" => Some(SecurityProfile::RuntimeDefault),
            "unconfined" => Some(SecurityProfile::Unconfined),
            l => l
                .strip_prefix("localhost/")
                .map(|p| SecurityProfile::Localhost(p.to_string())),
        },
    }
}

pub(crate) fn resources_of(r: Option<&cri::LinuxContainerResources>) -> Option<PodResources> {
    r.map(|r| PodResources {
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_shares: r.cpu_shares,
        memory_limit_in_bytes: r.memory_limit_in_bytes,
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
    })
}

/// CRI PodSandboxConfig → the sandboxer's plain config.
// Older kubelets still send the deprecated seccomp profile path.
#[allow(deprecated)]
pub fn from_cri(c: cri::PodSandboxConfig, handler: &str) -> Result<PodConfig> {
    let m = c
        .metadata
        .ok_or_else(|| Error::InvalidArgument("pod sandbox metadata is missing".into()))?;
    if m.name.is_empty() || m.namespace.is_empty() || m.uid.is_empty() {
        return Err(Error::InvalidArgument(
            "pod sandbox metadata needs name, namespace and uid".into(),
        ));
    }
    let linux = c.linux.unwrap_or_default();
    let sc = linux.security_context.unwrap_or_default();
    crate::container::user::check_group_has_user(
        sc.run_as_group.as_ref().map(|v| v.value),
        sc.run_as_user.as_ref().map(|v| v.value),
        "",
    )?;
    let nso = sc.namespace_options.unwrap_or_default();
    let userns = super::userns::requested(nso.userns_options.as_ref(), "pod")?;
    let mut port_mappings = Vec::new();
    for p in c.port_mappings {
        if !(0..=65535).contains(&p.container_port) || !(0..=65535).contains(&p.host_port) {
            return Err(Error::InvalidArgument(format!(
                "port mapping {}:{} out of range",
                p.host_port, p.container_port
            )));
        }
        port_mappings.push(PortMapping {
            protocol: match cri::Protocol::try_from(p.protocol) {
                Ok(cri::Protocol::Udp) => Protocol::Udp,
                Ok(cri::Protocol::Sctp) => Protocol::Sctp,
                _ => Protocol::Tcp,
            },
            container_port: p.container_port,
            host_port: p.host_port,
            host_ip: p.host_ip,
        });
    }
    Ok(PodConfig {
        metadata: PodMetadata {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            attempt: m.attempt,
        },
        hostname: c.hostname,
        log_directory: (!c.log_directory.is_empty()).then(|| PathBuf::from(c.log_directory)),
        dns: c.dns_config.map(|d| DnsConfig {
            servers: d.servers,
            searches: d.searches,
            options: d.options,
        }),
        port_mappings,
        labels: c.labels.into_iter().collect(),
        annotations: c.annotations.into_iter().collect(),
        runtime_handler: handler.to_string(),
        linux: LinuxPodConfig {
            cgroup_parent: linux.cgroup_parent,
            sysctls: linux.sysctls.into_iter().collect(),
            namespaces: NamespaceOptions {
                network: ns_mode(nso.network),
                pid: ns_mode(nso.pid),
                ipc: ns_mode(nso.ipc),
            },
            userns,
            run_as_user: sc.run_as_user.map(|v| v.value),
            run_as_group: sc.run_as_group.map(|v| v.value),
            supplemental_groups: sc.supplemental_groups,
            privileged: sc.privileged,
            readonly_rootfs: sc.readonly_rootfs,
            seccomp: profile(sc.seccomp.as_ref(), &sc.seccomp_profile_path),
            apparmor: profile(sc.apparmor.as_ref(), ""),
            overhead: resources_of(linux.overhead.as_ref()),
            resources: resources_of(linux.resources.as_ref()),
        },
    })
}

fn metadata(p: &PodStatus) -> cri::PodSandboxMetadata {
    let m = &p.config.metadata;
    cri::PodSandboxMetadata {
        name: m.name.clone(),
        uid: m.uid.clone(),
        namespace: m.namespace.clone(),
        attempt: m.attempt,
    }
}

fn state(p: &PodStatus) -> i32 {
    (match p.state {
        PodState::Ready => cri::PodSandboxState::SandboxReady,
        PodState::NotReady => cri::PodSandboxState::SandboxNotready,
    }) as i32
}

fn map(m: &BTreeMap<String, String>) -> std::collections::HashMap<String, String> {
    m.clone().into_iter().collect()
}

pub fn to_cri_status(p: &PodStatus) -> cri::PodSandboxStatus {
    let ns = p.config.linux.namespaces;
    cri::PodSandboxStatus {
        id: p.id.clone(),
        metadata: Some(metadata(p)),
        state: state(p),
        created_at: p.created_at_ns,
        network: Some(cri::PodSandboxNetworkStatus {
            ip: p.ips.first().map(|i| i.to_string()).unwrap_or_default(),
            additional_ips: p
                .ips
                .iter()
                .skip(1)
                .map(|i| cri::PodIp { ip: i.to_string() })
                .collect(),
        }),
        linux: Some(cri::LinuxPodSandboxStatus {
            namespaces: Some(cri::Namespace {
                options: Some(cri::NamespaceOption {
                    network: ns_mode_cri(ns.network),
                    pid: ns_mode_cri(ns.pid),
                    ipc: ns_mode_cri(ns.ipc),
                    ..Default::default()
                }),
            }),
        }),
        labels: map(&p.config.labels),
        annotations: map(&p.config.annotations),
        runtime_handler: p.config.runtime_handler.clone(),
    }
}

pub fn to_cri(p: &PodStatus) -> cri::PodSandbox {
    cri::PodSandbox {
        id: p.id.clone(),
        metadata: Some(metadata(p)),
        state: state(p),
        created_at: p.created_at_ns,
        labels: map(&p.config.labels),
        annotations: map(&p.config.annotations),
        runtime_handler: p.config.runtime_handler.clone(),
    }
}

pub fn matches(p: &PodStatus, f: &cri::PodSandboxFilter) -> bool {
    if !f.id.is_empty() && !p.id.starts_with(&f.id) {
        return false;
    }
    if let Some(s) = &f.state {
        if state(p) != s.state {
            return false;
        }
    }
    f.label_selector
        .iter()
        .all(|(k, v)| p.config.labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(deprecated)]
    fn cfg() -> cri::PodSandboxConfig {
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: "web".into(),
                uid: "u1".into(),
                namespace: "default".into(),
                attempt: 1,
            }),
            log_directory: "/var/log/pods/x".into(),
            port_mappings: vec![cri::PortMapping {
                protocol: cri::Protocol::Udp as i32,
                container_port: 53,
                host_port: 5353,
                host_ip: String::new(),
            }],
            linux: Some(cri::LinuxPodSandboxConfig {
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: cri::NamespaceMode::Node as i32,
                        ..Default::default()
                    }),
                    seccomp_profile_path: "runtime/default".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn maps_pod_config() {
        let p = from_cri(cfg(), "").expect("map");
        assert_eq!(p.metadata.attempt, 1);
        assert!(p.host_network());
        assert_eq!(p.port_mappings[0].protocol, Protocol::Udp);
        assert_eq!(p.log_directory, Some(PathBuf::from("/var/log/pods/x")));
        assert_eq!(p.linux.seccomp, Some(SecurityProfile::RuntimeDefault));
    }

    #[test]
    fn missing_metadata_is_invalid() {
        let mut c = cfg();
        c.metadata = None;
        assert!(matches!(from_cri(c, ""), Err(Error::InvalidArgument(_))));
        let mut c = cfg();
        c.port_mappings[0].host_port = 70000;
        assert!(matches!(from_cri(c, ""), Err(Error::InvalidArgument(_))));
    }
}
