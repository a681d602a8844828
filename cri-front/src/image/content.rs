//! containerd's content store: write a blob as a stream (Content.Write), read small
//! blobs back, and keep GC reference labels on them.

use std::collections::HashMap;

use containerd_client::services::v1::{
    Info, InfoRequest, ReadContentRequest, UpdateRequest, WriteAction, WriteContentRequest,
};
use containerd_client::tonic::Code;
use futures::{Stream, StreamExt};
use prost_types::FieldMask;
use tokio_stream::wrappers::ReceiverStream;

use crate::ctrd::Ctrd;
use crate::error::{CtrdContext, Error, Result};

/// Largest chunk sent in one Write message (containerd's gRPC limit is 16 MiB).
const CHUNK: usize = 1 << 20;
const PROGRESS_EVERY: i64 = 32 << 20;

/// Is the blob already in the store?
pub async fn exists(ctrd: &Ctrd, digest: &str) -> Result<bool> {
    match ctrd
        .content()
        .info(ctrd.req(InfoRequest {
            digest: digest.to_string(),
        }))
        .await
    {
        Ok(_) => Ok(true),
        Err(s) if s.code() == Code::NotFound => Ok(false),
        Err(s) => Err(Error::containerd(format!("content info {digest}"), s)),
    }
}

/// Stream `data` into the store as `digest`, verified by containerd against digest and size.
/// Returns the bytes written (0 if the blob was already there).
pub async fn write<S>(
    ctrd: &Ctrd,
    lease: Option<&str>,
    digest: &str,
    size: i64,
    labels: HashMap<String, String>,
    data: S,
) -> Result<u64>
where
    S: Stream<Item = std::io::Result<bytes::Bytes>> + Unpin,
{
    // A fresh ref per attempt: a crashed earlier attempt's ingest cannot lock us out.
    let r#ref = format!(
        "crius-{}-{}",
        digest.replace(':', "-"),
        uuid::Uuid::new_v4().simple()
    );
    let (tx, rx) = tokio::sync::mpsc::channel::<WriteContentRequest>(4);
    let send = |msg| {
        let tx = tx.clone();
        async move {
            tx.send(msg)
                .await
                .map_err(|_| Error::Internal("content write stream closed".into()))
        }
    };
    // The first message goes in before the call: the server answers headers only after reading one.
    send(WriteContentRequest {
        action: WriteAction::Stat as i32,
        r#ref: r#ref.clone(),
        ..Default::default()
    })
    .await?;
    let mut resp = ctrd
        .content()
        .write(ctrd.req_lease(ReceiverStream::new(rx), lease))
        .await
        .step(&format!("content write {digest}"))?
        .into_inner();
    let step = format!("content write {digest}");
    next(&mut resp, &step).await?;

    let mut offset: i64 = 0;
    let mut data = data;
    while let Some(chunk) = data.next().await {
        let chunk = chunk.map_err(|e| Error::Unavailable(format!("download {digest}: {e}")))?;
        for piece in chunk.chunks(CHUNK) {
            send(WriteContentRequest {
                action: WriteAction::Write as i32,
                r#ref: r#ref.clone(),
                offset,
                data: piece.to_vec(),
                ..Default::default()
            })
            .await?;
            next(&mut resp, &step).await?;
            offset += piece.len() as i64;
            // Big layers: say how far along they are every 32 MiB.
            if offset / PROGRESS_EVERY != (offset - piece.len() as i64) / PROGRESS_EVERY {
                tracing::info!(blob = %digest, bytes = offset, total = size, "pull: progress");
            }
        }
    }
    send(WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: r#ref.clone(),
        offset,
        total: size,
        expected: digest.to_string(),
        labels,
        ..Default::default()
    })
    .await?;
    match next(&mut resp, &step).await {
        Ok(()) => Ok(offset as u64),
        // Someone else (a concurrent pull) committed the same blob first: fine.
        Err(Error::Containerd { status, .. }) if status.code() == Code::AlreadyExists => Ok(0),
        Err(e) => Err(e),
    }
}

async fn next(
    resp: &mut containerd_client::tonic::codec::Streaming<
        containerd_client::services::v1::WriteContentResponse,
    >,
    step: &str,
) -> Result<()> {
    match resp.message().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Error::Internal(format!("{step}: stream ended early"))),
        Err(s) => Err(Error::containerd(step, s)),
    }
}

/// Read a whole (small) blob: manifests, configs.
pub async fn read(ctrd: &Ctrd, digest: &str) -> Result<Vec<u8>> {
    let step = format!("content read {digest}");
    let mut stream = ctrd
        .content()
        .read(ctrd.req(ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        }))
        .await
        .step(&step)?
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = stream.message().await.step(&step)? {
        out.extend_from_slice(&m.data);
    }
    Ok(out)
}

/// Set labels on an existing blob (GC references for content pulled before).
pub async fn set_labels(ctrd: &Ctrd, digest: &str, labels: HashMap<String, String>) -> Result<()> {
    if labels.is_empty() {
        return Ok(());
    }
    let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
    ctrd.content()
        .update(ctrd.req(UpdateRequest {
            info: Some(Info {
                digest: digest.to_string(),
                labels,
                ..Default::default()
            }),
            update_mask: Some(FieldMask { paths }),
        }))
        .await
        .step(&format!("content update labels {digest}"))?;
    Ok(())
}
