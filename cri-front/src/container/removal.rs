//! The part of RemoveContainer that runs after the reply: the task (`runc delete`), the
//! containerd container, the snapshot, image volumes, io dir and, last, the record. Nothing the
//! caller sees waits on them: before the reply the container's processes are dead and its
//! record is marked `removing` on disk (hidden from every RPC, its name free).
//!
//! The removal holds the container's guard in state Removing until it is done, so it is the
//! state machine's last transition like any other. One that fails (containerd down) leaves the
//! record marked and is tried again by the periodic reconcile; one a crash cut off is finished
//! at criusd's next start ([`Containers::finish_removals`]). RemovePodSandbox and shutdown wait
//! for the removals in flight ([`Containers::removals_done`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::record::Phase;
use super::state::{Guard, State};
use super::Containers;
use crate::error::Result;

/// Removals in flight: container id → (pod id, a receiver whose sender goes when it ends).
#[derive(Default)]
pub struct Removals(Mutex<HashMap<String, (String, watch::Receiver<()>)>>);

impl Removals {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, watch::Receiver<()>)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn in_flight(&self, id: &str) -> bool {
        self.map().contains_key(id)
    }
}

impl Containers {
    /// Finish the removal of `id` (marked removing, `guard` held in state Removing) in the
    /// background.
    pub(crate) fn spawn_removal(self: &Arc<Self>, mut guard: Guard, id: &str, pod_id: &str) {
        *guard = State::Removing;
        let (done, rx) = watch::channel(());
        self.removals
            .map()
            .insert(id.to_string(), (pod_id.to_string(), rx));
        let (me, id, pod) = (self.clone(), id.to_string(), pod_id.to_string());
        tokio::spawn(async move {
            if let Err(e) = me.finish_removal(&id).await {
                tracing::warn!(pod = %pod, container = %id, error = %e, "removal did not finish; it is tried again");
            }
            me.removals.map().remove(&id);
            drop(guard);
            drop(done);
        });
    }

    /// Wait (at most `limit`) for the removals in flight of `pod`'s containers (None: all).
    pub async fn removals_done(&self, pod: Option<&str>, limit: Duration) {
        let waits: Vec<watch::Receiver<()>> = self
            .removals
            .map()
            .values()
            .filter(|(p, _)| pod.is_none_or(|pod| p == pod))
            .map(|(_, rx)| rx.clone())
            .collect();
        let all = futures::future::join_all(waits.into_iter().map(|mut rx| async move {
            // Err: the sender is gone, the removal over.
            while rx.changed().await.is_ok() {}
        }));
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!(pod = ?pod, ?limit, "container removals still running");
        }
    }

    /// Everything of container `id` but what went before the reply. Idempotent: each step
    /// is, so a removal cut off anywhere can be run again from the start.
    pub(crate) async fn finish_removal(&self, id: &str) -> Result<()> {
        self.delete_task(id).await;
        if self
            .store
            .get(id)
            .await
            .is_some_and(|r| r.phase == Phase::Created)
        {
            // Never started (a start cut off before its task existed): its logger waits on
            // fifos no task will ever open.
            self.kill_logger(id);
        }
        self.shared.ctrd.delete_container(id).await?;
        self.remove_snapshot(id).await;
        self.drop_image_volumes(id).await;
        self.stdin_pipes.lock().await.remove(id);
        let _ = tokio::fs::remove_dir_all(self.io_dir(id)).await;
        self.store.remove(id).await?;
        self.transitions.forget(id);
        tracing::debug!(container = %id, "container removed");
        Ok(())
    }

    /// Finish the removals no one is running: at start-up those a stopped criusd left, later
    /// those that failed (`pod`: only that pod's). The first error, after trying them all.
    pub async fn finish_removals(&self, pod: Option<&str>) -> Result<usize> {
        let left: Vec<_> = self
            .store
            .removing()
            .await
            .into_iter()
            .filter(|r| pod.is_none_or(|p| r.pod_id == p))
            .collect();
        let mut first = None;
        let mut done = 0;
        for r in &left {
            // In flight: its own task finishes it. Otherwise take the guard, so that a
            // retry and a recovery never run one removal twice at once.
            let Some(mut guard) = (!self.removals.in_flight(&r.id))
                .then(|| self.transitions.try_lock(&r.id))
                .flatten()
            else {
                continue;
            };
            if !self.store.get(&r.id).await.is_some_and(|r| r.removing) {
                continue; // finished since the list was read
            }
            *guard = State::Removing;
            tracing::info!(container = %r.id, pod = %r.pod_id, "finishing an answered RemoveContainer");
            match self.finish_removal(&r.id).await {
                Ok(()) => done += 1,
                Err(e) => {
                    tracing::warn!(container = %r.id, pod = %r.pod_id, error = %e, "removal failed; it is tried again");
                    first.get_or_insert(e);
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }
}
