//! The sandboxer's compositions of crius-ctrd's verbs (a pause's create + start, a bounded wait)
//! and the mapping of containerd's errors onto the sandboxer's kinds.

use std::sync::Arc;
use std::time::Duration;

use crius_ctrd::{Containerd, Mount, NewTask};

use crate::error::{Error, ErrorKind};

/// containerd, as the sandboxer reaches it.
pub type Ctrd = Arc<dyn Containerd>;

/// Create (with `rootfs` mounts, if any) and start the task; returns its pid.
pub(crate) async fn start_task(
    ctrd: &dyn Containerd,
    id: &str,
    rootfs: Vec<Mount>,
) -> crius_ctrd::Result<u32> {
    ctrd.create_task(NewTask {
        container_id: id.to_string(),
        rootfs,
        ..Default::default()
    })
    .await?;
    ctrd.start(id, None).await
}

/// Wait up to `timeout` for the task to exit. Ok(true) when it did (or has no task).
pub(crate) async fn wait(
    ctrd: &dyn Containerd,
    id: &str,
    timeout: Duration,
) -> crius_ctrd::Result<bool> {
    match tokio::time::timeout(timeout, ctrd.wait(id, None)).await {
        Err(_) => Ok(false),
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) if e.is_not_found() => Ok(true),
        Ok(Err(e)) => Err(e),
    }
}

/// The sandboxer's error for containerd's failure `e` at `step`.
pub(crate) fn ctrd_err(step: &str, e: crius_ctrd::Error) -> Error {
    use crius_ctrd::Code;
    let kind = match e.code() {
        Code::Unavailable | Code::DeadlineExceeded => ErrorKind::Unavailable,
        // containerd's (and the shim's) own judgement carries through: e.g. a sysctl value the
        // kernel refuses when the pause starts.
        Code::InvalidArgument => ErrorKind::InvalidArgument,
        Code::FailedPrecondition => ErrorKind::FailedPrecondition,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, step, format!("containerd: {}", e.message()))
}
