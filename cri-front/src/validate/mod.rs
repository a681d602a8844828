//! Request validation at each RPC's entry, before anything is made: strings that could not be
//! passed on whole ([`text`]), enum values the proto does not define ([`enums`]), resource
//! figures the kernel would refuse ([`resources`]). Each check says which field and why; the
//! caller answers INVALID_ARGUMENT and logs it. (Sysctl rules live with the pod's other rules in
//! the sandboxer: `crius_sandboxer` refuses them at RunPodSandbox's entry.)

pub mod enums;
pub mod resources;
pub mod text;

#[cfg(test)]
mod props;

use crius_proto::runtime as cri;

use crate::error::{Error, Result};
use enums::{known, namespaces, profile};
use text::{abs_path, cni_arg, line, map, path, plain, Check, HOSTNAME_MAX, NAME_253, PATH_MAX};

/// A failed check as INVALID_ARGUMENT (logged once, by the RPC layer, with the RPC's name).
fn invalid(c: Check) -> Result<()> {
    c.map_err(Error::InvalidArgument)
}

fn each<'a>(what: &str, v: impl IntoIterator<Item = &'a String>, max: usize) -> Check {
    v.into_iter().try_for_each(|s| line(what, s, max))
}

// The deprecated profile fields still arrive from older kubelets.
#[allow(deprecated)]
fn pod_checks(c: &cri::PodSandboxConfig) -> Check {
    if let Some(m) = &c.metadata {
        cni_arg("pod metadata.name", &m.name)?;
        cni_arg("pod metadata.namespace", &m.namespace)?;
        cni_arg("pod metadata.uid", &m.uid)?;
    }
    line("hostname", &c.hostname, HOSTNAME_MAX)?;
    if c.hostname.contains('/') {
        return Err(format!("hostname {:?} contains '/'", c.hostname));
    }
    abs_path("log_directory", &c.log_directory, false)?;
    if let Some(d) = &c.dns_config {
        each("dns server", &d.servers, NAME_253)?;
        each("dns search", &d.searches, NAME_253)?;
        each("dns option", &d.options, NAME_253)?;
    }
    for p in &c.port_mappings {
        known::<cri::Protocol>("port mapping protocol", p.protocol)?;
        if !p.host_ip.is_empty() && p.host_ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!(
                "port mapping host_ip {:?} is not an IP address",
                p.host_ip
            ));
        }
    }
    map("pod labels", &c.labels)?;
    map("pod annotations", &c.annotations)?;
    if let Some(l) = &c.linux {
        // A systemd slice (`kubepods-besteffort-pod<uid>.slice`) is a name, not a path; the
        // sandboxer checks it against the cgroup driver.
        if l.cgroup_parent.ends_with(".slice") {
            path("cgroup_parent", &l.cgroup_parent, false)?;
        } else {
            abs_path("cgroup_parent", &l.cgroup_parent, false)?;
        }
        // cgroupfs refuses names with a newline (EINVAL on mkdir).
        line("cgroup_parent", &l.cgroup_parent, PATH_MAX)?;
        if let Some(sc) = &l.security_context {
            if let Some(n) = &sc.namespace_options {
                namespaces("pod", n, false)?;
            }
            profile("pod seccomp", sc.seccomp.as_ref())?;
            profile("pod apparmor", sc.apparmor.as_ref())?;
            plain(
                "pod seccomp_profile_path",
                &sc.seccomp_profile_path,
                PATH_MAX,
            )?;
        }
    }
    Ok(())
}

// As above: older kubelets send the deprecated profile fields.
#[allow(deprecated)]
fn container_checks(c: &cri::ContainerConfig) -> Check {
    if let Some(m) = &c.metadata {
        line("container metadata.name", &m.name, NAME_253)?;
    }
    if let Some(i) = &c.image {
        line("image", &i.image, PATH_MAX)?;
    }
    text::argv_env(
        c.command.iter().chain(&c.args).map(String::as_str),
        c.envs
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_slice())),
    )?;
    abs_path("working_dir", &c.working_dir, true)?;
    for m in &c.mounts {
        path("mount container_path", &m.container_path, true)?;
        path("mount host_path", &m.host_path, true)?;
        path("mount image_sub_path", &m.image_sub_path, true)?;
        known::<cri::MountPropagation>(
            &format!("mount {} propagation", m.container_path),
            m.propagation,
        )?;
    }
    for d in &c.devices {
        path("device container_path", &d.container_path, true)?;
        path("device host_path", &d.host_path, true)?;
        if !d.permissions.chars().all(|ch| "rwm".contains(ch)) {
            return Err(format!(
                "device {} permissions {:?}: only r, w and m",
                d.host_path, d.permissions
            ));
        }
    }
    map("container labels", &c.labels)?;
    map("container annotations", &c.annotations)?;
    // Relative to the pod's log directory: it must stay inside.
    path("log_path", &c.log_path, false)?;
    known::<cri::Signal>("stop_signal", c.stop_signal)?;
    if let Some(l) = &c.linux {
        if let Some(r) = &l.resources {
            resources::check(r, &resources::Host::this())?;
        }
        if let Some(sc) = &l.security_context {
            if let Some(n) = &sc.namespace_options {
                namespaces("container", n, true)?;
            }
            profile("container seccomp", sc.seccomp.as_ref())?;
            profile("container apparmor", sc.apparmor.as_ref())?;
            plain("seccomp_profile_path", &sc.seccomp_profile_path, PATH_MAX)?;
            plain("apparmor_profile", &sc.apparmor_profile, PATH_MAX)?;
            line("run_as_username", &sc.run_as_username, NAME_253)?;
            known::<cri::SupplementalGroupsPolicy>(
                "supplemental_groups_policy",
                sc.supplemental_groups_policy,
            )?;
            for p in sc.masked_paths.iter().chain(&sc.readonly_paths) {
                abs_path("masked/readonly path", p, false)?;
            }
            if let Some(caps) = &sc.capabilities {
                each(
                    "capability",
                    caps.add_capabilities
                        .iter()
                        .chain(&caps.drop_capabilities)
                        .chain(&caps.add_ambient_capabilities),
                    64,
                )?;
            }
        }
    }
    Ok(())
}

/// RunPodSandbox's config.
pub fn pod_sandbox(c: &cri::PodSandboxConfig) -> Result<()> {
    invalid(pod_checks(c))
}

/// CreateContainer's config (CDI device names included: `vendor/class=name`).
pub fn container(c: &cri::ContainerConfig) -> Result<()> {
    invalid(container_checks(c))?;
    crate::cdi::requested(c).map(drop)
}

/// UpdateContainerResources' figures.
pub fn resources(r: &cri::LinuxContainerResources) -> Result<()> {
    invalid(resources::check(r, &resources::Host::this()))
}

/// ExecSync's and Exec's command.
pub fn command(cmd: &[String]) -> Result<()> {
    invalid(text::argv_env(cmd.iter().map(String::as_str), []))
}
