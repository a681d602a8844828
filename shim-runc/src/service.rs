//! The ttrpc Task service: containerd's requests onto containers.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use async_trait::async_trait;
use containerd_shim::{
    api::{self, Empty, Options},
    asynchronous::io::Stdio,
    protos::{
        events::task::{
            TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskPaused,
            TaskResumed, TaskStart,
        },
        protobuf::{Message, MessageField},
        shim_async::Task,
        types::task::ProcessInfo,
    },
    ExitSignal, TtrpcContext, TtrpcResult,
};
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};

use crate::{
    cgroups,
    container::{unmount_rootfs, Container, Kind},
    error::{Error, Result},
    events::{timestamp, Events},
    fastpath, idmap,
    process::{Process, State},
    reaper::{self, Exit},
    runc::{self, Runc},
    sandbox::Pod,
    spec, stdio,
    table::Table,
};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    containers: Table,
    events: Events,
    namespace: String,
    exit: Arc<ExitSignal>,
    /// The sandbox this shim owns under containerd 2.x's `shim` sandboxer, if any.
    pod: Arc<Pod>,
}

impl Service {
    pub fn new(events: Events, namespace: &str, exit: Arc<ExitSignal>, pod: Arc<Pod>) -> Self {
        Service {
            inner: Arc::new(Inner {
                containers: Table::default(),
                events,
                namespace: namespace.to_string(),
                exit,
                pod,
            }),
        }
    }

    /// No task containerd knows of and no live sandbox: nothing would be lost if the shim exited.
    pub async fn is_idle(&self) -> bool {
        !self.inner.containers.holds_known_tasks().await && !self.inner.pod.is_live()
    }
}

/// Logs an error with the container id and turns it into a ttrpc status.
fn fail<T>(op: &str, id: &str, e: Error) -> TtrpcResult<T> {
    tracing::warn!(container_id = id, op, error = %e, "request failed");
    Err(e.into())
}

macro_rules! tryrpc {
    ($op:expr, $id:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return fail($op, $id, e),
        }
    };
}

fn not_found(id: &str, exec_id: &str) -> Error {
    if exec_id.is_empty() {
        Error::NotFound(format!("container {id}"))
    } else {
        Error::NotFound(format!("exec {exec_id} in container {id}"))
    }
}

fn runtime_options(req: &api::CreateTaskRequest) -> Result<Options> {
    match req.options.as_ref() {
        Some(any) if any.type_url.ends_with("containerd.runc.v1.Options") => {
            Options::parse_from_bytes(&any.value)
                .map_err(|e| Error::InvalidArgument(format!("runtime options: {e}")))
        }
        _ => Ok(Options::default()),
    }
}

fn read_pid(path: &Path) -> Result<i32> {
    let text =
        std::fs::read_to_string(path).map_err(Error::io(format!("read {}", path.display())))?;
    text.trim()
        .parse()
        .map_err(|e| Error::Other(format!("bad pid file {}: {e}", path.display())))
}

impl Inner {
    /// Watches `pid` and records its exit on the process it belongs to.
    fn watch_exit(self: &Arc<Self>, id: &str, exec_id: &str, pid: i32) {
        let rx = reaper::watch(pid);
        let inner = self.clone();
        let (id, exec_id) = (id.to_string(), exec_id.to_string());
        tokio::spawn(async move {
            if let Ok(exit) = rx.await {
                inner.on_exit(&id, &exec_id, pid, exit).await;
            }
        });
    }

    async fn on_exit(&self, id: &str, exec_id: &str, pid: i32, exit: Exit) {
        // The container is held until TaskExit is queued, so no Delete (and its
        // TaskDelete) can slip in between.
        let Some(mut c) = self.containers.lock(id).await else {
            return;
        };
        let Some(p) = c.process_mut(exec_id) else {
            return;
        };
        if p.pid != pid {
            return;
        }
        p.set_exited(exit);
        if exec_id.is_empty() && c.shares_pid_ns {
            // Its other processes would outlive it: end them as runc-v2 does.
            if matches!(c.kind, Kind::Runc) {
                let runc = c.runc.clone();
                let cid = id.to_string();
                tokio::spawn(async move {
                    if let Err(e) = runc.output(&["kill", "--all", &cid, "9"], None).await {
                        tracing::debug!(container_id = %cid, error = %e, "kill --all after init exit");
                    }
                });
            }
        }
        tracing::info!(
            container_id = id,
            exec_id,
            pid,
            status = exit.status,
            "process exited"
        );
        let ev = TaskExit {
            container_id: id.to_string(),
            id: if exec_id.is_empty() { id } else { exec_id }.to_string(),
            pid: pid as u32,
            exit_status: exit.status as u32,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        };
        self.events.send(id, ev).await;
        drop(c);
    }

