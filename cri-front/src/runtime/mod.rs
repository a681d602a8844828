//! CRI RuntimeService.

pub mod service;
pub mod update;
