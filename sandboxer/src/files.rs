//! The per-pod files every container of the pod bind-mounts: resolv.conf,
//! hostname, hosts.

use std::io;
use std::path::Path;

use crate::atomic;
use crate::pod::DnsConfig;

const HOST_RESOLV: &str = "/etc/resolv.conf";
const HOST_HOSTS: &str = "/etc/hosts";

/// Default /etc/hosts of a pod with its own network (kubelet manages its own
/// hosts file for most pods; this serves the rest).
const POD_HOSTS: &str = "127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\n\
ff00::0\tip6-mcastprefix\n\
ff02::1\tip6-allnodes\n\
ff02::2\tip6-allrouters\n";

/// resolv.conf text from a pod's DNS config.
pub fn resolv_conf(dns: &DnsConfig) -> String {
    let mut s = String::new();
    if !dns.searches.is_empty() {
        s.push_str(&format!("search {}\n", dns.searches.join(" ")));
    }
    for ns in &dns.servers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    if !dns.options.is_empty() {
        s.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    s
}

/// Write the three files into `dir`. `dns` None copies the host's resolv.conf;
/// `host_network` copies the host's /etc/hosts.
pub fn write_pod_files(
    dir: &Path,
    dns: Option<&DnsConfig>,
    hostname: &str,
    host_network: bool,
) -> io::Result<()> {
    let resolv = match dns {
        Some(d) => resolv_conf(d).into_bytes(),
        None => read_or_empty(HOST_RESOLV)?,
    };
    atomic::write_fast(&dir.join("resolv.conf"), &resolv)?;
    atomic::write_fast(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    let hosts = if host_network {
        read_or_empty(HOST_HOSTS)?
    } else {
        POD_HOSTS.as_bytes().to_vec()
    };
    atomic::write_fast(&dir.join("hosts"), &hosts)
}

/// Hands the three files to a user-namespaced pod's root (host ids `uid`/`gid`), who may then
/// write them as root may in any pod.
pub fn chown_pod_files(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    for f in ["resolv.conf", "hostname", "hosts"] {
        std::os::unix::fs::chown(dir.join(f), Some(uid), Some(gid))?;
    }
    Ok(())
}

fn read_or_empty(p: &str) -> io::Result<Vec<u8>> {
    match std::fs::read(p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_from_dns() {
        let d = DnsConfig {
            servers: vec!["10.96.0.10".into(), "8.8.8.8".into()],
            searches: vec!["ns.svc.cluster.local".into(), "svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        };
        assert_eq!(
            resolv_conf(&d),
            "search ns.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver 8.8.8.8\noptions ndots:5\n"
        );
        assert_eq!(resolv_conf(&DnsConfig::default()), "");
    }

    #[test]
    fn writes_files() {
        let t = tempfile::tempdir().expect("tempdir");
        write_pod_files(t.path(), Some(&DnsConfig::default()), "web-1", false).expect("write");
        assert_eq!(
            std::fs::read_to_string(t.path().join("hostname")).expect("read"),
            "web-1\n"
        );
        assert!(std::fs::read_to_string(t.path().join("hosts"))
            .expect("read")
            .starts_with("127.0.0.1\tlocalhost"));
    }
}
