//! CreateContainer: validate, resolve image and user, build the OCI spec, then the
//! containerd container and its rootfs snapshot. A failure removes what was made.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crius_ctrd::NewContainer;
use crius_proto::runtime as cri;
use crius_sandboxer::{
    PodState, PodStatus, ANN_CRIUS_CONTAINER_TYPE, ANN_CRIUS_SANDBOX_ID, ANN_CRI_CONTAINER_TYPE,
    ANN_CRI_SANDBOX_ID, LABEL_KIND, LABEL_SANDBOX_ID,
};

use super::config_volumes;
use super::image_volume::ImageVolume;
use super::merge;
use super::names::NameKey;
use super::record::{ContainerRecord, MountRecord, Phase};
use super::spec::{self, BindMount, DeviceSpec, Ns, Seccomp, SpecInput, UsernsJoin};
use super::state::State;
use super::user::{self, UserRequest};
use super::Containers;
use crate::error::{Error, Result};
use crate::image::ResolvedImage;
use crate::util::time::now_ns;

/// containerd label with the CRI container name (for `ctr c ls` readers).
pub const LABEL_CONTAINER_NAME: &str = "io.crius.container.name";

/// A fresh 64-hex id, like containerd's CRI plugin makes.
pub fn new_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Containers {
    #[tracing::instrument(level = "debug", skip_all, fields(pod = %pod_id))]
    pub async fn create_container(
        &self,
        pod_id: &str,
        config: cri::ContainerConfig,
    ) -> Result<String> {
        let meta = config
            .metadata
            .clone()
            .filter(|m| !m.name.is_empty())
            .ok_or_else(|| Error::InvalidArgument("container metadata.name is missing".into()))?;
        let image = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .filter(|i| !i.is_empty())
            .ok_or_else(|| Error::InvalidArgument("container image is missing".into()))?;
        if pod_id.is_empty() {
            return Err(Error::InvalidArgument("pod_sandbox_id is empty".into()));
        }
        let pod = self.shared.sandboxer.status(pod_id).await?;
        if pod.state != PodState::Ready {
            return Err(Error::FailedPrecondition(format!(
                "pod sandbox {pod_id} is not ready"
            )));
        }
        let pod_id = pod.id.clone();
        let runtime = self
            .shared
            .cfg
            .runtime_for(&pod.config.runtime_handler)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown runtime handler {:?}",
                    pod.config.runtime_handler
                ))
            })?
            .to_string();
        let img = self.shared.images.resolve(&image).await?;

        // The name is this container's from here until it is removed; a failed create frees it.
        let id = new_id();
        self.store.reserve_name(
            NameKey {
                pod_id: pod_id.clone(),
                name: meta.name.clone(),
                attempt: meta.attempt,
            },
            &id,
        )?;
        let mut guard = self.transitions.lock_new(&id).await;
        tracing::info!(pod = %pod_id, container = %id, name = %meta.name, image = %image, "CreateContainer");
        let made: Result<()> = async {
            let vols = self
                .make_image_volumes(&pod_id, &id, &config.mounts)
                .await?;
            let built = match self.build_spec(&id, &pod, &config, &img, &vols).await {
                Ok(b) => b,
                Err(e) => {
                    self.drop_image_volumes(&id).await;
                    self.drop_config_volumes(&id).await;
                    return Err(e);
                }
            };
            let log_path = log_path(&pod, &config.log_path);
            let mut rec = ContainerRecord {
                id: id.clone(),
                pod_id: pod_id.clone(),
                name: meta.name.clone(),
                attempt: meta.attempt,
                image: image.clone(),
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
                runtime: runtime.clone(),
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
                stop_signal: stop_signal(&config, &img),
                cgroups_path: built.cgroups_path.clone(),
                resources: config
                    .linux
                    .as_ref()
                    .and_then(|l| l.resources.as_ref())
                    .map(super::record::ResourcesRecord::from_cri),
                tty: config.tty,
                stdin: config.stdin,
                stdin_once: config.stdin_once,
                image_volumes: vols,
            };

            let spec_json = serde_json::to_vec(&built.spec)
                .map_err(|e| Error::Internal(format!("encode spec: {e}")))?;
            let made = self
                .create_in_containerd(
                    &rec,
                    &runtime,
                    &meta.name,
                    spec_json,
                    img.top_chain.as_deref(),
                )
                .await;
            if let Err(e) = made {
                self.undo_create(&id).await;
                return Err(e);
            }
            if let Err(e) = self.store.put(&rec).await {
                self.undo_create(&id).await;
                let _ = self.store.remove(&id).await;
                return Err(e);
            }
            rec.phase = Phase::Created;
            self.emit(&rec, cri::ContainerEventType::ContainerCreatedEvent)
                .await;
            Ok(())
        }
        .await;
        match made {
            Ok(()) => {
                *guard = State::Created;
                Ok(id)
            }
            Err(e) => {
                self.store.release_name(&id);
                self.transitions.forget(&id);
                Err(e)
            }
        }
    }

    async fn create_in_containerd(
        &self,
        rec: &ContainerRecord,
        runtime: &str,
        name: &str,
        spec_json: Vec<u8>,
        parent: Option<&str>,
    ) -> Result<()> {
        let mut labels = HashMap::new();
        labels.insert(LABEL_SANDBOX_ID.to_string(), rec.pod_id.clone());
        labels.insert(LABEL_KIND.to_string(), "container".to_string());
        labels.insert(LABEL_CONTAINER_NAME.to_string(), name.to_string());
        // The container record first: it references the snapshot key, so the GC never
        // takes the snapshot between its Prepare and here.
        let ctrd = &self.shared.ctrd;
        ctrd.create_container(NewContainer {
            id: rec.id.clone(),
            runtime: runtime.to_string(),
            spec: spec_json,
            labels,
            image: rec.image_name.clone(),
            snapshot_key: rec.id.clone(),
        })
        .await?;
        ctrd.prepare_snapshot(&rec.id, parent.unwrap_or_default(), HashMap::new())
            .await?;
        Ok(())
    }

    /// Remove a half-made container (containerd record, snapshots, image volumes), logging
    /// what fails.
    pub(crate) async fn undo_create(&self, id: &str) {
        if let Err(e) = self.shared.ctrd.delete_container(id).await {
            tracing::warn!(container = id, error = %e, "cleanup: container delete failed");
        }
        self.remove_snapshot(id).await;
        self.drop_image_volumes(id).await;
        self.drop_config_volumes(id).await;
    }

    /// Remove a container's image-config volumes (a create that failed before its record).
    pub(crate) async fn drop_config_volumes(&self, id: &str) {
        let dir = self.config_volumes_dir(id);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(container = id, dir = %dir.display(), error = %e, "removing image-config volumes failed");
            }
        }
        // The record dir itself, when nothing else made it.
        let _ = tokio::fs::remove_dir(self.store.dir_of(id)).await;
    }

    pub(crate) async fn remove_snapshot(&self, key: &str) {
        if let Err(e) = self.shared.ctrd.remove_snapshot(key).await {
            tracing::warn!(snapshot = key, error = %e, "snapshot remove failed");
        }
    }

    /// The pid namespace of another running container of the same pod (`kubectl debug
    /// --target`: an ephemeral container that sees the target's processes).
    async fn target_pid_ns(&self, pod_id: &str, target_id: &str) -> Result<Ns> {
        if target_id.is_empty() {
            return Err(Error::InvalidArgument(
                "pid namespace mode TARGET needs target_id".into(),
            ));
        }
        let target = self.store.find(target_id).await?;
        if target.pod_id != pod_id {
            return Err(Error::InvalidArgument(format!(
                "target container {} is in pod {}, not {pod_id}",
                target.id, target.pod_id
            )));
        }
        let pid = match target.phase {
            Phase::Running => self.task_pid(&target.id).await,
            _ => None,
        }
        .ok_or_else(|| {
            Error::FailedPrecondition(format!("target container {} is not running", target.id))
        })?;
        Ok(Ns::Join(PathBuf::from(format!("/proc/{pid}/ns/pid"))))
    }

    async fn build_spec(
        &self,
        id: &str,
        pod: &PodStatus,
        config: &cri::ContainerConfig,
        img: &ResolvedImage,
        vols: &[ImageVolume],
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
        let volumes: Vec<(String, PathBuf)> = if self.shared.cfg.ignore_image_defined_volumes {
            Vec::new()
        } else {
            config_volumes::uncovered(&run, &config.mounts)
                .into_iter()
                .enumerate()
                .map(|(n, p)| (p, self.config_volumes_dir(id).join(n.to_string())))
                .collect()
        };
        // One read-only view of the image serves both: its user files and its VOLUME contents.
        let need_files = user::needs_files(&ureq);
        let (passwd, group) = match &img.top_chain {
            Some(top) if need_files || !volumes.is_empty() => {
                let volumes = volumes.clone();
                self.with_image_view(id, top, move |root| {
                    for (path, host) in &volumes {
                        config_volumes::populate(Some(root), path, host)?;
                    }
                    Ok(if need_files {
                        read_user_files(root)
                    } else {
                        Default::default()
                    })
                })
                .await?
            }
            _ => {
                for (path, host) in &volumes {
                    config_volumes::populate(None, path, host)?;
                }
                Default::default()
            }
        };
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
        let pause = pod.pause_pid;
        let proc_ns = |kind: &str| -> Result<Ns> {
            let pid = pause.ok_or_else(|| {
                Error::FailedPrecondition(format!("pod sandbox {} has no running pause", pod.id))
            })?;
            Ok(Ns::Join(PathBuf::from(format!("/proc/{pid}/ns/{kind}"))))
        };
        let nso = sc.namespace_options.clone().unwrap_or_default();
        let userns = crate::pod::userns::for_container(
            nso.userns_options.as_ref(),
            pod.config.linux.userns,
        )?;
        let host_net = pod.netns_path.is_none();
        let net = match &pod.netns_path {
            Some(p) => Ns::Join(p.clone()),
            None => Ns::Host,
        };
        let node = cri::NamespaceMode::Node as i32;
        let ipc = if nso.ipc == node {
            Ns::Host
        } else {
            proc_ns("ipc")?
        };
        let uts = if host_net { Ns::Host } else { proc_ns("uts")? };
        let pid = match cri::NamespaceMode::try_from(nso.pid) {
            Ok(cri::NamespaceMode::Pod) => proc_ns("pid")?,
            Ok(cri::NamespaceMode::Container) => Ns::New,
            Ok(cri::NamespaceMode::Node) => Ns::Host,
            Ok(cri::NamespaceMode::Target) => self.target_pid_ns(&pod.id, &nso.target_id).await?,
            Err(_) => {
                return Err(Error::InvalidArgument(format!(
                    "unknown pid namespace mode {}",
                    nso.pid
                )))
            }
        };
        let shm_path = if ipc == Ns::Host {
            Some("/dev/shm".to_string())
        } else {
            pod.shm_path.as_ref().map(|p| p.display().to_string())
        };

        let mut mounts: Vec<BindMount> = volumes
            .iter()
            .map(|(path, host)| BindMount {
                container_path: path.clone(),
                host_path: host.display().to_string(),
                readonly: false,
                propagation: "rprivate",
                recursive_readonly: false,
                nosuid_nodev: false,
                // The image's files, seen as the image has them.
                idmap: userns.is_some(),
            })
            .collect();
        let mount_table = if config
            .mounts
            .iter()
            .any(|m| m.propagation != cri::MountPropagation::PropagationPrivate as i32)
        {
            super::propagation::mounts_now()?
        } else {
            Vec::new()
        };
        for (i, m) in config.mounts.iter().enumerate() {
            let asked_idmap = crate::pod::userns::mount_idmapped(m, userns)?;
            mounts.push(match vols.iter().find(|v| v.index == i) {
                Some(v) => BindMount {
                    idmap: userns.is_some(),
                    ..image_bind(v)
                },
                None => BindMount {
                    idmap: asked_idmap,
                    ..bind_mount(m, self.runc.recursive_read_only, &mount_table)?
                },
            });
        }
        let userns = match userns {
            Some(map) => {
                if ipc == Ns::Host || pid == Ns::Host {
                    return Err(Error::InvalidArgument(
                        "a container in its pod's user namespace cannot use the host's PID or IPC namespace".into(),
                    ));
                }
                match proc_ns("user")? {
                    Ns::Join(path) => Some(UsernsJoin { path, map }),
                    _ => None,
                }
            }
            None => None,
        };
        let devices = devices(&config.devices, sc.privileged)?;
        let seccomp = if sc.privileged {
            Seccomp::Unconfined
        } else {
            seccomp(&sc)?
        };
        let apparmor = apparmor(&sc)?;
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
        super::node_cgroups::check(&res)?;
        let resources = super::update::resources_json(&res)?;
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
            net: Some(net),
            ipc: Some(ipc),
            uts: Some(uts),
            pid: Some(pid),
            userns,
            cgroups_path,
            cgroup_ns: !sc.privileged
                && std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists(),
            resources,
            hosts_path: Some(pod.hosts_path.display().to_string()),
            resolv_path: Some(pod.resolv_conf_path.display().to_string()),
            hostname_path: Some(pod.hostname_path.display().to_string()),
            shm_path,
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

    /// Where a container's image-config volumes live: in its record dir, so they go with it.
    pub(crate) fn config_volumes_dir(&self, id: &str) -> PathBuf {
        self.store.dir_of(id).join("volumes")
    }

    /// Run `work` on the image's files, through a read-only view snapshot of its top layer
    /// mounted for the call.
    async fn with_image_view<T: Send + 'static>(
        &self,
        id: &str,
        top: &str,
        work: impl FnOnce(&Path) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let key = format!("{}{id}", super::view::USER_FILES_VIEW);
        let mounts = self.view_snapshot(&key, top, HashMap::new()).await?;
        let dir = self.user_files_dir().join(id);
        let res = tokio::task::spawn_blocking(move || {
            super::view::mount_view(&mounts, &dir, &[])?;
            let out = work(&dir);
            if let Err(e) = crate::sys::umount(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "umount image view failed");
            }
            let _ = std::fs::remove_dir(&dir);
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("image view work: {e}")));
        self.remove_snapshot(&key).await;
        res?
    }
}

