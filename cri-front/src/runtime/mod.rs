//! CRI RuntimeService: `service` is the dispatch table (each RPC handed to the service and
//! module named after it: `pod::run`, `container::start`, `stats::pod` …); the node-level
//! RPCs live here: `status` (Status), `config` (RuntimeConfig, UpdateRuntimeConfig);
//! `stream_target` checks what Exec/Attach/PortForward name before a URL is issued.

pub mod config;
pub mod service;
pub mod status;
pub mod stream_target;
