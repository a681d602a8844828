//! Content service (blobs, written as a stream) and the Diff service that unpacks them.

use std::collections::HashMap;

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::{
    ApplyRequest, Info, InfoRequest, ReadContentRequest, UpdateRequest, WriteAction,
    WriteContentRequest, WriteContentResponse,
};
use containerd_client::tonic::codec::Streaming;
use containerd_client::tonic::transport::Channel;
use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::{err, Client};
use crate::error::{Error, Result};
use crate::types::{ByteStream, Descriptor, Mount};
use crate::Content;

/// Largest chunk sent in one Write message (containerd's gRPC limit is 16 MiB).
const CHUNK: usize = 1 << 20;
const PROGRESS_EVERY: i64 = 32 << 20;

impl Client {
    fn content_client(&self) -> ContentClient<Channel> {
        ContentClient::new(self.channel.clone())
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }
}

fn write_msg(action: WriteAction, r#ref: &str) -> WriteContentRequest {
    WriteContentRequest {
        action: action as i32,
        r#ref: r#ref.to_string(),
        ..Default::default()
    }
}

async fn next(resp: &mut Streaming<WriteContentResponse>, op: &str) -> Result<()> {
    match resp.message().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Error::new(
            containerd_client::tonic::Code::Internal,
            op,
            "stream ended early",
        )),
        Err(s) => Err(Error::from_status(op, &s)),
    }
}

#[async_trait::async_trait]
impl Content for Client {
    async fn content_exists(&self, digest: &str) -> Result<bool> {
        let r = self
            .content_client()
            .info(self.req(InfoRequest {
                digest: digest.to_string(),
            }))
            .await
            .map_err(err(format!("content info {digest}")));
        Ok(super::absent_ok(r)?.is_some())
    }

    async fn read_content(&self, digest: &str) -> Result<Vec<u8>> {
        let op = format!("content read {digest}");
        let mut stream = self
            .content_client()
            .read(self.req(ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(err(op.clone()))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = stream.message().await.map_err(err(op.clone()))? {
            out.extend_from_slice(&m.data);
        }
        Ok(out)
    }

    async fn write_content(
        &self,
        digest: &str,
        size: i64,
        labels: HashMap<String, String>,
        mut data: ByteStream,
    ) -> Result<u64> {
        let op = format!("content write {digest}");
        // A fresh ref per attempt: a crashed earlier attempt's ingest cannot lock us out.
        let r#ref = format!(
            "crius-{}-{}",
            digest.replace(':', "-"),
            uuid::Uuid::new_v4().simple()
        );
        let (tx, rx) = tokio::sync::mpsc::channel::<WriteContentRequest>(4);
        let send = |msg| {
            let tx = tx.clone();
            let op = op.clone();
            async move {
                tx.send(msg).await.map_err(|_| {
                    Error::new(
                        containerd_client::tonic::Code::Internal,
                        op,
                        "write stream closed",
                    )
                })
            }
        };
        // The first message goes in before the call: the server answers headers only after reading one.
        send(write_msg(WriteAction::Stat, &r#ref)).await?;
        let mut resp = self
            .content_client()
            .write(self.req(ReceiverStream::new(rx)))
            .await
            .map_err(err(op.clone()))?
            .into_inner();
        next(&mut resp, &op).await?;
        let mut offset: i64 = 0;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|e| Error::Source {
                op: format!("download {digest}"),
                msg: e.to_string(),
            })?;
            for piece in chunk.chunks(CHUNK) {
                send(WriteContentRequest {
                    offset,
                    data: piece.to_vec(),
                    ..write_msg(WriteAction::Write, &r#ref)
                })
                .await?;
                next(&mut resp, &op).await?;
                offset += piece.len() as i64;
                // Big layers: say how far along they are every 32 MiB.
                if offset / PROGRESS_EVERY != (offset - piece.len() as i64) / PROGRESS_EVERY {
                    tracing::info!(blob = %digest, bytes = offset, total = size, "pull: progress");
                }
            }
        }
        send(WriteContentRequest {
            offset,
            total: size,
            expected: digest.to_string(),
            labels,
            ..write_msg(WriteAction::Commit, &r#ref)
        })
        .await?;
        match next(&mut resp, &op).await {
            Ok(()) => Ok(offset as u64),
            // Someone else (a concurrent pull) committed the same blob first: fine.
            Err(e) if e.is_already_exists() => Ok(0),
            Err(e) => Err(e),
        }
    }

    async fn set_content_labels(
        &self,
        digest: &str,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        if labels.is_empty() {
            return Ok(());
        }
        let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        self.content_client()
            .update(self.req(UpdateRequest {
                info: Some(Info {
                    digest: digest.to_string(),
                    labels,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
            }))
            .await
            .map_err(err(format!("content update labels {digest}")))?;
        Ok(())
    }

    async fn apply_diff(&self, layer: Descriptor, mounts: Vec<Mount>) -> Result<Descriptor> {
        let op = format!("diff apply {}", layer.digest);
        let applied = DiffClient::new(self.channel.clone())
            .apply(self.req(ApplyRequest {
                diff: Some(layer),
                mounts,
                payloads: HashMap::new(),
                sync_fs: false,
            }))
            .await
            .map_err(err(op))?
            .into_inner()
            .applied;
        Ok(applied.unwrap_or_default())
    }
}
