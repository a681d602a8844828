//! The stats service: ContainerStats/ListContainerStats (`container`), PodSandboxStats/
//! ListPodSandboxStats (`pod`); ListPodSandboxMetrics lives in [`crate::metrics`]. What they
//! read: a cgroup's files (`cgroup`, its block I/O in `io`), a netns' interface counters
//! (`net_dev`); `cpu_samples` keeps the previous CPU figure for rates.

use std::sync::Arc;

use crius_proto::runtime as cri;

use crate::container::Containers;
use crate::daemon::Shared;

pub mod cgroup;
pub mod container;
pub mod cpu_samples;
pub mod io;
pub mod net_dev;
pub mod pod;

#[cfg(test)]
mod tests;

/// What the stats RPCs hold: the last CPU sample per container/pod, for usage_nano_cores.
pub struct Stats {
    pub shared: Arc<Shared>,
    pub containers: Arc<Containers>,
    pub cpu_samples: cpu_samples::CpuSamples,
}

/// A figure CRI's way (an optional wrapped u64).
fn u(v: Option<u64>) -> Option<cri::UInt64Value> {
    v.map(|value| cri::UInt64Value { value })
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
