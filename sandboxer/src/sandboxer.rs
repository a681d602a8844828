//! The `Sandboxer`: pod lifecycle over the netns, CNI, pause and store modules.
//! Recovery lives in `recover.rs`; teardown steps shared by run-failure,
//! stop, remove and recover live in `teardown.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::util::now_ns;

use crius_ctrd::Mount;
use tracing::Instrument;

use crate::cni::{Attachment, Cni, CniError};
use crate::config::{PauseSource, SandboxerConfig};
use crate::ctrd::{self, ctrd_err, Ctrd};
use crate::error::{Error, ErrorKind, Result};
use crate::pause::image::PauseImage;
use crate::pause::{image, rootfs, spec};
use crate::pod::{NamespaceMode, PodConfig, PodResources};
use crate::pod_cgroup;
use crate::status::{NetnsView, NetworkStatus, PodState, PodStatus, RunTimings};
use crate::store::{self, Phase, PodRecord};
use crate::{files, netns, oom, sys};

/// Owns all pods of one criusd. Share it behind an `Arc`; every method takes
/// `&self` and is safe to call concurrently (calls on one pod are serialised).
pub struct Sandboxer {
    pub(crate) cfg: SandboxerConfig,
    pub(crate) cni: Cni,
    pub(crate) ctrd: Ctrd,
    rootfs: PathBuf,
    /// The resolved pause image (PauseSource::Image), once a pod needed it.
    pause_image: tokio::sync::Mutex<Option<Arc<PauseImage>>>,
    oom_clamp: bool,
    own_oom: i32,
    /// Every pod known, by id (records are also on disk).
    pub(crate) pods: Mutex<HashMap<String, PodRecord>>,
    /// One async lock per pod id, so run/stop/remove of one pod never interleave.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

pub(crate) fn io_step(step: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Internal, step, e.to_string())
}

pub(crate) fn cni_err(step: &str, e: CniError) -> Error {
    let kind = match &e {
        CniError::Config(_) => ErrorKind::FailedPrecondition,
        CniError::Args(_) => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, step, e.to_string())
}

fn elapsed_us(t: Instant) -> u64 {
    t.elapsed().as_micros() as u64
}

impl Sandboxer {
    /// Prepare directories, install the pause rootfs, read the CNI config and
    /// set up the (lazy) containerd connection. Loads pod records from disk but
    /// does not reconcile them: call [`Sandboxer::recover`] once after this.
    pub async fn new(cfg: SandboxerConfig) -> Result<Self> {
        Self::with_containerd(cfg, None).await
    }

