//! crius's one way to containerd: typed verbs ([`Containers`], [`Tasks`], [`Snapshots`],
//! [`Images`], [`Content`], [`Service`]; all of them: [`Containerd`]) with the namespace, the
//! snapshotter and leases held by the client, and errors ([`Error`]) that keep the codes callers
//! act on apart.
//!
//! ```no_run
//! # async fn f() -> crius_ctrd::Result<()> {
//! use std::sync::Arc;
//! use crius_ctrd::{Client, Containerd, Tasks};
//! let ctrd: Arc<dyn Containerd> = Arc::new(Client::connect(
//!     "/run/containerd/containerd.sock".as_ref(), "k8s.io", "overlayfs")?);
//! if let Some(t) = ctrd.task("c1").await? {
//!     ctrd.kill("c1", None, 15, false).await?;
//!     let exit = ctrd.wait("c1", None).await?;
//!     println!("{} exited {}", t.id, exit.code);
//! }
//! # Ok(()) }
//! ```
//!
//! Users hold an `Arc<dyn Containerd>`: [`Client`] in production, [`fake::Fake`] (feature
//! `fake`) in unit tests.

mod api;
mod error;
mod real;
mod types;

#[cfg(any(test, feature = "fake"))]
pub mod fake;

pub use api::{Containerd, Containers, Content, Images, Service, Snapshots, Tasks};
pub use containerd_client::tonic::Code;
pub use error::{Error, Result};
pub use real::Client;
pub use types::*;
