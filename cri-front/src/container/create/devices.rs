//! The container's device nodes: the CRI devices (a directory: every node under it), and
//! for a privileged container the host's /dev.

use std::path::Path;

use crius_proto::runtime as cri;

use crate::container::spec::DeviceSpec;
use crate::error::{Error, Result};

/// The CRI devices (a directory: every node under it), then for a privileged container the
/// host's /dev nodes at the paths the CRI devices leave free (as containerd).
pub(super) fn devices(asked: &[cri::Device], privileged: bool) -> Result<Vec<DeviceSpec>> {
    let mut out = Vec::new();
    for d in asked {
        let to = (!d.container_path.is_empty()).then(|| Path::new(&d.container_path));
        for n in crate::host_devices::entry(Path::new(&d.host_path), to)
            .map_err(Error::InvalidArgument)?
        {
            out.push(device_spec(n, &d.permissions));
        }
    }
    if privileged {
        let host = crate::host_devices::all().map_err(Error::FailedPrecondition)?;
        for n in host {
            let path = n.container_path.display().to_string();
            if !out.iter().any(|d| d.container_path == path) {
                out.push(device_spec(n, "rwm"));
            }
        }
    }
    Ok(out)
}

fn device_spec(n: crate::host_devices::HostDevice, permissions: &str) -> DeviceSpec {
    DeviceSpec {
        container_path: n.container_path.display().to_string(),
        kind: n.kind,
        major: n.major,
        minor: n.minor,
        file_mode: n.file_mode,
        uid: n.uid,
        gid: n.gid,
        permissions: permissions.to_string(),
    }
}
