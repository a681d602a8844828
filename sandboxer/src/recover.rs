//! `recover()`: reconcile pod records on disk with containerd, netns pins,
//! shm mounts and the CNI cache after a (re)start or crash.

use std::collections::HashSet;

use crate::error::Result;
use crate::sandboxer::Sandboxer;
use crate::status::RecoverReport;
use crate::store::{self, Phase, PodRecord};
use crate::sys;

impl Sandboxer {
    /// Reconcile disk, containerd and netns mounts after a (re)start:
    /// running pods whose pause died become NotReady; pods caught mid-run or
    /// mid-remove are torn down; leftovers with no record are removed.
    pub async fn recover(&self) -> Result<RecoverReport> {
        let mut report = RecoverReport::default();
        let ids = store::ids(self.state_dir())
            .map_err(|e| crate::sandboxer::io_step("read state dir", e))?;
        let tasks = match self.ctrd.tasks().await {
            Ok(t) => Some(
                t.into_iter()
                    .map(|t| (t.id.clone(), t))
                    .collect::<std::collections::HashMap<_, _>>(),
            ),
            Err(s) => {
                report
                    .errors
                    .push(format!("containerd tasks: {}", s.message()));
                None
            }
        };
        for id in &ids {
            let lock = self.pod_lock(id);
            let _held = lock.lock().await;
            let rec = match store::load(self.state_dir(), id) {
                Ok(r) => r,
                Err(e) => {
                    // A crash before the first record write: nothing but the id is known.
                    tracing::warn!(pod = %id, error = %e, "unreadable pod record: cleaning up");
                    self.clean(&minimal_record(self, id), &mut report).await;
                    continue;
                }
            };
            match rec.phase {
                Phase::Creating | Phase::Removing => self.clean(&rec, &mut report).await,
                Phase::Stopped => {
                    self.remember(rec);
                    report.not_ready.push(id.clone());
                }
                Phase::Running => {
                    let mut rec = rec;
                    let alive = match tasks.as_ref().and_then(|t| t.get(id)) {
                        Some(t) if t.is_live() => {
                            if rec.pause_pid != Some(t.pid) {
                                rec.pause_pid = Some(t.pid);
                                rec.pause_start_time = sys::proc_start_time(t.pid);
                                let _ = self.save(&rec);
                            }
                            true
                        }
                        Some(_) => false,
                        // containerd unreachable: judge by the process itself.
                        None if tasks.is_none() => Self::pause_alive(&rec),
                        None => false,
                    };
                    if alive {
                        report.ready.push(id.clone());
                    } else {
                        tracing::info!(pod = %id, "pause is gone: pod NotReady");
                        report.not_ready.push(id.clone());
                    }
                    self.remember(rec);
                }
            }
        }
        self.sweep_orphans(&ids, &mut report).await;
        tracing::info!(
            ready = report.ready.len(),
            not_ready = report.not_ready.len(),
            cleaned = report.cleaned.len(),
            orphans = report.orphans_removed.len(),
            errors = report.errors.len(),
            "sandboxer recovered"
        );
        Ok(report)
    }

    fn remember(&self, rec: PodRecord) {
        self.pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rec.id.clone(), rec);
    }

    async fn clean(&self, rec: &PodRecord, report: &mut RecoverReport) {
        let errs = self.teardown(rec).await;
        if errs.is_empty() {
            self.forget(&rec.id);
            report.cleaned.push(rec.id.clone());
        } else {
            self.remember(rec.clone());
            report
                .errors
                .extend(errs.into_iter().map(|e| format!("pod {}: {e}", rec.id)));
        }
    }

    /// Netns pins, shm dirs, CNI cache entries and pause containers that
    /// belong to no pod record.
    async fn sweep_orphans(&self, known: &[String], report: &mut RecoverReport) {
        let known: HashSet<&str> = known.iter().map(String::as_str).collect();
        let mut orphans: HashSet<String> = HashSet::new();
        let names = |dir: std::path::PathBuf| -> Vec<String> {
            std::fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        orphans.extend(names(self.cfg.run_dir.join("netns")));
        orphans.extend(names(self.cfg.run_dir.join("sandboxes")));
        orphans.extend(self.cni.cached_ids());
        match self
            .ctrd
            .containers(&[(crate::LABEL_KIND, "sandbox")])
            .await
        {
            Ok(list) => orphans.extend(list.into_iter().map(|c| c.id)),
            Err(s) => report
                .errors
                .push(format!("containerd containers: {}", s.message())),
        }
        for id in orphans {
            if known.contains(id.as_str()) || id.starts_with('.') {
                continue;
            }
            tracing::info!(pod = %id, "removing leftovers of an unknown pod");
            let errs = self.teardown(&minimal_record(self, &id)).await;
            if errs.is_empty() {
                report.orphans_removed.push(id);
            } else {
                report
                    .errors
                    .extend(errs.into_iter().map(|e| format!("orphan {id}: {e}")));
            }
        }
    }
}

/// A record with only the id: teardown derives every path from it.
fn minimal_record(sb: &Sandboxer, id: &str) -> PodRecord {
    PodRecord {
        version: store::RECORD_VERSION,
        id: id.to_string(),
        config: Default::default(),
        phase: Phase::Creating,
        created_at_ns: 0,
        netns_path: Some(sb.netns_path(id)),
        ips: Vec::new(),
        pause_pid: None,
        pause_start_time: None,
        cgroup_parent: String::new(),
        hostname: String::new(),
        shm_path: Some(sb.sandbox_run_dir(id).join("shm")),
        timings: Default::default(),
    }
}
