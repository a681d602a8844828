//! ContainerStatus: records refreshed from containerd's tasks, and their CRI forms (which
//! ListContainers, PodSandboxStatus and the events use too).

use std::collections::HashMap;

use crius_ctrd::TaskStatus;
use crius_proto::runtime as cri;

use super::record::{ContainerRecord, Phase};
use super::task::TaskState;
use super::Containers;
use crate::error::Result;
use crate::image::is_digest_name;
use crate::util::time::exited_at;

impl Containers {
    /// ContainerStatus: the refreshed record in CRI form; `verbose` adds the record and
    /// the live pid (what `crictl inspect` / `criusctl debug` show).
    pub async fn status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<(Option<cri::ContainerStatus>, HashMap<String, String>)> {
        let rec = self.store.find(id).await?;
        let rec = self.refreshed(rec).await?;
        let mut info = HashMap::new();
        if verbose {
            if let Ok(mut v) = serde_json::to_value(&rec) {
                if rec.phase == Phase::Running {
                    let known = Some(rec.id.as_str())
                        .filter(|id| self.known.alive(id))
                        .and_then(|id| self.known.pid(id));
                    let pid = match known {
                        Some(pid) => Some(pid),
                        None => self.task_pid(&rec.id).await,
                    };
                    if let Some(pid) = pid {
                        v["pid"] = serde_json::json!(pid);
                    }
                }
                info.insert("info".to_string(), v.to_string());
            }
        }
        let status = self.cri_statuses(std::slice::from_ref(&rec)).await?.pop();
        Ok((status, info))
    }

    /// A record with its exit filled in if the task has ended since we last looked. A running
    /// container whose init still exists is answered from memory (its exit comes as an event,
    /// as containerd's CRI relies on); containerd is asked only when that process is gone or
    /// unknown (after a restart).
    pub async fn refreshed(&self, rec: ContainerRecord) -> Result<ContainerRecord> {
        let rec = match rec.phase {
            // Created here or not, a task may have been started behind criusd's back (a start
            // a crash cut off, `ctr tasks start`): containerd says.
            Phase::Created => self.promote_if_started(rec).await,
            _ => rec,
        };
        if rec.phase != Phase::Running || self.known.alive(&rec.id) {
            return Ok(rec);
        }
        let task = self.task_process(&rec.id).await?;
        match TaskState::of(task.as_ref()) {
            TaskState::Running => {
                if let Some(t) = &task {
                    self.known.running(&rec.id, t.pid);
                }
                Ok(rec)
            }
            TaskState::Exited { code, at_ns } => {
                self.record_exit(&rec.id, code, at_ns).await;
                Ok(self.store.get(&rec.id).await.unwrap_or(rec))
            }
            TaskState::Missing => {
                // The shim and its state are gone (host reboot, shim killed): say so.
                self.record_exit(&rec.id, 255, crate::util::time::now_ns())
                    .await;
                let _ = self
                    .store
                    .update(&rec.id, |r| {
                        r.message = "task is gone: its shim exited or was killed".into();
                        true
                    })
                    .await;
                Ok(self.store.get(&rec.id).await.unwrap_or(rec))
            }
        }
    }

    /// All records, as [`Containers::refreshed`] would give each: from memory while every
    /// running container's init exists and none is created, else checked against one
    /// Tasks.List.
    pub async fn all_refreshed(&self) -> Result<Vec<ContainerRecord>> {
        self.all_checked(false).await
    }

    /// All records checked against one Tasks.List whatever criusd knows (the periodic
    /// reconcile and start-up recovery: exits whose events were lost).
    pub async fn all_reconciled(&self) -> Result<Vec<ContainerRecord>> {
        self.all_checked(true).await
    }

    async fn all_checked(&self, always: bool) -> Result<Vec<ContainerRecord>> {
        let all = self.store.all().await;
        let known = |r: &ContainerRecord| match r.phase {
            Phase::Exited => true,
            Phase::Running => self.known.alive(&r.id),
            Phase::Created => false,
        };
        if all.iter().all(|r| r.phase == Phase::Exited) || (!always && all.iter().all(known)) {
            return Ok(all);
        }
        let tasks = self.shared.ctrd.tasks().await?;
        let by_id: HashMap<_, _> = tasks.into_iter().map(|t| (t.id.clone(), t)).collect();
        let mut out = Vec::with_capacity(all.len());
        for r in all {
            if r.phase == Phase::Running {
                match by_id.get(&r.id) {
                    Some(t @ crius_ctrd::TaskInfo { exit: None, .. }) => {
                        self.known.running(&r.id, t.pid);
                        out.push(r)
                    }
                    Some(crius_ctrd::TaskInfo {
                        exit: Some(exit), ..
                    }) => {
                        self.record_exit(&r.id, exit.code as i32, exited_at(exit))
                            .await;
                        out.push(self.store.get(&r.id).await.unwrap_or(r));
                    }
                    None => out.push(self.refreshed(r).await?),
                }
            } else if r.phase == Phase::Created
                && by_id
                    .get(&r.id)
                    .is_some_and(|t| t.status != TaskStatus::Created)
            {
                // A start nobody saw complete: the task says what is true.
                out.push(self.refreshed(r).await?);
            } else {
                out.push(r);
            }
        }
        Ok(out)
    }
}

