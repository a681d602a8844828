//! CNI: the network config in force, and ADD / DEL / CHECK of a pod's
//! attachment per the CNI spec (plugin chain with prevResult, capability args
//! as runtimeConfig, results cached on disk).

mod bandwidth;
mod cache;
pub mod conflist;
mod exec;
mod result;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

pub use conflist::{ConfError, ConfList};
use exec::{ExecError, Invocation};

/// Interface name of the pod's network inside its netns.
pub const IFNAME: &str = "eth0";

/// The sandbox facts CNI needs.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    pub id: &'a str,
    pub netns: &'a Path,
    pub pod_name: &'a str,
    pub pod_namespace: &'a str,
    pub pod_uid: &'a str,
    pub port_mappings: &'a [crate::pod::PortMapping],
    pub annotations: &'a std::collections::BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error("network config: {0}")]
    Config(#[from] ConfError),
    #[error("{0}")]
    Exec(#[from] ExecError),
    #[error("invalid network args: {0}")]
    Args(String),
    #[error("cache {0}: {1}")]
    Cache(PathBuf, std::io::Error),
}

impl CniError {
    /// An error no retry can mend: the DEL (or ADD) cannot even be started for this pod, or its
    /// cached config cannot be read. Teardown skips such a step rather than keep the pod forever.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            CniError::Exec(ExecError::Unrunnable { .. }) | CniError::Config(_)
        )
    }
}

type Signature = Vec<(PathBuf, Option<SystemTime>)>;
type Loaded = Option<(Signature, Result<Arc<ConfList>, ConfError>)>;

pub struct Cni {
    conf_dir: PathBuf,
    bin_dirs: Vec<PathBuf>,
    cache_dir: PathBuf,
    timeout: Duration,
    loaded: Mutex<Loaded>,
    pod_cidr: Mutex<Option<String>>,
}

impl Cni {
    pub fn new(
        conf_dir: PathBuf,
        bin_dirs: Vec<PathBuf>,
        cache_dir: PathBuf,
        timeout: Duration,
    ) -> Self {
        Cni {
            conf_dir,
            bin_dirs,
            cache_dir,
            timeout,
            loaded: Mutex::new(None),
            pod_cidr: Mutex::new(None),
        }
    }

    /// The config in force; re-read when the dir's files changed.
    pub fn current(&self) -> Result<Arc<ConfList>, ConfError> {
        let sig = conflist::config_files(&self.conf_dir)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((old, res)) = loaded.as_ref() {
            if *old == sig {
                return res.clone();
            }
        }
        let res = conflist::load_dir(&self.conf_dir).map(Arc::new);
        match &res {
            Ok(c) => {
                tracing::info!(file = %c.file.display(), network = %c.name, "CNI config loaded")
            }
            Err(e) => tracing::warn!(error = %e, "CNI config not usable"),
        }
        *loaded = Some((sig, res.clone()));
        res
    }

    pub fn set_pod_cidr(&self, cidr: Option<String>) {
        *self.pod_cidr.lock().unwrap_or_else(|p| p.into_inner()) = cidr;
    }

