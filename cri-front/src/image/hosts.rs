//! Registry hosts in containerd's `hosts.toml` format, read from a `certs.d`-style
//! directory (`<dir>/<host[:port]>/hosts.toml`, else `<dir>/_default/hosts.toml`), so the
//! files operators already keep for containerd work unchanged.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// One place to pull from, in the order they are tried (mirrors first, upstream last).
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryHost {
    /// `host[:port]` as used in URLs.
    pub host: String,
    pub plain_http: bool,
    pub skip_verify: bool,
    /// Extra CA certificates (PEM) to trust.
    pub ca: Vec<PathBuf>,
    /// False for the upstream (the `server` entry or the registry itself).
    pub mirror: bool,
}

#[derive(Debug, Default, Deserialize)]
struct HostsFile {
    server: Option<String>,
    #[serde(default)]
    host: toml::Table,
    #[serde(default)]
    skip_verify: Option<bool>,
    #[serde(default)]
    ca: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct HostEntry {
    capabilities: Option<Vec<String>>,
    skip_verify: Option<bool>,
    ca: Option<toml::Value>,
    client: Option<toml::Value>,
}

/// Resolve the hosts to try for `registry` (`host[:port]` of the reference).
pub fn hosts_for(dir: &Path, registry: &str) -> Result<Vec<RegistryHost>> {
    let file = [
        dir.join(registry).join("hosts.toml"),
        dir.join("_default/hosts.toml"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    let text = match &file {
        Some(p) => {
            std::fs::read_to_string(p).map_err(|e| Error::io(format!("read {}", p.display()), e))?
        }
        None => String::new(),
    };
    parse(&text, registry).map_err(|e| match (e, &file) {
        (Error::Config(m), Some(p)) => Error::Config(format!("{}: {m}", p.display())),
        (e, _) => e,
    })
}

/// Parse a hosts.toml text for `registry`.
pub fn parse(text: &str, registry: &str) -> Result<Vec<RegistryHost>> {
    let file: HostsFile = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
    let mut out = Vec::new();
    for (url, v) in &file.host {
        let entry: HostEntry = v
            .clone()
            .try_into()
            .map_err(|e| Error::Config(format!("host {url:?}: {e}")))?;
        let caps = entry
            .capabilities
            .unwrap_or_else(|| vec!["pull".into(), "resolve".into(), "push".into()]);
        if !caps.iter().any(|c| c == "pull") {
            continue;
        }
        if entry.client.is_some() {
            tracing::warn!(host = %url, "hosts.toml: client certificates are not supported yet; ignored");
        }
        let (host, plain_http) = split_url(url)?;
        out.push(RegistryHost {
            host,
            plain_http,
            skip_verify: entry.skip_verify.unwrap_or(false),
            ca: paths(entry.ca.as_ref()),
            mirror: true,
        });
    }
    let upstream = match &file.server {
        Some(s) => {
            let (host, plain_http) = split_url(s)?;
            RegistryHost {
                host,
                plain_http,
                skip_verify: file.skip_verify.unwrap_or(false),
                ca: paths(file.ca.as_ref()),
                mirror: false,
            }
        }
        None => RegistryHost {
            host: registry.to_string(),
            plain_http: false,
            skip_verify: false,
            ca: Vec::new(),
            mirror: false,
        },
    };
    // A `[host]` entry naming the upstream itself is the upstream's settings, not a mirror.
    if let Some(pos) = out.iter().position(|h| h.host == upstream.host) {
        let mut h = out.remove(pos);
        h.mirror = false;
        out.push(h);
    } else {
        out.push(upstream);
    }
    Ok(out)
}

fn split_url(url: &str) -> Result<(String, bool)> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        Error::Config(format!("host {url:?} has no scheme (http:// or https://)"))
    })?;
    let plain_http = match scheme {
        "http" => true,
        "https" => false,
        s => return Err(Error::Config(format!("host {url:?}: unknown scheme {s:?}"))),
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !path.is_empty() && path != "v2" && path != "v2/" {
        tracing::warn!(%url, "hosts.toml: path prefixes other than /v2 are not supported; using the host only");
    }
    Ok((host.to_string(), plain_http))
}

fn paths(v: Option<&toml::Value>) -> Vec<PathBuf> {
    match v {
        Some(toml::Value::String(s)) => vec![PathBuf::from(s)],
        Some(toml::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(PathBuf::from))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_registry_plain_http() {
        let t = "server = \"http://127.0.0.1:5000\"\n[host.\"http://127.0.0.1:5000\"]\ncapabilities = [\"pull\", \"resolve\", \"push\"]\nskip_verify = true\n";
        let h = parse(t, "127.0.0.1:5000").expect("parse");
        assert_eq!(h.len(), 1);
        assert!(h[0].plain_http && h[0].skip_verify && !h[0].mirror);
        assert_eq!(h[0].host, "127.0.0.1:5000");
    }

    #[test]
    fn mirrors_first_then_upstream() {
        let t = "server = \"https://registry-1.docker.io\"\n[host.\"http://m1:5000\"]\n[host.\"https://m2\"]\nca = [\"/ca.pem\"]\n[host.\"https://pushonly\"]\ncapabilities = [\"push\"]\n";
        let h = parse(t, "docker.io").expect("parse");
        let names: Vec<_> = h.iter().map(|x| (x.host.as_str(), x.mirror)).collect();
        assert_eq!(
            names,
            vec![
                ("m1:5000", true),
                ("m2", true),
                ("registry-1.docker.io", false)
            ]
        );
        assert_eq!(h[1].ca, vec![PathBuf::from("/ca.pem")]);
    }

    #[test]
    fn no_file_means_https_upstream() {
        let h = parse("", "example.com").expect("parse");
        assert_eq!(h.len(), 1);
        assert!(!h[0].plain_http);
        assert_eq!(h[0].host, "example.com");
    }

    #[test]
    fn bad_scheme_is_an_error() {
        assert!(parse("server = \"ftp://x\"", "x").is_err());
    }
}