    fn oom_clamp(id: &str) -> impl Fn(i64) -> i64 + '_ {
        move |wanted| {
            let own = spec::own_oom_score();
            let got = spec::clamp_oom(wanted, own, spec::has_cap_sys_resource());
            if got != wanted {
                tracing::info!(
                    container_id = id,
                    wanted,
                    got,
                    "clamping oom_score_adj to the shim's own: no CAP_SYS_RESOURCE"
                );
            }
            got
        }
    }

    async fn create(self: &Arc<Self>, req: api::CreateTaskRequest) -> Result<i32> {
        let id = req.id.as_str();
        if id.is_empty() || req.bundle.is_empty() {
            return Err(Error::InvalidArgument("id and bundle are required".into()));
        }
        if !req.checkpoint.is_empty() {
            return Err(Error::Unimplemented("restore from checkpoint".into()));
        }
        let mut slot = self
            .containers
            .reserve(id)
            .ok_or_else(|| Error::AlreadyExists(format!("container {id}")))?;
        crate::events::warm_up();
        let c = match self.new_container(&req).await {
            Ok(c) => c,
            Err(e) => {
                self.containers.forget(id);
                return Err(e);
            }
        };
        let pid = c.init.pid;
        self.watch_exit(id, "", pid);
        crate::oom::watch(id, pid, self.events.clone());
        *slot = Some(c);
        tracing::info!(container_id = id, pid, "created");
        let ev = TaskCreate {
            container_id: id.to_string(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            }),
            checkpoint: req.checkpoint.clone(),
            pid: pid as u32,
            ..Default::default()
        };
        // Queued with the container held: ahead of its TaskExit.
        self.events.send(id, ev).await;
        drop(slot);
        Ok(pid)
    }

    /// Sets up and creates the container of a CreateTask whose id is reserved; on an error,
    /// nothing it made is left.
    async fn new_container(&self, req: &api::CreateTaskRequest) -> Result<Container> {
        let id = req.id.as_str();
        let bundle = PathBuf::from(&req.bundle);
        let mut spec_json = spec::read(&bundle)?;
        if self.pod.rewrite_task_spec(&mut spec_json).await? {
            spec::write(&bundle, &spec_json)?;
        }
        let opts = runtime_options(req)?;
        let mut runc = Runc::new(&self.namespace, &opts.binary_name, &opts.root);
        // containerd's runc options say SystemdCgroup; containerd 1.x's CRI sends those only to
        // runc-type runtimes, but gives every runtime a `slice:prefix:name` path for a slice
        // parent, which only runc's systemd driver can place.
        runc.systemd = opts.systemd_cgroup || spec::systemd_cgroups_path(&spec_json);
        if !opts.binary_name.is_empty() || !opts.root.is_empty() || runc.systemd {
            // For `delete` after a shim death, which gets no runtime options.
            runc.save(&bundle);
        }
        let stdio = Stdio::new(&req.stdin, &req.stdout, &req.stderr, req.terminal);

        // A container in its pod's user namespace: the shim id-maps its rootfs and volumes.
        let mut mapper = idmap::Mapper::for_spec(&spec_json, &bundle)?;
        if let Some(m) = mapper.as_mut() {
            let mapped = m.map_volumes(&mut spec_json);
            match mapped.and_then(|changed| match changed {
                true => spec::write(&bundle, &spec_json),
                false => Ok(()),
            }) {
                Ok(()) => {}
                Err(e) => {
                    idmap::release(&bundle);
                    return Err(e);
                }
            }
        }
        let rootfs = if req.rootfs.is_empty() {
            None
        } else {
            let target = bundle.join("rootfs");
            std::fs::create_dir_all(&target).map_err(Error::io("mkdir rootfs"))?;
            for m in &req.rootfs {
                let mounted = match mapper.as_mut() {
                    Some(mapper) => mapper.mount_rootfs(m, &target),
                    None => containerd_shim::asynchronous::util::mount_rootfs(m, &target)
                        .await
                        .map_err(|e| Error::Other(format!("mount rootfs: {e}"))),
                };
                if let Err(e) = mounted {
                    unmount_rootfs(&target);
                    idmap::release(&bundle);
                    return Err(e);
                }
            }
            Some(target)
        };

        let shares_pid_ns = spec::shares_pid_ns(&spec_json);
        let fast =
            spec::is_sandbox(&spec_json) && fastpath::enabled() && !req.terminal && stdio.is_null();
        let mut created = None;
        if fast {
            match fastpath::create(id, &bundle, &spec_json, Self::oom_clamp(id)).await {
                Ok(res) => {
                    created =
                        Some(res.map(|(t, pid)| (Kind::Fast(t), pid, Process::new(stdio.clone()))))
                }
                Err(why) => tracing::info!(
                    container_id = id,
                    why,
                    "sandbox not covered by the fast path, using runc"
                ),
            }
        }
        let created = match created {
            Some(res) => res,
            None => {
                // runc reads the spec itself: the clamp has to be written back.
                let written = match spec::clamp_spec_oom(
                    &mut spec_json,
                    spec::own_oom_score(),
                    spec::has_cap_sys_resource(),
                ) {
                    Some((wanted, got)) => {
                        tracing::info!(
                            container_id = id,
                            wanted,
                            got,
                            "clamping oom_score_adj to the shim's own: no CAP_SYS_RESOURCE"
                        );
                        spec::write(&bundle, &spec_json)
                    }
                    None => Ok(()),
                };
                match written {
                    Ok(()) => self
                        .runc_create(id, &bundle, &runc, &opts, stdio.clone())
                        .await
                        .map(|(p, pid)| (Kind::Runc, pid, p)),
                    Err(e) => Err(e),
                }
            }
        };
        if mapper.is_some() {
            // The overlay holds its layers, and runc has bound the volumes into the container.
            idmap::release(&bundle);
        }
        let (kind, pid, mut init) = match created {
            Ok(c) => c,
            Err(e) => {
                if let Some(r) = &rootfs {
                    unmount_rootfs(r);
                }
                return Err(e);
            }
        };
        init.pid = pid;
        Ok(Container {
            bundle,
            runc,
            kind,
            init,
            execs: HashMap::new(),
            rootfs,
            shares_pid_ns,
        })
    }

    async fn runc_create(
        &self,
        id: &str,
        bundle: &Path,
        runc: &Runc,
        opts: &Options,
        stdio: Stdio,
    ) -> Result<(Process, i32)> {
        let mut p = Process::new(stdio);
        let pid_file = bundle.join("init.pid");
        let mut args = vec![
            "create".to_string(),
            "--bundle".into(),
            bundle.to_string_lossy().into_owned(),
            "--pid-file".into(),
            pid_file.to_string_lossy().into_owned(),
        ];
        if opts.no_pivot_root {
            args.push("--no-pivot".into());
        }
        if opts.no_new_keyring {
            args.push("--no-new-keyring".into());
        }
        let res = self
            .run_with_stdio(id, &mut p, runc, args, bundle.join("log.json"))
            .await;
        let pid = match res.and_then(|()| read_pid(&pid_file)) {
            Ok(pid) => pid,
            Err(e) => {
                // Leave nothing behind: no runc state, no copies, no driver.
                let _ = runc.output(&["delete", "--force", id], None).await;
                p.io.abort().await;
                if let Some(l) = p.logger.take() {
                    l.finish(id).await;
                }
                return Err(e);
            }
        };
        Ok((p, pid))
    }

    /// Runs runc create/exec with the process's stdio or console socket.
    async fn run_with_stdio(
        &self,
        id: &str,
        p: &mut Process,
        runc: &Runc,
        mut args: Vec<String>,
        log: PathBuf,
    ) -> Result<()> {
        if p.stdio.terminal {
            let console = stdio::ConsoleSocket::new()?;
            args.push("--console-socket".into());
            args.push(console.path.to_string_lossy().into_owned());
            args.push(id.to_string());
            runc.detached(&args, runc::ProcStdio::null(), &log).await?;
            let master = console.receive()?;
            p.pty = Some(stdio::attach_pty(&p.io, &p.stdio, master)?);
        } else {
            let wired = stdio::pipes(&p.io, &p.stdio, id, &self.namespace).await?;
            p.logger = wired.logger;
            p.stdin = wired.stdin;
            // A CloseIO before Start: the process reads what was sent, then EOF.
            if p.stdin_closed {
                if let Some(s) = p.stdin.as_mut() {
                    s.close();
                }
            }
            args.push(id.to_string());
            if let Err(e) = runc.detached(&args, wired.stdio, &log).await {
                p.stdin = None;
                // The driver saw EOF with runc gone; let it go.
                if let Some(l) = p.logger.take() {
                    l.finish(id).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn start(self: &Arc<Self>, id: &str, exec_id: &str) -> Result<i32> {
        let mut c = self
            .containers
            .lock(id)
            .await
            .ok_or_else(|| not_found(id, ""))?;
        if exec_id.is_empty() {
            if c.init.state != State::Created {
                return Err(Error::FailedPrecondition(format!(
                    "container {id} already started"
                )));
            }
            match &mut c.kind {
                Kind::Runc => {
                    c.runc.output(&["start", id], None).await?;
                }
                Kind::Fast(t) => t.start().await?,
            }
            if c.init.state == State::Created {
                c.init.state = State::Running;
            }
            let pid = c.init.pid;
            tracing::info!(container_id = id, pid, "started");
            let ev = TaskStart {
                container_id: id.to_string(),
                pid: pid as u32,
                ..Default::default()
            };
            // Queued with the container held: the exit handler needs it, so a
            // quick exit's TaskExit can never overtake TaskStart.
            self.events.send(id, ev).await;
            drop(c);
            return Ok(pid);
        }
        if c.init.state != State::Running {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is not running"
            )));
        }
        let runc = c.runc.clone();
        let bundle = c.bundle.clone();
        let p = c
            .execs
            .get_mut(exec_id)
            .ok_or_else(|| not_found(id, exec_id))?;
        if p.state != State::Created {
            return Err(Error::FailedPrecondition(format!(
                "exec {exec_id} already started"
            )));
        }
        let spec_file = bundle.join(format!("{exec_id}.process.json"));
        let pid_file = bundle.join(format!("{exec_id}.pid"));
        std::fs::write(&spec_file, p.spec.as_deref().unwrap_or_default())
            .map_err(Error::io("write exec process spec"))?;
        let args = vec![
            "exec".to_string(),
            "--process".into(),
            spec_file.to_string_lossy().into_owned(),
            "--detach".into(),
            "--pid-file".into(),
            pid_file.to_string_lossy().into_owned(),
        ];
        let res = self
            .run_with_stdio(
                id,
                p,
                &runc,
                args,
                bundle.join(format!("{exec_id}.log.json")),
            )
            .await;
        let _ = std::fs::remove_file(&spec_file);
        if let Err(e) = res {
            p.io.abort().await;
            p.io = p.io.renew();
            return Err(e);
        }
        let pid = read_pid(&pid_file)?;
        let _ = std::fs::remove_file(&pid_file);
        p.pid = pid;
        p.state = State::Running;
        self.watch_exit(id, exec_id, pid);
        tracing::info!(container_id = id, exec_id, pid, "exec started");
        let ev = TaskExecStarted {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            pid: pid as u32,
            ..Default::default()
        };
        // With the container held, like TaskStart: ahead of this exec's TaskExit.
        self.events.send(id, ev).await;
        drop(c);
        Ok(pid)
    }

    async fn delete(&self, id: &str, exec_id: &str) -> Result<(i32, Option<Exit>)> {
        let mut slot = self
            .containers
            .lock_slot(id)
            .await
            .ok_or_else(|| not_found(id, exec_id))?;
        let c = slot.as_mut().ok_or_else(|| not_found(id, exec_id))?;
        if !exec_id.is_empty() {
            let p = c.execs.get(exec_id).ok_or_else(|| not_found(id, exec_id))?;
            if matches!(p.state, State::Running | State::Paused) {
                return Err(Error::FailedPrecondition(format!(
                    "exec {exec_id} is running"
                )));
            }
            let mut p = c
                .execs
                .remove(exec_id)
                .ok_or_else(|| not_found(id, exec_id))?;
            drop(slot);
            p.io.shutdown().await;
            if let Some(l) = p.logger.take() {
                l.finish(id).await;
            }
            return Ok((p.pid, p.exit));
        }
        if matches!(c.init.state, State::Running | State::Paused) {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is running"
            )));
        }
        match &mut c.kind {
            Kind::Runc => {
                if let Err(e) = c.runc.output(&["delete", "--force", id], None).await {
                    if !runc::is_not_exist(&e) {
                        return Err(e);
                    }
                }
            }
            Kind::Fast(t) => {
                if c.init.state == State::Created {
                    // Never started: the pause is parked before its exec.
                    t.abandon();
                    let _ = kill(Pid::from_raw(c.init.pid), Signal::SIGKILL);
                }
            }
        }
        let mut c = slot.take().ok_or_else(|| not_found(id, ""))?;
        self.containers.forget(id);
        drop(slot);
        c.init.io.shutdown().await;
        if let Some(l) = c.init.logger.take() {
            l.finish(id).await;
        }
        if let Kind::Fast(t) = &c.kind {
            t.release().await;
            let _ = std::fs::remove_file(c.bundle.join(fastpath::RECORD_FILE));
        }
        if let Some(r) = &c.rootfs {
            unmount_rootfs(r);
        }
        idmap::release(&c.bundle);
        let (pid, exit) = (c.init.pid, c.init.exit);
        tracing::info!(container_id = id, pid, "deleted");
        let ev = TaskDelete {
            container_id: id.to_string(),
            pid: pid as u32,
            exit_status: exit.map_or(0, |e| e.status as u32),
            exited_at: MessageField::some(timestamp(
                exit.map_or_else(time::OffsetDateTime::now_utc, |e| e.at),
            )),
            id: id.to_string(),
            ..Default::default()
        };
        self.events.send(id, ev).await;
        Ok((pid, exit))
    }

    async fn kill(&self, req: &api::KillRequest) -> Result<()> {
        let (id, exec_id) = (req.id.as_str(), req.exec_id.as_str());
        let sig = Signal::try_from(req.signal as i32)
            .map_err(|_| Error::InvalidArgument(format!("signal {}", req.signal)))?;
        let c = self
            .containers
            .lock(id)
            .await
            .ok_or_else(|| not_found(id, exec_id))?;
        let p = c.process(exec_id).ok_or_else(|| not_found(id, exec_id))?;
        if p.state == State::Stopped {
            return Err(crate::kill::finished(id, exec_id));
        }
        if !exec_id.is_empty() {
            if p.pid == 0 {
                return Err(Error::FailedPrecondition(format!(
                    "exec {exec_id} not started"
                )));
            }
            return crate::kill::signal(id, exec_id, p.pid, sig);
        }
        match &c.kind {
            Kind::Runc => {
                let signal = (req.signal).to_string();
                let mut args = vec!["kill"];
                if req.all {
                    args.push("--all");
                }
                args.extend([id, signal.as_str()]);
                c.runc
                    .output(&args, None)
                    .await
                    .map_err(|e| crate::kill::runc_error(id, e))?;
            }
            Kind::Fast(t) => {
                if !req.all {
                    return crate::kill::signal(id, exec_id, p.pid, sig);
                }
                let pids = match t.cgroups.first() {
                    Some(dir) => cgroups::procs(dir)?,
                    None => vec![p.pid],
                };
                for pid in pids {
                    let _ = kill(Pid::from_raw(pid), sig);
                }
            }
        }
        Ok(())
    }

    async fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let c = self
            .containers
            .lock(id)
            .await
            .ok_or_else(|| not_found(id, ""))?;
        match &c.kind {
            Kind::Runc => {
                let out = c.runc.output(&["ps", "--format", "json", id], None).await?;
                serde_json::from_slice::<Option<Vec<i32>>>(&out)
                    .map(Option::unwrap_or_default)
                    .map_err(|e| Error::Other(format!("runc ps output: {e}")))
            }
            Kind::Fast(t) => match t.cgroups.first() {
                Some(dir) => cgroups::procs(dir),
                None if c.init.state == State::Stopped => Ok(vec![]),
                None => Ok(vec![c.init.pid]),
            },
        }
    }

    async fn set_paused(&self, id: &str, paused: bool) -> Result<()> {
        let mut c = self
            .containers
            .lock(id)
            .await
            .ok_or_else(|| not_found(id, ""))?;
        let want = if paused {
            State::Running
        } else {
            State::Paused
        };
        if c.init.state != want {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is {:?}",
                c.init.state
            )));
        }
        match &c.kind {
            Kind::Runc => {
                c.runc
                    .output(&[if paused { "pause" } else { "resume" }, id], None)
                    .await?;
            }
            Kind::Fast(t) => cgroups::freeze(&t.cgroups, paused)?,
        }
        c.init.state = if paused {
            State::Paused
        } else {
            State::Running
        };
        drop(c);
        if paused {
            self.events
                .send(
                    id,
                    TaskPaused {
                        container_id: id.to_string(),
                        ..Default::default()
                    },
                )
                .await;
        } else {
            self.events
                .send(
                    id,
                    TaskResumed {
                        container_id: id.to_string(),
                        ..Default::default()
                    },
                )
                .await;
        }
        Ok(())
    }
}

