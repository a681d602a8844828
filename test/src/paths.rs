//! Where the repository, its binaries and the hack scripts are.

use std::path::{Path, PathBuf};

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

/// The crius binaries the tests run: the package folder, the bin's own source under it (a bin
/// is rebuilt when its own source, its package's lib or a dependency changes, and only then), and
/// the workspace crates it depends on.
const BUILT: &[(&str, &str, &str, &[&str])] = &[
    (
        "debug/criusd",
        "cri-front",
        "src/bin/criusd.rs",
        &["sandboxer", "proto"],
    ),
    (
        "debug/criusctl",
        "cri-front",
        "src/bin/criusctl",
        &["sandboxer", "proto"],
    ),
    (
        "debug/crius-logger",
        "cri-front",
        "src/bin/crius-logger.rs",
        &["sandboxer", "proto"],
    ),
    (
        "debug/containerd-shim-crius-v2",
        "shim-runc",
        "src/main.rs",
        &[],
    ),
    (
        "release/crius-pause",
        "sandboxer",
        "src/bin/crius-pause.rs",
        &["proto"],
    ),
];

/// The tests run the binaries `hack/build.sh` built, not ones cargo builds for them (criusd, the
/// shim and the pause are other packages'). A binary older than a source it is built from would
/// test old code and pass: that is an error, named, with the command that mends it. Checked once
/// per test binary.
pub fn check_binaries_fresh() -> Result<(), String> {
    static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let root = repo_root();
            for (bin, package, own, deps) in BUILT {
                let path = target_dir().join(bin);
                let Some(built) = mtime(&path) else { continue };
                let pkg = root.join(package);
                // The package without its other bins, the bin's own source and the dependencies
                // without theirs. Not Cargo.lock: a rebase touches it without changing what cargo
                // builds (cargo then relinks nothing), and a real change there rebuilds anyway.
                let mut sources = crate_sources(&pkg)
                    .into_iter()
                    .chain(newest_source(&pkg.join(own), Path::new("")))
                    .chain(deps.iter().flat_map(|d| crate_sources(&root.join(d))));
                if let Some((_, src)) = sources.find(|(t, _)| *t > built) {
                    return Err(format!(
                        "{} is older than {}: run hack/build.sh (tests run the binaries it builds)",
                        path.display(),
                        src.display()
                    ));
                }
            }
            Ok(())
        })
        .clone()
}

/// What a crate's lib is built from (not its bins, tests, examples or benches, whose changes
/// relink nothing else): `src/` without `src/bin`, `build.rs`, `Cargo.toml`, and `proto/`.
fn crate_sources(dir: &Path) -> Vec<(std::time::SystemTime, PathBuf)> {
    let skip = dir.join("src/bin");
    ["src", "build.rs", "Cargo.toml", "proto"]
        .into_iter()
        .filter_map(|p| newest_source(&dir.join(p), &skip))
        .collect()
}

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The newest `.rs`, `.proto` or `Cargo.toml` at or under `path` (a file or a dir; `target` and
/// `skip` left out), with its path.
fn newest_source(path: &Path, skip: &Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p == skip {
            continue;
        }
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            stack.extend(
                std::fs::read_dir(&p)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
            continue;
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !(name.ends_with(".rs") || name.ends_with(".proto") || name == "Cargo.toml") {
            continue;
        }
        if let Some(t) = mtime(&p) {
            if best.as_ref().is_none_or(|(b, _)| t > *b) {
                best = Some((t, p));
            }
        }
    }
    best
}