    fn inv<'a>(
        &'a self,
        command: &'a str,
        id: &'a str,
        netns: &'a str,
        args: &'a str,
    ) -> Invocation<'a> {
        Invocation {
            command,
            container_id: id,
            netns,
            ifname: IFNAME,
            args,
            bin_dirs: &self.bin_dirs,
            timeout: self.timeout,
        }
    }

    /// ADD the pod to the network. Returns the pod IPs and the raw result. On
    /// failure the partial attachment is DELeted before returning.
    pub async fn add(&self, a: &Attachment<'_>) -> Result<(Vec<IpAddr>, Value), CniError> {
        let conf = self.current()?;
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
            a.pod_namespace, a.pod_name, a.id, a.pod_uid
        );
        let caps = self.capability_args(a)?;
        let netns = a.netns.to_string_lossy().into_owned();
        let mut entry = cache::Entry {
            kind: cache::KIND.into(),
            container_id: a.id.into(),
            if_name: IFNAME.into(),
            network_name: conf.name.clone(),
            netns: netns.clone(),
            cni_args: args.clone(),
            capability_args: caps.clone(),
            config: conf.raw.clone(),
            result: None,
        };
        self.write_cache(&entry)?;
        let inv = self.inv("ADD", a.id, &netns, &args);
        let mut prev: Option<Value> = None;
        for plugin in &conf.plugins {
            let stdin = plugin_config(&conf, plugin, prev.as_ref(), &caps);
            match exec::run(ConfList::plugin_type(plugin), &inv, &stdin).await {
                Ok(Value::Null) => {}
                Ok(r) => prev = Some(r),
                Err(e) => {
                    tracing::warn!(pod = a.id, error = %e, "CNI ADD failed, deleting partial attachment");
                    if let Err(de) = self.del_with(&entry, &netns, prev.as_ref()).await {
                        tracing::warn!(pod = a.id, error = %de, "CNI DEL after failed ADD failed; cache kept for retry");
                    }
                    return Err(e.into());
                }
            }
        }
        let result = prev.unwrap_or(Value::Null);
        entry.result = Some(result.clone());
        self.write_cache(&entry)?;
        Ok((result::pod_ips(&result, IFNAME), result))
    }

    /// DEL the pod from the network it was ADDed to (per the cache). Idempotent:
    /// no cache entry means nothing to do. `netns` None: the netns is gone, the
    /// plugins still release what they hold (IP leases).
    pub async fn del(&self, id: &str, netns: Option<&Path>) -> Result<(), CniError> {
        let Some(entry) = cache::read(&self.cache_dir, id, IFNAME)
            .map_err(|e| CniError::Cache(cache::path(&self.cache_dir, id, IFNAME), e))?
        else {
            return Ok(());
        };
        let netns = netns
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.del_with(&entry, &netns, entry.result.as_ref()).await
    }

    /// Drop the pod's cached attachment without running DEL (when DEL can never run).
    pub fn forget(&self, id: &str) -> Result<(), CniError> {
        cache::remove(&self.cache_dir, id, IFNAME)
            .map_err(|e| CniError::Cache(cache::path(&self.cache_dir, id, IFNAME), e))
    }

    async fn del_with(
        &self,
        entry: &cache::Entry,
        netns: &str,
        prev: Option<&Value>,
    ) -> Result<(), CniError> {
        let conf = conflist::from_cached(&entry.config)?;
        let inv = self.inv("DEL", &entry.container_id, netns, &entry.cni_args);
        for plugin in conf.plugins.iter().rev() {
            let stdin = plugin_config(&conf, plugin, prev, &entry.capability_args);
            exec::run(ConfList::plugin_type(plugin), &inv, &stdin).await?;
        }
        cache::remove(&self.cache_dir, &entry.container_id, IFNAME).map_err(|e| {
            CniError::Cache(cache::path(&self.cache_dir, &entry.container_id, IFNAME), e)
        })
    }

    /// CHECK the pod's attachment (spec ≥ 0.4.0, unless the list disables it).
    pub async fn check(&self, id: &str, netns: &Path) -> Result<(), CniError> {
        let Some(entry) = cache::read(&self.cache_dir, id, IFNAME)
            .map_err(|e| CniError::Cache(cache::path(&self.cache_dir, id, IFNAME), e))?
        else {
            return Err(CniError::Args(format!("pod {id} has no CNI attachment")));
        };
        let conf = conflist::from_cached(&entry.config)?;
        if conf.disable_check || version_lt(&conf.cni_version, (0, 4, 0)) {
            return Ok(());
        }
        let netns = netns.to_string_lossy().into_owned();
        let inv = self.inv("CHECK", id, &netns, &entry.cni_args);
        for plugin in &conf.plugins {
            let stdin = plugin_config(&conf, plugin, entry.result.as_ref(), &entry.capability_args);
            exec::run(ConfList::plugin_type(plugin), &inv, &stdin).await?;
        }
        Ok(())
    }

    /// Pod ids with a cache entry (ADDed or mid-ADD).
    pub fn cached_ids(&self) -> Vec<String> {
        cache::ids(&self.cache_dir, IFNAME)
    }

    fn write_cache(&self, e: &cache::Entry) -> Result<(), CniError> {
        cache::write(&self.cache_dir, e).map_err(|err| {
            CniError::Cache(cache::path(&self.cache_dir, &e.container_id, IFNAME), err)
        })
    }

    fn capability_args(&self, a: &Attachment<'_>) -> Result<Value, CniError> {
        let mut caps = Map::new();
        let ports: Vec<Value> = a
            .port_mappings
            .iter()
            .filter(|p| p.host_port > 0)
            .map(|p| {
                let mut m = json!({
                    "hostPort": p.host_port,
                    "containerPort": p.container_port,
                    "protocol": p.protocol.as_cni(),
                });
                if !p.host_ip.is_empty() {
                    m["hostIP"] = json!(p.host_ip);
                }
                m
            })
            .collect();
        if !ports.is_empty() {
            caps.insert("portMappings".into(), Value::Array(ports));
        }
        if let Some(bw) = bandwidth::from_annotations(a.annotations).map_err(CniError::Args)? {
            caps.insert("bandwidth".into(), bw);
        }
        if let Some(cidr) = self
            .pod_cidr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            caps.insert("ipRanges".into(), json!([[{ "subnet": cidr }]]));
        }
        Ok(Value::Object(caps))
    }
}

