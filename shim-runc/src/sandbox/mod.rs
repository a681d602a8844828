//! The pod sandbox as containerd 2.x's `shim` sandboxer asks this shim to own it
//! (`containerd.runtime.sandbox.v1.Sandbox`, served in `service`): no pause container and no
//! pause image. CreateSandbox joins the netns containerd's CRI made, creates the pod's ipc and
//! uts namespaces and pins them (`sys::pin_pod_namespaces`), writes hostname, hosts and
//! resolv.conf and mounts /dev/shm where containerd's CRI looks (`files`). StartSandbox starts a
//! pause only when the pod shares one pid namespace (the fast-path pause, running this binary's
//! `pause` mode); otherwise the sandbox has no process and reports pid 0.
//!
//! containerd's CRI (2.1) builds each container's namespaces as `/proc/<sandbox pid>/ns/<kind>`;
//! with pid 0 the Task service hands those to [`Pod::rewrite_task_spec`], which points them at the
//! pod's netns and pins, or drops them for the host's. The pod's cgroup is containerd's
//! `cgroup_parent` (containers' cgroups are under it already); a pause goes to
//! `<cgroup_parent>/<sandbox id>` as containerd's pause would.
//!
//! State lives in memory and in `record` (the bundle's `crius-sandbox.json`), which `delete`
//! reads after a shim death to undo mounts, dirs, the pause and its cgroup.

pub mod config;
pub mod files;
pub mod record;
pub mod rewrite;
pub mod service;

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio::sync::{watch, Mutex};

use crate::{
    cgroups,
    error::{Error, Result},
    fastpath,
    reaper::{self, Exit},
    sys,
};
use config::{PidMode, PodConfig};
use record::{Phase, Record};

/// argv[1] that makes this binary the pod's pause.
pub const PAUSE_ARG: &str = "__crius-sandbox-pause";

/// CreateSandbox's inputs, as the Sandbox service got them.
pub struct CreateArgs<'a> {
    pub id: &'a str,
    pub bundle: &'a str,
    pub options: Option<&'a Any>,
    pub netns: &'a str,
}

/// What SandboxStatus reports.
pub struct Status {
    pub pid: u32,
    pub ready: bool,
    pub created_at: Option<OffsetDateTime>,
    pub exit: Option<Exit>,
    pub info: Vec<(String, String)>,
}

struct Sandbox {
    rec: Record,
    bundle: PathBuf,
    cfg: PodConfig,
    /// The pause's cgroup dirs and systemd scope (to remove once it is gone).
    pause_cgroups: Vec<PathBuf>,
    pause_scope: Option<String>,
    exit: Option<Exit>,
}

/// The one sandbox a shim owns, shared by the Sandbox and Task services.
pub struct Pod {
    state: Mutex<Option<Sandbox>>,
    /// Between CreateSandbox and ShutdownSandbox: the shim must not exit.
    live: AtomicBool,
    /// The id last shut down: a repeated ShutdownSandbox is answered, not refused.
    gone: std::sync::Mutex<Option<String>>,
    exited: watch::Sender<Option<Exit>>,
}

fn nanos(t: OffsetDateTime) -> i64 {
    t.unix_timestamp_nanos() as i64
}

fn from_nanos(n: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok()
}

/// Which namespace a sysctl lives in, as runc's validation sees it; `None`: not namespaced.
fn sysctl_namespace(key: &str) -> Option<&'static str> {
    if key.starts_with("net.") {
        Some("network")
    } else if key.starts_with("fs.mqueue.")
        || key.starts_with("kernel.shm")
        || key.starts_with("kernel.msg")
        || key == "kernel.sem"
    {
        Some("ipc")
    } else if matches!(key, "kernel.hostname" | "kernel.domainname") {
        Some("uts")
    } else {
        None
    }
}

