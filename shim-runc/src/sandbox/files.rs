//! The pod's shared files where containerd's CRI looks for them when it builds a container's
//! mounts: `hostname`, `hosts` and `resolv.conf` in `<root>/io.containerd.grpc.v1.cri/sandboxes/<id>`,
//! the `/dev/shm` tmpfs at `<state>/io.containerd.grpc.v1.cri/sandboxes/<id>/shm`. With
//! `sandboxer = "shim"` containerd's CRI makes none of them and mounts each that exists.
//!
//! containerd's root and state dirs are not passed to a shim; they follow from the bundle the
//! shim sandbox controller made: `<state>/io.containerd.sandbox.controller.v1.shim/<ns>/<id>`,
//! whose `work` symlink points at `<root>/io.containerd.sandbox.controller.v1.shim/<ns>/<id>`.

use std::path::{Path, PathBuf};

use super::config::{Dns, PodConfig};
use crate::error::{Error, Result};

const CRI_PLUGIN_DIR: &str = "io.containerd.grpc.v1.cri";

/// The pod's two CRI dirs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CriDirs {
    /// Persistent: hostname, hosts, resolv.conf.
    pub root: PathBuf,
    /// Volatile: the shm mount point.
    pub state: PathBuf,
}

impl CriDirs {
    pub fn shm(&self) -> PathBuf {
        self.state.join("shm")
    }
}

/// containerd's dir that holds the shim controller's plugin dir holding `<ns>/<id>`.
fn containerd_dir(bundle_like: &Path, id: &str) -> Option<PathBuf> {
    if bundle_like.file_name()? != id {
        return None;
    }
    Some(bundle_like.parent()?.parent()?.parent()?.to_path_buf())
}

/// Where containerd's CRI keeps pod `id`'s files, given the sandbox bundle.
pub fn cri_dirs(bundle: &Path, id: &str) -> Result<CriDirs> {
    let bad = |what: &str| {
        Error::InvalidArgument(format!(
            "bundle {} is not a sandbox controller bundle ({what})",
            bundle.display()
        ))
    };
    let state = containerd_dir(bundle, id).ok_or_else(|| bad("layout"))?;
    let work = std::fs::read_link(bundle.join("work")).map_err(|_| bad("no work link"))?;
    let root = containerd_dir(&work, id).ok_or_else(|| bad("work link"))?;
    let sub = |d: PathBuf| d.join(CRI_PLUGIN_DIR).join("sandboxes").join(id);
    Ok(CriDirs {
        root: sub(root),
        state: sub(state),
    })
}

/// resolv.conf as containerd's CRI writes it for a pod's DNS config.
pub fn resolv_conf(dns: &Dns) -> String {
    let mut out = String::new();
    if !dns.searches.is_empty() {
        out += &format!("search {}\n", dns.searches.join(" "));
    }
    for s in &dns.servers {
        out += &format!("nameserver {s}\n");
    }
    if !dns.options.is_empty() {
        out += &format!("options {}\n", dns.options.join(" "));
    }
    out
}

fn host_hostname() -> Result<String> {
    nix::unistd::gethostname()
        .map_err(|e| Error::Other(format!("gethostname: {e}")))
        .map(|h| h.to_string_lossy().into_owned())
}

/// The hostname the pod gets: its own, or the node's.
pub fn hostname(cfg: &PodConfig) -> Result<String> {
    match &cfg.hostname {
        Some(h) => Ok(h.clone()),
        None => host_hostname(),
    }
}

/// Makes both dirs and writes hostname, hosts (the node's) and resolv.conf (from the DNS config,
/// else the node's), as containerd's own pod sandbox controller does.
pub fn write(dirs: &CriDirs, cfg: &PodConfig) -> Result<()> {
    for d in [&dirs.root, &dirs.state] {
        std::fs::create_dir_all(d).map_err(Error::io(format!("mkdir {}", d.display())))?;
    }
    let put = |name: &str, text: &[u8]| {
        let p = dirs.root.join(name);
        std::fs::write(&p, text).map_err(Error::io(format!("write {}", p.display())))
    };
    put("hostname", format!("{}\n", hostname(cfg)?).as_bytes())?;
    let read = |p: &str| std::fs::read(p).map_err(Error::io(format!("read {p}")));
    put("hosts", &read("/etc/hosts")?)?;
    match &cfg.dns {
        Some(dns) => put("resolv.conf", resolv_conf(dns).as_bytes())?,
        None => put("resolv.conf", &read("/etc/resolv.conf")?)?,
    }
    Ok(())
}

/// Removes both dirs (the shm mount must be gone already).
pub fn remove(dirs: &CriDirs) {
    for d in [&dirs.root, &dirs.state] {
        if let Err(e) = std::fs::remove_dir_all(d) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %d.display(), error = %e, "removing pod dir failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirs_follow_the_bundle() {
        let tmp = tempfile::tempdir().unwrap();
        let plugin = "io.containerd.sandbox.controller.v1.shim";
        let bundle = tmp.path().join("state").join(plugin).join("k8s.io/p1");
        let work = tmp.path().join("root").join(plugin).join("k8s.io/p1");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        std::os::unix::fs::symlink(&work, bundle.join("work")).unwrap();
        let d = cri_dirs(&bundle, "p1").unwrap();
        assert_eq!(
            d.root,
            tmp.path()
                .join("root/io.containerd.grpc.v1.cri/sandboxes/p1")
        );
        assert_eq!(
            d.shm(),
            tmp.path()
                .join("state/io.containerd.grpc.v1.cri/sandboxes/p1/shm")
        );
        assert!(matches!(
            cri_dirs(&bundle, "other"),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            cri_dirs(&work, "p1"),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn resolv_conf_like_containerd() {
        let dns = Dns {
            servers: vec!["10.0.0.10".into(), "10.0.0.11".into()],
            searches: vec!["ns.svc.cluster.local".into(), "cluster.local".into()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(&dns),
            "search ns.svc.cluster.local cluster.local\nnameserver 10.0.0.10\n\
             nameserver 10.0.0.11\noptions ndots:5\n"
        );
        assert_eq!(resolv_conf(&Dns::default()), "");
    }
}