struct Built {
    spec: oci_spec::runtime::Spec,
    cgroups_path: String,
    uid: u32,
    gid: u32,
    additional_gids: Vec<u32>,
}

/// The image's /etc/passwd and /etc/group ("" when absent) from its files at `root`.
fn read_user_files(root: &Path) -> (String, String) {
    let read = |rel: &str| -> String {
        let p = root.join(rel);
        // A symlink could point out of the image onto the host's files: treat it as absent.
        match std::fs::symlink_metadata(&p) {
            Ok(md) if md.is_file() => std::fs::read_to_string(&p).unwrap_or_default(),
            _ => String::new(),
        }
    };
    (read("etc/passwd"), read("etc/group"))
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

fn bind_mount(
    m: &cri::Mount,
    rro_supported: bool,
    mount_table: &[super::propagation::MountPoint],
) -> Result<BindMount> {
    if m.container_path.is_empty() || !m.container_path.starts_with('/') {
        return Err(Error::InvalidArgument(format!(
            "mount container_path {:?} must be absolute",
            m.container_path
        )));
    }
    if m.image.is_some() {
        return Err(Error::Internal(format!(
            "image mount {} was not made",
            m.container_path
        )));
    }
    if m.recursive_read_only {
        // The CRI contract: read-only, private propagation, and a runtime that can.
        if !m.readonly || m.propagation != cri::MountPropagation::PropagationPrivate as i32 {
            return Err(Error::InvalidArgument(format!(
                "mount {}: recursive read-only needs readonly and private propagation",
                m.container_path
            )));
        }
        if !rro_supported {
            return Err(Error::InvalidArgument(format!(
                "mount {}: recursive read-only is not supported by this node's runc or kernel",
                m.container_path
            )));
        }
    }
    let src = Path::new(&m.host_path);
    if !src.exists() {
        // kubelet usually creates host paths; containerd creates a missing one as a dir.
        std::fs::create_dir_all(src)
            .map_err(|e| Error::io(format!("create mount source {}", src.display()), e))?;
    }
    let propagation = super::propagation::option_for(m, mount_table)?;
    Ok(BindMount {
        container_path: m.container_path.clone(),
        host_path: m.host_path.clone(),
        readonly: m.readonly,
        propagation,
        recursive_readonly: m.recursive_read_only,
        nosuid_nodev: false,
        idmap: false,
    })
}

/// An image volume's bind: always read-only (the feature says so, whatever `readonly` was).
fn image_bind(v: &ImageVolume) -> BindMount {
    BindMount {
        container_path: v.container_path.clone(),
        host_path: v.source.clone(),
        readonly: true,
        propagation: "rprivate",
        recursive_readonly: false,
        nosuid_nodev: true,
        idmap: false,
    }
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

/// The CRI devices (a directory: every node under it), then for a privileged container the
/// host's /dev nodes at the paths the CRI devices leave free (as containerd).
fn devices(asked: &[cri::Device], privileged: bool) -> Result<Vec<DeviceSpec>> {
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

// Older kubelets still send the deprecated profile path.
#[allow(deprecated)]
fn seccomp(sc: &cri::LinuxContainerSecurityContext) -> Result<Seccomp> {
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
fn apparmor(sc: &cri::LinuxContainerSecurityContext) -> Result<Option<String>> {
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
