//! crictl's own config file (`/etc/crictl.yaml`, or `--config` / `CRI_CONFIG_FILE`): the
//! endpoints and timeout an operator set up for crictl apply to criusctl too. Flags and their
//! environment variables win over the file, as in crictl.

use anyhow::Context;
use serde::Deserialize;
use std::path::Path;

/// Where crictl looks when no file is named.
pub const DEFAULT_PATH: &str = "/etc/crictl.yaml";

/// The keys criusctl uses; crictl's others (debug, pull-image-on-create…) are ignored.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ClientConfig {
    pub runtime_endpoint: Option<String>,
    pub image_endpoint: Option<String>,
    /// Seconds, as crictl writes it.
    pub timeout: Option<u64>,
}

/// Read the file named, or the default one if it exists.
pub fn load(named: Option<&Path>) -> anyhow::Result<ClientConfig> {
    let path = match named {
        Some(p) => p,
        None if Path::new(DEFAULT_PATH).is_file() => Path::new(DEFAULT_PATH),
        None => return Ok(ClientConfig::default()),
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("parsing {}", path.display()))
}

fn parse(text: &str) -> anyhow::Result<ClientConfig> {
    if text.trim().is_empty() {
        return Ok(ClientConfig::default());
    }
    Ok(serde_yaml::from_str(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_crictls_keys_and_ignores_the_rest() {
        let c = parse(
            "runtime-endpoint: unix:///run/containerd/containerd.sock\n\
             image-endpoint: unix:///run/img.sock\ntimeout: 10\ndebug: true\npull-image-on-create: false\n",
        )
        .expect("parse");
        assert_eq!(
            c,
            ClientConfig {
                runtime_endpoint: Some("unix:///run/containerd/containerd.sock".into()),
                image_endpoint: Some("unix:///run/img.sock".into()),
                timeout: Some(10),
            }
        );
        assert_eq!(parse("").expect("empty"), ClientConfig::default());
        assert!(parse("timeout: soon\n").is_err());
    }
}
