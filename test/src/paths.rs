//! Where the repository, its binaries and the hack scripts are.

use std::path::PathBuf;

/// The workspace root (the folder holding `Cargo.toml`, `hack/`, `test/`).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Cargo's target dir, honouring `CARGO_TARGET_DIR` like the hack scripts do.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// Dir of the debug binaries (`hack/build.sh` builds them): containerd finds the shim here.
pub fn bin_dir() -> PathBuf {
    target_dir().join("debug")
}

/// `containerd-shim-crius-v2`.
pub fn shim_bin() -> PathBuf {
    bin_dir().join("containerd-shim-crius-v2")
}

/// `criusd`.
pub fn criusd_bin() -> PathBuf {
    bin_dir().join("criusd")
}

/// `criusctl`.
pub fn criusctl_bin() -> PathBuf {
    bin_dir().join("criusctl")
}

/// The static pause (`hack/build.sh` builds it in release mode with crt-static).
pub fn pause_bin() -> PathBuf {
    target_dir().join("release").join("crius-pause")
}

/// Which containerd the tests run: `CRIUS_CONTAINERD` = `1.6` (default: the system's, on PATH) or
/// `2.1` (Debian forky's, unpacked by `hack/containerd/fetch-2.1.sh`). Anything else is a mistake in
/// the caller's environment and panics, so a typo never silently tests the wrong containerd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerdVersion {
    V1_6,
    V2_1,
}

impl ContainerdVersion {
    /// The version `CRIUS_CONTAINERD` picks.
    pub fn selected() -> Self {
        match std::env::var("CRIUS_CONTAINERD").as_deref() {
            Err(_) | Ok("") | Ok("1.6") => ContainerdVersion::V1_6,
            Ok("2.1") => ContainerdVersion::V2_1,
            Ok(other) => panic!("CRIUS_CONTAINERD={other}: want 1.6 or 2.1"),
        }
    }

    /// As `hack/containerd/config.sh` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerdVersion::V1_6 => "1.6",
            ContainerdVersion::V2_1 => "2.1",
        }
    }

    /// Dir holding this version's `containerd`, `ctr` and runc shim; `None`: the system's, on PATH.
    pub fn bin_dir(self) -> Option<PathBuf> {
        match self {
            ContainerdVersion::V1_6 => None,
            ContainerdVersion::V2_1 => Some(
                std::env::var_os("CRIUS_CONTAINERD21")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/opt/crius/containerd-2.1"))
                    .join("bin"),
            ),
        }
    }

    /// The `containerd` binary (a bare name: looked up on PATH).
    pub fn containerd(self) -> PathBuf {
        self.tool("containerd")
    }

    /// The `ctr` binary of the same version.
    pub fn ctr(self) -> PathBuf {
        self.tool("ctr")
    }

    fn tool(self, name: &str) -> PathBuf {
        self.bin_dir()
            .map_or_else(|| PathBuf::from(name), |dir| dir.join(name))
    }
}

/// A script under `hack/`.
pub fn hack(script: &str) -> PathBuf {
    repo_root().join("hack").join(script)
}