fn check_input(args: &CreateArgs, cfg: &PodConfig) -> Result<()> {
    if cfg.host_network {
        if !args.netns.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "netns_path {} given for a pod on the host network",
                args.netns
            )));
        }
    } else if args.netns.is_empty() {
        return Err(Error::InvalidArgument(
            "netns_path is required: the pod has a network namespace of its own".into(),
        ));
    } else if !Path::new(args.netns).exists() {
        return Err(Error::InvalidArgument(format!(
            "netns_path {} does not exist",
            args.netns
        )));
    }
    for (k, _) in &cfg.sysctls {
        let host = match sysctl_namespace(k) {
            None => {
                return Err(Error::InvalidArgument(format!(
                    "sysctl {k} is not namespaced"
                )))
            }
            Some("ipc") => cfg.host_ipc,
            Some(_) => cfg.host_network,
        };
        if host {
            return Err(Error::InvalidArgument(format!(
                "sysctl {k} would change the host's namespace"
            )));
        }
    }
    Ok(())
}

/// Where a pause goes under the pod's `cgroup_parent`: `<parent>/<id>` for a cgroupfs path; a
/// scope `crius-<id>.scope` in the slice for a systemd one (kubelet's systemd driver names a slice,
/// or a path of slices whose last one counts); None for anything else.
fn pause_cgroups_path(parent: &str, id: &str) -> Option<String> {
    let parent = parent.trim_end_matches('/');
    let last = parent.rsplit('/').next().unwrap_or("");
    if last.ends_with(".slice") && !last.contains(':') {
        Some(format!("{last}:crius:{id}"))
    } else if parent.starts_with('/') && !parent.contains(':') {
        Some(format!("{parent}/{id}"))
    } else {
        None
    }
}

/// The pause's OCI spec, for the fast path: this binary in `pause` mode, in a new pid namespace,
/// joined to the pod's others, in the host's mount namespace (it opens no file), no capabilities.
fn pause_spec(sb: &Sandbox) -> Result<Value> {
    let exe = std::env::current_exe().map_err(Error::io("current exe"))?;
    let mut namespaces = vec![json!({"type": "pid"})];
    for (kind, path) in [
        ("network", &sb.rec.netns),
        ("ipc", &sb.rec.ipc_pin),
        ("uts", &sb.rec.uts_pin),
    ] {
        if let Some(p) = path {
            namespaces.push(json!({"type": kind, "path": p}));
        }
    }
    let cgroup = sb
        .cfg
        .cgroup_parent
        .as_deref()
        .and_then(|p| pause_cgroups_path(p, &sb.rec.id));
    let none: [&str; 0] = [];
    Ok(json!({
        "process": {
            "args": [exe, PAUSE_ARG],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": none, "effective": none, "permitted": none,
                             "inheritable": none, "ambient": none},
            "noNewPrivileges": true,
        },
        "root": {"path": "/"},
        "linux": {"namespaces": namespaces, "cgroupsPath": cgroup},
    }))
}

impl Pod {
    pub fn new() -> Arc<Pod> {
        Arc::new(Pod {
            state: Mutex::new(None),
            live: AtomicBool::new(false),
            gone: std::sync::Mutex::new(None),
            exited: watch::channel(None).0,
        })
    }

    /// Whether a sandbox holds the shim (created and not yet shut down).
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    fn was_shut_down(&self, id: &str) -> bool {
        self.gone
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            == Some(id)
    }

