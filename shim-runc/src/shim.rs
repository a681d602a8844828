//! The shim v2 binary protocol: `start` (find or spawn the pod's shim),
//! `delete` (clean up after a dead shim), and serving the Task service.
//!
//! The `containerd-shim` crate's own bootstrap speaks containerd 2.x only
//! (a JSON start reply and the `containerd.task.v3.Task` service name);
//! containerd 1.6 wants the bare address and calls `containerd.task.v2.Task`
//! (the same messages). So this module drives the protocol itself, reusing
//! the crate's flag parser, `spawn` and publisher, and serves the Task
//! service under both names.

use std::{path::Path, sync::Arc};

use containerd_shim::{
    asynchronous::{publisher::RemotePublisher, spawn, ExitSignal},
    protos::{
        protobuf::Message,
        shim_async::{create_task, Client},
        ttrpc::r#async::{transport::Listener, Server},
    },
    DeleteResponse, Flags, StartOpts,
};
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use tokio::io::AsyncWriteExt;

use crate::{
    container::unmount_rootfs,
    error::{Error, Result},
    events::{timestamp, Events},
    fastpath, idle, idmap, logging, reaper,
    runc::{self, Runc},
    sandbox::{self, service::SandboxService, Pod},
    service::Service,
    spec,
};
use containerd_shim_protos::sandbox_async::create_sandbox;

const TASK_V3: &str = "containerd.task.v3.Task";
const TASK_V2: &str = "containerd.task.v2.Task";

pub async fn run(args: &[String]) -> Result<()> {
    let flags = containerd_shim::parse(args).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    if flags.info {
        // stdout carries the protobuf answer: logs only on stderr, errors only.
        logging::init_quiet();
        return crate::info::run().await;
    }
    match flags.action.as_str() {
        "start" => {
            // containerd 1.6 reads stdout and stderr together as the address:
            // stay silent unless something fails.
            logging::init_quiet();
            let address = start(&flags).await?;
            let mut out = tokio::io::stdout();
            out.write_all(address.as_bytes())
                .await
                .map_err(Error::io("write address"))?;
            out.flush().await.map_err(Error::io("flush address"))?;
            Ok(())
        }
        "delete" => {
            // containerd logs whatever `delete` prints on stderr as warnings.
            logging::init_quiet();
            reaper::start().map_err(Error::io("SIGCHLD handler"))?;
            let resp = delete(&flags).await?;
            let bytes = resp
                .write_to_bytes()
                .map_err(|e| Error::Other(e.to_string()))?;
            let mut out = tokio::io::stdout();
            out.write_all(&bytes)
                .await
                .map_err(Error::io("write delete reply"))?;
            out.flush().await.map_err(Error::io("flush delete reply"))?;
            Ok(())
        }
        "" => serve(&flags).await,
        other => Err(Error::InvalidArgument(format!("unknown action {other:?}"))),
    }
}

async fn start(flags: &Flags) -> Result<String> {
    let opts = StartOpts {
        id: flags.id.clone(),
        publish_binary: flags.publish_binary.clone(),
        address: flags.address.clone(),
        ttrpc_address: std::env::var("TTRPC_ADDRESS").unwrap_or_default(),
        namespace: flags.namespace.clone(),
        debug: flags.debug,
        ..Default::default()
    };
    // One shim per pod: containers naming a sandbox join its shim.
    let group = match spec::read(Path::new(".")) {
        Ok(s) => spec::group_id(&s, &opts.id),
        Err(_) => opts.id.clone(),
    };
    // The pod's shim already serves: no need to start a server only for it
    // to find the socket taken.
    let existing = opts.socket_address(&group);
    if Client::connect(&existing).await.is_ok() {
        let _ = std::fs::write("address", &existing);
        return Ok(existing);
    }
    let starter = std::process::id().to_string();
    let address = spawn(opts, &group, vec![(ENV_STARTER, starter.as_str())]).await?;
    let _ = std::fs::write("address", &address);
    Ok(address)
}

/// The pid of the `start` process that spawned this server: containerd learns the server's
/// address only through it.
const ENV_STARTER: &str = "CRIUS_SHIM_STARTER";

/// Whether the `start` process that spawned us died before we were up: then containerd never
/// got our address (its start failed), nobody will ever call us, and a server left running
/// would hold a socket no teardown knows of (a kill -9 racing the spawn leaves exactly this).
fn starter_gone() -> bool {
    let Some(starter) = std::env::var(ENV_STARTER)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return false;
    };
    nix::unistd::getppid().as_raw() != starter
}

fn socket_path(address: &str) -> &str {
    address.strip_prefix("unix://").unwrap_or(address)
}

