//! The container's record as CreateContainer writes it (what ContainerStatus and
//! ListContainers read from then on).

use std::path::{Path, PathBuf};

use crius_proto::runtime as cri;
use crius_sandboxer::PodStatus;

use super::oci::Built;
use crate::container::image_volume::ImageVolume;
use crate::container::record::{ContainerRecord, MountRecord, Phase, ResourcesRecord};
use crate::image::ResolvedImage;
use crate::util::time::now_ns;

/// What the create has made and been asked for by the time the record is written.
pub(super) struct Made<'a> {
    pub id: &'a str,
    pub pod: &'a PodStatus,
    pub config: &'a cri::ContainerConfig,
    pub meta: &'a cri::ContainerMetadata,
    /// The reference the request named.
    pub image: &'a str,
    pub img: &'a ResolvedImage,
    pub runtime: &'a str,
    pub built: &'a Built,
    pub vols: Vec<ImageVolume>,
}

pub(super) fn new_record(m: Made<'_>) -> ContainerRecord {
    let Made {
        id,
        pod,
        config,
        meta,
        image,
        img,
        runtime,
        built,
        vols,
    } = m;
    let log_path = log_path(pod, &config.log_path);
    ContainerRecord {
        id: id.to_string(),
        pod_id: pod.id.clone(),
        name: meta.name.clone(),
        attempt: meta.attempt,
        image: image.to_string(),
        image_id: img.view.id.clone(),
        image_name: img.view.names.first().cloned().unwrap_or_default(),
        labels: config.labels.clone().into_iter().collect(),
        annotations: config.annotations.clone().into_iter().collect(),
        log_path: log_path
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        mounts: config
            .mounts
            .iter()
            .enumerate()
            .map(|(i, m)| mount_record(m, vols.iter().find(|v| v.index == i)))
            .collect(),
        runtime: runtime.to_string(),
        phase: Phase::Created,
        created_at_ns: now_ns(),
        started_at_ns: 0,
        finished_at_ns: 0,
        exit_code: 0,
        reason: String::new(),
        message: String::new(),
        oom_killed: false,
        uid: built.uid,
        gid: built.gid,
        additional_gids: built.additional_gids.clone(),
        stop_signal: stop_signal(config, img),
        cgroups_path: built.cgroups_path.clone(),
        resources: config
            .linux
            .as_ref()
            .and_then(|l| l.resources.as_ref())
            .map(ResourcesRecord::from_cri),
        tty: config.tty,
        stdin: config.stdin,
        stdin_once: config.stdin_once,
        image_volumes: vols,
        removing: false,
    }
}

fn log_path(pod: &PodStatus, rel: &str) -> Option<PathBuf> {
    if rel.is_empty() {
        return None;
    }
    match &pod.config.log_directory {
        Some(d) => Some(d.join(rel)),
        None if Path::new(rel).is_absolute() => Some(PathBuf::from(rel)),
        None => None,
    }
}

fn stop_signal(config: &cri::ContainerConfig, img: &ResolvedImage) -> String {
    if config.stop_signal != 0 {
        if let Ok(s) = cri::Signal::try_from(config.stop_signal) {
            return s.as_str_name().to_string();
        }
    }
    img.config
        .run()
        .stop_signal
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "SIGTERM".into())
}

/// A mount as recorded for ContainerStatus; an image volume's host_path is criusd's mount.
fn mount_record(m: &cri::Mount, vol: Option<&ImageVolume>) -> MountRecord {
    MountRecord {
        container_path: m.container_path.clone(),
        host_path: vol.map_or_else(|| m.host_path.clone(), |v| v.source.clone()),
        readonly: m.readonly || vol.is_some(),
        propagation: m.propagation,
        image: vol.map(|v| v.image.clone()).unwrap_or_default(),
        image_sub_path: vol.map(|v| v.sub_path.clone()).unwrap_or_default(),
    }
}
