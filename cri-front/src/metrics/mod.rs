//! CRI-served metrics (ListMetricDescriptors, ListPodSandboxMetrics): cAdvisor's metric
//! names, help texts and labels, so kubelet with `PodAndContainerStatsFromCRI` serves the
//! same `/metrics/cadvisor` it would get from cAdvisor.
//!
//! - [`descriptors`]: the table of metrics and their label keys.
//! - [`build`]: samples → [`crius_proto::runtime::Metric`]s (pure, unit-tested).
//! - [`collect`]: reads pods, containers, cgroups and netns counters through the stats code.

pub mod build;
pub mod collect;
pub mod descriptors;
