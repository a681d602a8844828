//! containerd image records in criusd's namespace. Each pulled image has one record
//! per name (tag and `repo@digest`), all pointing at the platform manifest and
//! labelled with what CRI's ImageStatus needs, so listing never reads blobs.

use std::collections::HashMap;

use crius_ctrd::{Containerd, Descriptor, Image};

use crate::error::Result;

/// Image id (config digest).
pub const LABEL_ID: &str = "io.crius.image.id";
/// Sum of the manifest, config and layer sizes.
pub const LABEL_SIZE: &str = "io.crius.image.size";
/// The config's `User`, verbatim.
pub const LABEL_USER: &str = "io.crius.image.user";

/// One image record, the part criusd reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub name: String,
    pub id: String,
    pub size: u64,
    pub user: String,
    pub target: Option<Descriptor>,
}

impl Record {
    fn from_image(img: Image) -> Option<Record> {
        let id = img.labels.get(LABEL_ID)?.clone();
        Some(Record {
            name: img.name,
            size: img
                .labels
                .get(LABEL_SIZE)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            user: img.labels.get(LABEL_USER).cloned().unwrap_or_default(),
            id,
            target: Some(img.target),
        })
    }
}

pub async fn get(ctrd: &dyn Containerd, name: &str) -> Result<Option<Record>> {
    Ok(ctrd.image(name).await?.and_then(Record::from_image))
}

/// All crius-made image records (others in the namespace, without our labels, are skipped).
pub async fn list(ctrd: &dyn Containerd) -> Result<Vec<Record>> {
    Ok(ctrd
        .images()
        .await?
        .into_iter()
        .filter_map(Record::from_image)
        .collect())
}

/// Create or replace the record `name` (under the lease `ctrd` holds, if any).
pub async fn put(
    ctrd: &dyn Containerd,
    name: &str,
    target: Descriptor,
    labels: HashMap<String, String>,
) -> Result<()> {
    Ok(ctrd
        .put_image(Image {
            name: name.to_string(),
            labels,
            target,
        })
        .await?)
}

/// Delete a record; `sync` waits for containerd's GC (content and snapshots go too).
pub async fn delete(ctrd: &dyn Containerd, name: &str, sync: bool) -> Result<()> {
    Ok(ctrd.delete_image(name, sync).await?)
}