pub fn state(r: &ContainerRecord) -> cri::ContainerState {
    match r.phase {
        Phase::Created => cri::ContainerState::ContainerCreated,
        Phase::Running => cri::ContainerState::ContainerRunning,
        Phase::Exited => cri::ContainerState::ContainerExited,
    }
}

fn image_spec(r: &ContainerRecord) -> cri::ImageSpec {
    cri::ImageSpec {
        image: r.image.clone(),
        ..Default::default()
    }
}

/// Every image's names by image id (one Images.List), for what ContainerStatus shows.
pub type ImageNames = HashMap<String, Vec<String>>;

impl Containers {
    pub async fn image_names(&self) -> Result<ImageNames> {
        Ok(self
            .shared
            .images
            .list()
            .await?
            .into_iter()
            .map(|v| (v.id, v.names))
            .collect())
    }

    /// ContainerStatus of each record, their images looked up once.
    pub async fn cri_statuses(
        &self,
        recs: &[ContainerRecord],
    ) -> Result<Vec<cri::ContainerStatus>> {
        let names = self.image_names().await?;
        Ok(recs.iter().map(|r| to_cri_status(r, &names)).collect())
    }
}

/// The image as containerd's ContainerStatus shows it: spec = its first tag, image_ref = its
/// first repo digest (kubelet's imageID), image_id = the config digest. An image removed since
/// (or never tagged) shows what the record holds.
fn status_image(r: &ContainerRecord, names: &ImageNames) -> (cri::ImageSpec, String) {
    let names = names
        .get(&r.image_id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let (digests, tags): (Vec<&String>, Vec<&String>) =
        names.iter().partition(|n| is_digest_name(n));
    let spec = match tags.first() {
        Some(t) => cri::ImageSpec {
            image: t.to_string(),
            ..Default::default()
        },
        None => image_spec(r),
    };
    let image_ref = digests
        .first()
        .map_or_else(|| r.image_id.clone(), |d| d.to_string());
    (spec, image_ref)
}

/// The stop signal as CRI names it (`SIGTERM`, `SIGRTMINPLUS3`); the record holds the
/// config's or the image's (`SIGQUIT`, `QUIT`, `3`, `SIGRTMIN+3`). SIGTERM when unknown, as
/// StopContainer then sends.
pub fn cri_signal(name: &str) -> cri::Signal {
    let n = name.trim().to_ascii_uppercase();
    let n = if n.starts_with("SIG") || n.parse::<i32>().is_ok() {
        n
    } else {
        format!("SIG{n}")
    };
    let n = n.replace('+', "PLUS").replace('-', "MINUS");
    if let Some(s) = cri::Signal::from_str_name(&n) {
        return s;
    }
    n.parse::<i32>()
        .ok()
        .and_then(|v| nix::sys::signal::Signal::try_from(v).ok())
        .and_then(|s| cri::Signal::from_str_name(s.as_str()))
        .unwrap_or(cri::Signal::Sigterm)
}

pub fn to_cri(r: &ContainerRecord) -> cri::Container {
    cri::Container {
        id: r.id.clone(),
        pod_sandbox_id: r.pod_id.clone(),
        metadata: Some(cri::ContainerMetadata {
            name: r.name.clone(),
            attempt: r.attempt,
        }),
        image: Some(image_spec(r)),
        image_ref: r.image_id.clone(),
        state: state(r) as i32,
        created_at: r.created_at_ns,
        labels: r.labels.clone().into_iter().collect(),
        annotations: r.annotations.clone().into_iter().collect(),
        image_id: r.image_id.clone(),
    }
}

pub fn to_cri_status(r: &ContainerRecord, images: &ImageNames) -> cri::ContainerStatus {
    let (image, image_ref) = status_image(r, images);
    cri::ContainerStatus {
        id: r.id.clone(),
        metadata: Some(cri::ContainerMetadata {
            name: r.name.clone(),
            attempt: r.attempt,
        }),
        state: state(r) as i32,
        created_at: r.created_at_ns,
        started_at: r.started_at_ns,
        finished_at: r.finished_at_ns,
        exit_code: r.exit_code,
        image: Some(image),
        image_ref,
        reason: r.reason.clone(),
        message: r.message.clone(),
        labels: r.labels.clone().into_iter().collect(),
        annotations: r.annotations.clone().into_iter().collect(),
        mounts: r
            .mounts
            .iter()
            .map(|m| cri::Mount {
                container_path: m.container_path.clone(),
                host_path: m.host_path.clone(),
                readonly: m.readonly,
                propagation: m.propagation,
                image: (!m.image.is_empty()).then(|| cri::ImageSpec {
                    image: m.image.clone(),
                    ..Default::default()
                }),
                image_sub_path: m.image_sub_path.clone(),
                ..Default::default()
            })
            .collect(),
        log_path: r.log_path.clone(),
        resources: r.resources.as_ref().map(|x| cri::ContainerResources {
            linux: Some(x.to_cri()),
            windows: None,
        }),
        image_id: r.image_id.clone(),
        user: Some(cri::ContainerUser {
            linux: Some(cri::LinuxContainerUser {
                uid: r.uid as i64,
                gid: r.gid as i64,
                supplemental_groups: r.additional_gids.iter().map(|g| *g as i64).collect(),
            }),
        }),
        stop_signal: cri_signal(&r.stop_signal) as i32,
    }
}

/// CRI ListContainers filter: id prefix, state, pod id prefix, labels (all must match).
pub fn matches(r: &ContainerRecord, f: &cri::ContainerFilter) -> bool {
    if !f.id.is_empty() && !r.id.starts_with(&f.id) {
        return false;
    }
    if let Some(s) = &f.state {
        if state(r) as i32 != s.state {
            return false;
        }
    }
    if !f.pod_sandbox_id.is_empty() && !r.pod_id.starts_with(&f.pod_sandbox_id) {
        return false;
    }
    f.label_selector
        .iter()
        .all(|(k, v)| r.labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::record::ContainerRecord;

    fn rec(id: &str, pod: &str, phase: Phase, label: (&str, &str)) -> ContainerRecord {
        let mut r: ContainerRecord = serde_json::from_value(serde_json::json!({
            "id": id, "pod_id": pod, "name": "n", "attempt": 0, "image": "i", "image_id": "sha256:x",
            "image_name": "x", "labels": {}, "annotations": {}, "log_path": "", "mounts": [],
            "runtime": "r", "phase": "created", "created_at_ns": 1, "started_at_ns": 0,
            "finished_at_ns": 0, "exit_code": 0, "reason": "", "message": ""
        }))
        .expect("record");
        r.phase = phase;
        r.labels.insert(label.0.into(), label.1.into());
        r
    }

    #[test]
    fn status_names_the_image_as_containerd() {
        let r = rec("abc1", "pod1", Phase::Running, ("app", "web"));
        let mut names = ImageNames::new();
        let st = to_cri_status(&r, &names);
        assert_eq!(
            (st.image_ref.as_str(), st.image_id.as_str()),
            ("sha256:x", "sha256:x")
        );
        assert_eq!(st.image.expect("image").image, "i");
        names.insert(
            "sha256:x".into(),
            vec!["r/x@sha256:m".into(), "r/x:1".into(), "r/x:2".into()],
        );
        let st = to_cri_status(&r, &names);
        assert_eq!(st.image_ref, "r/x@sha256:m");
        assert_eq!(st.image_id, "sha256:x");
        assert_eq!(st.image.expect("image").image, "r/x:1");
    }

    #[test]
    fn stop_signals_in_cri_names() {
        for (given, want) in [
            ("SIGTERM", cri::Signal::Sigterm),
            ("quit", cri::Signal::Sigquit),
            ("SIGUSR1", cri::Signal::Sigusr1),
            ("2", cri::Signal::Sigint),
            ("SIGRTMIN+3", cri::Signal::Sigrtminplus3),
            ("SIGRTMAX-1", cri::Signal::Sigrtmaxminus1),
            ("SIGRTMINPLUS1", cri::Signal::Sigrtminplus1),
            ("bogus", cri::Signal::Sigterm),
        ] {
            assert_eq!(cri_signal(given), want, "{given}");
        }
    }

    #[test]
    fn filters() {
        let a = rec("abc1", "pod1", Phase::Running, ("app", "web"));
        let f = |id: &str, pod: &str, st: Option<i32>, l: &[(&str, &str)]| cri::ContainerFilter {
            id: id.into(),
            pod_sandbox_id: pod.into(),
            state: st.map(|state| cri::ContainerStateValue { state }),
            label_selector: l
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert!(matches(&a, &f("", "", None, &[])));
        assert!(matches(&a, &f("ab", "pod", Some(1), &[("app", "web")])));
        assert!(!matches(&a, &f("x", "", None, &[])));
        assert!(!matches(&a, &f("", "", Some(2), &[])));
        assert!(!matches(&a, &f("", "pod2", None, &[])));
        assert!(!matches(&a, &f("", "", None, &[("app", "db")])));
    }
}
