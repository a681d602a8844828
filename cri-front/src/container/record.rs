//! A container's record on disk (`<state_dir>/containers/<id>/container.json`),
//! written atomically. It holds what CRI reports and containerd does not keep:
//! CRI metadata, log path, timestamps and the exit once seen, so a restarted
//! criusd answers exactly as before.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use super::image_volume::ImageVolume;
use super::names::{NameKey, Names};
use crate::error::{Error, IoContext, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Created,
    Running,
    Exited,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MountRecord {
    pub container_path: String,
    pub host_path: String,
    pub readonly: bool,
    pub propagation: i32,
    /// An image volume: the image as kubelet named it (host_path is then criusd's mount).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_sub_path: String,
}

/// The CRI resources last applied (reported back in ContainerStatus).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourcesRecord {
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_shares: i64,
    pub memory_limit_in_bytes: i64,
    pub oom_score_adj: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
}

impl ResourcesRecord {
    pub fn from_cri(r: &crius_proto::runtime::LinuxContainerResources) -> Self {
        ResourcesRecord {
            cpu_period: r.cpu_period,
            cpu_quota: r.cpu_quota,
            cpu_shares: r.cpu_shares,
            memory_limit_in_bytes: r.memory_limit_in_bytes,
            oom_score_adj: r.oom_score_adj,
            cpuset_cpus: r.cpuset_cpus.clone(),
            cpuset_mems: r.cpuset_mems.clone(),
        }
    }

