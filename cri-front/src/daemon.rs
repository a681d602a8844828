//! criusd's parts and how they are wired: [`Shared`] (config, containerd, images, the
//! sandboxer, shutdown), and the services that own the rest: [`Pods`], [`Containers`],
//! [`Stats`] and the image service ([`crate::image::Images`]). The RuntimeService
//! (`runtime/service.rs`) hands each RPC to the service and module named after it.

use std::sync::Arc;

use crius_ctrd::Containerd;
use crius_sandboxer::Sandboxer;

pub use crate::container::Containers;
pub use crate::pod::Pods;
pub use crate::stats::Stats;

use crate::config::Config;
use crate::error::Result;
use crate::image::Images;

/// What every service reads: nothing in here is owned by one of them.
pub struct Shared {
    pub cfg: Config,
    pub ctrd: Arc<dyn Containerd>,
    pub images: Images,
    pub sandboxer: Arc<Sandboxer>,
    /// Cancelled when criusd shuts down: ends never-ending streams (GetContainerEvents) so the
    /// server's graceful stop does not wait on them.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// criusd: the services behind the CRI RuntimeService and ImageService.
pub struct Daemon {
    pub shared: Arc<Shared>,
    pub pods: Arc<Pods>,
    pub containers: Arc<Containers>,
    pub stats: Arc<Stats>,
    /// Every RPC's latency, for the metrics endpoint ([`crate::rpc`]).
    pub rpc_metrics: Arc<crate::rpc::RpcMetrics>,
    /// The streaming server (Exec/Attach/PortForward URLs), once installed.
    pub streaming: std::sync::OnceLock<Arc<dyn crate::streaming_hook::Streaming>>,
}

impl Daemon {
    /// criusd over the containerd at the config's address (connected lazily).
    pub async fn new(cfg: Config) -> Result<Arc<Daemon>> {
        let ctrd = crius_ctrd::Client::connect(
            &cfg.containerd_address,
            &cfg.containerd_namespace,
            &cfg.snapshotter,
        )?;
        let shared = Arc::new(Shared::new(cfg, Arc::new(ctrd)).await?);
        let containers = Arc::new(Containers::new(shared.clone()).await?);
        Ok(Arc::new(Daemon {
            pods: Arc::new(Pods::new(shared.clone(), containers.clone())),
            stats: Arc::new(Stats::new(shared.clone(), containers.clone())),
            containers,
            shared,
            rpc_metrics: Default::default(),
            streaming: std::sync::OnceLock::new(),
        }))
    }
}

impl Shared {
    /// The shared parts over `ctrd` (criusd's client, or a fake in unit tests); the sandboxer
    /// shares it.
    pub async fn new(cfg: Config, ctrd: Arc<dyn Containerd>) -> Result<Shared> {
        let images = Images {
            ctrd: ctrd.clone(),
            snapshotter: cfg.snapshotter.clone(),
            registry_config_dir: cfg.registry_config_dir.clone(),
            root_cache: Default::default(),
            snapshotter_root: cfg
                .containerd_root
                .join(format!("io.containerd.snapshotter.v1.{}", cfg.snapshotter)),
            pinned: match &cfg.pause {
                crius_sandboxer::PauseSource::Image(r) => crate::image::reference::parse_ref(r)
                    .map(|r| vec![crate::image::reference::record_name(&r)])
                    .unwrap_or_default(),
                _ => Vec::new(),
            },
            cache: Default::default(),
        };
        let sandboxer =
            Arc::new(Sandboxer::with_containerd(cfg.sandboxer_config(), Some(ctrd.clone())).await?);
        Ok(Shared {
            cfg,
            ctrd,
            images,
            sandboxer,
            shutdown: tokio_util::sync::CancellationToken::new(),
        })
    }
}
