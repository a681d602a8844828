//! `criusd`: the crius CRI v1 server. See the crate docs for its face.
//!
//! Config from `--config` (default `/etc/crius/config.toml`, optional unless named
//! explicitly); each flag below overrides one field of it.

use std::path::PathBuf;

use clap::Parser;
use crius_cri_front::config::{Config, LogFormat, DEFAULT_CONFIG_PATH};
use crius_cri_front::daemon::Daemon;
use crius_cri_front::{container, server, streaming};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "criusd",
    version,
    about = "crius CRI v1 server over containerd"
)]
struct Args {
    /// TOML config file.
    #[arg(long, env = "CRIUSD_CONFIG")]
    config: Option<PathBuf>,
    /// Unix socket to serve CRI on.
    #[arg(long)]
    listen: Option<PathBuf>,
    /// containerd gRPC socket.
    #[arg(long)]
    containerd_address: Option<PathBuf>,
    /// containerd namespace.
    #[arg(long)]
    containerd_namespace: Option<String>,
    /// containerd root dir (for ImageFsInfo).
    #[arg(long)]
    containerd_root: Option<PathBuf>,
    /// Persistent state dir.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Volatile state dir.
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// CNI config dir.
    #[arg(long)]
    cni_conf_dir: Option<PathBuf>,
    /// CNI plugin dirs (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    cni_bin_dir: Vec<PathBuf>,
    /// Registry hosts dir (containerd hosts.toml format).
    #[arg(long)]
    registry_config_dir: Option<PathBuf>,
    /// Static pause binary for pod sandboxes.
    #[arg(long, conflicts_with = "pause_image")]
    pause_binary: Option<PathBuf>,
    /// Pause image instead of the binary.
    #[arg(long)]
    pause_image: Option<String>,
    /// containerd runtime for the default handler (e.g. io.containerd.runc.v2).
    #[arg(long)]
    default_runtime: Option<String>,
    /// Log filter (tracing syntax).
    #[arg(long)]
    log_level: Option<String>,
    /// Log lines as `text` or `json`.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Print the effective config as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

fn effective_config(a: &Args) -> Result<Config, String> {
    let path = a
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let mut c = Config::load(&path, a.config.is_some()).map_err(|e| e.to_string())?;
    if let Some(v) = &a.listen {
        c.listen = v.clone();
    }
    if let Some(v) = &a.containerd_address {
        c.containerd_address = v.clone();
    }
    if let Some(v) = &a.containerd_namespace {
        c.containerd_namespace = v.clone();
    }
    if let Some(v) = &a.containerd_root {
        c.containerd_root = v.clone();
    }
    if let Some(v) = &a.state_dir {
        c.state_dir = v.clone();
    }
    if let Some(v) = &a.run_dir {
        c.run_dir = v.clone();
    }
    if let Some(v) = &a.cni_conf_dir {
        c.cni_conf_dir = v.clone();
    }
    if !a.cni_bin_dir.is_empty() {
        c.cni_bin_dirs = a.cni_bin_dir.clone();
    }
    if let Some(v) = &a.registry_config_dir {
        c.registry_config_dir = v.clone();
    }
    if let Some(v) = &a.pause_binary {
        c.pause = crius_sandboxer::PauseSource::Binary(v.clone());
    }
    if let Some(v) = &a.pause_image {
        c.pause = crius_sandboxer::PauseSource::Image(v.clone());
    }
    if let Some(v) = &a.default_runtime {
        c.runtime_handlers.insert(String::new(), v.as_str().into());
    }
    if let Some(v) = &a.log_level {
        c.log_level = v.clone();
    }
    if let Some(v) = a.log_format {
        c.log_format = v;
    }
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let cfg = match effective_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("criusd: {e}");
            std::process::exit(2);
        }
    };
    if args.print_config {
        match toml::to_string_pretty(&cfg) {
            Ok(s) => print!("{s}"),
            Err(e) => eprintln!("criusd: {e}"),
        }
        return;
    }
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match cfg.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    // TLS to registries: ring, chosen once for the process (reqwest is built without a provider).
    let _ = rustls::crypto::ring::default_provider().install_default();

    if let Err(e) = run(cfg).await {
        tracing::error!(error = %e, "criusd failed");
        std::process::exit(1);
    }
}

/// Start the streaming server and install it as the Exec/Attach/PortForward seam.
async fn start_streaming(
    d: &std::sync::Arc<Daemon>,
) -> crius_cri_front::error::Result<Option<std::sync::Arc<streaming::StreamingServer>>> {
    if d.shared.cfg.streaming_address.is_empty() {
        tracing::info!(
            "no streaming server configured: Exec/Attach/PortForward answer UNIMPLEMENTED"
        );
        return Ok(None);
    }
    let addr = d.shared.cfg.streaming_address.parse().map_err(|e| {
        crius_cri_front::error::Error::Config(format!(
            "streaming_address {:?}: {e}",
            d.shared.cfg.streaming_address
        ))
    })?;
    let server = streaming::StreamingServer::start(
        streaming::Config {
            addr,
            ..Default::default()
        },
        std::sync::Arc::new(container::stream_rt::ContainerStreams(d.containers.clone())),
    )
    .await
    .map_err(|e| crius_cri_front::error::Error::io("start the streaming server", e))?;
    let server = std::sync::Arc::new(server);
    let _ = d.streaming.set(server.clone());
    Ok(Some(server))
}

async fn run(cfg: Config) -> crius_cri_front::error::Result<()> {
    tracing::info!(listen = %cfg.listen.display(), containerd = %cfg.containerd_address.display(),
        namespace = %cfg.containerd_namespace, "criusd starting");
    let listen = cfg.listen.clone();
    let d = Daemon::new(cfg).await?;
    match d.shared.sandboxer.recover().await {
        Ok(r) => tracing::info!(ready = r.ready.len(), not_ready = r.not_ready.len(),
            cleaned = ?r.cleaned, orphans = ?r.orphans_removed, errors = ?r.errors, "pods recovered"),
        Err(e) => tracing::warn!(error = %e, "pod recovery failed; serving anyway"),
    }
    match d.containers.recover_containers().await {
        Ok(r) => {
            tracing::info!(kept = r.kept, dropped = ?r.dropped, orphans = ?r.orphans,
                image_volumes_removed = ?r.image_volumes_removed,
                user_file_views_removed = r.user_file_views_removed,
                removals_finished = r.removals_finished, "containers recovered")
        }
        Err(e) => tracing::warn!(error = %e, "container recovery failed; serving anyway"),
    }
    tokio::spawn(container::events::watch(d.containers.clone()));
    // Held until criusd stops: dropping the server stops it.
    let _streaming = start_streaming(&d).await?;
    if !d.shared.cfg.metrics_address.is_empty() {
        let at = crius_cri_front::rpc::metrics::serve(
            &d.shared.cfg.metrics_address,
            d.rpc_metrics.clone(),
            d.shared.shutdown.clone(),
        )
        .await?;
        tracing::info!(endpoint = %format!("http://{at}/metrics"), "serving metrics");
    }
    let listener = server::bind(&listen)?;
    tracing::info!(endpoint = %format!("unix://{}", listen.display()), "serving CRI");
    let containers = d.containers.clone();
    server::serve(d, listener).await?;
    // Answered RemoveContainers finish now rather than at the next start.
    containers
        .removals_done(None, std::time::Duration::from_secs(20))
        .await;
    let _ = std::fs::remove_file(&listen);
    tracing::info!("criusd stopped");
    Ok(())
}
