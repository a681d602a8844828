//! PullImage: the distribution protocol with our small registry client (containerd 1.6
//! has no Transfer service; see registry.rs for why not oci-client), blobs streamed into containerd's content store, layers
//! unpacked by containerd's Diff.Apply onto overlayfs snapshots named by chain id,
//! then image records. Everything happens under a lease so containerd's GC never
//! collects a half-pulled image.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crius_ctrd::{Containerd, Descriptor as CtrdDescriptor};

use super::hosts::{hosts_for, RegistryHost};
use super::manifest::{chain_ids, Descriptor, ImageConfigFile, Manifest};
use super::records::{self, LABEL_ID, LABEL_SIZE, LABEL_USER};
use super::reference::{digest_name, record_name, Reference};
use super::registry::{Auth, Registry};
use crate::error::{Error, Result};

const ACCEPTED: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// What a pull needs from criusd.
pub struct Puller<'a> {
    pub ctrd: &'a dyn Containerd,
    pub snapshotter: &'a str,
    pub registry_config_dir: &'a Path,
}

/// Result of a pull: the image id (config digest) and the record names written.
#[derive(Debug)]
pub struct Pulled {
    pub id: String,
    pub names: Vec<String>,
    /// The registry's manifest was the one already recorded, whole: nothing was written.
    pub present: bool,
}

