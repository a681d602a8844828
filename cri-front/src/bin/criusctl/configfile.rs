//! crictl's config files: a CRI message as JSON or YAML, snake_case keys as crictl reads them, or
//! protojson's lowerCamelCase (what `-o json` prints).

use anyhow::Context;
use std::path::Path;

/// Read `path` as JSON (`.json`) or YAML (anything else; YAML also reads JSON), a message of proto
/// type `full_name` (`runtime.v1.PodSandboxConfig`).
pub fn load<T: prost::Message + Default>(path: &str, full_name: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let json = Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let kind = if json { "JSON" } else { "YAML" };
    let value: anyhow::Result<serde_json::Value> = if json {
        serde_json::from_str(&text).map_err(Into::into)
    } else {
        serde_yaml::from_str(&text).map_err(Into::into)
    };
    value
        .and_then(|v| crate::protojson::from_json(v, full_name))
        .with_context(|| format!("{path}: not valid {kind} for a {full_name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crius_proto::runtime::{ContainerConfig, PodSandboxConfig};

    const POD: &str = "runtime.v1.PodSandboxConfig";
    const CTR: &str = "runtime.v1.ContainerConfig";

    #[test]
    fn reads_yaml_and_json_configs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let y = dir.path().join("pod.yaml");
        std::fs::write(
            &y,
            "metadata:\n  name: web\n  namespace: default\n  uid: u1\nlog_directory: /tmp/l\nlabels:\n  app: web\n",
        )
        .expect("write");
        let p: PodSandboxConfig = load(&y.to_string_lossy(), POD).expect("yaml");
        assert_eq!(p.metadata.map(|m| m.name), Some("web".into()));
        assert_eq!(p.labels.get("app").map(String::as_str), Some("web"));
        let j = dir.path().join("ctr.json");
        std::fs::write(
            &j,
            r#"{"metadata":{"name":"c"},"image":{"image":"busybox"},"command":["sh"],"log_path":"c.log"}"#,
        )
        .expect("write");
        let c: ContainerConfig = load(&j.to_string_lossy(), CTR).expect("json");
        assert_eq!(c.image.map(|i| i.image), Some("busybox".into()));
        assert_eq!(c.log_path, "c.log");
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{").expect("write");
        assert!(load::<ContainerConfig>(&bad.to_string_lossy(), CTR).is_err());
    }
}
