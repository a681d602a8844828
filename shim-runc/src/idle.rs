//! When a shim with nothing to hold may end by itself: no task and no live sandbox for a grace
//! period (its client went away, or never gave it a task), or SIGTERM/SIGINT while idle. A shim
//! holding tasks or a sandbox ignores both; containerd ends it through Shutdown.

use std::{future::Future, sync::Arc, time::Duration};

use containerd_shim::ExitSignal;
use tokio::time::Instant;

/// Env: seconds an idle shim waits before it exits (default 60).
pub const ENV_GRACE: &str = "CRIUS_SHIM_IDLE_EXIT";
const DEFAULT_GRACE: Duration = Duration::from_secs(60);

pub fn grace() -> Duration {
    std::env::var(ENV_GRACE)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(DEFAULT_GRACE, Duration::from_secs)
}

/// Signals `exit` once `idle()` has held for `grace`, checked every second or so, and on
/// SIGTERM/SIGINT when `idle()` holds at that moment.
pub fn watch<F, Fut>(exit: Arc<ExitSignal>, grace: Duration, idle: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("no signal handlers: an idle shim will not end on SIGTERM");
        return;
    };
    let tick = grace
        .min(Duration::from_secs(1))
        .max(Duration::from_millis(100));
    tokio::spawn(async move {
        let mut idle_since: Option<Instant> = None;
        loop {
            let sig = tokio::select! {
                _ = term.recv() => Some("SIGTERM"),
                _ = int.recv() => Some("SIGINT"),
                _ = tokio::time::sleep(tick) => None,
            };
            let now_idle = idle().await;
            match sig {
                Some(sig) if now_idle => {
                    tracing::info!(signal = sig, "idle shim exiting on signal");
                    exit.signal();
                    return;
                }
                Some(sig) => {
                    tracing::info!(signal = sig, "signal ignored: tasks or a sandbox remain");
                }
                None => {}
            }
            if !now_idle {
                idle_since = None;
                continue;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= grace {
                tracing::info!(
                    grace_secs = grace.as_secs(),
                    "shim idle for its grace period, exiting"
                );
                exit.signal();
                return;
            }
        }
    });
}
