//! containerd image records in criusd's namespace. Each pulled image has one record
//! per name (tag and `repo@digest`), all pointing at the platform manifest and
//! labelled with what CRI's ImageStatus needs, so listing never reads blobs.

use std::collections::HashMap;

use containerd_client::services::v1::{
    CreateImageRequest, DeleteImageRequest, GetImageRequest, Image, ListImagesRequest,
    UpdateImageRequest,
};
use containerd_client::tonic::Code;
use containerd_client::types::Descriptor;

use crate::ctrd::Ctrd;
use crate::error::{CtrdContext, Error, Result};

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
            target: img.target,
        })
    }
}

pub async fn get(ctrd: &Ctrd, name: &str) -> Result<Option<Record>> {
    match ctrd
        .images()
        .get(ctrd.req(GetImageRequest {
            name: name.to_string(),
        }))
        .await
    {
        Ok(r) => Ok(r.into_inner().image.and_then(Record::from_image)),
        Err(s) if s.code() == Code::NotFound => Ok(None),
        Err(s) => Err(Error::containerd(format!("image get {name}"), s)),
    }
}

/// All crius-made image records (others in the namespace, without our labels, are skipped).
pub async fn list(ctrd: &Ctrd) -> Result<Vec<Record>> {
    let resp = ctrd
        .images()
        .list(ctrd.req(ListImagesRequest { filters: vec![] }))
        .await
        .step("image list")?;
    Ok(resp
        .into_inner()
        .images
        .into_iter()
        .filter_map(Record::from_image)
        .collect())
}

/// Create or replace the record `name`.
pub async fn put(
    ctrd: &Ctrd,
    lease: Option<&str>,
    name: &str,
    target: Descriptor,
    labels: HashMap<String, String>,
) -> Result<()> {
    let image = Image {
        name: name.to_string(),
        labels,
        target: Some(target),
        created_at: None,
        updated_at: None,
    };
    match ctrd
        .images()
        .create(ctrd.req_lease(
            CreateImageRequest {
                image: Some(image.clone()),
                source_date_epoch: None,
            },
            lease,
        ))
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == Code::AlreadyExists => {
            ctrd.images()
                .update(ctrd.req_lease(
                    UpdateImageRequest {
                        image: Some(image),
                        update_mask: None,
                        source_date_epoch: None,
                    },
                    lease,
                ))
                .await
                .step(&format!("image update {name}"))?;
            Ok(())
        }
        Err(s) => Err(Error::containerd(format!("image create {name}"), s)),
    }
}

/// Delete a record; `sync` waits for containerd's GC (content and snapshots go too).
pub async fn delete(ctrd: &Ctrd, name: &str, sync: bool) -> Result<()> {
    match ctrd
        .images()
        .delete(ctrd.req(DeleteImageRequest {
            name: name.to_string(),
            sync,
            target: None,
        }))
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == Code::NotFound => Ok(()),
        Err(s) => Err(Error::containerd(format!("image delete {name}"), s)),
    }
}