    /// As [`Sandboxer::new`], over `ctrd` (criusd's own client, or a fake) when given; else a
    /// client of its own from the config's address, namespace and snapshotter.
    pub async fn with_containerd(cfg: SandboxerConfig, ctrd: Option<Ctrd>) -> Result<Self> {
        for d in [
            cfg.state_dir.clone(),
            cfg.run_dir.join("netns"),
            cfg.run_dir.join("sandboxes"),
            cfg.cni_cache_dir.clone(),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| io_step("create dirs", format!("{}: {e}", d.display())))?;
        }
        let rootfs_dir = cfg.run_dir.join("pause").join("rootfs");
        match &cfg.pause {
            PauseSource::Binary(bin) => {
                rootfs::install(bin, &rootfs_dir)
                    .map_err(|m| Error::new(ErrorKind::FailedPrecondition, "install pause", m))?;
            }
            // Resolved at the first pod: criusd may pull it after start-up.
            PauseSource::Image(_) => {}
        }
        let own_oom = oom::own_score();
        let has_cap = oom::has_cap_sys_resource();
        let oom_clamp = oom::should_clamp(cfg.oom_score, has_cap);
        if oom_clamp {
            tracing::info!(
                own_score = own_oom,
                has_cap_sys_resource = has_cap,
                policy = ?cfg.oom_score,
                "oom_score_adj requests below this process's own score are clamped to {own_oom}"
            );
        }
        let ctrd: Ctrd = match ctrd {
            Some(c) => c,
            None => Arc::new(
                crius_ctrd::Client::connect(
                    &cfg.containerd_address,
                    &cfg.containerd_namespace,
                    &cfg.snapshotter,
                )
                .map_err(|e| ctrd_err("containerd connect", e))?,
            ),
        };
        let cni = Cni::new(
            cfg.cni_conf_dir.clone(),
            cfg.cni_bin_dirs.clone(),
            cfg.cni_cache_dir.clone(),
            cfg.cni_timeout,
        );
        let _ = cni.current(); // logs the config in force (or why none)
        let mut pods = HashMap::new();
        for id in store::ids(&cfg.state_dir).map_err(|e| io_step("read state dir", e))? {
            match store::load(&cfg.state_dir, &id) {
                Ok(rec) => {
                    pods.insert(id, rec);
                }
                Err(e) => {
                    tracing::warn!(pod = %id, error = %e, "unreadable pod record; recover() cleans it up")
                }
            }
        }
        Ok(Sandboxer {
            cfg,
            cni,
            ctrd,
            rootfs: rootfs_dir,
            pause_image: tokio::sync::Mutex::new(None),
            oom_clamp,
            own_oom,
            pods: Mutex::new(pods),
            locks: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &SandboxerConfig {
        &self.cfg
    }

    /// The oom_score_adj to request for `requested` under this sandboxer's
    /// policy (criusd uses it for containers too).
    pub fn oom_score_adj(&self, requested: i32) -> i32 {
        oom::effective_score(requested, self.own_oom, self.oom_clamp)
    }

    pub(crate) fn pod_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }

    pub(crate) fn forget(&self, id: &str) {
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    pub(crate) fn record(&self, id: &str) -> Option<PodRecord> {
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Save a record to disk (durably), then to memory.
    pub(crate) fn save(&self, rec: &PodRecord) -> Result<()> {
        self.save_with(rec, true)
    }

    /// Save a record; `durable = false` on the pod-start path (see `atomic`).
    pub(crate) fn save_with(&self, rec: &PodRecord, durable: bool) -> Result<()> {
        store::save(&self.cfg.state_dir, rec, durable)
            .map_err(|e| io_step("save pod record", e).pod(&rec.id))?;
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rec.id.clone(), rec.clone());
        Ok(())
    }

    pub(crate) fn netns_path(&self, id: &str) -> PathBuf {
        self.cfg.run_dir.join("netns").join(id)
    }

    pub(crate) fn sandbox_run_dir(&self, id: &str) -> PathBuf {
        self.cfg.run_dir.join("sandboxes").join(id)
    }

    /// Create and start a pod: netns, then CNI ADD and the pause start side by
    /// side. On failure everything made so far is torn down.
    pub async fn run(&self, config: PodConfig) -> Result<PodStatus> {
        let t0 = Instant::now();
        validate(&config)?;
        let host_net = config.host_network();
        if !host_net {
            self.cni.current().map_err(|e| {
                Error::new(
                    ErrorKind::FailedPrecondition,
                    "network",
                    format!("network plugin not ready: {e}"),
                )
            })?;
        }
        let id = hex(&sys::random_bytes::<32>().map_err(|e| io_step("pod id", e))?);
        // On the caller's span when it has a `pod` field (criusd's RPC span does), so every
        // line logged from here on, the caller's failure line too, names the pod.
        tracing::Span::current().record("pod", id.as_str());
        let lock = self.pod_lock(&id);
        let _held = lock.lock().await;

        let hostname = if host_net || config.hostname.is_empty() {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            config.hostname.clone()
        };
        let cgroup_parent = if config.linux.cgroup_parent.is_empty() {
            self.cfg.default_cgroup_parent.clone()
        } else {
            config.linux.cgroup_parent.clone()
        };
        // A parent the driver cannot place a cgroup under is the caller's mistake: refused
        // before anything is made.
        crate::cgroup::cgroups_path(self.cfg.cgroup_driver, &cgroup_parent, &id)
            .map_err(|m| Error::new(ErrorKind::InvalidArgument, "run", m))?;
        let rec = PodRecord {
            version: store::RECORD_VERSION,
            id: id.clone(),
            phase: Phase::Creating,
            created_at_ns: now_ns(),
            netns_path: (!host_net).then(|| self.netns_path(&id)),
            ips: Vec::new(),
            pause_pid: None,
            pause_start_time: None,
            cgroup_parent,
            hostname,
            shm_path: (config.linux.namespaces.ipc != NamespaceMode::Node)
                .then(|| self.sandbox_run_dir(&id).join("shm")),
            timings: RunTimings::default(),
            config,
        };
        // Reserve the pod identity (duplicate check) and persist before making
        // anything, so a crash from here on is found by recover().
        {
            let mut pods = self.pods.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(existing) = pods
                .values()
                .find(|p| p.config.metadata == rec.config.metadata)
            {
                let md = &rec.config.metadata;
                return Err(Error::new(
                    ErrorKind::AlreadyExists {
                        existing_id: existing.id.clone(),
                    },
                    "run",
                    format!(
                        "pod {}/{} (uid {}, attempt {}) already exists as {}",
                        md.namespace, md.name, md.uid, md.attempt, existing.id
                    ),
                ));
            }
            pods.insert(id.clone(), rec.clone());
        }
        let span = tracing::info_span!("run_pod", pod = %id, name = %rec.config.metadata.name, namespace = %rec.config.metadata.namespace);
        self.run_reserved(rec, t0).instrument(span).await
    }

    /// `run` once the pod's identity is reserved (and its lock held).
    async fn run_reserved(&self, mut rec: PodRecord, t0: Instant) -> Result<PodStatus> {
        let id = rec.id.clone();
        if let Err(e) = self.save_with(&rec, false) {
            self.forget(&id);
            return Err(e);
        }
        match self.make(&mut rec, t0).await {
            Ok(()) => {
                rec.phase = Phase::Running;
                rec.timings.total_us = elapsed_us(t0);
                match self.save_with(&rec, false) {
                    Ok(()) => {
                        // Durable in the background: losing it to a power loss only
                        // turns the pod (dead then anyway) into one recover() tears down.
                        let state_dir = self.cfg.state_dir.clone();
                        let sync_id = id.clone();
                        tokio::task::spawn_blocking(move || {
                            if let Err(e) = store::sync(&state_dir, &sync_id) {
                                tracing::warn!(pod = %sync_id, error = %e, "fsync of pod record failed");
                            }
                        });
                        tracing::info!(pod = %id, ips = ?rec.ips, pause_pid = ?rec.pause_pid, timings = ?rec.timings, "pod ready");
                        Ok(self.to_status(&rec, PodState::Ready))
                    }
                    Err(e) => {
                        self.abandon(&rec).await;
                        Err(e)
                    }
                }
            }
            Err(e) => {
                let e = e.pod(&id);
                tracing::warn!(pod = %id, error = %e, "run failed; tearing down");
                self.abandon(&rec).await;
                Err(e)
            }
        }
    }

    /// Tear a failed pod down; forget it when nothing is left, else keep the
    /// record (phase Creating) for the next recover().
    async fn abandon(&self, rec: &PodRecord) {
        let errs = self.teardown(rec).await;
        if errs.is_empty() {
            self.forget(&rec.id);
        } else {
            tracing::warn!(pod = %rec.id, errors = ?errs, "teardown incomplete; recover() will retry");
        }
    }

    /// Everything of `run` after the record exists. Independent steps run side
    /// by side: pod files ∥ netns ∥ pause container record, then CNI ADD ∥
    /// pause task start (CNI needs the netns, not the pause).
    async fn make(&self, rec: &mut PodRecord, t0: Instant) -> Result<()> {
        rec.timings.prepare_us = elapsed_us(t0);
        let pod_dir = store::pod_dir(&self.cfg.state_dir, &rec.id);
        let userns = rec.config.linux.userns;
        let files = {
            let (dns, hostname, host_net, shm) = (
                rec.config.dns.clone(),
                rec.hostname.clone(),
                rec.config.host_network(),
                rec.shm_path.clone(),
            );
            let owner = userns.map(|u| u.host_root());
            async move {
                tokio::task::spawn_blocking(move || {
                    files::write_pod_files(&pod_dir, dns.as_ref(), &hostname, host_net)
                        .map_err(|e| io_step("write pod files", e))?;
                    if let Some((uid, gid)) = owner {
                        files::chown_pod_files(&pod_dir, uid, gid)
                            .map_err(|e| io_step("chown pod files", e))?;
                    }
                    if let Some(shm) = &shm {
                        sys::mount_shm(shm, owner).map_err(|e| io_step("mount shm", e))?;
                    }
                    Ok::<_, Error>(())
                })
                .await
                .map_err(|e| io_step("write pod files", e))?
            }
        };
        let ns = async {
            let Some(ns) = &rec.netns_path else {
                return Ok(0);
            };
            if userns.is_some() {
                // The pause makes it, inside the pod's user namespace (`start_userns_pod`).
                return Ok(0);
            }
            let t = Instant::now();
            netns::create(ns)
                .await
                .map_err(|e| io_step("create netns", e))?;
            Ok::<_, Error>(elapsed_us(t))
        };
        let t_pause = Instant::now();
        let container = self.create_pause_container(rec);
        let (files, ns, container) = tokio::join!(files, ns, container);
        files?;
        rec.timings.netns_us = ns?;
        let rootfs_mounts = container?;
        if userns.is_some() {
            return self.start_userns_pod(rec, rootfs_mounts, t_pause).await;
        }

        let rec_ro = rec.clone();
        let network = self.cni_add(&rec_ro);
        let pause = async {
            let pid = ctrd::start_task(&*self.ctrd, &rec_ro.id, rootfs_mounts)
                .await
                .map_err(|s| ctrd_err("start pause task", s))?;
            Ok::<_, Error>((pid, elapsed_us(t_pause)))
        };
        let (net, pause) = tokio::join!(network, pause);
        // Record what exists before judging, so teardown finds the pause.
        if let Ok((pid, us)) = &pause {
            rec.pause_pid = Some(*pid);
            rec.pause_start_time = sys::proc_start_time(*pid);
            rec.timings.pause_start_us = *us;
        }
        let (ips, cni_us) = net?;
        pause?;
        rec.ips = ips;
        rec.timings.cni_add_us = cni_us;
        // The pause made the pod's cgroup (or slice) exist: its limits go on now.
        let cfg = &rec.config.linux;
        self.apply_pod_limits(rec, cfg.resources.as_ref(), cfg.overhead.as_ref())
            .await
    }

    /// Pod-level resources on the pod's own cgroup parent (none: nothing to bound).
    async fn apply_pod_limits(
        &self,
        rec: &PodRecord,
        resources: Option<&PodResources>,
        overhead: Option<&PodResources>,
    ) -> Result<()> {
        let limits = pod_cgroup::limits(resources, overhead);
        if limits.is_empty() {
            return Ok(());
        }
        if rec.config.linux.cgroup_parent.is_empty() {
            tracing::info!(pod = %rec.id, "pod resources not applied: the pod has no cgroup parent of its own");
            return Ok(());
        }
        pod_cgroup::apply(
            self.cfg.cgroup_driver,
            &rec.config.linux.cgroup_parent,
            &limits,
        )
        .await
        .map_err(|m| Error::new(ErrorKind::Internal, "pod resources", m))?;
        tracing::info!(pod = %rec.id, parent = %rec.config.linux.cgroup_parent, ?limits, "pod resources applied");
        Ok(())
    }

    /// CNI ADD of the pod's netns (none for host-network pods): the IPs and the time it took.
    async fn cni_add(&self, rec: &PodRecord) -> Result<(Vec<std::net::IpAddr>, u64)> {
        let Some(ns) = &rec.netns_path else {
            return Ok((Vec::new(), 0));
        };
        let t = Instant::now();
        let md = &rec.config.metadata;
        let (ips, _) = self
            .cni
            .add(&Attachment {
                id: &rec.id,
                netns: ns,
                pod_name: &md.name,
                pod_namespace: &md.namespace,
                pod_uid: &md.uid,
                port_mappings: &rec.config.port_mappings,
                annotations: &rec.config.annotations,
            })
            .await
            .map_err(|e| cni_err("CNI ADD", e))?;
        Ok((ips, elapsed_us(t)))
    }

    /// The rest of `make` for a user-namespaced pod, one step after the other: the pause starts
    /// in a new user namespace and makes the pod's netns inside it, which is then pinned at the
    /// pod's netns path (and torn down as any pod's), then CNI ADD.
    async fn start_userns_pod(
        &self,
        rec: &mut PodRecord,
        rootfs_mounts: Vec<Mount>,
        t_pause: Instant,
    ) -> Result<()> {
        let pid = ctrd::start_task(&*self.ctrd, &rec.id, rootfs_mounts)
            .await
            .map_err(|s| ctrd_err("start pause task", s))?;
        rec.pause_pid = Some(pid);
        rec.pause_start_time = sys::proc_start_time(pid);
        rec.timings.pause_start_us = elapsed_us(t_pause);
        if let Some(ns) = &rec.netns_path {
            let t = Instant::now();
            netns::adopt(pid, ns)
                .await
                .map_err(|e| io_step("pin the pause's netns", e))?;
            rec.timings.netns_us = elapsed_us(t);
        }
        let (ips, cni_us) = self.cni_add(rec).await?;
        rec.ips = ips;
        rec.timings.cni_add_us = cni_us;
        Ok(())
    }

    /// The pause image, resolved in containerd at first use.
    async fn pause_image(&self) -> Result<Option<Arc<PauseImage>>> {
        let PauseSource::Image(name) = &self.cfg.pause else {
            return Ok(None);
        };
        let mut cached = self.pause_image.lock().await;
        if cached.is_none() {
            let im = image::resolve(&*self.ctrd, name)
                .await
                .map_err(|m| Error::new(ErrorKind::FailedPrecondition, "pause image", m))?;
            tracing::info!(image = %name, chain_id = %im.chain_id, args = ?im.args, "pause image resolved");
            *cached = Some(Arc::new(im));
        }
        Ok(cached.clone())
    }

    /// The pause's `cgroupsPath`: the pod's parent (or the default) under the configured driver.
    pub(crate) fn pause_cgroups_path(&self, rec: &PodRecord) -> Result<String> {
        let parent = if rec.cgroup_parent.is_empty() {
            &self.cfg.default_cgroup_parent
        } else {
            &rec.cgroup_parent
        };
        crate::cgroup::cgroups_path(self.cfg.cgroup_driver, parent, &rec.id)
            .map_err(|m| Error::new(ErrorKind::InvalidArgument, "pause cgroup", m))
    }

    /// Key of an image pause's view snapshot.
    pub(crate) fn pause_snapshot_key(id: &str) -> String {
        format!("crius-pause-{id}")
    }

    /// The pause's containerd container record (spec, labels, runtime) and,
    /// for an image pause, its rootfs view snapshot (the mounts returned).
    async fn create_pause_container(&self, rec: &PodRecord) -> Result<Vec<Mount>> {
        let im = self.pause_image().await?;
        spec::check_sysctls(&rec.config)
            .map_err(|m| Error::new(ErrorKind::InvalidArgument, "pause spec", m))?;
        let cgroups_path = self.pause_cgroups_path(rec)?;
        let requested = oom::PAUSE_OOM_SCORE_ADJ;
        let score = self.oom_score_adj(requested);
        let spec_bytes = spec::build(&spec::SpecInput {
            id: &rec.id,
            config: &rec.config,
            rootfs: &self.rootfs,
            netns: rec.netns_path.as_deref(),
            shm: rec.shm_path.as_deref(),
            hostname: &rec.hostname,
            cgroups_path: &cgroups_path,
            oom_score_adj: score,
            image: im.as_deref(),
        })
        .map_err(|m| Error::new(ErrorKind::Internal, "pause spec", m))?;
        let labels = HashMap::from([
            (crate::LABEL_KIND.to_string(), "sandbox".to_string()),
            (crate::LABEL_SANDBOX_ID.to_string(), rec.id.clone()),
        ]);
        let key = Self::pause_snapshot_key(&rec.id);
        // The container first: it references the snapshot, so containerd's GC keeps it.
        self.ctrd
            .create_container(crius_ctrd::NewContainer {
                id: rec.id.clone(),
                runtime: self.cfg.runtime.clone(),
                spec: spec_bytes,
                labels,
                image: im.as_ref().map(|im| im.name.clone()).unwrap_or_default(),
                snapshot_key: if im.is_some() {
                    key.clone()
                } else {
                    String::new()
                },
                runtime_binary: String::new(),
            })
            .await
            .map_err(|s| ctrd_err("create pause container", s))?;
        match im {
            None => Ok(Vec::new()),
            Some(im) => self
                .ctrd
                .view_snapshot(&key, &im.chain_id, HashMap::new())
                .await
                .map_err(|s| ctrd_err("pause image snapshot", s)),
        }
    }

    /// Is the pause of this record alive? (pid + start time, no RPC.)
    pub(crate) fn pause_alive(rec: &PodRecord) -> bool {
        match (rec.pause_pid, rec.pause_start_time) {
            (Some(pid), Some(st)) => sys::proc_start_time(pid) == Some(st),
            (Some(pid), None) => sys::proc_start_time(pid).is_some(),
            _ => false,
        }
    }

    pub(crate) fn to_status(&self, rec: &PodRecord, state: PodState) -> PodStatus {
        let dir = store::pod_dir(&self.cfg.state_dir, &rec.id);
        PodStatus {
            id: rec.id.clone(),
            config: rec.config.clone(),
            state,
            created_at_ns: rec.created_at_ns,
            netns_path: rec.netns_path.clone(),
            ips: rec.ips.clone(),
            pause_pid: if state == PodState::Ready {
                rec.pause_pid
            } else {
                None
            },
            cgroup_parent: rec.cgroup_parent.clone(),
            resolv_conf_path: dir.join("resolv.conf"),
            hostname_path: dir.join("hostname"),
            hosts_path: dir.join("hosts"),
            shm_path: rec.shm_path.clone(),
            hostname: rec.hostname.clone(),
            timings: rec.timings,
        }
    }

    fn state_of(rec: &PodRecord) -> PodState {
        if rec.phase == Phase::Running && Self::pause_alive(rec) {
            PodState::Ready
        } else {
            PodState::NotReady
        }
    }

    /// Kill the pod's containers' tasks and the pause (SIGTERM, SIGKILL after
    /// `stop_grace`), CNI DEL. Idempotent; NotFound for an unknown id.
    pub async fn stop(&self, id: &str) -> Result<()> {
        let lock = self.pod_lock(id);
        let _held = lock.lock().await;
        let mut rec = self.record(id).ok_or_else(|| Error::not_found(id))?;
        self.stop_locked(&mut rec).await.map_err(|e| e.pod(id))
    }

    pub(crate) async fn stop_locked(&self, rec: &mut PodRecord) -> Result<()> {
        let id = rec.id.clone();
        self.kill_pod_containers(&id).await?;
        self.stop_pause(&id).await?;
        let netns = rec.netns_path.as_deref().filter(|p| netns::exists(p));
        self.cni_del(&id, netns).await?;
        if rec.phase != Phase::Stopped {
            rec.phase = Phase::Stopped;
            rec.pause_pid = None;
            rec.pause_start_time = None;
            self.save(rec)?;
            tracing::info!(pod = %id, "pod stopped");
        }
        Ok(())
    }

    /// Stop if needed (as `stop` does), then delete the pod's containerd
    /// containers, netns and files. Idempotent: removing an unknown id is Ok;
    /// a failed or crashed remove is finished by the next `remove` or `recover`.
    pub async fn remove(&self, id: &str) -> Result<()> {
        let lock = self.pod_lock(id);
        let _held = lock.lock().await;
        let Some(mut rec) = self.record(id) else {
            return Ok(());
        };
        // Removing first (durably): from here a crash is finished by recover(),
        // and teardown does everything stop does (pause SIGTERM with grace).
        if rec.phase != Phase::Removing {
            rec.phase = Phase::Removing;
            self.save(&rec)?;
        }
        let errs = self.teardown(&rec).await;
        if let Some(first) = errs.first() {
            return Err(Error::new(ErrorKind::Internal, "remove", first.clone()).pod(id));
        }
        self.forget(id);
        tracing::info!(pod = %id, "pod removed");
        Ok(())
    }

    /// CRI UpdatePodSandboxResources: the new pod-level resources go on the pod's cgroup parent
    /// (`pod_cgroup`; kubelet, which owns it, has resized it already) and into the pod's config,
    /// durably, so status and a restart see the new figures. `None` leaves that part as it was.
    /// NotFound for an unknown pod or one being removed; Internal when the cgroup refuses them
    /// (the record then keeps the old figures).
    pub async fn update_resources(
        &self,
        id: &str,
        overhead: Option<PodResources>,
        resources: Option<PodResources>,
    ) -> Result<()> {
        let lock = self.pod_lock(id);
        let _held = lock.lock().await;
        let mut rec = self
            .record(id)
            .filter(|r| r.phase != Phase::Removing)
            .ok_or_else(|| Error::not_found(id))?;
        if overhead.is_none() && resources.is_none() {
            return Ok(());
        }
        if overhead.is_some() {
            rec.config.linux.overhead = overhead;
        }
        if resources.is_some() {
            rec.config.linux.resources = resources;
        }
        if rec.phase == Phase::Running {
            let cfg = &rec.config.linux;
            self.apply_pod_limits(&rec, cfg.resources.as_ref(), cfg.overhead.as_ref())
                .await?;
        }
        self.save(&rec)?;
        tracing::info!(pod = %id, resources = ?rec.config.linux.resources, overhead = ?rec.config.linux.overhead, "pod resources updated");
        Ok(())
    }

    pub async fn status(&self, id: &str) -> Result<PodStatus> {
        let rec = self.record(id).ok_or_else(|| Error::not_found(id))?;
        Ok(self.to_status(&rec, Self::state_of(&rec)))
    }

    /// All pods, including ones still being created (NotReady).
    pub async fn list(&self) -> Result<Vec<PodStatus>> {
        let recs: Vec<PodRecord> = self
            .pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut out: Vec<PodStatus> = recs
            .iter()
            .map(|r| self.to_status(r, Self::state_of(r)))
            .collect();
        out.sort_by_key(|s| s.created_at_ns);
        Ok(out)
    }

    /// Read the pod's netns back with rtnetlink (links, addresses, routes).
    pub async fn netns_view(&self, id: &str) -> Result<NetnsView> {
        let rec = self.record(id).ok_or_else(|| Error::not_found(id))?;
        let ns = rec.netns_path.ok_or_else(|| {
            Error::new(
                ErrorKind::FailedPrecondition,
                "netns view",
                "pod uses the host network",
            )
            .pod(id)
        })?;
        netns::view(&ns)
            .await
            .map_err(|e| io_step("netns view", e).pod(id))
    }

    /// CNI CHECK of the pod's attachment (spec ≥ 0.4.0).
    pub async fn check_network(&self, id: &str) -> Result<()> {
        let rec = self.record(id).ok_or_else(|| Error::not_found(id))?;
        let Some(ns) = rec.netns_path else {
            return Ok(());
        };
        self.cni
            .check(id, &ns)
            .await
            .map_err(|e| cni_err("CNI CHECK", e).pod(id))
    }

    /// CRI NetworkReady: false with reason `NetworkPluginNotReady` when no CNI config loads.
    pub fn network_status(&self) -> NetworkStatus {
        match self.cni.current() {
            Ok(_) => NetworkStatus {
                ready: true,
                reason: String::new(),
                message: String::new(),
            },
            Err(e) => NetworkStatus {
                ready: false,
                reason: "NetworkPluginNotReady".into(),
                message: format!("Network plugin returns error: cni config load failed: {e}"),
            },
        }
    }

    /// kubelet's UpdateRuntimeConfig: the pod CIDR, passed to CNI as the
    /// `ipRanges` capability arg for new pods (empty clears it).
    pub fn update_pod_cidr(&self, cidr: &str) -> Result<()> {
        let cidr = cidr.trim();
        if cidr.is_empty() {
            self.cni.set_pod_cidr(None);
            return Ok(());
        }
        for part in cidr.split(',') {
            valid_cidr(part.trim())
                .map_err(|m| Error::new(ErrorKind::InvalidArgument, "pod cidr", m))?;
        }
        // host-local takes one range per set; kubelet's dual-stack form is comma separated.
        self.cni.set_pod_cidr(Some(
            cidr.split(',').next().unwrap_or(cidr).trim().to_string(),
        ));
        tracing::info!(cidr, "pod CIDR updated");
        Ok(())
    }

    pub(crate) fn state_dir(&self) -> &Path {
        &self.cfg.state_dir
    }
}

fn valid_cidr(s: &str) -> std::result::Result<(), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not a CIDR"))?;
    let ip: std::net::IpAddr = ip.parse().map_err(|_| format!("{s:?}: bad address"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("{s:?}: bad prefix length"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len > max {
        return Err(format!("{s:?}: prefix length over {max}"));
    }
    Ok(())
}

fn validate(c: &PodConfig) -> Result<()> {
    let md = &c.metadata;
    let bad = |m: &str| Err(Error::new(ErrorKind::InvalidArgument, "run", m.to_string()));
    if md.name.is_empty() {
        return bad("metadata.name is empty");
    }
    if md.namespace.is_empty() {
        return bad("metadata.namespace is empty");
    }
    if md.uid.is_empty() {
        return bad("metadata.uid is empty");
    }
    spec::check_sysctls(c).map_err(|m| Error::new(ErrorKind::InvalidArgument, "run", m))?;
    if let Some(u) = &c.linux.userns {
        let ns = &c.linux.namespaces;
        if [ns.network, ns.pid, ns.ipc].contains(&NamespaceMode::Node) {
            return bad("a user namespace cannot go with host network, PID or IPC namespaces");
        }
        for (kind, m) in [("uid", u.uids), ("gid", u.gids)] {
            if m.container_id != 0 || m.length == 0 || m.host_id.checked_add(m.length - 1).is_none()
            {
                return bad(&format!(
                    "the {kind} mapping must map container id 0 to a host range that fits in 32 bits"
                ));
            }
        }
    }
    crate::cni::validate_annotations(&c.annotations)
        .map_err(|m| Error::new(ErrorKind::InvalidArgument, "run", m))?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert!(valid_cidr("10.1.0.0/24").is_ok());
        assert!(valid_cidr("fd00::/64").is_ok());
        assert!(valid_cidr("10.1.0.0").is_err());
        assert!(valid_cidr("10.1.0.0/33").is_err());
    }

    #[test]
    fn hex_ids() {
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}
