//! Installing the static pause binary into a read-only rootfs the sandboxer owns.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::atomic;

/// Path of the pause program inside the rootfs.
pub const PAUSE_IN_ROOTFS: &str = "/pause";

/// Mount points the pause spec uses; the rootfs is read-only, so they must exist.
const DIRS: &[&str] = &["dev", "proc", "sys", "etc", "tmp"];

/// Does this ELF ask for a program interpreter (dynamically linked)?
pub fn elf_is_dynamic(bytes: &[u8]) -> Result<bool, String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a 64-bit little-endian ELF".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff =
        u64::from_le_bytes(bytes[0x20..0x28].try_into().map_err(|_| "short header")?) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        let Some(ph) = bytes.get(o..o + 4) else {
            return Err("truncated program headers".into());
        };
        const PT_INTERP: u32 = 3;
        if u32::from_le_bytes([ph[0], ph[1], ph[2], ph[3]]) == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Copy `binary` to `<rootfs>/pause` (only when it changed) and make the mount
/// points. Refuses a dynamically linked binary: nothing else is in the rootfs.
pub fn install(binary: &Path, rootfs: &Path) -> Result<PathBuf, String> {
    let bytes = std::fs::read(binary).map_err(|e| format!("read {}: {e}", binary.display()))?;
    match elf_is_dynamic(&bytes) {
        Ok(false) => {}
        Ok(true) => {
            return Err(format!(
                "{} is dynamically linked; build it static: cargo rustc -p crius-sandboxer \
                 --bin crius-pause --release -- -C target-feature=+crt-static",
                binary.display()
            ))
        }
        Err(e) => return Err(format!("{}: {e}", binary.display())),
    }
    let io = |e: io::Error| format!("install pause rootfs {}: {e}", rootfs.display());
    std::fs::create_dir_all(rootfs).map_err(io)?;
    for d in DIRS {
        std::fs::create_dir_all(rootfs.join(d)).map_err(io)?;
    }
    let target = rootfs.join("pause");
    if std::fs::read(&target).ok().as_deref() != Some(&bytes[..]) {
        atomic::write(&target, &bytes).map_err(io)?;
    }
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o555)).map_err(io)?;
    std::fs::set_permissions(rootfs, std::fs::Permissions::from_mode(0o555)).map_err(io)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_dynamic_elf() {
        // The test binary itself is dynamically linked (gnu target default).
        let exe = std::fs::read(std::env::current_exe().expect("exe")).expect("read");
        assert_eq!(elf_is_dynamic(&exe), Ok(true));
        assert!(elf_is_dynamic(b"#!/bin/sh\n").is_err());
        let d = tempfile::tempdir().expect("tempdir");
        let err = install(&std::env::current_exe().expect("exe"), &d.path().join("r"))
            .expect_err("dynamic");
        assert!(err.contains("dynamically linked"), "{err}");
    }
}
