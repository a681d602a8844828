//! RuntimeConfig (the cgroup driver kubelet must match) and UpdateRuntimeConfig (the
//! node's pod CIDR, handed to the sandboxer's network).

use crius_proto::runtime as cri;
use crius_sandboxer::cgroup::CgroupDriver;

use crate::daemon::Shared;
use crate::error::Result;

pub fn runtime_config(shared: &Shared) -> cri::RuntimeConfigResponse {
    cri::RuntimeConfigResponse {
        linux: Some(cri::LinuxRuntimeConfiguration {
            cgroup_driver: match shared.cfg.cgroup_driver() {
                CgroupDriver::Systemd => cri::CgroupDriver::Systemd,
                CgroupDriver::Cgroupfs => cri::CgroupDriver::Cgroupfs,
            } as i32,
        }),
    }
}

pub fn update_runtime_config(shared: &Shared, req: cri::UpdateRuntimeConfigRequest) -> Result<()> {
    let cidr = req
        .runtime_config
        .and_then(|c| c.network_config)
        .map(|n| n.pod_cidr)
        .unwrap_or_default();
    if !cidr.is_empty() {
        shared.sandboxer.update_pod_cidr(&cidr)?;
        tracing::info!(pod_cidr = %cidr, "UpdateRuntimeConfig");
    }
    Ok(())
}
