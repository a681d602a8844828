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

/// A script under `hack/`.
pub fn hack(script: &str) -> PathBuf {
    repo_root().join("hack").join(script)
}
