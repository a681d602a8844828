//! Images service: the records.

use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{
    CreateImageRequest, DeleteImageRequest, GetImageRequest, Image as PbImage, ListImagesRequest,
    UpdateImageRequest,
};
use containerd_client::tonic::transport::Channel;

use super::{absent_ok, err, Client};
use crate::error::Result;
use crate::types::Image;
use crate::Images;

fn image(i: PbImage) -> Image {
    Image {
        name: i.name,
        labels: i.labels,
        target: i.target.unwrap_or_default(),
    }
}

fn pb_image(i: Image) -> PbImage {
    PbImage {
        name: i.name,
        labels: i.labels,
        target: Some(i.target),
        created_at: None,
        updated_at: None,
    }
}

impl Client {
    fn images_client(&self) -> ImagesClient<Channel> {
        ImagesClient::new(self.channel.clone())
    }
}

#[async_trait::async_trait]
impl Images for Client {
    async fn image(&self, name: &str) -> Result<Option<Image>> {
        let r = self
            .images_client()
            .get(self.req(GetImageRequest {
                name: name.to_string(),
            }))
            .await
            .map_err(err(format!("image get {name}")));
        Ok(absent_ok(r)?.and_then(|r| r.into_inner().image).map(image))
    }

    async fn images(&self) -> Result<Vec<Image>> {
        let r = self
            .images_client()
            .list(self.req(ListImagesRequest { filters: vec![] }))
            .await
            .map_err(err("image list"))?;
        Ok(r.into_inner().images.into_iter().map(image).collect())
    }

    async fn put_image(&self, i: Image) -> Result<()> {
        let name = i.name.clone();
        let img = pb_image(i);
        let created = self
            .images_client()
            .create(self.req(CreateImageRequest {
                image: Some(img.clone()),
                source_date_epoch: None,
            }))
            .await
            .map_err(err(format!("image create {name}")));
        match created {
            Ok(_) => Ok(()),
            Err(e) if e.is_already_exists() => {
                self.images_client()
                    .update(self.req(UpdateImageRequest {
                        image: Some(img),
                        update_mask: None,
                        source_date_epoch: None,
                    }))
                    .await
                    .map_err(err(format!("image update {name}")))?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn delete_image(&self, name: &str, sync: bool) -> Result<()> {
        let r = self
            .images_client()
            .delete(self.req(DeleteImageRequest {
                name: name.to_string(),
                sync,
                target: None,
            }))
            .await
            .map_err(err(format!("image delete {name}")));
        absent_ok(r).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Descriptor;

    #[test]
    fn records_round_trip() {
        let i = Image {
            name: "docker.io/library/busybox:1".into(),
            labels: [("io.crius.image.id".to_string(), "sha256:1".to_string())].into(),
            target: Descriptor {
                digest: "sha256:2".into(),
                ..Default::default()
            },
        };
        assert_eq!(image(pb_image(i.clone())), i);
    }
}
