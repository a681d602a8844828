//! A pause image (operators' choice instead of the embedded pause): find the
//! image in containerd, read its manifest and config, and compute the chain id
//! of its unpacked layers, which a view snapshot of the pause sits on.

use serde_json::Value;

use crius_ctrd::Containerd;

use crate::util::chain_ids;

/// What the pause spec needs from the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PauseImage {
    pub name: String,
    /// Parent of the pause's view snapshot.
    pub chain_id: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// Numeric `uid[:gid]` of the image's User, when numeric.
    pub user: Option<(i64, i64)>,
}

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn json(bytes: &[u8], what: &str) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{what}: invalid JSON: {e}"))
}

/// Pick this platform's manifest from an index.
fn pick_manifest(index: &Value) -> Option<String> {
    index["manifests"].as_array()?.iter().find_map(|m| {
        let p = &m["platform"];
        (p["os"] == "linux" && p["architecture"] == goarch())
            .then(|| m["digest"].as_str().map(str::to_string))
            .flatten()
    })
}

/// Image config JSON → the pause's process and chain id.
pub fn from_config(name: &str, config: &Value) -> Result<PauseImage, String> {
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let chain_id = chain_ids(&diff_ids)
        .pop()
        .ok_or_else(|| format!("image {name}: no layers"))?;
    let c = &config["config"];
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut args = strs(&c["Entrypoint"]);
    args.extend(strs(&c["Cmd"]));
    if args.is_empty() {
        return Err(format!("image {name}: no Entrypoint or Cmd"));
    }
    let user = c["User"].as_str().and_then(|u| {
        let (uid, gid) = u.split_once(':').unwrap_or((u, u));
        Some((uid.parse().ok()?, gid.parse().ok()?))
    });
    Ok(PauseImage {
        name: name.to_string(),
        chain_id,
        args,
        env: strs(&c["Env"]),
        cwd: c["WorkingDir"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string(),
        user,
    })
}

/// Resolve `name` in containerd (it must be pulled and unpacked already).
pub async fn resolve(ctrd: &dyn Containerd, name: &str) -> Result<PauseImage, String> {
    let target = ctrd
        .image(name)
        .await
        .map_err(|s| format!("pause image {name}: {}", s.message()))?
        .ok_or_else(|| format!("pause image {name} is not in containerd (pull it first)"))?
        .target;
    let (media_type, mut digest) = (target.media_type, target.digest);
    let read = |d: String| async move {
        ctrd.read_content(&d)
            .await
            .map_err(|s| format!("pause image {name}: read {d}: {}", s.message()))
    };
    if INDEX_TYPES.contains(&media_type.as_str()) {
        let index = json(&read(digest.clone()).await?, "image index")?;
        digest = pick_manifest(&index)
            .ok_or_else(|| format!("pause image {name}: no linux/{} manifest", goarch()))?;
    }
    let manifest = json(&read(digest).await?, "image manifest")?;
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .ok_or_else(|| format!("pause image {name}: manifest has no config"))?
        .to_string();
    let config = json(&read(config_digest).await?, "image config")?;
    from_config(name, &config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_to_process() {
        let cfg = serde_json::json!({
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aaaa"]},
            "config": {"Entrypoint": ["/pause"], "User": "65535:65535", "Env": ["PATH=/"]}
        });
        let p = from_config("pause", &cfg).expect("config");
        assert_eq!(p.args, vec!["/pause".to_string()]);
        assert_eq!(p.user, Some((65535, 65535)));
        assert_eq!(p.cwd, "/");
        assert!(from_config("x", &serde_json::json!({"rootfs": {"diff_ids": []}})).is_err());
    }

    #[test]
    fn picks_platform() {
        let idx = serde_json::json!({"manifests": [
            {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm"}},
            {"digest": "sha256:me", "platform": {"os": "linux", "architecture": goarch()}}
        ]});
        assert_eq!(pick_manifest(&idx).as_deref(), Some("sha256:me"));
    }
}
