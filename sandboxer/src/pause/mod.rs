//! The pause container: its read-only rootfs and its OCI spec.

pub mod image;
pub mod rootfs;
pub mod spec;
