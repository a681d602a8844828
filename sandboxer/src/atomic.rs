//! Atomic file replacement (tmp file + rename), durable (fsync of the file and
//! its directory) or not.
//!
//! Why not always durable: an fsync pair costs ~5 ms on these disks and pod
//! start writes several files. A process crash (kill -9) never loses a renamed
//! file; only a power loss can, and then every pod is dead anyway and
//! `recover()` reconciles whatever is left (unreadable records are torn down,
//! CNI cache and netns leftovers are swept). So files on the pod-start path
//! are written without fsync; records are made durable off the hot path
//! (`sync`) and on stop/remove.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

fn tmp_for(path: &Path) -> io::Result<(PathBuf, PathBuf)> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other(format!("{} has no parent", path.display())))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} has no file name", path.display())))?;
    Ok((
        dir.to_path_buf(),
        dir.join(format!(".{}.tmp", name.to_string_lossy())),
    ))
}

fn replace(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let (dir, tmp) = tmp_for(path)?;
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if durable {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Replace `path` with `bytes`; a crash leaves the old or the new file, and
/// the new one survives a power loss once this returns.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, true)
}

/// Replace `path` with `bytes` atomically, without waiting for the disk.
pub fn write_fast(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, false)
}

/// Make an earlier `write_fast` durable.
pub fn sync(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Remove a file; a missing one is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_content() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("f.json");
        super::write(&p, b"one").expect("write");
        super::write_fast(&p, b"two").expect("write");
        super::sync(&p).expect("sync");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        assert_eq!(
            std::fs::read_dir(d.path()).expect("ls").count(),
            1,
            "no tmp left"
        );
        super::remove(&p).expect("rm");
        super::remove(&p).expect("rm again");
    }
}
