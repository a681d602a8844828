//! The stats service: ContainerStats/ListContainerStats (`container`), PodSandboxStats/
//! ListPodSandboxStats (`pod`); ListPodSandboxMetrics lives in [`crate::metrics`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::container::Containers;
use crate::daemon::Shared;

pub mod container;
pub mod pod;

/// What the stats RPCs hold: the last CPU sample per container/pod, for usage_nano_cores.
pub struct Stats {
    pub shared: Arc<Shared>,
    pub containers: Arc<Containers>,
    /// (time ns, cpu ns) by container id or `pod:<id>`.
    pub cpu_samples: Mutex<HashMap<String, (i64, u64)>>,
}

impl Stats {
    pub fn new(shared: Arc<Shared>, containers: Arc<Containers>) -> Stats {
        Stats {
            shared,
            containers,
            cpu_samples: Default::default(),
        }
    }
}
