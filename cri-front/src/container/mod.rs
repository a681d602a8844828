//! Containers: records, spec building, lifecycle, exec, events.

pub mod config_volumes;
pub mod create;
pub mod events;
pub mod exec;
pub mod image_volume;
pub mod leftovers;
pub mod lifecycle;
pub mod logger;
pub mod merge;
pub mod node_cgroups;
pub mod propagation;
pub mod record;
pub mod recover;
pub mod seccomp;
pub mod spec;
pub mod start_truth;
pub mod stats;
pub mod status;
pub mod stream_rt;
pub mod user;
pub mod view;
