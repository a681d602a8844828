//! The parts of manifests, indexes and image configs criusd needs, read media-type
//! agnostically (OCI and Docker schema 2 share the field names).

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// A manifest or an index.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Manifest> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::InvalidArgument(format!("malformed manifest: {e}")))
    }

    pub fn is_index(&self) -> bool {
        !self.manifests.is_empty() && self.config.is_none()
    }

    /// Pick the entry for this machine's platform from an index.
    pub fn pick_platform(&self) -> Option<&Descriptor> {
        let arch = go_arch();
        self.manifests.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch)
        })
    }
}

/// This machine's architecture in Go/OCI spelling.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The image config fields criusd uses.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfigFile {
    #[serde(default)]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// Dockerfile `VOLUME`s: path → `{}`.
    #[serde(default)]
    pub volumes: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl ImageConfigFile {
    pub fn parse(bytes: &[u8]) -> Result<ImageConfigFile> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::InvalidArgument(format!("malformed image config: {e}")))
    }

    pub fn run(&self) -> RunConfig {
        self.config.clone().unwrap_or_default()
    }
}

/// Snapshot chain ids of a layer stack (one home, shared with the sandboxer's pause image).
pub use crius_sandboxer::util::chain_ids;

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn chain_id_of_two_layers() {
        let a = "sha256:".to_string() + &"a".repeat(64);
        let b = "sha256:".to_string() + &"b".repeat(64);
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        let want = hex::encode(Sha256::digest(format!("{a} {b}").as_bytes()));
        assert_eq!(c[1], format!("sha256:{want}"));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn index_platform_pick() {
        let idx = format!(
            r#"{{"manifests":[{{"mediaType":"x","digest":"sha256:1","size":1,"platform":{{"os":"linux","architecture":"s390x"}}}},
            {{"mediaType":"x","digest":"sha256:2","size":2,"platform":{{"os":"linux","architecture":"{}"}}}}]}}"#,
            go_arch()
        );
        let m = Manifest::parse(idx.as_bytes()).expect("parse");
        assert!(m.is_index());
        assert_eq!(
            m.pick_platform().map(|d| d.digest.as_str()),
            Some("sha256:2")
        );
    }

    #[test]
    fn config_fields() {
        let c = ImageConfigFile::parse(
            br#"{"config":{"User":"1000:1000","Env":["A=1"],"Cmd":["sh"],"WorkingDir":"/w"},"rootfs":{"type":"layers","diff_ids":["sha256:x"]}}"#,
        )
        .expect("parse");
        let r = c.run();
        assert_eq!(r.user.as_deref(), Some("1000:1000"));
        assert_eq!(r.working_dir.as_deref(), Some("/w"));
        assert_eq!(c.rootfs.diff_ids.len(), 1);
    }
}
