//! Registry hosts in containerd's `hosts.toml` format, read from a `certs.d`-style
//! directory (`<dir>/<host[:port]>/hosts.toml`, else `<dir>/_default/hosts.toml`), so the
//! files operators already keep for containerd work unchanged. A host directory without a
//! hosts.toml is read the Docker way, as containerd does: `*.crt` are CAs, `*.cert` with the
//! `*.key` of the same stem are client certificates for the upstream.

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
    /// The client certificate to present (mutual TLS).
    pub client: Option<ClientCert>,
    /// False for the upstream (the `server` entry or the registry itself).
    pub mirror: bool,
}

/// A client certificate and its key; without a key file the key is in the certificate's file.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: Option<PathBuf>,
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
    #[serde(default)]
    client: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct HostEntry {
    capabilities: Option<Vec<String>>,
    skip_verify: Option<bool>,
    ca: Option<toml::Value>,
    client: Option<toml::Value>,
}

/// Resolve the hosts to try for `registry` (`host[:port]` of the reference). Relative paths in
/// a hosts.toml are relative to its directory, as in containerd.
pub fn hosts_for(dir: &Path, registry: &str) -> Result<Vec<RegistryHost>> {
    let host_dir = dir.join(registry);
    let own = host_dir.join("hosts.toml");
    if own.is_file() {
        return read_file(&own, registry);
    }
    if host_dir.is_dir() {
        return docker_style(&host_dir, registry);
    }
    let default = dir.join("_default/hosts.toml");
    if default.is_file() {
        return read_file(&default, registry);
    }
    parse("", registry, dir)
}

fn read_file(path: &Path, registry: &str) -> Result<Vec<RegistryHost>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    let base = path.parent().unwrap_or(Path::new("/"));
    parse(&text, registry, base).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
        e => e,
    })
}

/// A host directory in Docker's layout: `*.crt` CAs, `<name>.cert` + `<name>.key` client pairs.
fn docker_style(host_dir: &Path, registry: &str) -> Result<Vec<RegistryHost>> {
    let read = std::fs::read_dir(host_dir)
        .map_err(|e| Error::io(format!("read {}", host_dir.display()), e))?;
    let mut files: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let ext = |p: &Path, x: &str| p.extension().is_some_and(|e| e == x);
    let ca = files.iter().filter(|p| ext(p, "crt")).cloned().collect();
    let mut client = None;
    for cert in files.iter().filter(|p| ext(p, "cert")) {
        let key = cert.with_extension("key");
        if !key.is_file() {
            return Err(Error::Config(format!(
                "{}: client certificate without its key {}",
                cert.display(),
                key.display()
            )));
        }
        if client.is_some() {
            tracing::warn!(cert = %cert.display(), "certs.d: more than one client certificate; using the first");
            continue;
        }
        client = Some(ClientCert {
            cert: cert.clone(),
            key: Some(key),
        });
    }
    Ok(vec![RegistryHost {
        host: registry.to_string(),
        plain_http: false,
        skip_verify: false,
        ca,
        client,
        mirror: false,
    }])
}

