//! The container's OCI spec, from the request, its pod and its image: the user, the
//! namespaces, mounts, devices, profiles, annotations, resources and cgroup, then CDI's edits.

use std::collections::BTreeMap;

use crius_proto::runtime as cri;
use crius_sandboxer::{
    PodStatus, ANN_CRIUS_CONTAINER_TYPE, ANN_CRIUS_SANDBOX_ID, ANN_CRI_CONTAINER_TYPE,
    ANN_CRI_SANDBOX_ID,
};

use super::devices::devices;
use super::profiles::{apparmor, seccomp};
use crate::container::image_volume::ImageVolume;
use crate::container::merge;
use crate::container::spec::{self, Seccomp, SpecInput};
use crate::container::user::{self, UserRequest};
use crate::container::Containers;
use crate::error::{Error, Result};
use crate::image::ResolvedImage;
use crate::util::phases::Phases;

/// The spec and what the record keeps of it.
pub(super) struct Built {
    pub spec: oci_spec::runtime::Spec,
    pub cgroups_path: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

impl Containers {
    pub(super) async fn build_spec(
        &self,
        id: &str,
        pod: &PodStatus,
        config: &cri::ContainerConfig,
        img: &ResolvedImage,
        vols: &[ImageVolume],
        phases: &mut Phases,
    ) -> Result<Built> {
        let run = img.config.run();
        let linux = config.linux.clone().unwrap_or_default();
        let sc = linux.security_context.clone().unwrap_or_default();
        let res = linux.resources.clone().unwrap_or_default();

        let ureq = UserRequest {
            run_as_user: sc.run_as_user.as_ref().map(|v| v.value),
            run_as_username: sc.run_as_username.clone(),
            run_as_group: sc.run_as_group.as_ref().map(|v| v.value),
            image_user: run.user.clone().unwrap_or_default(),
            supplemental_groups: sc.supplemental_groups.clone(),
            strict_groups: sc.supplemental_groups_policy
                == cri::SupplementalGroupsPolicy::Strict as i32,
        };
        let volumes = self.config_volumes(id, &run, &config.mounts);
        let (passwd, group) = self.read_image_files(id, img, &ureq, &volumes).await?;
        phases.mark("image_files");
        let who = user::resolve(&ureq, &passwd, &group)?;

        let envs: Vec<(String, String)> = config
            .envs
            .iter()
            .map(|kv| {
                (
                    kv.key.clone(),
                    String::from_utf8_lossy(&kv.value).into_owned(),
                )
            })
            .collect();
        let ns = self.namespaces(pod, &sc).await?;
        // rro as the pod's handler's OCI runtime (runc, crun) offers it.
        let rro = self
            .oci_features(&pod.config.runtime_handler)
            .recursive_read_only;
        let mounts = self.bind_mounts(config, &volumes, vols, ns.userns, rro)?;
        let userns = ns.userns_join(pod)?;
        let devices = devices(&config.devices, sc.privileged)?;
        let seccomp = if sc.privileged {
            Seccomp::Unconfined
        } else {
            seccomp(&sc)?
        };
        let apparmor = apparmor(&sc)?;
        let annotations = annotations(pod, config, img);
        let masked = if sc.masked_paths.is_empty() {
            oci_spec::runtime::get_default_maskedpaths()
        } else {
            sc.masked_paths.clone()
        };
        let readonly_paths = if sc.readonly_paths.is_empty() {
            oci_spec::runtime::get_default_readonly_paths()
        } else {
            sc.readonly_paths.clone()
        };
        let oom = (res.oom_score_adj != 0)
            .then(|| self.oom_score(id, res.oom_score_adj.clamp(-1000, 1000) as i32));
        crate::container::node_cgroups::check(&res)?;
        let resources = crate::container::update::resources_json(&res)?;
        let driver = self.shared.cfg.cgroup_driver();
        let parent = if pod.cgroup_parent.is_empty() {
            driver.default_parent()
        } else {
            pod.cgroup_parent.as_str()
        };
        let cgroups_path = crius_sandboxer::cgroup::cgroups_path(driver, parent, id)
            .map_err(Error::InvalidArgument)?;
        let input = SpecInput {
            args: merge::argv(&run, &config.command, &config.args)?,
            env: merge::env(&run, &envs, &pod.hostname),
            cwd: merge::cwd(&run, &config.working_dir),
            tty: config.tty,
            uid: who.uid,
            gid: who.gid,
            additional_gids: who.additional_gids.clone(),
            privileged: sc.privileged,
            readonly_rootfs: sc.readonly_rootfs,
            no_new_privs: sc.no_new_privs,
            cap_add: sc
                .capabilities
                .as_ref()
                .map(|c| c.add_capabilities.clone())
                .unwrap_or_default(),
            cap_drop: sc
                .capabilities
                .as_ref()
                .map(|c| c.drop_capabilities.clone())
                .unwrap_or_default(),
            cap_ambient: sc
                .capabilities
                .as_ref()
                .map(|c| c.add_ambient_capabilities.clone())
                .unwrap_or_default(),
            available_caps: spec::own_bounding_set(),
            oom_score_adj: oom,
            net: Some(ns.net),
            ipc: Some(ns.ipc),
            uts: Some(ns.uts),
            pid: Some(ns.pid),
            userns,
            cgroups_path,
            cgroup_ns: !sc.privileged
                && std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
            resources,
            hosts_path: Some(pod.hosts_path.display().to_string()),
            resolv_path: Some(pod.resolv_conf_path.display().to_string()),
            hostname_path: Some(pod.hostname_path.display().to_string()),
            shm_path: ns.shm_path,
            mounts,
            devices,
            masked_paths: masked,
            readonly_paths,
            seccomp,
            apparmor_profile: apparmor,
            annotations,
        };
        let mut spec = spec::build(&input)?;
        crate::cdi::inject(
            &self.shared.cfg.cdi_spec_dirs,
            &mut spec,
            &crate::cdi::requested(config)?,
            id,
        )?;
        // CDI may add groups: the status reports the ones the process has.
        let additional_gids = spec
            .process()
            .as_ref()
            .and_then(|p| p.user().additional_gids().clone())
            .unwrap_or(who.additional_gids);
        Ok(Built {
            spec,
            cgroups_path: input.cgroups_path.clone(),
            uid: who.uid,
            gid: who.gid,
            additional_gids,
        })
    }
}

/// The request's annotations, and the ones containerd's CRI plugin (and crius) add: the
/// container's type, name and image, its pod's id, name, namespace and uid.
fn annotations(
    pod: &PodStatus,
    config: &cri::ContainerConfig,
    img: &ResolvedImage,
) -> BTreeMap<String, String> {
    let mut annotations: BTreeMap<String, String> =
        config.annotations.clone().into_iter().collect();
    let meta = config.metadata.clone().unwrap_or_default();
    for (k, v) in [
        (ANN_CRI_CONTAINER_TYPE, "container".to_string()),
        (ANN_CRI_SANDBOX_ID, pod.id.clone()),
        (ANN_CRIUS_CONTAINER_TYPE, "container".to_string()),
        (ANN_CRIUS_SANDBOX_ID, pod.id.clone()),
        ("io.kubernetes.cri.container-name", meta.name.clone()),
        (
            "io.kubernetes.cri.image-name",
            img.view.names.first().cloned().unwrap_or_default(),
        ),
        (
            "io.kubernetes.cri.sandbox-name",
            pod.config.metadata.name.clone(),
        ),
        (
            "io.kubernetes.cri.sandbox-namespace",
            pod.config.metadata.namespace.clone(),
        ),
        (
            "io.kubernetes.cri.sandbox-uid",
            pod.config.metadata.uid.clone(),
        ),
    ] {
        annotations.insert(k.to_string(), v);
    }
    annotations
}
