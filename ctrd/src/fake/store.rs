//! The fake's records: containers, snapshots, images, blobs.

use std::collections::HashMap;

use containerd_client::tonic::Code;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::{exists, not_found, precondition, Fake};
use crate::error::{Error, Result};
use crate::types::*;
use crate::{Containers, Content, Images, Snapshots};

#[async_trait::async_trait]
impl Containers for Fake {
    async fn create_container(&self, c: NewContainer) -> Result<()> {
        let op = format!("container create {}", c.id);
        let mut st = self.call("create_container", &c.id)?;
        if st.containers.contains_key(&c.id) {
            return Err(exists(op, &format!("container {}", c.id)));
        }
        st.containers.insert(
            c.id.clone(),
            ContainerInfo {
                id: c.id,
                labels: c.labels,
                image: c.image,
                runtime: c.runtime,
                spec: c.spec,
                snapshot_key: c.snapshot_key,
                runtime_binary: c.runtime_binary,
            },
        );
        Ok(())
    }

    async fn container(&self, id: &str) -> Result<ContainerInfo> {
        let st = self.call("container", id)?;
        st.containers
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(format!("container get {id}"), &format!("container {id}")))
    }

    async fn containers(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>> {
        let st = self.call("containers", "")?;
        Ok(st
            .containers
            .values()
            .filter(|c| {
                labels
                    .iter()
                    .all(|(k, v)| c.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .cloned()
            .collect())
    }

    async fn update_container_spec(&self, id: &str, spec: Vec<u8>) -> Result<()> {
        let mut st = self.call("update_container_spec", id)?;
        match st.containers.get_mut(id) {
            Some(c) => {
                c.spec = spec;
                Ok(())
            }
            None => Err(not_found(
                format!("container update {id}"),
                &format!("container {id}"),
            )),
        }
    }

    async fn delete_container(&self, id: &str) -> Result<()> {
        let mut st = self.call("delete_container", id)?;
        // Stricter than containerd (which leaves the task to its shim): a container deleted
        // under its task is a leak in the caller.
        if st.tasks.contains_key(id) {
            return Err(precondition(
                format!("container delete {id}"),
                format!("container {id} still has a task"),
            ));
        }
        st.containers.remove(id);
        Ok(())
    }
}

/// The one mount a snapshot hands out (it names no real directory).
fn mounts_of(key: &str, kind: SnapshotKind) -> Vec<Mount> {
    let rw = if kind == SnapshotKind::View {
        "ro"
    } else {
        "rw"
    };
    vec![Mount {
        r#type: "bind".into(),
        source: format!("/fake/snapshots/{key}"),
        target: String::new(),
        options: vec!["rbind".into(), rw.into()],
    }]
}

/// containerd's snapshot filters, the forms crius uses: `name~="^prefix"`, `labels."k"`,
/// `labels."k"==v`. Others are INVALID_ARGUMENT (not modelled).
fn matches(filter: &str, s: &SnapshotInfo) -> Result<bool> {
    if let Some(rest) = filter.strip_prefix("name~=\"^") {
        let prefix = rest.strip_suffix('"').unwrap_or(rest);
        return Ok(s.name.starts_with(prefix));
    }
    if let Some(rest) = filter.strip_prefix("labels.\"") {
        if let Some((key, tail)) = rest.split_once('"') {
            return Ok(match tail.strip_prefix("==") {
                Some(v) => s.labels.get(key).map(String::as_str) == Some(v),
                None if tail.is_empty() => s.labels.contains_key(key),
                None => false,
            });
        }
    }
    Err(Error::new(
        Code::InvalidArgument,
        "snapshot list",
        format!("filter {filter:?} is not modelled by the fake"),
    ))
}

impl Fake {
    fn add_snapshot(
        &self,
        verb: &str,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
        kind: SnapshotKind,
    ) -> Result<Vec<Mount>> {
        let op = format!("snapshot {verb} {key}");
        let mut st = self.call(verb, key)?;
        if st.snapshots.contains_key(key) {
            return Err(exists(op, &format!("snapshot {key}")));
        }
        if !parent.is_empty() {
            match st.snapshots.get(parent) {
                None => return Err(not_found(op, &format!("parent snapshot {parent}"))),
                Some(p) if p.kind != SnapshotKind::Committed => {
                    return Err(Error::new(
                        Code::InvalidArgument,
                        op,
                        format!("parent {parent} is not committed"),
                    ))
                }
                Some(_) => {}
            }
        }
        st.snapshots.insert(
            key.to_string(),
            SnapshotInfo {
                name: key.to_string(),
                parent: parent.to_string(),
                kind,
                labels,
            },
        );
        Ok(mounts_of(key, kind))
    }

    /// A committed snapshot `name` (an unpacked image layer) to prepare and view on.
    pub fn add_committed_snapshot(&self, name: &str, parent: &str) {
        self.state().snapshots.insert(
            name.to_string(),
            SnapshotInfo {
                name: name.to_string(),
                parent: parent.to_string(),
                kind: SnapshotKind::Committed,
                labels: HashMap::new(),
            },
        );
    }
}

#[async_trait::async_trait]
impl Snapshots for Fake {
    async fn prepare_snapshot(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>> {
        self.add_snapshot(
            "prepare_snapshot",
            key,
            parent,
            labels,
            SnapshotKind::Active,
        )
    }

    async fn view_snapshot(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>> {
        self.add_snapshot("view_snapshot", key, parent, labels, SnapshotKind::View)
    }

    async fn snapshot_mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let st = self.call("snapshot_mounts", key)?;
        match st.snapshots.get(key) {
            Some(s) if s.kind != SnapshotKind::Committed => Ok(mounts_of(key, s.kind)),
            Some(_) => Err(Error::new(
                Code::InvalidArgument,
                format!("snapshot mounts {key}"),
                "a committed snapshot has no mounts",
            )),
            None => Err(not_found(
                format!("snapshot mounts {key}"),
                &format!("snapshot {key}"),
            )),
        }
    }

    async fn commit_snapshot(&self, name: &str, key: &str) -> Result<()> {
        let op = format!("snapshot commit {name}");
        let mut st = self.call("commit_snapshot", key)?;
        if st.snapshots.contains_key(name) {
            return Err(exists(op, &format!("snapshot {name}")));
        }
        let Some(mut s) = st.snapshots.remove(key) else {
            return Err(not_found(op, &format!("snapshot {key}")));
        };
        if s.kind != SnapshotKind::Active {
            st.snapshots.insert(key.to_string(), s);
            return Err(precondition(op, format!("snapshot {key} is not active")));
        }
        s.name = name.to_string();
        s.kind = SnapshotKind::Committed;
        st.snapshots.insert(name.to_string(), s);
        Ok(())
    }

    async fn snapshot(&self, key: &str) -> Result<Option<SnapshotInfo>> {
        let st = self.call("snapshot", key)?;
        Ok(st.snapshots.get(key).cloned())
    }

    async fn snapshots(&self, filters: Vec<String>) -> Result<Vec<SnapshotInfo>> {
        let st = self.call("snapshots", "")?;
        let mut out = Vec::new();
        for s in st.snapshots.values() {
            // containerd's filters: any one of the list matches.
            let mut keep = filters.is_empty();
            for f in &filters {
                keep |= matches(f, s)?;
            }
            if keep {
                out.push(s.clone());
            }
        }
        Ok(out)
    }

    async fn snapshot_usage(&self, key: &str) -> Result<Usage> {
        let st = self.call("snapshot_usage", key)?;
        match st.snapshots.contains_key(key) {
            true => Ok(Usage::default()),
            false => Err(not_found(
                format!("snapshot usage {key}"),
                &format!("snapshot {key}"),
            )),
        }
    }

    async fn remove_snapshot(&self, key: &str) -> Result<()> {
        let mut st = self.call("remove_snapshot", key)?;
        if st.snapshots.values().any(|s| s.parent == key) {
            return Err(precondition(
                format!("snapshot remove {key}"),
                format!("cannot remove snapshot {key} with children"),
            ));
        }
        st.snapshots.remove(key);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Images for Fake {
    async fn image(&self, name: &str) -> Result<Option<Image>> {
        Ok(self.call("image", name)?.images.get(name).cloned())
    }

    async fn images(&self) -> Result<Vec<Image>> {
        Ok(self.call("images", "")?.images.values().cloned().collect())
    }

    async fn put_image(&self, image: Image) -> Result<()> {
        let mut st = self.call("put_image", &image.name)?;
        st.images.insert(image.name.clone(), image);
        drop(st);
        let _ = self.inner.events.send(TaskEvent::ImagesChanged);
        Ok(())
    }

    async fn delete_image(&self, name: &str, _sync: bool) -> Result<()> {
        let gone = self.call("delete_image", name)?.images.remove(name);
        if gone.is_some() {
            let _ = self.inner.events.send(TaskEvent::ImagesChanged);
        }
        Ok(())
    }
}

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

#[async_trait::async_trait]
impl Content for Fake {
    async fn content_exists(&self, digest: &str) -> Result<bool> {
        Ok(self
            .call("content_exists", digest)?
            .blobs
            .contains_key(digest))
    }

    async fn read_content(&self, digest: &str) -> Result<Vec<u8>> {
        let st = self.call("read_content", digest)?;
        st.blobs.get(digest).map(|(b, _)| b.clone()).ok_or_else(|| {
            not_found(
                format!("content read {digest}"),
                &format!("content {digest}"),
            )
        })
    }

    async fn write_content(
        &self,
        digest: &str,
        size: i64,
        labels: HashMap<String, String>,
        mut data: ByteStream,
    ) -> Result<u64> {
        let op = format!("content write {digest}");
        drop(self.call("write_content", digest)?);
        let mut buf = Vec::new();
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|e| Error::Source {
                op: format!("download {digest}"),
                msg: e.to_string(),
            })?;
            buf.extend_from_slice(&chunk);
        }
        if buf.len() as i64 != size || digest_of(&buf) != digest {
            return Err(precondition(
                op,
                format!(
                    "unexpected commit digest {}, expected {digest} ({} bytes, {size} expected)",
                    digest_of(&buf),
                    buf.len()
                ),
            ));
        }
        let mut st = self.state();
        if st.blobs.contains_key(digest) {
            return Ok(0);
        }
        st.blobs.insert(digest.to_string(), (buf, labels));
        Ok(size as u64)
    }

    async fn set_content_labels(
        &self,
        digest: &str,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        if labels.is_empty() {
            return Ok(());
        }
        let mut st = self.call("set_content_labels", digest)?;
        match st.blobs.get_mut(digest) {
            Some((_, l)) => {
                l.extend(labels);
                Ok(())
            }
            None => Err(not_found(
                format!("content update labels {digest}"),
                &format!("content {digest}"),
            )),
        }
    }

    async fn apply_diff(&self, layer: Descriptor, _mounts: Vec<Mount>) -> Result<Descriptor> {
        drop(self.call("apply_diff", &layer.digest)?);
        Err(Error::new(
            Code::Unimplemented,
            format!("diff apply {}", layer.digest),
            "the fake does not unpack layers",
        ))
    }
}