/// Parse a hosts.toml text for `registry`; relative paths are taken from `base`.
pub fn parse(text: &str, registry: &str, base: &Path) -> Result<Vec<RegistryHost>> {
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
        let (host, plain_http) = split_url(url)?;
        out.push(RegistryHost {
            host,
            plain_http,
            skip_verify: entry.skip_verify.unwrap_or(false),
            ca: paths(entry.ca.as_ref(), base),
            client: client_cert(entry.client.as_ref(), base, url)?,
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
                ca: paths(file.ca.as_ref(), base),
                client: client_cert(file.client.as_ref(), base, s)?,
                mirror: false,
            }
        }
        None => RegistryHost {
            host: registry.to_string(),
            plain_http: false,
            skip_verify: false,
            ca: Vec::new(),
            client: None,
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

fn paths(v: Option<&toml::Value>, base: &Path) -> Vec<PathBuf> {
    let strs: Vec<&str> = match v {
        Some(toml::Value::String(s)) => vec![s.as_str()],
        Some(toml::Value::Array(a)) => a.iter().filter_map(|x| x.as_str()).collect(),
        _ => Vec::new(),
    };
    strs.into_iter().map(|s| base.join(s)).collect()
}

/// containerd's `client` forms: `"cert.pem"`, `["a.pem", "b.pem"]` (key inside each file), or
/// `[["cert", "key"], …]`. One certificate is presented; more are logged and skipped.
fn client_cert(v: Option<&toml::Value>, base: &Path, url: &str) -> Result<Option<ClientCert>> {
    let bad = || {
        Error::Config(format!(
            "host {url:?}: client must be a path, a list of paths or a list of [cert, key] pairs"
        ))
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    match v {
        None => return Ok(None),
        Some(toml::Value::String(s)) => pairs.push((s.clone(), String::new())),
        Some(toml::Value::Array(a)) => {
            for x in a {
                match x {
                    toml::Value::String(s) => pairs.push((s.clone(), String::new())),
                    toml::Value::Array(p) => match p.as_slice() {
                        [toml::Value::String(c), toml::Value::String(k)] => {
                            pairs.push((c.clone(), k.clone()))
                        }
                        [toml::Value::String(c)] => pairs.push((c.clone(), String::new())),
                        _ => return Err(bad()),
                    },
                    _ => return Err(bad()),
                }
            }
        }
        Some(_) => return Err(bad()),
    }
    if pairs.len() > 1 {
        tracing::warn!(host = %url, count = pairs.len(), "hosts.toml: more than one client certificate; using the first");
    }
    Ok(pairs.into_iter().next().map(|(cert, key)| ClientCert {
        cert: base.join(cert),
        key: (!key.is_empty()).then(|| base.join(key)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_registry_plain_http() {
        let t = "server = \"http://127.0.0.1:5000\"\n[host.\"http://127.0.0.1:5000\"]\ncapabilities = [\"pull\", \"resolve\", \"push\"]\nskip_verify = true\n";
        let h = parse(t, "127.0.0.1:5000", Path::new("/")).expect("parse");
        assert_eq!(h.len(), 1);
        assert!(h[0].plain_http && h[0].skip_verify && !h[0].mirror);
        assert_eq!(h[0].host, "127.0.0.1:5000");
    }

    #[test]
    fn mirrors_first_then_upstream() {
        let t = "server = \"https://registry-1.docker.io\"\n[host.\"http://m1:5000\"]\n[host.\"https://m2\"]\nca = [\"/ca.pem\"]\n[host.\"https://pushonly\"]\ncapabilities = [\"push\"]\n";
        let h = parse(t, "docker.io", Path::new("/")).expect("parse");
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
        let h = parse("", "example.com", Path::new("/")).expect("parse");
        assert_eq!(h.len(), 1);
        assert!(!h[0].plain_http);
        assert_eq!(h[0].host, "example.com");
    }

    #[test]
    fn bad_scheme_is_an_error() {
        assert!(parse("server = \"ftp://x\"", "x", Path::new("/")).is_err());
    }

    #[test]
    fn client_certificates_in_every_form_containerd_reads() {
        let base = Path::new("/etc/crius/certs.d/reg");
        let t = "server = \"https://reg\"\nclient = [[\"c.cert\", \"/abs/c.key\"]]\n\
                 [host.\"https://m1\"]\nclient = \"both.pem\"\n\
                 [host.\"https://m2\"]\nclient = [\"one.pem\", \"two.pem\"]\n";
        let h = parse(t, "reg", base).expect("parse");
        assert_eq!(
            h[0].client,
            Some(ClientCert {
                cert: base.join("both.pem"),
                key: None
            })
        );
        assert_eq!(
            h[1].client.as_ref().map(|c| c.cert.clone()),
            Some(base.join("one.pem"))
        );
        assert_eq!(
            h[2].client,
            Some(ClientCert {
                cert: base.join("c.cert"),
                key: Some(PathBuf::from("/abs/c.key"))
            })
        );
        assert!(parse("[host.\"https://m\"]\nclient = 3\n", "reg", base).is_err());
    }

    #[test]
    fn relative_ca_paths_are_taken_from_the_host_dir() {
        let h = parse(
            "server = \"https://reg\"\nca = \"ca.crt\"\n",
            "reg",
            Path::new("/d/reg"),
        )
        .expect("parse");
        assert_eq!(h[0].ca, vec![PathBuf::from("/d/reg/ca.crt")]);
    }

    #[test]
    fn a_host_dir_without_hosts_toml_is_read_the_docker_way() {
        let dir = std::env::temp_dir().join(format!("crius-hosts-{}", std::process::id()));
        let host_dir = dir.join("reg:5443");
        std::fs::create_dir_all(&host_dir).expect("mkdir");
        for f in ["ca.crt", "client.cert", "client.key"] {
            std::fs::write(host_dir.join(f), "x").expect("write");
        }
        let h = hosts_for(&dir, "reg:5443");
        let _ = std::fs::remove_dir_all(&dir);
        let h = h.expect("hosts");
        assert_eq!(h.len(), 1);
        assert!(!h[0].plain_http);
        assert_eq!(h[0].ca, vec![host_dir.join("ca.crt")]);
        assert_eq!(
            h[0].client,
            Some(ClientCert {
                cert: host_dir.join("client.cert"),
                key: Some(host_dir.join("client.key"))
            })
        );
    }
}
