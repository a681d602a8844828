//! CRI ImageService over [`Images`].

use crius_proto::runtime as cri;
use crius_proto::tonic::{Request, Response, Status};
use crius_proto::ImageService;

use super::Images;

pub struct ImageSvc {
    pub images: Images,
}

fn image_of(spec: Option<&cri::ImageSpec>) -> Result<&str, Status> {
    match spec {
        Some(s) if !s.image.trim().is_empty() => Ok(s.image.as_str()),
        _ => Err(Status::invalid_argument("image spec is missing or empty")),
    }
}

#[crius_proto::tonic::async_trait]
impl ImageService for ImageSvc {
    async fn list_images(
        &self,
        req: Request<cri::ListImagesRequest>,
    ) -> Result<Response<cri::ListImagesResponse>, Status> {
        let filter = req
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|s| s.image)
            .filter(|s| !s.is_empty());
        let images = match filter {
            Some(f) => self.images.find(&f).await?.into_iter().collect(),
            None => self.images.list().await?,
        };
        Ok(Response::new(cri::ListImagesResponse {
            images: images.iter().map(|v| self.images.to_cri(v)).collect(),
        }))
    }

    type StreamImagesStream =
        futures::stream::Iter<std::vec::IntoIter<Result<cri::StreamImagesResponse, Status>>>;

    async fn stream_images(
        &self,
        req: Request<cri::StreamImagesRequest>,
    ) -> Result<Response<Self::StreamImagesStream>, Status> {
        let filter = req.into_inner().filter;
        let list = self
            .list_images(Request::new(cri::ListImagesRequest { filter }))
            .await?
            .into_inner();
        // Batches of 100 keep each message far below gRPC's size limit.
        let batches: Vec<_> = list
            .images
            .chunks(100)
            .map(|c| Ok(cri::StreamImagesResponse { images: c.to_vec() }))
            .collect();
        Ok(Response::new(futures::stream::iter(batches)))
    }

    async fn image_status(
        &self,
        req: Request<cri::ImageStatusRequest>,
    ) -> Result<Response<cri::ImageStatusResponse>, Status> {
        let req = req.into_inner();
        let image = image_of(req.image.as_ref())?;
        crate::rpc::image(image);
        let found = self.images.find(image).await?;
        let mut info = std::collections::HashMap::new();
        if req.verbose {
            if let Some(v) = &found {
                // The image config as containerd's CRI plugin shows it (`imageSpec`).
                let spec = self
                    .images
                    .ctrd
                    .read_content(&v.id)
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .unwrap_or_default();
                let j = serde_json::json!({
                    "id": v.id, "names": v.names, "size": v.size, "user": v.user, "imageSpec": spec,
                });
                info.insert("info".to_string(), j.to_string());
            }
        }
        Ok(Response::new(cri::ImageStatusResponse {
            image: found.map(|v| self.images.to_cri(&v)),
            info,
        }))
    }

    async fn pull_image(
        &self,
        req: Request<cri::PullImageRequest>,
    ) -> Result<Response<cri::PullImageResponse>, Status> {
        let req = req.into_inner();
        let image = image_of(req.image.as_ref())?;
        crate::rpc::image(image);
        tracing::info!("PullImage");
        // A failure is logged by the RPC layer, in this span (with the image).
        let id = self.images.pull(image, req.auth.as_ref()).await?;
        Ok(Response::new(cri::PullImageResponse { image_ref: id }))
    }

    async fn remove_image(
        &self,
        req: Request<cri::RemoveImageRequest>,
    ) -> Result<Response<cri::RemoveImageResponse>, Status> {
        let req = req.into_inner();
        let image = image_of(req.image.as_ref())?;
        crate::rpc::image(image);
        self.images.remove(image).await?;
        Ok(Response::new(cri::RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _req: Request<cri::ImageFsInfoRequest>,
    ) -> Result<Response<cri::ImageFsInfoResponse>, Status> {
        let (bytes, inodes) = self.images.fs_usage().await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
        let usage = cri::FilesystemUsage {
            timestamp: now,
            fs_id: Some(cri::FilesystemIdentifier {
                mountpoint: self.images.fs_root().await,
            }),
            used_bytes: Some(cri::UInt64Value { value: bytes }),
            inodes_used: Some(cri::UInt64Value { value: inodes }),
        };
        Ok(Response::new(cri::ImageFsInfoResponse {
            image_filesystems: vec![usage.clone()],
            // Writable layers live in the same snapshotter.
            container_filesystems: vec![usage],
        }))
    }
}
