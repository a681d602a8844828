//! Images: pull into containerd, and answer CRI's image questions from containerd's
//! image records (see [`records`]), kept in memory while nothing changes them ([`cache`]).

pub mod cache;
pub mod hosts;
pub mod manifest;
pub mod pull;
pub mod records;
pub mod reference;
pub mod registry;
pub mod service;

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use crius_proto::runtime as cri;

use crius_ctrd::Containerd;

use crate::error::{Error, Result};
use manifest::{chain_ids, ImageConfigFile, Manifest};
pub use reference::is_digest_name;
use reference::ImageName;
use registry::Auth;

/// criusd's image side.
#[derive(Clone)]
pub struct Images {
    pub ctrd: std::sync::Arc<dyn Containerd>,
    pub snapshotter: String,
    pub registry_config_dir: PathBuf,
    /// ImageFsInfo's mountpoint when containerd does not say (see [`Images::fs_root`]).
    pub snapshotter_root: PathBuf,
    /// The snapshotter's root as containerd reports it, once asked.
    pub root_cache: std::sync::Arc<tokio::sync::OnceCell<String>>,
    /// Record names of images kubelet's image GC must keep (the pause image).
    pub pinned: Vec<String>,
    /// The views and configs in memory ([`cache`]).
    pub cache: std::sync::Arc<cache::ImageCache>,
}

/// One image as CRI sees it: all records sharing an id.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageView {
    pub id: String,
    pub names: Vec<String>,
    pub size: u64,
    pub user: String,
}

/// An image ready to run: its view, run config and top snapshot.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub view: ImageView,
    pub config: ImageConfigFile,
    /// Chain id of the top layer: the parent of a container's rootfs snapshot.
    pub top_chain: Option<String>,
}

impl Images {
    #[tracing::instrument(level = "debug", skip_all, fields(image = %image))]
    pub async fn pull(&self, image: &str, auth: Option<&cri::AuthConfig>) -> Result<String> {
        let r = match reference::parse(image)? {
            ImageName::Ref(r) => r,
            ImageName::Id(id) => {
                return Err(Error::InvalidArgument(format!(
                    "cannot pull by image id {id}; give a reference"
                )))
            }
        };
        let auth = registry_auth(auth)?;
        let puller = pull::Puller {
            ctrd: &*self.ctrd,
            snapshotter: &self.snapshotter,
            registry_config_dir: &self.registry_config_dir,
        };
        let pulled = puller.pull(&r, &auth).await;
        // Records may have been written, even by a pull that failed later.
        if !pulled.as_ref().is_ok_and(|p| p.present) {
            self.cache.invalidate();
        }
        Ok(pulled?.id)
    }

    /// Every image: the records grouped by image id.
    pub async fn list(&self) -> Result<Vec<ImageView>> {
        Ok(self.views().await?.as_ref().clone())
    }

    /// The views, from memory while no image record has changed since they were listed.
    pub async fn views(&self) -> Result<std::sync::Arc<Vec<ImageView>>> {
        if let Some(v) = self.cache.views() {
            return Ok(v);
        }
        let gen = self.cache.generation();
        Ok(self.cache.store(gen, self.list_records().await?))
    }

    async fn list_records(&self) -> Result<Vec<ImageView>> {
        let mut by_id: BTreeMap<String, ImageView> = BTreeMap::new();
        for r in records::list(&*self.ctrd).await? {
            let v = by_id.entry(r.id.clone()).or_insert_with(|| ImageView {
                id: r.id.clone(),
                names: Vec::new(),
                size: r.size,
                user: r.user.clone(),
            });
            v.names.push(r.name);
        }
        Ok(by_id.into_values().collect())
    }

    /// Find an image by reference or id; None when absent.
    pub async fn find(&self, image: &str) -> Result<Option<ImageView>> {
        let name = reference::parse(image)?;
        let views = self.views().await?;
        Ok(match name {
            ImageName::Id(id) => views.iter().find(|v| v.id == id),
            ImageName::Ref(r) => {
                let name = reference::record_name(&r);
                views.iter().find(|v| v.names.contains(&name))
            }
        }
        .cloned())
    }

    /// Everything CreateContainer needs from an image.
    pub async fn resolve(&self, image: &str) -> Result<ResolvedImage> {
        let view = self
            .find(image)
            .await?
            .ok_or_else(|| Error::NotFound(format!("image {image:?} not found; pull it first")))?;
        // Content addressed: an id's config never changes.
        let config = match self.cache.config(&view.id) {
            Some(c) => c,
            None => {
                let bytes = self.ctrd.read_content(&view.id).await?;
                self.cache
                    .keep_config(&view.id, ImageConfigFile::parse(&bytes)?)
            }
        };
        let config = config.as_ref().clone();
        let top_chain = chain_ids(&config.rootfs.diff_ids).pop();
        Ok(ResolvedImage {
            view,
            config,
            top_chain,
        })
    }

    /// Remove every record of the image (all its tags and digests). Absent is fine.
    pub async fn remove(&self, image: &str) -> Result<()> {
        let Some(view) = self.find(image).await? else {
            return Ok(());
        };
        let n = view.names.len();
        for (i, name) in view.names.iter().enumerate() {
            // Let the GC run once, after the last record is gone.
            let deleted = records::delete(&*self.ctrd, name, i + 1 == n).await;
            self.cache.invalidate();
            deleted?;
        }
        tracing::info!(image = %image, id = %view.id, "image removed");
        Ok(())
    }