/// Binds the shim socket; `None` when a live shim for the pod already has it.
async fn listen(address: &str) -> Result<Option<tokio::net::UnixListener>> {
    let path = socket_path(address);
    if let Some(dir) = Path::new(path).parent() {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("mkdir {}", dir.display())))?;
    }
    match tokio::net::UnixListener::bind(path) {
        Ok(l) => Ok(Some(l)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            for _ in 0..20 {
                if Client::connect(address).await.is_ok() {
                    return Ok(None);
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            // A dead shim's socket: take it over.
            let _ = std::fs::remove_file(path);
            tokio::net::UnixListener::bind(path)
                .map(Some)
                .map_err(Error::io(format!("bind {path}")))
        }
        Err(e) => Err(Error::io(format!("bind {path}"))(e)),
    }
}

/// Tells the `start` process we are up: it reads our stdout until EOF.
fn signal_started() {
    let stderr = std::io::stderr();
    if let Err(e) = nix::unistd::dup2_stdout(&stderr) {
        tracing::error!(error = %e, "closing the start pipe failed");
    }
}

async fn serve(flags: &Flags) -> Result<()> {
    if flags.socket.is_empty() {
        return Err(Error::InvalidArgument("-socket is required".into()));
    }
    logging::init(flags.debug, true);
    // Orphaned container processes must come to us, not to init.
    nix::sys::prctl::set_child_subreaper(true)?;
    reaper::start().map_err(Error::io("SIGCHLD handler"))?;

    let Some(listener) = listen(&flags.socket).await? else {
        let _ = std::fs::write("address", &flags.socket);
        signal_started();
        return Ok(());
    };
    let ttrpc_address = std::env::var("TTRPC_ADDRESS")
        .map_err(|_| Error::InvalidArgument("TTRPC_ADDRESS is not set".into()))?;
    let publisher = RemotePublisher::new(&ttrpc_address).await?;
    let exit = Arc::new(ExitSignal::default());
    let pod = Pod::new();
    let tasks = Arc::new(Service::new(
        Events::new(publisher, &flags.namespace),
        &flags.namespace,
        exit.clone(),
        pod.clone(),
    ));
    let service: Arc<dyn containerd_shim::Task + Send + Sync> = tasks.clone();
    let mut services = create_task(service.clone());
    if let Some(v3) = create_task(service).remove(TASK_V3) {
        services.insert(TASK_V2.to_string(), v3);
    }
    services.extend(create_sandbox(Arc::new(SandboxService::new(
        pod,
        tasks.clone(),
        exit.clone(),
    ))));
    let mut server = Server::new()
        .add_listener(Listener::from(listener))
        .register_service(services);
    server
        .start()
        .await
        .map_err(|e| Error::Other(format!("ttrpc server: {e}")))?;
    if starter_gone() {
        tracing::warn!(socket = %flags.socket, "the start process died before the shim was up: containerd does not know this shim; exiting");
        let _ = server.shutdown().await;
        let _ = std::fs::remove_file(socket_path(&flags.socket));
        return Ok(());
    }
    signal_started();
    tracing::info!(socket = %flags.socket, "shim serving");

    idle::watch(exit.clone(), idle::grace(), move || {
        let tasks = tasks.clone();
        async move { tasks.is_idle().await }
    });
    exit.wait().await;
    tracing::info!("shim exiting");
    let _ = server.shutdown().await;
    let _ = std::fs::remove_file(socket_path(&flags.socket));
    Ok(())
}

async fn delete(flags: &Flags) -> Result<DeleteResponse> {
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir().map_err(Error::io("cwd"))?
    } else {
        flags.bundle.clone().into()
    };
    let id = flags.id.as_str();
    let record = bundle.join(fastpath::RECORD_FILE);
    let fast = std::fs::read(&record).ok();
    if let Some(text) = &fast {
        if let Ok(r) = serde_json::from_slice::<fastpath::Record>(text) {
            if r.starttime != 0 && fastpath::starttime(r.pid) == Some(r.starttime) {
                let _ = kill(Pid::from_raw(r.pid), Signal::SIGKILL);
                for _ in 0..200 {
                    if fastpath::starttime(r.pid) != Some(r.starttime) {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
            fastpath::release(&r.cgroups, r.scope.as_deref()).await;
        }
        let _ = std::fs::remove_file(&record);
    }
    // A Sandbox API sandbox: its mounts and the pod's CRI dirs (a pause is the fast path's, above).
    let was_sandbox = sandbox::cleanup_dead(&bundle);
    if fast.is_none() && !was_sandbox {
        let runc = Runc::load(&bundle).unwrap_or_else(|| Runc::new(&flags.namespace, "", ""));
        if let Err(e) = runc.output(&["delete", "--force", id], None).await {
            if !runc::is_not_exist(&e) {
                tracing::warn!(container_id = id, error = %e, "runc delete failed");
            }
        }
    }
    unmount_rootfs(&bundle.join("rootfs"));
    idmap::release(&bundle);
    // A killed shim leaves its socket behind; remove it once nothing answers.
    if let Ok(address) = std::fs::read_to_string(bundle.join("address")) {
        let address = address.trim();
        if !address.is_empty() && Client::connect(address).await.is_err() {
            let _ = std::fs::remove_file(socket_path(address));
        }
    }
    tracing::info!(container_id = id, "cleaned up after shim");
    Ok(DeleteResponse {
        pid: 0,
        exit_status: 128 + libc::SIGKILL as u32,
        exited_at: Some(timestamp(time::OffsetDateTime::now_utc())).into(),
        ..Default::default()
    })
}
