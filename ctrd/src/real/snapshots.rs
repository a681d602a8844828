//! Snapshots service, in the client's snapshotter.

use std::collections::HashMap;

use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, Info, Kind, ListSnapshotsRequest, MountsRequest, PrepareSnapshotRequest,
    RemoveSnapshotRequest, StatSnapshotRequest, UsageRequest, ViewSnapshotRequest,
};
use containerd_client::tonic::transport::Channel;

use super::{absent_ok, err, Client};
use crate::error::Result;
use crate::types::{Mount, SnapshotInfo, SnapshotKind, Usage};
use crate::Snapshots;

fn info(i: Info) -> SnapshotInfo {
    SnapshotInfo {
        kind: match Kind::try_from(i.kind) {
            Ok(Kind::View) => SnapshotKind::View,
            Ok(Kind::Active) => SnapshotKind::Active,
            Ok(Kind::Committed) => SnapshotKind::Committed,
            _ => SnapshotKind::Unknown,
        },
        name: i.name,
        parent: i.parent,
        labels: i.labels,
    }
}

impl Client {
    fn snapshots_client(&self) -> SnapshotsClient<Channel> {
        SnapshotsClient::new(self.channel.clone())
    }

    fn sn(&self) -> String {
        self.snapshotter.to_string()
    }
}

#[async_trait::async_trait]
impl Snapshots for Client {
    async fn prepare_snapshot(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>> {
        let r = self
            .snapshots_client()
            .prepare(self.req(PrepareSnapshotRequest {
                snapshotter: self.sn(),
                key: key.to_string(),
                parent: parent.to_string(),
                labels,
            }))
            .await
            .map_err(err(format!("snapshot prepare {key}")))?;
        Ok(r.into_inner().mounts)
    }

    async fn view_snapshot(
        &self,
        key: &str,
        parent: &str,
        labels: HashMap<String, String>,
    ) -> Result<Vec<Mount>> {
        let r = self
            .snapshots_client()
            .view(self.req(ViewSnapshotRequest {
                snapshotter: self.sn(),
                key: key.to_string(),
                parent: parent.to_string(),
                labels,
            }))
            .await
            .map_err(err(format!("snapshot view {key}")))?;
        Ok(r.into_inner().mounts)
    }

    async fn snapshot_mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let r = self
            .snapshots_client()
            .mounts(self.req(MountsRequest {
                snapshotter: self.sn(),
                key: key.to_string(),
            }))
            .await
            .map_err(err(format!("snapshot mounts {key}")))?;
        Ok(r.into_inner().mounts)
    }

    async fn commit_snapshot(&self, name: &str, key: &str) -> Result<()> {
        self.snapshots_client()
            .commit(self.req(CommitSnapshotRequest {
                snapshotter: self.sn(),
                name: name.to_string(),
                key: key.to_string(),
                labels: HashMap::new(),
            }))
            .await
            .map_err(err(format!("snapshot commit {name}")))?;
        Ok(())
    }

    async fn snapshot(&self, key: &str) -> Result<Option<SnapshotInfo>> {
        let r = self
            .snapshots_client()
            .stat(self.req(StatSnapshotRequest {
                snapshotter: self.sn(),
                key: key.to_string(),
            }))
            .await
            .map_err(err(format!("snapshot stat {key}")));
        Ok(absent_ok(r)?.and_then(|r| r.into_inner().info).map(info))
    }

    async fn snapshots(&self, filters: Vec<String>) -> Result<Vec<SnapshotInfo>> {
        let mut stream = self
            .snapshots_client()
            .list(self.req(ListSnapshotsRequest {
                snapshotter: self.sn(),
                filters,
            }))
            .await
            .map_err(err("snapshot list"))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = stream.message().await.map_err(err("snapshot list"))? {
            out.extend(m.info.into_iter().map(info));
        }
        Ok(out)
    }

    async fn snapshot_usage(&self, key: &str) -> Result<Usage> {
        let u = self
            .snapshots_client()
            .usage(self.req(UsageRequest {
                snapshotter: self.sn(),
                key: key.to_string(),
            }))
            .await
            .map_err(err(format!("snapshot usage {key}")))?
            .into_inner();
        Ok(Usage {
            bytes: u.size.max(0) as u64,
            inodes: u.inodes.max(0) as u64,
        })
    }

    async fn remove_snapshot(&self, key: &str) -> Result<()> {
        let r = self
            .snapshots_client()
            .remove(self.req(RemoveSnapshotRequest {
                snapshotter: self.sn(),
                key: key.to_string(),
            }))
            .await
            .map_err(err(format!("snapshot remove {key}")));
        absent_ok(r).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infos_keep_kind_and_labels() {
        let i = info(Info {
            name: "crius-view-1".into(),
            parent: "sha256:abc".into(),
            kind: Kind::View as i32,
            labels: HashMap::from([("a".into(), "b".into())]),
            ..Default::default()
        });
        assert_eq!(i.kind, SnapshotKind::View);
        assert_eq!(i.parent, "sha256:abc");
        assert_eq!(i.labels["a"], "b");
    }
}
