//! `criusctl` — crius's CRI client, for any CRI v1 endpoint (criusd's socket by default, containerd's
//! CRI plugin too). Subcommands, flags and config files follow crictl, so habits and files carry over.
//!
//! ```text
//! criusctl [-r ENDPOINT] [-i IMAGE_ENDPOINT] [--timeout 2s] [-c CONFIG] <command> ...
//!   ENDPOINT: unix:///run/crius/crius.sock (default; env CONTAINER_RUNTIME_ENDPOINT), a bare socket
//!   path, or tcp://host:port. IMAGE_ENDPOINT defaults to ENDPOINT (env IMAGE_SERVICE_ENDPOINT).
//!   CONFIG: crictl's file (default /etc/crictl.yaml if present; env CRI_CONFIG_FILE): its
//!   runtime-endpoint, image-endpoint and timeout apply where no flag or variable is given.
//!   --timeout bounds connecting and each quick RPC; calls that do work (runp, create, stop, pull…)
//!   get at least 2 minutes. Go-style durations: 500ms, 2s, 1m.
//!
//! version | info                                   runtime version / Status(verbose) as JSON
//! runp [--runtime H] POD.json|yaml                  RunPodSandbox, prints the pod id
//! stopp ID… | rmp [-f] [-a] ID…                     stop / remove pods
//! pods [--id --name --namespace --label k=v --state ready|notready -q -v --no-trunc -l -n N]
//! inspectp ID…                                      PodSandboxStatus(verbose) as {status, info}
//! create [--no-pull|--with-pull] POD_ID CTR.json POD.json   CreateContainer, prints the container id
//! start ID… | stop [-t SECS] ID… | rm [-f] [-a] ID…
//! ps [-a --id -p POD --name --label --state --image -q -v --no-trunc -l -n N]
//! inspect ID…                                       ContainerStatus(verbose) as {status, info}
//! logs [-f] [--tail N] [--since 10s|RFC3339] [-t] ID   reads the CRI log file at status.log_path
//! pull [--creds user:pass] [--auth B64] IMAGE | images [-q --digests --no-trunc] [REPO]
//! inspecti IMAGE… | rmi [-a] IMAGE… | imagefsinfo
//! stats [-a --id -p POD --label] [ID] | statsp [--id --label] [ID]
//! update [--cpu-share --cpu-quota --cpu-period --cpuset-cpus --cpuset-mems --memory] ID…
//! run [--runtime H] [--no-pull|--with-pull] CTR.json POD.json   runp + pull + create + start
//! events                                            GetContainerEvents, one line per event
//! exec [-i] [-t] [-s --timeout SECS] ID CMD…        streaming session, or ExecSync with -s
//! attach [-i] [-t] ID | port-forward [--address A] POD_ID [LOCAL:]REMOTE…
//!   (these three take --transport websocket|spdy; websocket by default: v5/v4.channel.k8s.io,
//!   SPDY/3.1 is what kubectl speaks; -t puts the local terminal in raw mode and sends its size
//!   at the start and on every SIGWINCH)
//! debug pod ID                                      netns, IPs, shim, pause, containers' cgroups
//! ```
//!
//! Output: tables by default; `-o json|yaml` where crictl has it, as crictl prints it: protojson
//! (`podSandboxId`, enum names, 64-bit integers as strings, defaults present) in crictl's shapes
//! (`ps` → ListContainersResponse, `inspect` → `{status, info}`…). Config files: CRI JSON or YAML
//! with snake_case keys, as crictl reads them, or protojson's lowerCamelCase. Errors: one line `criusctl: <what>: <gRPC code>: <message>` and exit status 1.

mod clientconfig;
mod configfile;
mod conn;
mod containers;
mod crilog;
mod debug;
mod events;
mod images;
mod logs;
mod output;
mod pods;
mod protojson;
mod runtime_info;
mod stats;
mod stream;
mod streaming_cmds;
mod term;
mod timefmt;

use clap::{Parser, Subcommand};
use conn::Cri;

