//! The stats service: ContainerStats/ListContainerStats (`container`), PodSandboxStats/
//! ListPodSandboxStats (`pod`); ListPodSandboxMetrics lives in [`crate::metrics`].

use std::sync::Arc;

use crate::container::Containers;
use crate::daemon::Shared;

pub mod container;
pub mod cpu_samples;
pub mod io;
pub mod pod;

#[cfg(test)]
mod tests;

/// What the stats RPCs hold: the last CPU sample per container/pod, for usage_nano_cores.
pub struct Stats {
    pub shared: Arc<Shared>,
    pub containers: Arc<Containers>,
    pub cpu_samples: cpu_samples::CpuSamples,
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