    fn get<'a>(state: &'a mut Option<Sandbox>, id: &str) -> Result<&'a mut Sandbox> {
        match state {
            Some(sb) if sb.rec.id == id => Ok(sb),
            _ => Err(Error::NotFound(format!("sandbox {id}"))),
        }
    }

    pub async fn create(&self, args: CreateArgs<'_>) -> Result<()> {
        let id = args.id;
        if id.is_empty() || args.bundle.is_empty() {
            return Err(Error::InvalidArgument(
                "sandbox_id and bundle_path are required".into(),
            ));
        }
        let mut state = self.state.lock().await;
        if let Some(sb) = state.as_ref() {
            return Err(Error::AlreadyExists(format!(
                "sandbox {} already created in this shim",
                sb.rec.id
            )));
        }
        if self.was_shut_down(id) {
            return Err(Error::FailedPrecondition(format!(
                "sandbox {id} was shut down"
            )));
        }
        let bundle = PathBuf::from(args.bundle);
        if !bundle.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "bundle {} is not a directory",
                bundle.display()
            )));
        }
        let cfg = config::decode(args.options)?;
        check_input(&args, &cfg)?;
        let dirs = files::cri_dirs(&bundle, id)?;
        let mut rec = Record {
            id: id.to_string(),
            phase: Phase::Created,
            netns: Some(PathBuf::from(args.netns)).filter(|_| !args.netns.is_empty()),
            dirs,
            shm: None,
            ipc_pin: None,
            uts_pin: None,
            pause_pid: 0,
            created_at: nanos(OffsetDateTime::now_utc()),
        };
        if let Err(e) = Self::make(&bundle, &cfg, &mut rec).await {
            rec.unmount_all();
            files::remove(&rec.dirs);
            let _ = std::fs::remove_dir(bundle.join("ns"));
            Record::remove(&bundle);
            return Err(e);
        }
        tracing::info!(sandbox_id = id, pod = %cfg.name, netns = args.netns, "sandbox created");
        *state = Some(Sandbox {
            rec,
            bundle,
            cfg,
            pause_cgroups: Vec::new(),
            pause_scope: None,
            exit: None,
        });
        self.exited.send_replace(None);
        self.live.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Files, shm, namespaces; `rec` names each as soon as it may exist, for the undo.
    async fn make(bundle: &Path, cfg: &PodConfig, rec: &mut Record) -> Result<()> {
        files::write(&rec.dirs, cfg)?;
        rec.save(bundle);
        if !cfg.host_ipc {
            let shm = rec.dirs.shm();
            rec.shm = Some(shm.clone());
            sys::mount_shm(&shm).map_err(Error::io(format!("mount shm at {}", shm.display())))?;
        }
        let ns_dir = bundle.join("ns");
        std::fs::create_dir_all(&ns_dir).map_err(Error::io("mkdir ns"))?;
        rec.ipc_pin = (!cfg.host_ipc).then(|| ns_dir.join("ipc"));
        // A pod on the host network has the host's uts namespace too, as in containerd's CRI.
        rec.uts_pin = (!cfg.host_network).then(|| ns_dir.join("uts"));
        rec.save(bundle);
        sys::pin_pod_namespaces(sys::PodNamespaces {
            netns: rec.netns.clone(),
            ipc_pin: rec.ipc_pin.clone(),
            uts_pin: rec.uts_pin.clone(),
            hostname: Some(files::hostname(cfg)?),
            sysctls: cfg.sysctls.clone(),
        })
        .await
        .map_err(Error::FailedPrecondition)?;
        rec.save(bundle);
        Ok(())
    }

    /// Returns the sandbox pid (the pause's, or 0) and its start time.
    pub async fn start(self: &Arc<Self>, id: &str) -> Result<(u32, OffsetDateTime)> {
        let mut state = self.state.lock().await;
        let sb = Self::get(&mut state, id)?;
        match sb.rec.phase {
            Phase::Created => {}
            Phase::Ready => {
                return Err(Error::FailedPrecondition(format!(
                    "sandbox {id} already started"
                )))
            }
            Phase::Stopped => {
                return Err(Error::FailedPrecondition(format!(
                    "sandbox {id} is stopped"
                )))
            }
        }
        if sb.cfg.pid == PidMode::Pod {
            let (pid, cgroups, scope) = Self::start_pause(sb).await?;
            sb.rec.pause_pid = pid;
            sb.pause_cgroups = cgroups;
            sb.pause_scope = scope;
            let rx = reaper::watch(pid);
            let pod = self.clone();
            tokio::spawn(async move {
                if let Ok(exit) = rx.await {
                    pod.on_pause_exit(pid, exit).await;
                }
            });
        }
        let now = OffsetDateTime::now_utc();
        sb.rec.phase = Phase::Ready;
        sb.rec.created_at = nanos(now);
        sb.rec.save(&sb.bundle);
        tracing::info!(
            sandbox_id = id,
            pause_pid = sb.rec.pause_pid,
            "sandbox started"
        );
        Ok((sb.rec.pause_pid as u32, now))
    }

    async fn start_pause(sb: &Sandbox) -> Result<(i32, Vec<PathBuf>, Option<String>)> {
        let spec = pause_spec(sb)?;
        let id = sb.rec.id.as_str();
        let (mut task, pid) = fastpath::create(id, &sb.bundle, &spec, |s| s)
            .await
            .map_err(|why| Error::FailedPrecondition(format!("pause: {why}")))??;
        if let Err(e) = task.start().await {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            task.release().await;
            let _ = std::fs::remove_file(sb.bundle.join(fastpath::RECORD_FILE));
            return Err(e);
        }
        Ok((pid, task.cgroups.clone(), task.scope.clone()))
    }

    async fn on_pause_exit(&self, pid: i32, exit: Exit) {
        let mut state = self.state.lock().await;
        let Some(sb) = state.as_mut().filter(|sb| sb.rec.pause_pid == pid) else {
            return;
        };
        tracing::info!(sandbox_id = %sb.rec.id, pid, status = exit.status, "pause exited");
        sb.exit.get_or_insert(exit);
        self.exited.send_replace(sb.exit);
    }

    /// Ends the pause (if any) and unmounts what the pod's containers used. Idempotent.
    pub async fn stop(&self, id: &str, timeout: Duration) -> Result<()> {
        let pause = {
            let mut state = self.state.lock().await;
            let sb = Self::get(&mut state, id)?;
            if sb.rec.phase == Phase::Stopped {
                return Ok(());
            }
            (sb.rec.pause_pid != 0 && sb.exit.is_none()).then_some(sb.rec.pause_pid)
        };
        if let Some(pid) = pause {
            // The pause holds nothing worth a grace period: containerd's CRI kills its own too.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let mut rx = self.exited.subscribe();
            let waited = tokio::time::timeout(timeout.max(Duration::from_secs(10)), async {
                let _ = rx.wait_for(Option::is_some).await;
            });
            if waited.await.is_err() {
                tracing::warn!(sandbox_id = id, pid, "pause did not exit after SIGKILL");
            }
        }
        let mut state = self.state.lock().await;
        let sb = Self::get(&mut state, id)?;
        if sb.rec.phase == Phase::Stopped {
            return Ok(());
        }
        let cgroups = std::mem::take(&mut sb.pause_cgroups);
        fastpath::release(&cgroups, sb.pause_scope.take().as_deref()).await;
        let _ = std::fs::remove_file(sb.bundle.join(fastpath::RECORD_FILE));
        sb.rec.unmount_all();
        sb.rec.phase = Phase::Stopped;
        let exit = *sb.exit.get_or_insert(Exit {
            status: 0,
            at: OffsetDateTime::now_utc(),
        });
        sb.rec.save(&sb.bundle);
        self.exited.send_replace(Some(exit));
        tracing::info!(sandbox_id = id, status = exit.status, "sandbox stopped");
        Ok(())
    }

    /// Blocks until the sandbox has exited (its pause died, or it was stopped).
    pub async fn wait(&self, id: &str) -> Result<Exit> {
        let mut rx = {
            let mut state = self.state.lock().await;
            Self::get(&mut state, id)?;
            self.exited.subscribe()
        };
        let exit = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::Other("shim is exiting".into()))?;
        (*exit).ok_or_else(|| Error::Other("no exit".into()))
    }

    pub async fn status(&self, id: &str, verbose: bool) -> Result<Status> {
        let mut state = self.state.lock().await;
        let sb = Self::get(&mut state, id)?;
        let mut info = Vec::new();
        if verbose {
            let path = |p: &Option<PathBuf>| {
                p.as_ref()
                    .map_or_else(|| "host".to_string(), |p| p.display().to_string())
            };
            info.push(("netns".into(), path(&sb.rec.netns)));
            info.push(("ipc".into(), path(&sb.rec.ipc_pin)));
            info.push(("uts".into(), path(&sb.rec.uts_pin)));
            info.push(("pause_pid".into(), sb.rec.pause_pid.to_string()));
            info.push(("pod".into(), sb.cfg.name.clone()));
        }
        Ok(Status {
            pid: sb.rec.pause_pid as u32,
            ready: sb.rec.phase == Phase::Ready && sb.exit.is_none(),
            created_at: (sb.rec.phase != Phase::Created)
                .then(|| from_nanos(sb.rec.created_at))
                .flatten(),
            exit: sb.exit,
            info,
        })
    }

    /// NotFound unless `id` is this shim's sandbox.
    pub async fn check(&self, id: &str) -> Result<()> {
        let mut state = self.state.lock().await;
        Self::get(&mut state, id).map(|_| ())
    }

    /// Stops the sandbox if need be and removes everything it made. A repeat is fine.
    pub async fn shutdown(&self, id: &str) -> Result<()> {
        if self.was_shut_down(id) {
            return Ok(());
        }
        self.stop(id, Duration::ZERO).await?;
        let mut state = self.state.lock().await;
        Self::get(&mut state, id)?;
        let Some(mut sb) = state.take() else {
            return Err(Error::NotFound(format!("sandbox {id}")));
        };
        sb.rec.unmount_all();
        files::remove(&sb.rec.dirs);
        let _ = std::fs::remove_dir(sb.bundle.join("ns"));
        Record::remove(&sb.bundle);
        *self.gone.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.to_string());
        self.live.store(false, Ordering::SeqCst);
        tracing::info!(sandbox_id = id, "sandbox shut down");
        Ok(())
    }

    /// The pod's cgroup metrics: its `cgroup_parent`, or the pause's cgroup.
    pub async fn metrics(&self, id: &str) -> Result<Any> {
        let mut state = self.state.lock().await;
        let sb = Self::get(&mut state, id)?;
        match (&sb.cfg.cgroup_parent, sb.rec.pause_pid) {
            (Some(p), _) if p.starts_with('/') && !p.contains(':') => cgroups::stats_of_path(p),
            (_, pid) if pid != 0 && sb.exit.is_none() => cgroups::stats(pid),
            _ => Err(Error::FailedPrecondition(format!(
                "sandbox {id} has no cgroup of its own"
            ))),
        }
    }

    /// Points a pod container's `/proc/0/ns/*` namespaces (containerd's CRI's paths for a sandbox
    /// without a process) at the pod's; true when `spec` changed.
    pub async fn rewrite_task_spec(&self, spec: &mut Value) -> Result<bool> {
        let state = self.state.lock().await;
        let Some(sb) = state.as_ref() else {
            return Ok(false);
        };
        if sb.rec.pause_pid != 0 {
            // /proc/<pause>/ns/* are the pod's namespaces already.
            return Ok(false);
        }
        let pod = rewrite::PodPaths {
            ready: sb.rec.phase == Phase::Ready,
            netns: sb.rec.netns.as_deref(),
            ipc: sb.rec.ipc_pin.as_deref(),
            uts: sb.rec.uts_pin.as_deref(),
            host_pid: sb.cfg.pid == PidMode::Node,
        };
        rewrite::namespaces(spec, &pod).map_err(|e| {
            Error::FailedPrecondition(format!("container in sandbox {}: {e}", sb.rec.id))
        })
    }
}

