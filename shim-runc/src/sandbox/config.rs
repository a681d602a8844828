//! What the shim needs from the pod's CRI `PodSandboxConfig`, which containerd's CRI passes as
//! CreateSandbox's `options` (an Any of `runtime.v1.PodSandboxConfig`).

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use crius_proto::{
    prost::Message,
    runtime::{NamespaceMode, PodSandboxConfig},
};

use crate::error::{Error, Result};

/// How the pod's containers share processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PidMode {
    /// One pid namespace for the pod: a pause process holds it.
    Pod,
    /// Each container has its own: no pause.
    Container,
    /// The host's.
    Node,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dns {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodConfig {
    /// `namespace/name`, for logs.
    pub name: String,
    pub hostname: Option<String>,
    pub dns: Option<Dns>,
    pub host_network: bool,
    pub host_ipc: bool,
    pub pid: PidMode,
    pub sysctls: Vec<(String, String)>,
    pub cgroup_parent: Option<String>,
}

impl Default for PodConfig {
    fn default() -> Self {
        PodConfig {
            name: String::new(),
            hostname: None,
            dns: None,
            host_network: false,
            host_ipc: false,
            pid: PidMode::Pod,
            sysctls: Vec::new(),
            cgroup_parent: None,
        }
    }
}

const TYPE_NAME: &str = "runtime.v1.PodSandboxConfig";

/// Decodes CreateSandbox's options; none means CRI's defaults (every namespace the pod's own).
pub fn decode(options: Option<&Any>) -> Result<PodConfig> {
    let Some(any) = options.filter(|a| !a.type_url.is_empty() || !a.value.is_empty()) else {
        return Ok(PodConfig::default());
    };
    if !any.type_url.ends_with(TYPE_NAME) {
        return Err(Error::InvalidArgument(format!(
            "options: want {TYPE_NAME}, got {:?}",
            any.type_url
        )));
    }
    let cfg = PodSandboxConfig::decode(any.value.as_slice())
        .map_err(|e| Error::InvalidArgument(format!("options: bad {TYPE_NAME}: {e}")))?;
    from_cri(&cfg)
}

fn mode(v: i32) -> Result<NamespaceMode> {
    NamespaceMode::try_from(v)
        .map_err(|_| Error::InvalidArgument(format!("unknown namespace mode {v}")))
}

fn from_cri(cfg: &PodSandboxConfig) -> Result<PodConfig> {
    let linux = cfg.linux.clone().unwrap_or_default();
    let ns = linux
        .security_context
        .as_ref()
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default();
    if ns
        .userns_options
        .as_ref()
        .is_some_and(|u| u.mode == NamespaceMode::Pod as i32)
    {
        return Err(Error::Unimplemented("user namespaces for a pod".into()));
    }
    let pid = match mode(ns.pid)? {
        NamespaceMode::Pod => PidMode::Pod,
        NamespaceMode::Container => PidMode::Container,
        NamespaceMode::Node => PidMode::Node,
        NamespaceMode::Target => {
            return Err(Error::InvalidArgument(
                "pid namespace TARGET is for containers, not pods".into(),
            ))
        }
    };
    let node = |m: i32| -> Result<bool> {
        match mode(m)? {
            NamespaceMode::Pod => Ok(false),
            NamespaceMode::Node => Ok(true),
            other => Err(Error::InvalidArgument(format!(
                "pod namespace mode {other:?} is not POD or NODE"
            ))),
        }
    };
    let mut sysctls: Vec<(String, String)> = linux.sysctls.into_iter().collect();
    sysctls.sort();
    let name = cfg
        .metadata
        .as_ref()
        .map(|m| format!("{}/{}", m.namespace, m.name))
        .unwrap_or_default();
    Ok(PodConfig {
        name,
        hostname: Some(cfg.hostname.clone()).filter(|h| !h.is_empty()),
        dns: cfg.dns_config.as_ref().map(|d| Dns {
            servers: d.servers.clone(),
            searches: d.searches.clone(),
            options: d.options.clone(),
        }),
        host_network: node(ns.network)?,
        host_ipc: node(ns.ipc)?,
        pid,
        sysctls,
        cgroup_parent: Some(linux.cgroup_parent).filter(|c| !c.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crius_proto::runtime::{
        DnsConfig, LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceOption,
        PodSandboxMetadata, UserNamespace,
    };

    fn any(cfg: &PodSandboxConfig) -> Any {
        Any {
            type_url: TYPE_NAME.into(),
            value: cfg.encode_to_vec(),
            ..Default::default()
        }
    }

    fn with_ns(ns: NamespaceOption) -> PodSandboxConfig {
        PodSandboxConfig {
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(ns),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn decodes_what_the_shim_uses() {
        let mut cfg = with_ns(NamespaceOption {
            network: NamespaceMode::Node as i32,
            pid: NamespaceMode::Container as i32,
            ..Default::default()
        });
        cfg.metadata = Some(PodSandboxMetadata {
            name: "web".into(),
            namespace: "default".into(),
            ..Default::default()
        });
        cfg.hostname = "h1".into();
        cfg.dns_config = Some(DnsConfig {
            servers: vec!["10.0.0.10".into()],
            ..Default::default()
        });
        if let Some(l) = cfg.linux.as_mut() {
            l.cgroup_parent = "/kubepods/p1".into();
            l.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
        }
        let got = decode(Some(&any(&cfg))).unwrap();
        assert_eq!(got.name, "default/web");
        assert_eq!(got.hostname.as_deref(), Some("h1"));
        assert!(got.host_network && !got.host_ipc);
        assert_eq!(got.pid, PidMode::Container);
        assert_eq!(got.cgroup_parent.as_deref(), Some("/kubepods/p1"));
        assert_eq!(
            got.sysctls,
            vec![("net.ipv4.ip_forward".to_string(), "1".to_string())]
        );
        assert_eq!(got.dns.unwrap().servers, vec!["10.0.0.10"]);
    }

    #[test]
    fn defaults_and_refusals() {
        assert_eq!(decode(None).unwrap(), PodConfig::default());
        let wrong = Any {
            type_url: "x.Other".into(),
            value: vec![1],
            ..Default::default()
        };
        assert!(matches!(
            decode(Some(&wrong)),
            Err(Error::InvalidArgument(_))
        ));
        let garbage = Any {
            type_url: TYPE_NAME.into(),
            value: vec![0xff, 0xff],
            ..Default::default()
        };
        assert!(matches!(
            decode(Some(&garbage)),
            Err(Error::InvalidArgument(_))
        ));
        let userns = with_ns(NamespaceOption {
            userns_options: Some(UserNamespace {
                mode: NamespaceMode::Pod as i32,
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(matches!(
            decode(Some(&any(&userns))),
            Err(Error::Unimplemented(_))
        ));
        let target = with_ns(NamespaceOption {
            pid: NamespaceMode::Target as i32,
            ..Default::default()
        });
        assert!(matches!(
            decode(Some(&any(&target))),
            Err(Error::InvalidArgument(_))
        ));
    }
}
