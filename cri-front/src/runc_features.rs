//! What an OCI runtime (runc, crun) can do, asked once at start (`<binary> features`: runc ≥
//! 1.1, crun ≥ 1.9): kubelet learns from RuntimeStatus whether recursive read-only mounts work,
//! and refuses pods that need them otherwise.

use std::time::Duration;

/// Features criusd passes on to kubelet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuncFeatures {
    /// The runtime knows the `rro` mount option and the kernel has mount_setattr (5.12+).
    pub recursive_read_only: bool,
}

/// Ask `<binary> features`; anything unexpected means "not supported", logged.
pub async fn probe(binary: &str) -> RuncFeatures {
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(binary)
            .arg("features")
            .kill_on_drop(true)
            .output(),
    )
    .await;
    let json = match out {
        Ok(Ok(o)) if o.status.success() => o.stdout,
        Ok(Ok(o)) => {
            // crun before 1.9 has no `features` command.
            tracing::warn!(binary, status = %o.status, "OCI runtime `features` failed; assuming no optional features");
            return RuncFeatures::default();
        }
        Ok(Err(e)) => {
            tracing::warn!(binary, error = %e, "OCI runtime `features`: cannot run the binary; assuming no optional features");
            return RuncFeatures::default();
        }
        Err(_) => {
            tracing::warn!(
                binary,
                "OCI runtime `features` timed out; assuming no optional features"
            );
            return RuncFeatures::default();
        }
    };
    let f = parse(&json, kernel_has_mount_setattr());
    tracing::info!(
        binary,
        recursive_read_only = f.recursive_read_only,
        "OCI runtime features"
    );
    f
}

fn parse(json: &[u8], mount_setattr: bool) -> RuncFeatures {
    let v: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    let has_rro = v["mountOptions"]
        .as_array()
        .is_some_and(|a| a.iter().any(|o| o == "rro"));
    RuncFeatures {
        recursive_read_only: has_rro && mount_setattr,
    }
}

/// mount_setattr(2) came with Linux 5.12.
fn kernel_has_mount_setattr() -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (5, 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rro_needs_runc_and_kernel() {
        let with = br#"{"mountOptions": ["ro", "rro", "rbind"]}"#;
        assert!(parse(with, true).recursive_read_only);
        assert!(!parse(with, false).recursive_read_only);
        assert!(!parse(br#"{"mountOptions": ["ro"]}"#, true).recursive_read_only);
        assert!(!parse(b"not json", true).recursive_read_only);
    }
}
