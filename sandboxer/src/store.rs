//! Pod records on disk: `<state_dir>/<id>/pod.json`, written atomically.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::pod::PodConfig;
use crate::status::RunTimings;

pub const RECORD_VERSION: u32 = 1;

/// How far a pod got; what `recover()` acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// `run` in progress (or crashed in it): torn down by recover.
    Creating,
    /// `run` finished; the pause may have died since.
    Running,
    /// `stop` finished (or the pod failed and was torn down to a stop).
    Stopped,
    /// `remove` in progress: finished by recover.
    Removing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    pub version: u32,
    pub id: String,
    pub config: PodConfig,
    pub phase: Phase,
    pub created_at_ns: i64,
    pub netns_path: Option<PathBuf>,
    pub ips: Vec<IpAddr>,
    pub pause_pid: Option<u32>,
    /// Start time (clock ticks since boot) of the pause, to tell a live pause from a reused pid.
    #[serde(default)]
    pub pause_start_time: Option<u64>,
    pub cgroup_parent: String,
    pub hostname: String,
    pub shm_path: Option<PathBuf>,
    #[serde(default)]
    pub timings: RunTimings,
}

pub fn pod_dir(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join(id)
}

/// Write the record atomically; `durable` also waits for the disk (see `atomic`).
pub fn save(state_dir: &Path, rec: &PodRecord, durable: bool) -> io::Result<()> {
    let dir = pod_dir(state_dir, &rec.id);
    std::fs::create_dir_all(&dir)?;
    let bytes = serde_json::to_vec_pretty(rec).map_err(io::Error::other)?;
    let path = dir.join("pod.json");
    if durable {
        atomic::write(&path, &bytes)
    } else {
        atomic::write_fast(&path, &bytes)
    }
}

/// Make a record saved with `durable = false` durable.
pub fn sync(state_dir: &Path, id: &str) -> io::Result<()> {
    atomic::sync(&pod_dir(state_dir, id).join("pod.json"))
}

pub fn load(state_dir: &Path, id: &str) -> io::Result<PodRecord> {
    let bytes = std::fs::read(pod_dir(state_dir, id).join("pod.json"))?;
    serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Every pod dir name under `state_dir` (with or without a readable record).
pub fn ids(state_dir: &Path) -> io::Result<Vec<String>> {
    let rd = match std::fs::read_dir(state_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// Delete a pod's dir and everything in it (idempotent).
pub fn delete(state_dir: &Path, id: &str) -> io::Result<()> {
    match std::fs::remove_dir_all(pod_dir(state_dir, id)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let d = tempfile::tempdir().expect("tempdir");
        let mut config = PodConfig::default();
        config.metadata.name = "p".into();
        config.labels.insert("app".into(), "web".into());
        let rec = PodRecord {
            version: RECORD_VERSION,
            id: "abc".into(),
            config,
            phase: Phase::Running,
            created_at_ns: 42,
            netns_path: Some("/run/crius/netns/abc".into()),
            ips: vec!["10.99.0.2".parse().expect("ip")],
            pause_pid: Some(7),
            pause_start_time: Some(123),
            cgroup_parent: "/crius".into(),
            hostname: "p".into(),
            shm_path: None,
            timings: RunTimings::default(),
        };
        save(d.path(), &rec, true).expect("save");
        save(d.path(), &rec, false).expect("save fast");
        sync(d.path(), "abc").expect("sync");
        assert_eq!(load(d.path(), "abc").expect("load"), rec);
        assert_eq!(ids(d.path()).expect("ids"), vec!["abc".to_string()]);
        delete(d.path(), "abc").expect("delete");
        delete(d.path(), "abc").expect("delete again");
        assert!(ids(d.path()).expect("ids").is_empty());
    }
}