impl Puller<'_> {
    /// Pull `r` and return the image id. Mirrors from hosts.toml are tried first, each
    /// failure logged, then the upstream; the last error is returned.
    pub async fn pull(&self, r: &Reference, auth: &Auth) -> Result<Pulled> {
        let hosts = hosts_for(self.registry_config_dir, r.registry())?;
        let mut last = None;
        for host in &hosts {
            match self.pull_from(r, host, auth).await {
                Ok(p) => return Ok(p),
                Err(e) => {
                    let e = about_image(r, e);
                    tracing::warn!(image = %r, host = %host.host, mirror = host.mirror, error = %e, "pull attempt failed");
                    // A bad reference or a broken image will not get better on the next host.
                    if matches!(e, Error::InvalidArgument(_)) {
                        return Err(e);
                    }
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Unavailable(format!("no registry host for {r}"))))
    }

    async fn pull_from(&self, r: &Reference, host: &RegistryHost, auth: &Auth) -> Result<Pulled> {
        let started = Instant::now();
        let client = Registry::new(host, r.registry(), auth.clone())?;
        let repo = r.repository();
        let top_ref = r.digest().or(r.tag()).unwrap_or("latest").to_string();
        let top = client.manifest(repo, &top_ref, ACCEPTED).await?;
        let (top_bytes, top_digest) = (top.bytes, top.digest);
        let top_type = top.media_type;
        let top = Manifest::parse(&top_bytes)?;
        let (manifest_bytes, manifest_digest, manifest_type) = if top.is_index() {
            let d = top.pick_platform().ok_or_else(|| {
                Error::NotFound(format!(
                    "{r}: no manifest for linux/{} in the index",
                    super::manifest::go_arch()
                ))
            })?;
            let m = client.manifest(repo, &d.digest, ACCEPTED).await?;
            (m.bytes, m.digest, d.media_type.clone())
        } else {
            let mt = top
                .media_type
                .clone()
                .or(top_type)
                .unwrap_or_else(|| ACCEPTED[0].to_string());
            (top_bytes.clone(), top_digest.clone(), mt)
        };
        let mut names = vec![record_name(r)];
        let dn = digest_name(r, &top_digest);
        if !names.contains(&dn) {
            names.push(dn);
        }
        if let Some(id) = self.present(&names, &manifest_digest).await? {
            tracing::info!(image = %r, id = %id, elapsed_ms = started.elapsed().as_millis() as u64, "pull: already present");
            return Ok(Pulled {
                id,
                names,
                present: true,
            });
        }
        let manifest = Manifest::parse(&manifest_bytes)?;
        let config_desc = manifest
            .config
            .clone()
            .ok_or_else(|| Error::InvalidArgument(format!("{r}: manifest has no config")))?;
        let config_bytes = client
            .blob(repo, &config_desc.digest, config_desc.size)
            .await?
            .to_vec();
        let config = ImageConfigFile::parse(&config_bytes)?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::InvalidArgument(format!(
                "{r}: manifest has {} layers but config has {} diff ids",
                manifest.layers.len(),
                diff_ids.len()
            )));
        }
        let chain = chain_ids(diff_ids);
        tracing::info!(image = %r, host = %host.host, manifest = %manifest_digest, layers = manifest.layers.len(), "pull: manifest resolved");

        let lease = self.lease_create().await?;
        let res = self
            .store_and_unpack(
                r,
                &client,
                &lease,
                &manifest,
                &manifest_bytes,
                &manifest_digest,
                &manifest_type,
                &config_desc,
                config_bytes,
                &config,
                &chain,
                started,
            )
            .await;
        // The records go in while the lease still holds everything: deleting the lease
        // triggers containerd's GC, which would otherwise take the unreferenced blobs.
        let res = match res {
            Ok((id, target, size)) => {
                let mut labels = HashMap::new();
                labels.insert(LABEL_ID.to_string(), id.clone());
                labels.insert(LABEL_SIZE.to_string(), size.to_string());
                labels.insert(
                    LABEL_USER.to_string(),
                    config.run().user.unwrap_or_default(),
                );
                let mut put = Ok(());
                for n in &names {
                    let leased = self.ctrd.leased(&lease);
                    put = records::put(&*leased, n, target.clone(), labels.clone()).await;
                    if put.is_err() {
                        break;
                    }
                }
                put.map(|()| (id, size))
            }
            Err(e) => Err(e),
        };
        self.lease_delete(&lease).await;
        let (id, size) = res?;
        tracing::info!(image = %r, id = %id, size, elapsed_ms = started.elapsed().as_millis() as u64, "pull: done");
        Ok(Pulled {
            id,
            names,
            present: false,
        })
    }

    /// The image id when every one of `names` already records `manifest` and its top layer is
    /// unpacked (its parents cannot be removed while it stands): kubelet pulls present images on
    /// every pod start (`imagePullPolicy: Always`, `:latest`), and the config, layers and records
    /// would only be written again.
    async fn present(&self, names: &[String], manifest: &str) -> Result<Option<String>> {
        let mut id = None;
        for name in names {
            let Some(rec) = records::get(self.ctrd, name).await? else {
                return Ok(None);
            };
            if rec.target.as_ref().map(|t| t.digest.as_str()) != Some(manifest)
                || id.as_ref().is_some_and(|id| *id != rec.id)
            {
                return Ok(None);
            }
            id = Some(rec.id);
        }
        let Some(id) = id else { return Ok(None) };
        // A snapshot can be removed by hand (ctr snapshots rm): then pull for real.
        let Ok(bytes) = self.ctrd.read_content(&id).await else {
            return Ok(None);
        };
        let config = ImageConfigFile::parse(&bytes)?;
        match chain_ids(&config.rootfs.diff_ids).last() {
            Some(top) if !self.snapshot_exists(top).await? => Ok(None),
            _ => Ok(Some(id)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_and_unpack(
        &self,
        r: &Reference,
        client: &Registry,
        lease: &str,
        manifest: &Manifest,
        manifest_bytes: &[u8],
        manifest_digest: &str,
        manifest_type: &str,
        config_desc: &Descriptor,
        config_bytes: Vec<u8>,
        config: &ImageConfigFile,
        chain: &[String],
        started: Instant,
    ) -> Result<(String, CtrdDescriptor, u64)> {
        let n = manifest.layers.len();
        let mut total: u64 = manifest_bytes.len() as u64 + config_desc.size.max(0) as u64;
        for (i, layer) in manifest.layers.iter().enumerate() {
            total += layer.size.max(0) as u64;
            let mut labels = HashMap::new();
            labels.insert(
                "containerd.io/uncompressed".to_string(),
                config.rootfs.diff_ids[i].clone(),
            );
            if self.ctrd.content_exists(&layer.digest).await? {
                tracing::info!(image = %r, layer = %layer.digest, "pull: layer {}/{n} already present", i + 1);
                continue;
            }
            let t = Instant::now();
            let stream = client.blob_stream(r.repository(), &layer.digest).await?;
            let written = self
                .ctrd
                .leased(lease)
                .write_content(&layer.digest, layer.size, labels, Box::pin(stream))
                .await?;
            tracing::info!(image = %r, layer = %layer.digest, bytes = written, ms = t.elapsed().as_millis() as u64,
                "pull: layer {}/{n} fetched", i + 1);
        }
        // The config keeps the unpacked snapshot alive; the manifest keeps config and layers.
        let mut cfg_labels = HashMap::new();
        if let Some(top) = chain.last() {
            cfg_labels.insert(
                format!("containerd.io/gc.ref.snapshot.{}", self.snapshotter),
                top.clone(),
            );
        }
        self.put_small(lease, &config_desc.digest, config_bytes, cfg_labels)
            .await?;
        let mut m_labels = HashMap::new();
        m_labels.insert(
            "containerd.io/gc.ref.content.config".to_string(),
            config_desc.digest.clone(),
        );
        for (i, l) in manifest.layers.iter().enumerate() {
            m_labels.insert(
                format!("containerd.io/gc.ref.content.l.{i}"),
                l.digest.clone(),
            );
        }
        self.put_small(lease, manifest_digest, manifest_bytes.to_vec(), m_labels)
            .await?;

        self.unpack(r, lease, &manifest.layers, &config.rootfs.diff_ids, chain)
            .await?;
        tracing::info!(image = %r, ms = started.elapsed().as_millis() as u64, "pull: unpacked");
        let target = CtrdDescriptor {
            media_type: manifest_type.to_string(),
            digest: manifest_digest.to_string(),
            size: manifest_bytes.len() as i64,
            annotations: HashMap::new(),
        };
        Ok((config_desc.digest.clone(), target, total))
    }

    /// Write a small blob (or just label it when present).
    async fn put_small(
        &self,
        lease: &str,
        digest: &str,
        bytes: Vec<u8>,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        if self.ctrd.content_exists(digest).await? {
            return Ok(self.ctrd.set_content_labels(digest, labels).await?);
        }
        let size = bytes.len() as i64;
        let data = futures::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))]);
        self.ctrd
            .leased(lease)
            .write_content(digest, size, labels, Box::pin(data))
            .await?;
        Ok(())
    }

    /// Apply each layer onto its parent's snapshot, committing it under its chain id.
    async fn unpack(
        &self,
        r: &Reference,
        lease: &str,
        layers: &[Descriptor],
        diff_ids: &[String],
        chain: &[String],
    ) -> Result<()> {
        for (i, layer) in layers.iter().enumerate() {
            if self.snapshot_exists(&chain[i]).await? {
                continue;
            }
            let parent = if i == 0 {
                String::new()
            } else {
                chain[i - 1].clone()
            };
            let key = format!(
                "crius-extract-{}-{}",
                uuid::Uuid::new_v4().simple(),
                chain[i]
            );
            let res = self
                .apply_one(lease, &key, &parent, layer, &diff_ids[i], &chain[i])
                .await;
            if let Err(e) = res {
                self.remove_snapshot(&key).await;
                return Err(e);
            }
            tracing::info!(image = %r, layer = %layer.digest, chain = %chain[i], "pull: layer {}/{} unpacked", i + 1, layers.len());
        }
        Ok(())
    }

    async fn apply_one(
        &self,
        lease: &str,
        key: &str,
        parent: &str,
        layer: &Descriptor,
        diff_id: &str,
        chain_id: &str,
    ) -> Result<()> {
        let ctrd = self.ctrd.leased(lease);
        let mounts = ctrd.prepare_snapshot(key, parent, HashMap::new()).await?;
        let applied = ctrd
            .apply_diff(
                CtrdDescriptor {
                    media_type: layer.media_type.clone(),
                    digest: layer.digest.clone(),
                    size: layer.size,
                    annotations: HashMap::new(),
                },
                mounts,
            )
            .await?;
        if applied.digest != diff_id {
            return Err(Error::InvalidArgument(format!(
                "layer {}: uncompressed digest {} does not match the config's {diff_id}",
                layer.digest, applied.digest
            )));
        }
        match ctrd.commit_snapshot(chain_id, key).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_already_exists() => {
                // A concurrent pull of an image sharing the layer won the race.
                self.remove_snapshot(key).await;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn snapshot_exists(&self, key: &str) -> Result<bool> {
        Ok(self.ctrd.snapshot(key).await?.is_some())
    }

    async fn remove_snapshot(&self, key: &str) {
        if let Err(e) = self.ctrd.remove_snapshot(key).await {
            tracing::warn!(snapshot = key, error = %e, "removing extract snapshot failed");
        }
    }

    async fn lease_create(&self) -> Result<String> {
        let id = format!("crius-pull-{}", uuid::Uuid::new_v4().simple());
        // If criusd dies mid-pull, the lease expires and GC takes the partial content.
        let expire = time::OffsetDateTime::now_utc() + Duration::from_secs(3600);
        let mut labels = HashMap::new();
        if let Ok(s) = expire.format(&time::format_description::well_known::Rfc3339) {
            labels.insert("containerd.io/gc.expire".to_string(), s);
        }
        self.ctrd.create_lease(&id, labels).await?;
        Ok(id)
    }

    async fn lease_delete(&self, id: &str) {
        if let Err(e) = self.ctrd.delete_lease(id).await {
            tracing::warn!(lease = id, error = %e, "lease delete failed");
        }
    }
}

/// Name the image in an error that came from the registry client.
fn about_image(r: &Reference, e: Error) -> Error {
    let name = r.to_string();
    let with = |m: String| {
        if m.starts_with(&name) {
            m
        } else {
            format!("{name}: {m}")
        }
    };
    match e {
        Error::NotFound(m) => Error::NotFound(with(m)),
        Error::Unavailable(m) => Error::Unavailable(with(m)),
        Error::Unauthenticated(m) => Error::Unauthenticated(with(m)),
        Error::InvalidArgument(m) => Error::InvalidArgument(with(m)),
        e => e,
    }
}