/// Check the pod annotations CNI reads (bandwidth) before anything is made.
pub fn validate_annotations(
    ann: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    bandwidth::from_annotations(ann).map(|_| ())
}

/// One plugin's stdin: its own object plus the list's name and cniVersion, the
/// previous result, and the capability args it declares.
fn plugin_config(
    conf: &ConfList,
    plugin: &Map<String, Value>,
    prev: Option<&Value>,
    caps: &Value,
) -> Value {
    let mut obj = plugin.clone();
    obj.insert("name".into(), json!(conf.name));
    obj.insert("cniVersion".into(), json!(conf.cni_version));
    if let Some(prev) = prev {
        obj.insert("prevResult".into(), prev.clone());
    }
    let mut rc = Map::new();
    if let Some(caps) = caps.as_object() {
        for (k, v) in caps {
            if ConfList::has_capability(plugin, k) {
                rc.insert(k.clone(), v.clone());
            }
        }
    }
    if !rc.is_empty() {
        obj.insert("runtimeConfig".into(), Value::Object(rc));
    }
    Value::Object(obj)
}

fn version_lt(v: &str, min: (u32, u32, u32)) -> bool {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let got = (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    );
    got < min
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_config_injects_declared_caps_only() {
        let conf = conflist::parse(
            Path::new("x.conflist"),
            br#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
            true,
        )
        .expect("valid");
        let caps = json!({"portMappings": [{"hostPort": 80}], "bandwidth": {"ingressRate": 1}});
        let prev = json!({"ips": []});
        let a = plugin_config(&conf, &conf.plugins[0], None, &caps);
        assert_eq!(a["name"], "n");
        assert_eq!(a["cniVersion"], "1.0.0");
        assert!(a.get("runtimeConfig").is_none());
        assert!(a.get("prevResult").is_none());
        let b = plugin_config(&conf, &conf.plugins[1], Some(&prev), &caps);
        assert_eq!(b["runtimeConfig"]["portMappings"][0]["hostPort"], 80);
        assert!(b["runtimeConfig"].get("bandwidth").is_none());
        assert_eq!(b["prevResult"], prev);
    }

    #[test]
    fn versions() {
        assert!(version_lt("0.3.1", (0, 4, 0)));
        assert!(!version_lt("0.4.0", (0, 4, 0)));
        assert!(!version_lt("1.0.0", (0, 4, 0)));
    }
}
