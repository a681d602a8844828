//! The daemon's shared state: config, containerd, images, the sandboxer, container
//! records and the CRI event stream. One `Arc<Daemon>` is behind both services.

use std::sync::Arc;

use crius_proto::runtime as cri;
use crius_sandboxer::{oom, Sandboxer};
use tokio::sync::{broadcast, Mutex};

use crate::config::Config;
use crate::container::record::Store;
use crate::ctrd::Ctrd;
use crate::error::Result;
use crate::image::Images;

pub struct Daemon {
    pub cfg: Config,
    pub ctrd: Ctrd,
    pub images: Images,
    pub sandboxer: Arc<Sandboxer>,
    pub store: Store,
    /// CRI container events (GetContainerEvents); lagging receivers lose old events.
    pub events: broadcast::Sender<cri::ContainerEventResponse>,
    /// Serialises CreateContainer's name check with the record write.
    pub create_lock: Mutex<()>,
    /// Clamp containers' oom_score_adj to `own_oom_score` (no CAP_SYS_RESOURCE).
    pub oom_clamp: bool,
    pub own_oom_score: i32,
    /// Write ends of containers' stdin fifos (config.stdin), kept open so the process never
    /// sees EOF between attaches; None once closed (stdin_once).
    pub stdin_pipes: Mutex<
        std::collections::HashMap<String, Arc<Mutex<Option<tokio::net::unix::pipe::Sender>>>>,
    >,
    /// Cancelled when criusd shuts down: ends never-ending streams (GetContainerEvents) so the
    /// server's graceful stop does not wait on them.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The streaming server (Exec/Attach/PortForward URLs), once installed.
    pub streaming: std::sync::OnceLock<Arc<dyn crate::streaming_hook::Streaming>>,
    /// What runc offers beyond the basics (recursive read-only mounts).
    pub runc: crate::runc_features::RuncFeatures,
    /// Last CPU sample per container/pod: (time ns, cpu ns), for usage_nano_cores.
    pub cpu_samples: std::sync::Mutex<std::collections::HashMap<String, (i64, u64)>>,
}

impl Daemon {
    pub async fn new(cfg: Config) -> Result<Arc<Daemon>> {
        let ctrd = Ctrd::connect(&cfg.containerd_address, &cfg.containerd_namespace)?;
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
        };
        let sandboxer = Arc::new(Sandboxer::new(cfg.sandboxer_config()).await?);
        let store = Store::open(&cfg.containers_dir()).await?;
        let (events, _) = broadcast::channel(1024);
        let has_cap = oom::has_cap_sys_resource();
        let oom_clamp = oom::should_clamp(cfg.oom_score, has_cap);
        let own_oom_score = oom::own_score();
        let runc = crate::runc_features::probe("runc").await;
        if oom_clamp {
            tracing::info!(
                own_score = own_oom_score,
                cap_sys_resource = has_cap,
                "containers' oom_score_adj below criusd's own will be clamped to it"
            );
        }
        Ok(Arc::new(Daemon {
            cfg,
            ctrd,
            images,
            sandboxer,
            store,
            events,
            create_lock: Mutex::new(()),
            oom_clamp,
            own_oom_score,
            runc,
            cpu_samples: Default::default(),
            streaming: std::sync::OnceLock::new(),
            shutdown: tokio_util::sync::CancellationToken::new(),
            stdin_pipes: Mutex::new(Default::default()),
        }))
    }

    /// The score a container's spec gets for kubelet's request, logged when clamped.
    pub fn oom_score(&self, container: &str, requested: i32) -> i32 {
        let eff = oom::effective_score(requested, self.own_oom_score, self.oom_clamp);
        if eff != requested {
            tracing::info!(
                container,
                requested,
                effective = eff,
                "oom_score_adj clamped: criusd lacks CAP_SYS_RESOURCE"
            );
        }
        eff
    }
}