    /// Where the snapshotter keeps its data: containerd's own answer (introspection exports
    /// `root`), else `<containerd_root>/io.containerd.snapshotter.v1.<snapshotter>` from the config.
    pub async fn fs_root(&self) -> String {
        let asked = self
            .root_cache
            .get_or_try_init(|| async {
                let exports = self.ctrd.snapshotter_exports().await.map_err(|_| ())?;
                exports.get("root").cloned().ok_or(())
            })
            .await;
        match asked {
            Ok(r) => r.clone(),
            Err(()) => self.snapshotter_root.display().to_string(),
        }
    }

    /// Bytes and inodes used by the snapshotter's committed and active snapshots.
    pub async fn fs_usage(&self) -> Result<(u64, u64)> {
        let keys = self.ctrd.snapshots(vec![]).await?;
        let (mut bytes, mut inodes) = (0u64, 0u64);
        for s in keys {
            // A snapshot removed while we walk is not an error.
            if let Ok(u) = self.ctrd.snapshot_usage(&s.name).await {
                bytes += u.bytes;
                inodes += u.inodes;
            }
        }
        Ok((bytes, inodes))
    }

    /// The manifest an image record points at (for verbose status).
    pub async fn manifest_of(&self, name: &str) -> Result<Option<Manifest>> {
        let Some(rec) = records::get(&*self.ctrd, name).await? else {
            return Ok(None);
        };
        let Some(t) = rec.target else { return Ok(None) };
        Ok(Some(Manifest::parse(
            &self.ctrd.read_content(&t.digest).await?,
        )?))
    }
}

impl Images {
    /// The CRI form of an image, pinned when it is one criusd needs.
    pub fn to_cri(&self, v: &ImageView) -> cri::Image {
        let mut c = v.to_cri();
        c.pinned = v.names.iter().any(|n| self.pinned.contains(n));
        c
    }
}

impl ImageView {
    pub fn to_cri(&self) -> cri::Image {
        let (digests, tags): (Vec<_>, Vec<_>) =
            self.names.iter().cloned().partition(|n| is_digest_name(n));
        let (uid, username) = user_fields(&self.user);
        cri::Image {
            id: self.id.clone(),
            repo_tags: tags,
            repo_digests: digests,
            size: self.size,
            uid: uid.map(|value| cri::Int64Value { value }),
            username,
            spec: Some(cri::ImageSpec {
                image: self.id.clone(),
                ..Default::default()
            }),
            pinned: false,
        }
    }
}

/// CRI's uid/username from an image config `User` (`name`, `uid`, `uid:gid`, `name:group`).
pub fn user_fields(user: &str) -> (Option<i64>, String) {
    let u = user.split(':').next().unwrap_or("");
    if u.is_empty() {
        return (None, String::new());
    }
    match u.parse::<i64>() {
        Ok(n) => (Some(n), String::new()),
        Err(_) => (None, u.to_string()),
    }
}

fn registry_auth(a: Option<&cri::AuthConfig>) -> Result<Auth> {
    let Some(a) = a else {
        return Ok(Auth::Anonymous);
    };
    if !a.username.is_empty() || !a.password.is_empty() {
        return Ok(Auth::Basic {
            user: a.username.clone(),
            password: a.password.clone(),
        });
    }
    if !a.auth.is_empty() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.auth.trim())
            .map_err(|e| Error::InvalidArgument(format!("auth: not base64: {e}")))?;
        let s =
            String::from_utf8(raw).map_err(|_| Error::InvalidArgument("auth: not UTF-8".into()))?;
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| Error::InvalidArgument("auth: expected base64(user:password)".into()))?;
        return Ok(Auth::Basic {
            user: u.to_string(),
            password: p.to_string(),
        });
    }
    if !a.registry_token.is_empty() {
        return Ok(Auth::Bearer(a.registry_token.clone()));
    }
    if !a.identity_token.is_empty() {
        return Ok(Auth::Identity(a.identity_token.clone()));
    }
    Ok(Auth::Anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_field_forms() {
        assert_eq!(user_fields(""), (None, String::new()));
        assert_eq!(user_fields("1000"), (Some(1000), String::new()));
        assert_eq!(user_fields("1000:50"), (Some(1000), String::new()));
        assert_eq!(user_fields("nobody:nogroup"), (None, "nobody".to_string()));
    }

    #[test]
    fn auth_forms() {
        let a = cri::AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("u:p"),
            ..Default::default()
        };
        assert!(
            matches!(registry_auth(Some(&a)), Ok(Auth::Basic { user, password }) if user == "u" && password == "p")
        );
        assert!(matches!(registry_auth(None), Ok(Auth::Anonymous)));
    }

    #[test]
    fn cri_view_splits_tags_and_digests() {
        let v = ImageView {
            id: "sha256:c".into(),
            names: vec!["r/x:latest".into(), "r/x@sha256:m".into()],
            size: 5,
            user: "1000".into(),
        };
        let c = v.to_cri();
        assert_eq!(c.repo_tags, vec!["r/x:latest"]);
        assert_eq!(c.repo_digests, vec!["r/x@sha256:m"]);
        assert_eq!(c.uid.map(|u| u.value), Some(1000));
    }
}
