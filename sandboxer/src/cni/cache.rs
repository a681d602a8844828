//! On-disk record of each pod's CNI attachment: the exact config list, args and
//! result of ADD, so DEL (and CHECK) run with them even after a restart or a
//! config change. Written before ADD starts (result None) so a crash mid-ADD
//! still leaves enough to DEL.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::atomic;

pub const KIND: &str = "crius-cni-cache-v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub kind: String,
    pub container_id: String,
    pub if_name: String,
    pub network_name: String,
    pub netns: String,
    pub cni_args: String,
    pub capability_args: Value,
    /// The network configuration list used for ADD.
    pub config: Value,
    /// None until ADD succeeded.
    pub result: Option<Value>,
}

pub fn path(dir: &Path, id: &str, ifname: &str) -> PathBuf {
    dir.join(format!("{id}-{ifname}.json"))
}

pub fn write(dir: &Path, e: &Entry) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec_pretty(e).map_err(std::io::Error::other)?;
    atomic::write_fast(&path(dir, &e.container_id, &e.if_name), &bytes)
}

pub fn read(dir: &Path, id: &str, ifname: &str) -> std::io::Result<Option<Entry>> {
    match std::fs::read(path(dir, id, ifname)) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn remove(dir: &Path, id: &str, ifname: &str) -> std::io::Result<()> {
    atomic::remove(&path(dir, id, ifname))
}

/// Container ids that have a cache entry (for orphan sweeps).
pub fn ids(dir: &Path, ifname: &str) -> Vec<String> {
    let suffix = format!("-{ifname}.json");
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(&suffix)
                        .filter(|_| !n.starts_with('.'))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let d = tempfile::tempdir().expect("tempdir");
        let e = Entry {
            kind: KIND.into(),
            container_id: "abc".into(),
            if_name: "eth0".into(),
            network_name: "n".into(),
            netns: "/run/x".into(),
            cni_args: "K8S_POD_NAME=p".into(),
            capability_args: serde_json::json!({}),
            config: serde_json::json!({"plugins": []}),
            result: Some(serde_json::json!({"ips": []})),
        };
        write(d.path(), &e).expect("write");
        assert_eq!(read(d.path(), "abc", "eth0").expect("read"), Some(e));
        assert_eq!(ids(d.path(), "eth0"), vec!["abc".to_string()]);
        remove(d.path(), "abc", "eth0").expect("rm");
        assert_eq!(read(d.path(), "abc", "eth0").expect("read"), None);
    }
}
