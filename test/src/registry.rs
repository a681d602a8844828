//! The local registry (127.0.0.1:5000) and the images on it. Every image a test uses is pulled from
//! here, through the real OCI distribution path.

use crate::{paths, process};
use anyhow::anyhow;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Where `hack/registry-up.sh` serves.
pub const REGISTRY: &str = "127.0.0.1:5000";
/// Debian's busybox with the libc it links: sh, sleep, httpd, nc, ping…
pub const BUSYBOX: &str = "127.0.0.1:5000/crius/busybox:latest";
/// busybox whose config sets User `app` (uid 1000), Env, WorkingDir `/home/app`, Entrypoint and Cmd.
pub const CONFIG_TEST: &str = "127.0.0.1:5000/crius/config-test:latest";
/// crius's static pause (present once `hack/build.sh` built it before `hack/images/build.sh` ran).
pub const PAUSE: &str = "127.0.0.1:5000/crius/pause:latest";

/// Make sure the registry runs and holds the local images; start and build them through `hack/` if
/// not. Done once per test process.
pub fn ensure() -> crate::Result<()> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            if has_manifest("crius/busybox") && has_manifest("crius/config-test") {
                return Ok(());
            }
            process::output(&mut Command::new(paths::hack("registry-up.sh")))
                .map_err(|e| e.to_string())?;
            process::output(&mut Command::new(paths::hack("images/build.sh")))
                .map_err(|e| e.to_string())?;
            Ok(())
        })
        .clone()
        .map_err(|e| anyhow!("local registry: {e}"))
}

/// True when the registry answers 200 for `<repo>:latest`.
pub fn has_manifest(repo: &str) -> bool {
    http_status(&format!("/v2/{repo}/manifests/latest")) == Some(200)
}

/// Status code of a GET on the local registry (HTTP/1.0, no body read).
fn http_status(path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&REGISTRY.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {REGISTRY}\r\nAccept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
