//! GetContainerEvents: CRI container events, and the watcher that turns containerd's
//! task exit/OOM events into recorded exits.

use std::sync::Arc;
use std::time::Duration;

use crius_ctrd::TaskEvent;
use crius_proto::runtime as cri;
use futures::StreamExt;

use super::record::ContainerRecord;
use super::status::to_cri_status;
use super::Containers;
use crate::util::time::{exited_at, now_ns};

impl Containers {
    /// GetContainerEvents: every event from now on, until the client leaves or criusd stops.
    pub fn subscribe(
        &self,
    ) -> impl futures::Stream<Item = cri::ContainerEventResponse> + Send + 'static {
        let rx = self.events.subscribe();
        let stop = self.shared.shutdown.clone();
        futures::stream::unfold((rx, stop), |(mut rx, stop)| async move {
            loop {
                let got = tokio::select! {
                    _ = stop.cancelled() => return None,
                    got = rx.recv() => got,
                };
                match got {
                    Ok(ev) => return Some((ev, (rx, stop))),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "container events receiver lagged");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// Publish one container event. Like containerd's, it carries the pod's status and the
    /// statuses of all the pod's containers: kubelet's evented PLEG rebuilds the whole pod
    /// from one event, so the pod's other containers must be in it.
    pub(crate) async fn emit(&self, rec: &ContainerRecord, kind: cri::ContainerEventType) {
        self.publish(&rec.id, &rec.pod_id, kind).await;
    }

    /// Publish a pod sandbox's event (created, started, stopped, deleted): containerd sends
    /// them with the pod's id as container id.
    pub(crate) async fn emit_pod(&self, pod_id: &str, kind: cri::ContainerEventType) {
        self.publish(pod_id, pod_id, kind).await;
    }

    async fn publish(&self, id: &str, pod_id: &str, kind: cri::ContainerEventType) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let pod = self
            .shared
            .sandboxer
            .status(pod_id)
            .await
            .ok()
            .map(|p| crate::pod::to_cri_status(&p));
        let mut recs: Vec<ContainerRecord> = self
            .store
            .all()
            .await
            .into_iter()
            .filter(|r| r.pod_id == pod_id)
            .collect();
        recs.sort_by_key(|r| r.created_at_ns);
        let statuses = match self.cri_statuses(&recs).await {
            Ok(s) => s,
            Err(e) => {
                // Still an event: kubelet relists on its own schedule.
                tracing::warn!(pod = %pod_id, container = %id, error = %e, "container event: image names unavailable");
                recs.iter()
                    .map(|r| to_cri_status(r, &Default::default()))
                    .collect()
            }
        };
        tracing::debug!(pod = %pod_id, container = %id, event = kind.as_str_name(), "container event");
        let _ = self.events.send(cri::ContainerEventResponse {
            container_id: id.to_string(),
            container_event_type: kind as i32,
            created_at: now_ns(),
            pod_sandbox_status: pod,
            containers_statuses: statuses,
        });
    }
}

/// How often running containers are checked against containerd besides the events.
const RECONCILE_EVERY: Duration = Duration::from_secs(5);

/// Follow containerd's task events for criusd's namespace until the process ends.
/// On every (re)subscription the records are reconciled, so exits that happened
/// while criusd or the subscription was down are still recorded.
pub async fn watch(d: Arc<Containers>) {
    // A safety net for exit events lost on the way (a shim that could not publish while
    // containerd restarted): look at every running container's task now and then.
    {
        let d = d.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RECONCILE_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = d.all_reconciled().await {
                    tracing::debug!(error = %e, "periodic container reconcile failed");
                }
                // Removals that failed (containerd was down) are tried again.
                if let Err(e) = d.finish_removals(None).await {
                    tracing::debug!(error = %e, "retrying container removals failed");
                }
            }
        });
    }
    loop {
        match d.shared.ctrd.subscribe_task_events().await {
            Ok(mut stream) => {
                // Image changes reach the cache from now on; what came before went unseen.
                d.shared.images.cache.set_live(true);
                if let Err(e) = d.all_reconciled().await {
                    tracing::warn!(error = %e, "reconciling containers after subscribe failed");
                }
                while let Some(ev) = stream.next().await {
                    match ev {
                        Ok(ev) => handle(&d, ev).await,
                        Err(e) => {
                            tracing::warn!(error = %e, "containerd event stream broke");
                            break;
                        }
                    }
                }
                d.shared.images.cache.set_live(false);
            }
            Err(e) => {
                tracing::debug!(error = %e, "containerd events subscribe failed; retrying")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub(crate) async fn handle(d: &Containers, ev: TaskEvent) {
    match ev {
        TaskEvent::Exit {
            container_id,
            id,
            exit,
        } => {
            // Exec exits carry the exec id; only the init process ends the container.
            if id != container_id {
                return;
            }
            if d.store.get(&container_id).await.is_some() {
                d.record_exit(&container_id, exit.code as i32, exited_at(&exit))
                    .await;
            } else if d.shared.sandboxer.status(&container_id).await.is_ok() {
                // A pod's pause (its task has the pod's id) ended: the pod stopped, by
                // StopPodSandbox or not; containerd sends this from its sandbox exit too.
                tracing::info!(pod = %container_id, exit_code = exit.code, "pod sandbox's pause exited");
                d.emit_pod(
                    &container_id,
                    cri::ContainerEventType::ContainerStoppedEvent,
                )
                .await;
            }
        }
        TaskEvent::ImagesChanged => d.shared.images.cache.invalidate(),
        TaskEvent::Oom { container_id } => {
            if d.store.get(&container_id).await.is_some() {
                tracing::info!(container = %container_id, "container OOM event");
                let _ = d
                    .store
                    .update(&container_id, |r| {
                        r.oom_killed = true;
                        if r.phase == super::record::Phase::Exited && r.reason != "OOMKilled" {
                            r.reason = "OOMKilled".into();
                        }
                        true
                    })
                    .await;
            }
        }
    }
}
