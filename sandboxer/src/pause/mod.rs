//! The pause container: its read-only rootfs and its OCI spec.

pub mod rootfs;
pub mod spec;
