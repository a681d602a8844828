//! The seccomp and AppArmor profiles a container asks for (the CRI fields, or the deprecated
//! strings older kubelets send), as the spec gets them.

use crius_proto::runtime as cri;

use crate::container::spec::Seccomp;
use crate::error::{Error, Result};

// Older kubelets still send the deprecated profile path.
#[allow(deprecated)]
pub(super) fn seccomp(sc: &cri::LinuxContainerSecurityContext) -> Result<Seccomp> {
    let (kind, path) = match &sc.seccomp {
        Some(p) => (p.profile_type, p.localhost_ref.clone()),
        None => match sc.seccomp_profile_path.as_str() {
            "" | "unconfined" => (
                cri::security_profile::ProfileType::Unconfined as i32,
                String::new(),
            ),
            "runtime/default" | "docker/default" => (
                cri::security_profile::ProfileType::RuntimeDefault as i32,
                String::new(),
            ),
            p => match p.strip_prefix("localhost/") {
                Some(path) => (
                    cri::security_profile::ProfileType::Localhost as i32,
                    path.to_string(),
                ),
                None => return Err(Error::InvalidArgument(format!("seccomp profile {p:?}"))),
            },
        },
    };
    use cri::security_profile::ProfileType as T;
    match T::try_from(kind) {
        Ok(T::Unconfined) => Ok(Seccomp::Unconfined),
        Ok(T::RuntimeDefault) => Ok(Seccomp::RuntimeDefault),
        Ok(T::Localhost) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::InvalidArgument(format!("seccomp profile {path}: {e}")))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| Error::InvalidArgument(format!("seccomp profile {path}: {e}")))?;
            Ok(Seccomp::Profile(v))
        }
        Err(_) => Err(Error::InvalidArgument(format!(
            "seccomp profile type {kind}"
        ))),
    }
}

/// The AppArmor profile asked for: the CRI field, else the deprecated profile string.
// Older kubelets still send the deprecated string.
#[allow(deprecated)]
fn apparmor_request(
    sc: &cri::LinuxContainerSecurityContext,
) -> Result<Option<cri::SecurityProfile>> {
    use cri::security_profile::ProfileType as T;
    if let Some(p) = &sc.apparmor {
        if T::try_from(p.profile_type).is_err() {
            return Err(Error::InvalidArgument(format!(
                "apparmor profile type {}",
                p.profile_type
            )));
        }
        return Ok(Some(p.clone()));
    }
    let p = |t: T, r: &str| {
        Some(cri::SecurityProfile {
            profile_type: t as i32,
            localhost_ref: r.to_string(),
        })
    };
    Ok(match sc.apparmor_profile.as_str() {
        "" => None,
        "unconfined" => p(T::Unconfined, ""),
        "runtime/default" => p(T::RuntimeDefault, ""),
        s => match s.strip_prefix("localhost/") {
            Some(r) => p(T::Localhost, r),
            None => return Err(Error::InvalidArgument(format!("apparmor profile {s:?}"))),
        },
    })
}

/// The AppArmor profile for the spec. On a host without AppArmor a requested profile
/// (other than unconfined) is refused, as containerd does, rather than run unconfined
/// without a word.
pub(super) fn apparmor(sc: &cri::LinuxContainerSecurityContext) -> Result<Option<String>> {
    use cri::security_profile::ProfileType as T;
    let asked = apparmor_request(sc)?;
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false);
    if !enabled {
        return match asked {
            Some(p) if p.profile_type != T::Unconfined as i32 => {
                Err(Error::InvalidArgument(format!(
                    "AppArmor profile {} requested, but AppArmor is not enabled on this node",
                    if p.profile_type == T::Localhost as i32 {
                        format!("localhost/{}", p.localhost_ref)
                    } else {
                        "runtime/default".into()
                    }
                )))
            }
            _ => Ok(None),
        };
    }
    if sc.privileged {
        return Ok(None);
    }
    match asked {
        Some(p) if p.profile_type == T::Localhost as i32 => Ok(Some(p.localhost_ref.clone())),
        Some(p) if p.profile_type == T::RuntimeDefault as i32 => {
            tracing::warn!("AppArmor RuntimeDefault requested but crius ships no AppArmor profile; running unconfined");
            Ok(None)
        }
        _ => Ok(None),
    }
}