#[async_trait]
impl Task for Service {
    async fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let Some(c) = self.inner.containers.lock(&req.id).await else {
            return fail("state", &req.id, not_found(&req.id, &req.exec_id));
        };
        let Some(p) = c.process(&req.exec_id) else {
            return fail("state", &req.id, not_found(&req.id, &req.exec_id));
        };
        Ok(api::StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: c.bundle.to_string_lossy().into_owned(),
            pid: p.pid as u32,
            status: p.state.status().into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status: p.exit.map_or(0, |e| e.status as u32),
            exited_at: p.exit.map(|e| timestamp(e.at)).into(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        let id = req.id.clone();
        let pid = tryrpc!("create", &id, self.inner.create(req).await);
        Ok(api::CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    async fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let pid = tryrpc!(
            "start",
            &req.id,
            self.inner.start(&req.id, &req.exec_id).await
        );
        Ok(api::StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let (pid, exit) = tryrpc!(
            "delete",
            &req.id,
            self.inner.delete(&req.id, &req.exec_id).await
        );
        Ok(api::DeleteResponse {
            pid: pid as u32,
            exit_status: exit.map_or(0, |e| e.status as u32),
            exited_at: exit.map(|e| timestamp(e.at)).into(),
            ..Default::default()
        })
    }

    async fn pids(
        &self,
        _ctx: &TtrpcContext,
        req: api::PidsRequest,
    ) -> TtrpcResult<api::PidsResponse> {
        let pids = tryrpc!("pids", &req.id, self.inner.pids(&req.id).await);
        Ok(api::PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    async fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<Empty> {
        tryrpc!("pause", &req.id, self.inner.set_paused(&req.id, true).await);
        Ok(Empty::new())
    }

    async fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<Empty> {
        tryrpc!(
            "resume",
            &req.id,
            self.inner.set_paused(&req.id, false).await
        );
        Ok(Empty::new())
    }

    async fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<Empty> {
        fail(
            "checkpoint",
            &req.id,
            Error::Unimplemented("checkpoint".into()),
        )
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<Empty> {
        tryrpc!("kill", &req.id, self.inner.kill(&req).await);
        Ok(Empty::new())
    }

    async fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<Empty> {
        let (id, exec_id) = (req.id.as_str(), req.exec_id.as_str());
        if exec_id.is_empty() {
            return fail(
                "exec",
                id,
                Error::InvalidArgument("exec id is required".into()),
            );
        }
        let Some(spec) = req.spec.as_ref() else {
            return fail(
                "exec",
                id,
                Error::InvalidArgument("exec without process spec".into()),
            );
        };
        if serde_json::from_slice::<serde_json::Value>(&spec.value).is_err() {
            return fail(
                "exec",
                id,
                Error::InvalidArgument("exec process spec is not JSON".into()),
            );
        }
        {
            let Some(mut c) = self.inner.containers.lock(id).await else {
                return fail("exec", id, not_found(id, ""));
            };
            if c.init.state != State::Running {
                return fail(
                    "exec",
                    id,
                    Error::FailedPrecondition(format!("container {id} is not running")),
                );
            }
            if matches!(c.kind, Kind::Fast(_)) {
                return fail(
                    "exec",
                    id,
                    Error::FailedPrecondition("exec into a fast-path sandbox".into()),
                );
            }
            if c.execs.contains_key(exec_id) {
                return fail("exec", id, Error::AlreadyExists(format!("exec {exec_id}")));
            }
            let mut p = Process::new(Stdio::new(
                &req.stdin,
                &req.stdout,
                &req.stderr,
                req.terminal,
            ));
            p.spec = Some(spec.value.clone());
            c.execs.insert(exec_id.to_string(), p);
        }
        self.inner
            .events
            .send(
                id,
                TaskExecAdded {
                    container_id: id.to_string(),
                    exec_id: exec_id.to_string(),
                    ..Default::default()
                },
            )
            .await;
        Ok(Empty::new())
    }

    async fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<Empty> {
        let Some(c) = self.inner.containers.lock(&req.id).await else {
            return fail("resize_pty", &req.id, not_found(&req.id, &req.exec_id));
        };
        let Some(p) = c.process(&req.exec_id) else {
            return fail("resize_pty", &req.id, not_found(&req.id, &req.exec_id));
        };
        let Some(pty) = &p.pty else {
            return fail(
                "resize_pty",
                &req.id,
                Error::FailedPrecondition("process has no terminal".into()),
            );
        };
        use std::os::fd::AsFd;
        let fd = pty.as_fd();
        tryrpc!(
            "resize_pty",
            &req.id,
            crate::sys::set_winsize(&fd, req.width as u16, req.height as u16)
                .map_err(Error::io("resize pty"))
        );
        Ok(Empty::new())
    }

    async fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<Empty> {
        let Some(mut c) = self.inner.containers.lock(&req.id).await else {
            return fail("close_io", &req.id, not_found(&req.id, &req.exec_id));
        };
        let Some(p) = c.process_mut(&req.exec_id) else {
            return fail("close_io", &req.id, not_found(&req.id, &req.exec_id));
        };
        if req.stdin {
            p.io.close_input();
            p.stdin_closed = true;
            // Kept until Delete: the copy drains the fifo to its EOF first.
            if let Some(s) = p.stdin.as_mut() {
                s.close();
            }
        }
        Ok(Empty::new())
    }

    async fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<Empty> {
        let Some(res) = req.resources.as_ref() else {
            return fail(
                "update",
                &req.id,
                Error::InvalidArgument("no resources".into()),
            );
        };
        let Some(c) = self.inner.containers.lock(&req.id).await else {
            return fail("update", &req.id, not_found(&req.id, ""));
        };
        match &c.kind {
            Kind::Runc => {
                let runc = c.runc.clone();
                drop(c);
                tryrpc!(
                    "update",
                    &req.id,
                    runc.output(
                        &["update", "--resources", "-", &req.id],
                        Some(res.value.clone())
                    )
                    .await
                );
            }
            Kind::Fast(_) => {
                return fail(
                    "update",
                    &req.id,
                    Error::Unimplemented("update of a fast-path sandbox".into()),
                )
            }
        }
        Ok(Empty::new())
    }

    async fn wait(
        &self,
        _ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        let waiter = {
            let Some(c) = self.inner.containers.lock(&req.id).await else {
                return fail("wait", &req.id, not_found(&req.id, &req.exec_id));
            };
            let Some(p) = c.process(&req.exec_id) else {
                return fail("wait", &req.id, not_found(&req.id, &req.exec_id));
            };
            p.wait()
        };
        let Some(exit) = waiter.await else {
            return fail(
                "wait",
                &req.id,
                Error::NotFound("process deleted while waiting".into()),
            );
        };
        Ok(api::WaitResponse {
            exit_status: exit.status as u32,
            exited_at: MessageField::some(timestamp(exit.at)),
            ..Default::default()
        })
    }

    async fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let pid = {
            let Some(c) = self.inner.containers.lock(&req.id).await else {
                return fail("stats", &req.id, not_found(&req.id, ""));
            };
            if c.init.state == State::Stopped {
                return fail(
                    "stats",
                    &req.id,
                    Error::FailedPrecondition("container stopped".into()),
                );
            }
            c.init.pid
        };
        let any = tryrpc!("stats", &req.id, cgroups::stats(pid));
        Ok(api::StatsResponse {
            stats: MessageField::some(any),
            ..Default::default()
        })
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let task_pid = match self.inner.containers.lock(&req.id).await {
            Some(c) => c.init.pid as u32,
            None => 0,
        };
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: VERSION.to_string(),
            ..Default::default()
        })
    }

    async fn shutdown(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ShutdownRequest,
    ) -> TtrpcResult<Empty> {
        if !self.inner.containers.holds_known_tasks().await && !self.inner.pod.is_live() {
            tracing::info!("no containers left, shutting down");
            self.inner.exit.signal();
        }
        Ok(Empty::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::{protobuf::well_known_types::any::Any, ttrpc};

    /// A service whose event publisher talks to a socket nobody answers.
    async fn service(dir: &Path) -> (Service, tokio::net::UnixListener) {
        let sock = dir.join("events.sock");
        let listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let publisher = containerd_shim::publisher::RemotePublisher::new(sock.to_str().unwrap())
            .await
            .unwrap();
        let svc = Service::new(
            Events::new(publisher, "test"),
            "test",
            Arc::new(ExitSignal::default()),
            Pod::new(),
        );
        (svc, listener)
    }

    fn code<T: std::fmt::Debug>(r: TtrpcResult<T>) -> ttrpc::Code {
        match r {
            Err(ttrpc::Error::RpcStatus(s)) => s.code(),
            other => panic!("expected an rpc status, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn unknown_ids_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let (svc, _l) = service(dir.path()).await;
        let ctx = TtrpcContext::default();
        let id = || "nope".to_string();
        use ttrpc::Code::NOT_FOUND;
        assert_eq!(
            code(
                svc.state(
                    &ctx,
                    api::StateRequest {
                        id: id(),
                        ..Default::default()
                    }
                )
                .await
            ),
            NOT_FOUND
        );
        assert_eq!(
            code(
                svc.start(
                    &ctx,
                    api::StartRequest {
                        id: id(),
                        ..Default::default()
                    }
                )
                .await
            ),
            NOT_FOUND
        );
        assert_eq!(
            code(
                svc.kill(
                    &ctx,
                    api::KillRequest {
                        id: id(),
                        signal: 9,
                        ..Default::default()
                    }
                )
                .await
            ),
            NOT_FOUND
        );
        assert_eq!(
            code(
                svc.delete(
                    &ctx,
                    api::DeleteRequest {
                        id: id(),
                        ..Default::default()
                    }
                )
                .await
            ),
            NOT_FOUND
        );
        assert_eq!(
            code(
                svc.wait(
                    &ctx,
                    api::WaitRequest {
                        id: id(),
                        ..Default::default()
                    }
                )
                .await
            ),
            NOT_FOUND
        );
        assert_eq!(
            code(
                svc.pids(
                    &ctx,
                    api::PidsRequest {
                        id: id(),
                        ..Default::default()
                    }
                )
                .await
            ),
            NOT_FOUND
        );
        assert_eq!(
            code(
                svc.stats(
                    &ctx,
                    api::StatsRequest {
                        id: id(),
                        ..Default::default()
                    }
                )
                .await
            ),
            NOT_FOUND
        );
        assert_eq!(
            code(
                svc.pause(
                    &ctx,
                    api::PauseRequest {
                        id: id(),
                        ..Default::default()
                    }
                )
                .await
            ),
            NOT_FOUND
        );
        assert_eq!(
            code(
                svc.resize_pty(
                    &ctx,
                    api::ResizePtyRequest {
                        id: id(),
                        ..Default::default()
                    }
                )
                .await
            ),
            NOT_FOUND
        );
        assert_eq!(
            code(
                svc.close_io(
                    &ctx,
                    api::CloseIORequest {
                        id: id(),
                        ..Default::default()
                    }
                )
                .await
            ),
            NOT_FOUND
        );
        let exec = api::ExecProcessRequest {
            id: id(),
            exec_id: "e".into(),
            spec: MessageField::some(Any {
                value: b"{}".to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(code(svc.exec(&ctx, exec).await), NOT_FOUND);
        assert_eq!(
            code(
                svc.checkpoint(
                    &ctx,
                    api::CheckpointTaskRequest {
                        id: id(),
                        ..Default::default()
                    }
                )
                .await
            ),
            ttrpc::Code::UNIMPLEMENTED
        );
    }

    #[tokio::test]
    async fn bad_create_requests() {
        let dir = tempfile::tempdir().unwrap();
        let (svc, _l) = service(dir.path()).await;
        let ctx = TtrpcContext::default();
        let bundle = dir.path().join("bundle");
        std::fs::create_dir_all(&bundle).unwrap();
        let req = |id: &str| api::CreateTaskRequest {
            id: id.into(),
            bundle: bundle.to_string_lossy().into_owned(),
            ..Default::default()
        };
        assert_eq!(
            code(svc.create(&ctx, req("")).await),
            ttrpc::Code::INVALID_ARGUMENT
        );
        // No config.json, then a broken one.
        assert_eq!(
            code(svc.create(&ctx, req("c1")).await),
            ttrpc::Code::INVALID_ARGUMENT
        );
        std::fs::write(bundle.join("config.json"), b"{not json").unwrap();
        assert_eq!(
            code(svc.create(&ctx, req("c1")).await),
            ttrpc::Code::INVALID_ARGUMENT
        );
        // A missing runc binary.
        std::fs::write(
            bundle.join("config.json"),
            br#"{"process":{"args":["true"]}}"#,
        )
        .unwrap();
        let opts = Options {
            binary_name: "/nonexistent/runc".into(),
            ..Default::default()
        };
        let mut r = req("c1");
        r.options = MessageField::some(Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: opts.write_to_bytes().unwrap(),
            ..Default::default()
        });
        assert_eq!(
            code(svc.create(&ctx, r).await),
            ttrpc::Code::FAILED_PRECONDITION
        );
        // Nothing was kept.
        assert_eq!(
            code(
                svc.state(
                    &ctx,
                    api::StateRequest {
                        id: "c1".into(),
                        ..Default::default()
                    }
                )
                .await
            ),
            ttrpc::Code::NOT_FOUND
        );
        // Exec without an exec id.
        let exec = api::ExecProcessRequest {
            id: "c1".into(),
            ..Default::default()
        };
        assert_eq!(
            code(svc.exec(&ctx, exec).await),
            ttrpc::Code::INVALID_ARGUMENT
        );
    }

    #[tokio::test]
    async fn shutdown_without_tasks_exits() {
        let dir = tempfile::tempdir().unwrap();
        let (svc, _l) = service(dir.path()).await;
        svc.shutdown(&TtrpcContext::default(), api::ShutdownRequest::default())
            .await
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), svc.inner.exit.wait())
            .await
            .expect("shutdown signals exit");
    }
}
