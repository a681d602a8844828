//! The image config's `Volumes` (Dockerfile `VOLUME`), as containerd's default treats them: each
//! path the container's CRI mounts do not cover gets a directory of its own container,
//! `<state_dir>/containers/<id>/volumes/<n>`, filled with what the image holds at that path
//! (owners, modes, links kept) and bind-mounted read-write. It goes with the container.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crius_proto::runtime as cri;

use super::image_volume::lookup_in_root;
use crate::error::{Error, Result};
use crate::image::manifest::RunConfig;

/// The image's volume paths no CRI mount covers, cleaned (`/data/` → `/data`), in a stable order.
pub fn uncovered(run: &RunConfig, mounts: &[cri::Mount]) -> Vec<String> {
    let clean = |p: &str| -> String {
        let parts: Vec<&str> = p
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        format!("/{}", parts.join("/"))
    };
    let taken: Vec<String> = mounts.iter().map(|m| clean(&m.container_path)).collect();
    let mut out: Vec<String> = run
        .volumes
        .iter()
        .flat_map(|v| v.keys())
        .map(|p| clean(p))
        .filter(|p| p != "/" && !p.split('/').any(|s| s == "..") && !taken.contains(p))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Make `host` and copy into it what the image mounted at `root` has at `path` (nothing when the
/// image has no such directory: an empty volume).
pub fn populate(root: Option<&Path>, path: &str, host: &Path) -> Result<()> {
    std::fs::create_dir_all(host)
        .map_err(|e| Error::io(format!("create {}", host.display()), e))?;
    let Some(root) = root else { return Ok(()) };
    let src = match lookup_in_root(root, path.trim_start_matches('/')) {
        Ok(p) if p.is_dir() => p,
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("image volume {path}"), e)),
    };
    copy_tree(&src, host).map_err(|e| Error::io(format!("copy image volume {path}"), e))
}

/// Copy the tree at `src` into the existing directory `dst` (which takes `src`'s owner and mode).
fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    let mut todo: Vec<(PathBuf, PathBuf)> = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((s, d)) = todo.pop() {
        for e in std::fs::read_dir(&s)? {
            let e = e?;
            let (from, to) = (e.path(), d.join(e.file_name()));
            let md = std::fs::symlink_metadata(&from)?;
            let ft = md.file_type();
            if ft.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            } else if ft.is_dir() {
                std::fs::create_dir(&to)?;
                todo.push((from, to.clone()));
            } else if ft.is_file() {
                std::fs::copy(&from, &to)?;
            } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
                crate::sys::mknod(&to, md.mode(), md.rdev())?;
            } else {
                // A socket is nothing a container could use from an image.
                continue;
            }
            keep_metadata(&to, &md)?;
        }
        keep_metadata(&d, &std::fs::symlink_metadata(&s)?)?;
    }
    Ok(())
}

fn keep_metadata(path: &Path, md: &std::fs::Metadata) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(md.uid()), Some(md.gid()))?;
    if !md.file_type().is_symlink() {
        // After the chown, which clears setuid/setgid bits.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn only_uncovered_paths() {
        let run = RunConfig {
            volumes: Some(BTreeMap::from([
                ("/data/".to_string(), serde_json::json!({})),
                ("/cache".to_string(), serde_json::json!({})),
                ("/".to_string(), serde_json::json!({})),
                ("/x/../etc".to_string(), serde_json::json!({})),
            ])),
            ..Default::default()
        };
        let m = cri::Mount {
            container_path: "/cache/".into(),
            host_path: "/srv".into(),
            ..Default::default()
        };
        assert_eq!(uncovered(&run, &[m]), vec!["/data"]);
        assert!(uncovered(&RunConfig::default(), &[]).is_empty());
    }

    #[test]
    fn copies_the_tree_with_modes_and_links() {
        let t = tempfile::tempdir().expect("tmp");
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("data/sub")).expect("dirs");
        std::fs::write(root.join("data/sub/f"), "hello").expect("file");
        std::fs::set_permissions(
            root.join("data/sub"),
            std::fs::Permissions::from_mode(0o750),
        )
        .expect("chmod");
        std::os::unix::fs::symlink("sub/f", root.join("data/link")).expect("link");
        std::os::unix::fs::symlink("/data", root.join("via")).expect("link");
        let host = t.path().join("vol");
        populate(Some(&root), "/via", &host).expect("populate");
        assert_eq!(
            std::fs::read_to_string(host.join("sub/f")).expect("f"),
            "hello"
        );
        let mode = std::fs::metadata(host.join("sub")).expect("md").mode() & 0o777;
        assert_eq!(mode, 0o750);
        assert_eq!(
            std::fs::read_link(host.join("link")).expect("l"),
            Path::new("sub/f")
        );
        // Not in the image: an empty volume.
        let empty = t.path().join("empty");
        populate(Some(&root), "/nothing", &empty).expect("populate");
        assert!(empty.is_dir());
    }
}