#[derive(Parser, Debug)]
#[command(
    name = "criusctl",
    version,
    about = "CRI client for crius (crictl-compatible commands)"
)]
struct Cli {
    /// CRI runtime endpoint: unix:///path, a socket path, or tcp://host:port [default: the
    /// config file's, else unix:///run/crius/crius.sock].
    #[arg(
        short = 'r',
        long = "runtime-endpoint",
        env = "CONTAINER_RUNTIME_ENDPOINT"
    )]
    runtime_endpoint: Option<String>,
    /// CRI image endpoint (defaults to the runtime endpoint).
    #[arg(short = 'i', long = "image-endpoint", env = "IMAGE_SERVICE_ENDPOINT")]
    image_endpoint: Option<String>,
    /// Timeout for connecting and for quick calls (Go duration: 500ms, 2s, 1m) [default: the
    /// config file's, else 2s].
    #[arg(short = 't', long)]
    timeout: Option<String>,
    /// crictl's config file (runtime-endpoint, image-endpoint, timeout) [default:
    /// /etc/crictl.yaml when it exists].
    #[arg(short = 'c', long = "config", env = "CRI_CONFIG_FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runtime name and versions.
    Version,
    /// Runtime status and verbose info, as JSON.
    Info(runtime_info::InfoArgs),
    /// Run a pod sandbox from a config file.
    Runp(pods::RunpArgs),
    /// Stop pod sandboxes.
    Stopp(pods::IdsArgs),
    /// Remove pod sandboxes.
    Rmp(pods::RmpArgs),
    /// List pod sandboxes.
    Pods(pods::PodsArgs),
    /// Pod sandbox status.
    Inspectp(pods::InspectpArgs),
    /// Create a container in a pod.
    Create(containers::CreateArgs),
    /// Start created containers.
    Start(containers::IdsArgs),
    /// Stop running containers.
    Stop(containers::StopArgs),
    /// Remove containers.
    Rm(containers::RmArgs),
    /// List containers.
    Ps(containers::PsArgs),
    /// Container status.
    Inspect(containers::InspectArgs),
    /// A container's logs (the CRI log file).
    Logs(logs::LogsArgs),
    /// Pull an image.
    Pull(images::PullArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Image status.
    Inspecti(images::InspectiArgs),
    /// Remove images.
    Rmi(images::RmiArgs),
    /// Image filesystem usage.
    Imagefsinfo(images::FsArgs),
    /// Container resource usage.
    Stats(stats::StatsArgs),
    /// Pod resource usage.
    Statsp(stats::StatspArgs),
    /// Update container resources.
    Update(containers::UpdateArgs),
    /// Run a container in a new pod (runp + pull + create + start).
    Run(containers::RunArgs),
    /// Stream container events.
    Events(events::EventsArgs),
    /// Run a command in a container.
    Exec(streaming_cmds::ExecArgs),
    /// Attach to a running container.
    Attach(streaming_cmds::AttachArgs),
    /// Forward local ports to a pod.
    PortForward(streaming_cmds::PortForwardArgs),
    /// crius views for debugging.
    #[command(subcommand)]
    Debug(debug::DebugCmd),
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("criusctl: starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("criusctl: {e:#}");
            1
        }
    };
    // Terminal state is restored by guards before this point; leave at once so no stdin reader
    // thread keeps the process alive.
    rt.shutdown_background();
    // exit() skips destructors: flush what a partial last line left in stdout's buffer.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::process::exit(code);
}

/// Runs the command; the exit status (non-zero passes a remote command's own status through).
async fn run(cli: Cli) -> anyhow::Result<i32> {
    let file = clientconfig::load(cli.config.as_deref())?;
    let timeout = match (&cli.timeout, file.timeout) {
        (Some(t), _) => timefmt::parse_duration(t)?,
        (None, Some(secs)) => std::time::Duration::from_secs(secs),
        (None, None) => std::time::Duration::from_secs(2),
    };
    let runtime = cli
        .runtime_endpoint
        .or(file.runtime_endpoint)
        .unwrap_or_else(|| "unix:///run/crius/crius.sock".into());
    let image = cli.image_endpoint.or(file.image_endpoint);
    let cri = Cri::connect(&runtime, image.as_deref(), timeout).await?;
    match cli.cmd {
        Cmd::Version => runtime_info::version(&cri).await?,
        Cmd::Info(a) => runtime_info::info(&cri, a).await?,
        Cmd::Runp(a) => pods::runp(&cri, a).await?,
        Cmd::Stopp(a) => pods::stopp(&cri, a).await?,
        Cmd::Rmp(a) => pods::rmp(&cri, a).await?,
        Cmd::Pods(a) => pods::pods(&cri, a).await?,
        Cmd::Inspectp(a) => pods::inspectp(&cri, a).await?,
        Cmd::Create(a) => containers::create(&cri, a).await?,
        Cmd::Start(a) => containers::start(&cri, a).await?,
        Cmd::Stop(a) => containers::stop(&cri, a).await?,
        Cmd::Rm(a) => containers::rm(&cri, a).await?,
        Cmd::Ps(a) => containers::ps(&cri, a).await?,
        Cmd::Inspect(a) => containers::inspect(&cri, a).await?,
        Cmd::Logs(a) => logs::logs(&cri, a).await?,
        Cmd::Pull(a) => images::pull(&cri, a).await?,
        Cmd::Images(a) => images::images(&cri, a).await?,
        Cmd::Inspecti(a) => images::inspecti(&cri, a).await?,
        Cmd::Rmi(a) => images::rmi(&cri, a).await?,
        Cmd::Imagefsinfo(a) => images::imagefsinfo(&cri, a).await?,
        Cmd::Stats(a) => stats::stats(&cri, a).await?,
        Cmd::Statsp(a) => stats::statsp(&cri, a).await?,
        Cmd::Update(a) => containers::update(&cri, a).await?,
        Cmd::Run(a) => containers::run(&cri, a).await?,
        Cmd::Events(a) => events::events(&cri, a).await?,
        Cmd::Exec(a) => return streaming_cmds::exec(&cri, a).await,
        Cmd::Attach(a) => return streaming_cmds::attach(&cri, a).await,
        Cmd::PortForward(a) => streaming_cmds::port_forward(&cri, a).await?,
        Cmd::Debug(d) => debug::run(&cri, d).await?,
    }
    Ok(0)
}
