//! The host's device nodes as containers get them (containerd's `getDevices`): a CRI `Device`
//! entry names a node or a directory of nodes (every node under it, recursively), a privileged
//! container gets all of the host's `/dev`, and a CDI device node without type or numbers takes
//! them from its host node.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One node on the host, and where it goes in the container.
#[derive(Debug, Clone, PartialEq)]
pub struct HostDevice {
    pub container_path: PathBuf,
    /// `b`, `c` or `p`.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    /// Permission bits.
    pub file_mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The node at `path` itself (a symlink is not one): None when it is no device node.
pub fn node(path: &Path) -> io::Result<Option<HostDevice>> {
    let md = std::fs::symlink_metadata(path)?;
    let ft = md.file_type();
    let kind = if ft.is_block_device() {
        'b'
    } else if ft.is_char_device() {
        'c'
    } else if ft.is_fifo() {
        'p'
    } else {
        return Ok(None);
    };
    let rdev = md.rdev();
    Ok(Some(HostDevice {
        container_path: path.to_path_buf(),
        kind,
        major: nix::sys::stat::major(rdev) as i64,
        minor: nix::sys::stat::minor(rdev) as i64,
        file_mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
    }))
}

/// Every node under the host's `/dev` (not its pts, shm, mqueue or fd, nor the console), for
/// a privileged container, each at its own path.
pub fn all() -> Result<Vec<HostDevice>, String> {
    under(Path::new("/dev"), None)
}

/// What a CRI device entry `host` (symlinks resolved) gives: the node, or the nodes under the
/// directory, found recursively (fifos skipped); `container` is where `host` goes in the
/// container (None: the same path).
pub fn entry(host: &Path, container: Option<&Path>) -> Result<Vec<HostDevice>, String> {
    let real =
        std::fs::canonicalize(host).map_err(|e| format!("device {}: {e}", host.display()))?;
    let to = container.unwrap_or(host);
    if real.is_dir() {
        return under(&real, Some(to));
    }
    match node(&real) {
        Ok(Some(d)) if d.kind != 'p' => Ok(vec![HostDevice {
            container_path: to.to_path_buf(),
            ..d
        }]),
        Ok(_) => Err(format!("device {} is not a device node", host.display())),
        Err(e) => Err(format!("device {}: {e}", host.display())),
    }
}

/// The directories under /dev that are no devices of the host's to copy (runc's and
/// containerd's list).
const SKIPPED_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

fn under(dir: &Path, container: Option<&Path>) -> Result<Vec<HostDevice>, String> {
    let read = |e: io::Error| format!("devices under {}: {e}", dir.display());
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(read)?
        .collect::<io::Result<_>>()
        .map_err(read)?;
    entries.sort_by_key(|e| e.file_name());
    let mut out = Vec::new();
    for e in entries {
        let name = e.file_name();
        let path = e.path();
        let to = container.map(|c| c.join(&name));
        let ft = e.file_type().map_err(read)?;
        if ft.is_dir() {
            if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                out.extend(under(&path, to.as_deref())?);
            }
            continue;
        }
        if name == "console" {
            continue;
        }
        match node(&path) {
            Ok(Some(d)) if d.kind != 'p' => out.push(HostDevice {
                container_path: to.unwrap_or(path),
                ..d
            }),
            // Gone meanwhile, or no device: not one to give.
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("device {}: {e}", path.display())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_and_a_directory_of_nodes() {
        let null = node(Path::new("/dev/null")).unwrap().unwrap();
        assert_eq!((null.kind, null.major, null.minor), ('c', 1, 3));
        assert!(node(Path::new("/etc/hostname")).unwrap().is_none());
        let one = entry(Path::new("/dev/null"), Some(Path::new("/dev/nothing"))).unwrap();
        assert_eq!(one[0].container_path, Path::new("/dev/nothing"));
        assert!(entry(Path::new("/etc/hostname"), None)
            .unwrap_err()
            .contains("not a device node"));
        assert!(entry(Path::new("/no/such/dev"), None).is_err());

        // A directory: its nodes (and its subdirectories' nodes) at the container path,
        // symlinks and plain files left out.
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(dir.path().join("plain"), "x").unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("link")).unwrap();
        let mknod = |p: &Path, minor| {
            nix::sys::stat::mknod(
                p,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o640),
                nix::sys::stat::makedev(1, minor),
            )
        };
        mknod(&dir.path().join("zero"), 5).unwrap();
        mknod(&sub.join("full"), 7).unwrap();
        let got = entry(dir.path(), Some(Path::new("/dev/mine"))).unwrap();
        let paths: Vec<_> = got.iter().map(|d| d.container_path.clone()).collect();
        assert_eq!(
            paths,
            [
                PathBuf::from("/dev/mine/sub/full"),
                PathBuf::from("/dev/mine/zero")
            ]
        );
        assert_eq!(
            (got[1].major, got[1].minor, got[1].file_mode),
            (1, 5, 0o640)
        );
    }

    #[test]
    fn the_hosts_dev() {
        let all = all().unwrap();
        assert!(all
            .iter()
            .any(|d| d.container_path == Path::new("/dev/null")));
        assert!(!all.iter().any(|d| d.container_path.starts_with("/dev/pts")
            || d.container_path == Path::new("/dev/console")));
    }
}