    pub fn to_cri(&self) -> crius_proto::runtime::LinuxContainerResources {
        crius_proto::runtime::LinuxContainerResources {
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpu_shares: self.cpu_shares,
            memory_limit_in_bytes: self.memory_limit_in_bytes,
            oom_score_adj: self.oom_score_adj,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub pod_id: String,
    pub name: String,
    pub attempt: u32,
    /// The image as kubelet named it.
    pub image: String,
    /// Image id (config digest).
    pub image_id: String,
    /// The image record name used (repo tag or digest name).
    pub image_name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Full path of the CRI log file; empty when kubelet gave none.
    pub log_path: String,
    pub mounts: Vec<MountRecord>,
    pub runtime: String,
    pub phase: Phase,
    pub created_at_ns: i64,
    pub started_at_ns: i64,
    pub finished_at_ns: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    /// containerd reported an OOM kill for this container's task.
    #[serde(default)]
    pub oom_killed: bool,
    /// Resolved uid/gid/groups the process runs as.
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    /// Signal StopContainer sends first (image StopSignal or CRI's), name like SIGTERM.
    #[serde(default)]
    pub stop_signal: String,
    /// cgroupfs path of the container (stats, updates).
    #[serde(default)]
    pub cgroups_path: String,
    #[serde(default)]
    pub resources: Option<ResourcesRecord>,
    /// The container has a terminal: one output stream (stdout), no stderr.
    #[serde(default)]
    pub tty: bool,
    /// The container's stdin is a fifo criusd keeps open (attach writes to it).
    #[serde(default)]
    pub stdin: bool,
    /// Close stdin when the first attach ends.
    #[serde(default)]
    pub stdin_once: bool,
    /// Image volumes made for the container (views to unmount and remove with it).
    #[serde(default)]
    pub image_volumes: Vec<ImageVolume>,
    /// RemoveContainer has answered: the container is gone for every RPC and its name free;
    /// the rest of the removal runs after the reply (`removal.rs`) and, if criusd stopped
    /// midway, at its next start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removing: bool,
}

impl ContainerRecord {
    /// The name this container holds in its pod.
    pub fn name_key(&self) -> NameKey {
        NameKey {
            pod_id: self.pod_id.clone(),
            name: self.name.clone(),
            attempt: self.attempt,
        }
    }

    /// Record an exit once (later reports of the same exit are ignored).
    pub fn set_exited(&mut self, code: i32, at_ns: i64) -> bool {
        if self.phase == Phase::Exited {
            return false;
        }
        self.phase = Phase::Exited;
        self.exit_code = code;
        self.finished_at_ns = at_ns;
        self.reason = if self.oom_killed {
            "OOMKilled".into()
        } else if code == 0 {
            "Completed".into()
        } else {
            "Error".into()
        };
        true
    }
}

/// All container records, in memory and on disk, and the names they hold.
#[derive(Clone)]
pub struct Store {
    dir: PathBuf,
    map: Arc<RwLock<HashMap<String, ContainerRecord>>>,
    names: Arc<Names>,
}

impl Store {
    /// Load every record under `dir` (created if missing). Unreadable ones are logged and skipped.
    pub async fn open(dir: &Path) -> Result<Store> {
        tokio::fs::create_dir_all(dir)
            .await
            .ctx(|| format!("create {}", dir.display()))?;
        let mut map = HashMap::new();
        let mut rd = tokio::fs::read_dir(dir)
            .await
            .ctx(|| format!("read {}", dir.display()))?;
        while let Some(e) = rd
            .next_entry()
            .await
            .ctx(|| format!("read {}", dir.display()))?
        {
            let p = e.path().join("container.json");
            match tokio::fs::read(&p).await {
                Ok(b) => match serde_json::from_slice::<ContainerRecord>(&b) {
                    Ok(r) => {
                        map.insert(r.id.clone(), r);
                    }
                    Err(err) => {
                        tracing::warn!(path = %p.display(), error = %err, "skipping unreadable container record")
                    }
                },
                Err(err) => {
                    tracing::warn!(path = %p.display(), error = %err, "skipping container dir without record")
                }
            }
        }
        let names = Names::default();
        for r in map.values().filter(|r| !r.removing) {
            if let Err(holder) = names.reserve(r.name_key(), &r.id) {
                tracing::warn!(container = %r.id, holder = %holder, name = %r.name, "two records hold one container name");
            }
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            map: Arc::new(RwLock::new(map)),
            names: Arc::new(names),
        })
    }

    /// Reserve a pod's container name and attempt for container `id` (CreateContainer's
    /// first step); ALREADY_EXISTS names the holder.
    pub fn reserve_name(&self, key: NameKey, id: &str) -> Result<()> {
        self.names.reserve(key.clone(), id).map_err(|holder| {
            Error::AlreadyExists(format!(
                "container name {:?} (attempt {}) in pod {} is already in use by container {holder}",
                key.name, key.attempt, key.pod_id
            ))
        })
    }

    /// Free the name container `id` holds (a failed create; [`Store::remove`] does it too).
    pub fn release_name(&self, id: &str) {
        self.names.release(id);
    }

    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The record of `id`, one being removed included (what the removal itself reads).
    pub async fn get(&self, id: &str) -> Option<ContainerRecord> {
        self.map.read().await.get(id).cloned()
    }

    /// The record of `id` unless it is being removed: what the RPCs see.
    pub async fn get_live(&self, id: &str) -> Option<ContainerRecord> {
        self.get(id).await.filter(|r| !r.removing)
    }

    /// Look a container up by id or unique id prefix (as crictl allows).
    pub async fn find(&self, id: &str) -> Result<ContainerRecord> {
        if id.is_empty() {
            return Err(Error::InvalidArgument("container id is empty".into()));
        }
        let map = self.map.read().await;
        if let Some(r) = map.get(id).filter(|r| !r.removing) {
            return Ok(r.clone());
        }
        let mut hits = map.values().filter(|r| !r.removing && r.id.starts_with(id));
        match (hits.next(), hits.next()) {
            (Some(r), None) => Ok(r.clone()),
            (Some(_), Some(_)) => Err(Error::InvalidArgument(format!(
                "container id prefix {id:?} is ambiguous"
            ))),
            _ => Err(Error::NotFound(format!("container {id:?} not found"))),
        }
    }

    /// Every record but those being removed.
    pub async fn all(&self) -> Vec<ContainerRecord> {
        self.map
            .read()
            .await
            .values()
            .filter(|r| !r.removing)
            .cloned()
            .collect()
    }

    /// The records being removed (RemoveContainer answered, the removal not finished).
    pub async fn removing(&self) -> Vec<ContainerRecord> {
        self.map
            .read()
            .await
            .values()
            .filter(|r| r.removing)
            .cloned()
            .collect()
    }

    /// Mark `id` removing, on disk first, and free its name: from here on it is gone for
    /// every RPC. The record as marked.
    pub async fn mark_removing(&self, id: &str) -> Result<ContainerRecord> {
        let rec = self
            .update(id, |r| {
                r.removing = true;
                true
            })
            .await?;
        self.names.release(id);
        Ok(rec)
    }

    /// Write (atomically) and keep in memory.
    pub async fn put(&self, r: &ContainerRecord) -> Result<()> {
        let mut map = self.map.write().await;
        self.write_file(r).await?;
        map.insert(r.id.clone(), r.clone());
        Ok(())
    }

    async fn write_file(&self, r: &ContainerRecord) -> Result<()> {
        let dir = self.dir_of(&r.id);
        tokio::fs::create_dir_all(&dir)
            .await
            .ctx(|| format!("create {}", dir.display()))?;
        let bytes = serde_json::to_vec_pretty(r)
            .map_err(|e| Error::Internal(format!("encode record {}: {e}", r.id)))?;
        let tmp = dir.join("container.json.tmp");
        let dst = dir.join("container.json");
        tokio::fs::write(&tmp, bytes)
            .await
            .ctx(|| format!("write {}", tmp.display()))?;
        tokio::fs::rename(&tmp, &dst)
            .await
            .ctx(|| format!("rename {}", dst.display()))?;
        Ok(())
    }

    /// Change a record and persist it, all under the write lock (so the file never lags
    /// behind a concurrent change); returns the new record.
    pub async fn update<F>(&self, id: &str, f: F) -> Result<ContainerRecord>
    where
        F: FnOnce(&mut ContainerRecord) -> bool,
    {
        let mut map = self.map.write().await;
        let r = map
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(format!("container {id:?} not found")))?;
        let mut next = r.clone();
        if !f(&mut next) {
            return Ok(next);
        }
        self.write_file(&next).await?;
        *r = next.clone();
        Ok(next)
    }