/// After a shim death (`delete`): undoes what a sandbox record names. The pause and its cgroup
/// are the fast path's record's (`delete` handles it). True when the bundle was a sandbox's.
pub fn cleanup_dead(bundle: &Path) -> bool {
    let Some(mut rec) = Record::load(bundle) else {
        return false;
    };
    rec.unmount_all();
    files::remove(&rec.dirs);
    let _ = std::fs::remove_dir(bundle.join("ns"));
    Record::remove(bundle);
    tracing::info!(sandbox_id = %rec.id, "sandbox cleaned up after shim death");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_cgroup_under_either_driver() {
        let p = |parent| pause_cgroups_path(parent, "sb1");
        assert_eq!(p("/kubepods/pod1/").as_deref(), Some("/kubepods/pod1/sb1"));
        assert_eq!(
            p("kubepods-besteffort-pod1.slice").as_deref(),
            Some("kubepods-besteffort-pod1.slice:crius:sb1")
        );
        assert_eq!(
            p("/kubepods.slice/kubepods-pod2.slice").as_deref(),
            Some("kubepods-pod2.slice:crius:sb1")
        );
        assert_eq!(p("relative/dir"), None);
    }

    fn mounted(path: &Path) -> bool {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let p = path.to_string_lossy().into_owned();
        mi.lines().any(|l| l.split(' ').nth(4) == Some(p.as_str()))
    }

    /// A bundle laid out as containerd's shim sandbox controller makes it.
    fn bundle(tmp: &Path, id: &str) -> PathBuf {
        let plugin = "io.containerd.sandbox.controller.v1.shim";
        let b = tmp.join("state").join(plugin).join("ns").join(id);
        let w = tmp.join("root").join(plugin).join("ns").join(id);
        std::fs::create_dir_all(&b).unwrap();
        std::fs::create_dir_all(&w).unwrap();
        std::os::unix::fs::symlink(&w, b.join("work")).unwrap();
        b
    }

    fn options(pid: crius_proto::runtime::NamespaceMode) -> Any {
        use crius_proto::{prost::Message, runtime as cri};
        let cfg = cri::PodSandboxConfig {
            hostname: "pod-host".into(),
            linux: Some(cri::LinuxPodSandboxConfig {
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        pid: pid as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        Any {
            type_url: "runtime.v1.PodSandboxConfig".into(),
            value: cfg.encode_to_vec(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn lifecycle_without_pause() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("SKIP: lifecycle_without_pause needs root (mounts, namespaces)");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let b = bundle(tmp.path(), "p1");
        let opts = options(crius_proto::runtime::NamespaceMode::Container);
        let pod = Pod::new();
        assert!(matches!(pod.start("p1").await, Err(Error::NotFound(_))));
        assert!(matches!(
            pod.status("p1", false).await,
            Err(Error::NotFound(_))
        ));
        let args = |id| CreateArgs {
            id,
            bundle: b.to_str().unwrap(),
            options: Some(&opts),
            netns: "/proc/self/ns/net",
        };
        pod.create(args("p1")).await.unwrap();
        assert!(pod.is_live());
        assert!(matches!(
            pod.create(args("p1")).await,
            Err(Error::AlreadyExists(_))
        ));
        assert!(matches!(pod.check("other").await, Err(Error::NotFound(_))));
        assert!(!pod.status("p1", false).await.unwrap().ready);
        let dirs = files::cri_dirs(&b, "p1").unwrap();
        assert_eq!(
            std::fs::read_to_string(dirs.root.join("hostname")).unwrap(),
            "pod-host\n"
        );
        assert!(dirs.root.join("hosts").is_file() && dirs.root.join("resolv.conf").is_file());
        for m in [dirs.shm(), b.join("ns/ipc"), b.join("ns/uts")] {
            assert!(mounted(&m), "{} mounted", m.display());
        }

        let (pid, _) = pod.start("p1").await.unwrap();
        assert_eq!(pid, 0);
        assert!(matches!(
            pod.start("p1").await,
            Err(Error::FailedPrecondition(_))
        ));
        assert!(pod.status("p1", true).await.unwrap().ready);
        let mut spec =
            json!({"linux": {"namespaces": [{"type": "uts", "path": "/proc/0/ns/uts"}]}});
        assert!(pod.rewrite_task_spec(&mut spec).await.unwrap());
        assert_eq!(
            spec["linux"]["namespaces"][0]["path"],
            json!(b.join("ns/uts"))
        );

        let waiter = {
            let pod = pod.clone();
            tokio::spawn(async move { pod.wait("p1").await })
        };
        pod.stop("p1", Duration::ZERO).await.unwrap();
        pod.stop("p1", Duration::ZERO).await.unwrap();
        let exit = waiter.await.unwrap().unwrap();
        assert_eq!(exit.status, 0);
        assert!(!pod.status("p1", false).await.unwrap().ready);
        for m in [dirs.shm(), b.join("ns/ipc"), b.join("ns/uts")] {
            assert!(!mounted(&m), "{} unmounted at stop", m.display());
        }
        pod.shutdown("p1").await.unwrap();
        pod.shutdown("p1").await.unwrap();
        assert!(!pod.is_live());
        assert!(!dirs.root.exists() && !dirs.state.exists());
        assert!(!b.join(record::RECORD_FILE).exists());
        assert!(matches!(
            pod.shutdown("other").await,
            Err(Error::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn bad_create_leaves_nothing() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("SKIP: bad_create_leaves_nothing needs root");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let b = bundle(tmp.path(), "p2");
        let opts = options(crius_proto::runtime::NamespaceMode::Container);
        let pod = Pod::new();
        let args = |netns| CreateArgs {
            id: "p2",
            bundle: b.to_str().unwrap(),
            options: Some(&opts),
            netns,
        };
        assert!(matches!(
            pod.create(args("")).await,
            Err(Error::InvalidArgument(_))
        ));
        // A path that is no namespace: the setns fails after the files and shm were made.
        let not_ns = tmp.path().join("not-a-netns");
        std::fs::write(&not_ns, "").unwrap();
        assert!(pod.create(args(not_ns.to_str().unwrap())).await.is_err());
        let dirs = files::cri_dirs(&b, "p2").unwrap();
        assert!(!mounted(&dirs.shm()) && !dirs.root.exists() && !dirs.state.exists());
        assert!(!b.join("ns").exists() && !b.join(record::RECORD_FILE).exists());
        assert!(!pod.is_live());
    }

    #[test]
    fn sysctl_namespaces() {
        assert_eq!(sysctl_namespace("net.ipv4.ip_forward"), Some("network"));
        assert_eq!(sysctl_namespace("kernel.shmmax"), Some("ipc"));
        assert_eq!(sysctl_namespace("kernel.sem"), Some("ipc"));
        assert_eq!(sysctl_namespace("fs.mqueue.msg_max"), Some("ipc"));
        assert_eq!(sysctl_namespace("kernel.domainname"), Some("uts"));
        assert_eq!(sysctl_namespace("vm.swappiness"), None);
    }

    #[test]
    fn input_checks() {
        let args = |netns| CreateArgs {
            id: "p",
            bundle: "/b",
            options: None,
            netns,
        };
        let pod = PodConfig::default();
        assert!(matches!(
            check_input(&args(""), &pod),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            check_input(&args("/nonexistent/netns"), &pod),
            Err(Error::InvalidArgument(_))
        ));
        assert!(check_input(&args("/proc/self/ns/net"), &pod).is_ok());
        let host = PodConfig {
            host_network: true,
            ..Default::default()
        };
        assert!(check_input(&args(""), &host).is_ok());
        assert!(matches!(
            check_input(&args("/proc/self/ns/net"), &host),
            Err(Error::InvalidArgument(_))
        ));
        let sysctl = PodConfig {
            host_network: true,
            sysctls: vec![("net.ipv4.ip_forward".into(), "1".into())],
            ..Default::default()
        };
        assert!(matches!(
            check_input(&args(""), &sysctl),
            Err(Error::InvalidArgument(_))
        ));
        let vm = PodConfig {
            sysctls: vec![("vm.swappiness".into(), "1".into())],
            ..Default::default()
        };
        assert!(matches!(
            check_input(&args("/proc/self/ns/net"), &vm),
            Err(Error::InvalidArgument(_))
        ));
    }
}
