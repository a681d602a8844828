//! CRI RuntimeService.

pub mod service;
pub mod stream_target;
pub mod update;