    pub async fn remove(&self, id: &str) -> Result<()> {
        self.map.write().await.remove(id);
        self.names.release(id);
        let dir = self.dir_of(id);
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove {}", dir.display()), e)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample(id: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            pod_id: "pod".into(),
            name: "c".into(),
            attempt: 0,
            image: "busybox".into(),
            image_id: "sha256:x".into(),
            image_name: "docker.io/library/busybox:latest".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            log_path: String::new(),
            mounts: vec![],
            runtime: "io.containerd.crius.v2".into(),
            phase: Phase::Created,
            created_at_ns: 1,
            started_at_ns: 0,
            finished_at_ns: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            oom_killed: false,
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            stop_signal: String::new(),
            cgroups_path: String::new(),
            resources: None,
            tty: false,
            stdin: false,
            stdin_once: false,
            image_volumes: vec![],
            removing: false,
        }
    }

    #[tokio::test]
    async fn persists_and_finds_by_prefix() {
        let d = tempfile::tempdir().expect("tmp");
        let s = Store::open(d.path()).await.expect("open");
        s.put(&sample("abc123")).await.expect("put");
        s.put(&sample("abd456")).await.expect("put");
        let s2 = Store::open(d.path()).await.expect("reopen");
        assert_eq!(s2.find("abc").await.expect("find").id, "abc123");
        assert!(matches!(
            s2.find("ab").await,
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(s2.find("zz").await, Err(Error::NotFound(_))));
        s2.remove("abc123").await.expect("rm");
        assert!(Store::open(d.path())
            .await
            .expect("o")
            .get("abc123")
            .await
            .is_none());
    }

    #[tokio::test]
    async fn image_volumes_round_trip() {
        let d = tempfile::tempdir().expect("tmp");
        let s = Store::open(d.path()).await.expect("open");
        let mut r = sample("iv1");
        r.mounts.push(MountRecord {
            container_path: "/iv".into(),
            host_path: "/run/crius/image-volumes/iv1/0/home/app".into(),
            readonly: true,
            propagation: 0,
            image: "busybox".into(),
            image_sub_path: "home/app".into(),
        });
        r.image_volumes.push(ImageVolume {
            index: 0,
            container_path: "/iv".into(),
            image: "busybox".into(),
            image_id: "sha256:x".into(),
            sub_path: "home/app".into(),
            key: "crius-iv-iv1-0".into(),
            host_dir: "/run/crius/image-volumes/iv1/0".into(),
            source: "/run/crius/image-volumes/iv1/0/home/app".into(),
        });
        s.put(&r).await.expect("put");
        let back = Store::open(d.path()).await.expect("reopen");
        assert_eq!(back.get("iv1").await.as_ref(), Some(&r));
        // Records written before image volumes existed still load.
        let mut old = serde_json::to_value(sample("old")).expect("json");
        if let Some(o) = old.as_object_mut() {
            o.remove("image_volumes");
        }
        let old: ContainerRecord = serde_json::from_value(old).expect("old record");
        assert!(old.image_volumes.is_empty());
    }

    #[tokio::test]
    async fn records_being_removed_are_hidden_and_free_their_name() {
        let d = tempfile::tempdir().expect("tmp");
        let s = Store::open(d.path()).await.expect("open");
        let a = sample("abc123");
        s.put(&a).await.expect("put");
        s.reserve_name(a.name_key(), &a.id).expect("reserve");
        s.mark_removing("abc123").await.expect("mark");
        assert!(matches!(s.find("abc123").await, Err(Error::NotFound(_))));
        assert!(matches!(s.find("abc").await, Err(Error::NotFound(_))));
        assert!(s.all().await.is_empty());
        assert!(s.get_live("abc123").await.is_none());
        assert!(s.get("abc123").await.is_some());
        assert_eq!(s.removing().await.len(), 1);
        s.reserve_name(a.name_key(), "other")
            .expect("the name is free");
        // On disk: a restarted criusd sees it being removed, and holds no name for it.
        let back = Store::open(d.path()).await.expect("reopen");
        assert_eq!(back.removing().await.len(), 1);
        assert!(back.all().await.is_empty());
        back.reserve_name(a.name_key(), "other")
            .expect("free after a restart too");
        // Records without the field are not being removed.
        let old = serde_json::to_value(sample("x")).expect("json");
        assert!(old.get("removing").is_none());
    }

    #[test]
    fn exit_reasons() {
        let mut r = sample("a");
        assert!(r.set_exited(0, 5));
        assert_eq!(r.reason, "Completed");
        assert!(!r.set_exited(1, 6));
        let mut r = sample("b");
        r.oom_killed = true;
        r.set_exited(137, 1);
        assert_eq!(r.reason, "OOMKilled");
        let mut r = sample("c");
        r.set_exited(3, 1);
        assert_eq!(r.reason, "Error");
    }
}
