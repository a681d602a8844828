//! Taking a pod apart, step by step, each step idempotent: used by stop,
//! remove, a failed run and recover.

use std::time::Duration;

use crate::ctrd::{self, ctrd_err};
use crate::error::{Error, ErrorKind, Result};
use crate::sandboxer::Sandboxer;
use crate::store::{self, PodRecord};
use crate::{netns, sys};

const SIGTERM: u32 = 15;
const SIGKILL: u32 = 9;
/// How long a SIGKILLed task may take to be reported gone.
const KILL_WAIT: Duration = Duration::from_secs(10);

impl Sandboxer {
    /// SIGKILL every task of the pod's containers (criusd labels them
    /// `io.crius.sandbox-id=<id>`) and wait for them to exit. Their tasks and
    /// containers stay: criusd reads their exit status.
    pub(crate) async fn kill_pod_containers(&self, id: &str) -> Result<()> {
        for c in self.pod_containers(id).await? {
            self.ctrd
                .kill(&c, None, SIGKILL, true)
                .await
                .map_err(|s| ctrd_err("kill pod container", s))?;
            if !ctrd::wait(&*self.ctrd, &c, KILL_WAIT)
                .await
                .map_err(|s| ctrd_err("wait pod container", s))?
            {
                return Err(Error::new(
                    ErrorKind::Internal,
                    "kill pod container",
                    format!("container {c} did not exit after SIGKILL"),
                ));
            }
        }
        Ok(())
    }

    /// Ids of the pod's containers (not the pause).
    async fn pod_containers(&self, id: &str) -> Result<Vec<String>> {
        let list = self
            .ctrd
            .containers(&[(crate::LABEL_SANDBOX_ID, id)])
            .await
            .map_err(|s| ctrd_err("list pod containers", s))?;
        Ok(list
            .into_iter()
            .filter(|c| {
                c.id != id && c.labels.get(crate::LABEL_KIND).map(String::as_str) != Some("sandbox")
            })
            .map(|c| c.id)
            .collect())
    }

    /// SIGTERM the pause, SIGKILL after the grace period, then delete its task.
    /// Ok(false) when the pause had no task.
    pub(crate) async fn stop_pause(&self, id: &str) -> Result<bool> {
        let task = self
            .ctrd
            .task(id)
            .await
            .map_err(|s| ctrd_err("pause state", s))?;
        let had_task = task.is_some();
        if let Some(task) = task {
            if task.is_live() {
                // A task never started has no pause to ask nicely.
                let exited = !task.created_only() && self.term_and_wait(id).await?;
                if !exited {
                    if !task.created_only() {
                        tracing::info!(pod = %id, "pause ignored SIGTERM; SIGKILL");
                    }
                    self.ctrd
                        .kill(id, None, SIGKILL, true)
                        .await
                        .map_err(|s| ctrd_err("SIGKILL pause", s))?;
                    if !ctrd::wait(&*self.ctrd, id, KILL_WAIT)
                        .await
                        .map_err(|s| ctrd_err("wait pause", s))?
                    {
                        return Err(Error::new(
                            ErrorKind::Internal,
                            "stop pause",
                            "pause did not exit after SIGKILL",
                        ));
                    }
                }
            }
            self.ctrd
                .delete_task(id)
                .await
                .map_err(|s| ctrd_err("delete pause task", s))?;
        }
        Ok(had_task)
    }

    /// SIGTERM the pause and wait up to the grace period, re-sending SIGTERM
    /// after 50 ms, then at doubling intervals up to 1 s: a signal that lands
    /// before the pause has blocked it
    /// is dropped by the kernel (it is PID 1 of its namespace with no handler
    /// yet), which a pod stopped right after start would otherwise pay with
    /// the whole grace period.
    async fn term_and_wait(&self, id: &str) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + self.cfg.stop_grace;
        let mut every = Duration::from_millis(50);
        loop {
            self.ctrd
                .kill(id, None, SIGTERM, false)
                .await
                .map_err(|s| ctrd_err("SIGTERM pause", s))?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let slice = left.min(every);
            every = (every * 2).min(Duration::from_secs(1));
            if ctrd::wait(&*self.ctrd, id, slice)
                .await
                .map_err(|s| ctrd_err("wait pause", s))?
            {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// A CNI plugin started for this pod by a process that died (kill -9
    /// mid-run) runs on unsupervised; a DEL racing it could miss what it makes
    /// after. Let such plugins (found by `CNI_CONTAINERID=<id>` in their
    /// environment) finish first: killing one mid-ADD can leave host-local's
    /// lease file created but not yet written with the owner's id, and DEL
    /// (which releases by id) never frees that IP. Only a plugin still running
    /// after the CNI timeout is killed.
    async fn finish_stray_cni_plugins(&self, id: &str) {
        let entry = format!("CNI_CONTAINERID={id}");
        let deadline = tokio::time::Instant::now() + self.cfg.cni_timeout;
        let mut waited = false;
        loop {
            let pids = sys::pids_with_env(&entry);
            if pids.is_empty() {
                if waited {
                    tracing::info!(pod = %id, "CNI plugins left running by a crash have finished");
                }
                return;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline + Duration::from_secs(5) {
                tracing::warn!(pod = %id, pids = ?pids, "CNI plugins survive SIGKILL; going on with DEL");
                return;
            }
            if now >= deadline {
                for pid in pids {
                    tracing::warn!(pod = %id, pid, "killing a CNI plugin left running by a crash (past the CNI timeout)");
                    sys::kill_pid(pid);
                }
            } else if !waited {
                tracing::info!(pod = %id, pids = ?pids, "waiting for CNI plugins left running by a crash");
                waited = true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A crash while containerd was starting the pause's shim (the client's
    /// Tasks.Create cancelled) can leave that shim running with no task, which
    /// containerd then never stops. Its command line names our containerd, our
    /// namespace and the pod id; SIGKILL it (it holds nothing: no task).
    /// If the shim had begun the pause (cgroup made, maybe a process in it),
    /// nothing would remove that either: empty the pause's cgroup and remove it.
    async fn reap_orphan_shim(&self, rec: &PodRecord) {
        let id = rec.id.as_str();
        let address = self.cfg.containerd_address.to_string_lossy();
        let mut reaped = Vec::new();
        let mut cleaners = Vec::new();
        for pid in sys::pids_with_args(&[
            ("-namespace", self.cfg.containerd_namespace.as_str()),
            ("-id", id),
            ("-address", address.as_ref()),
        ]) {
            if sys::last_arg_is(pid, "delete") {
                // containerd cleaning up after the pod's dead shim (`shim delete`): killing it
                // would leave the shim's bundle dir and socket behind. Let it finish.
                cleaners.push(pid);
                continue;
            }
            tracing::warn!(pod = %id, pid, "killing a shim left without a task by a crash mid-start");
            sys::kill_pid(pid);
            reaped.push(pid);
        }
        if !cleaners.is_empty() {
            tracing::info!(pod = %id, pids = ?cleaners, "waiting for containerd's cleanup of the pod's dead shim");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while cleaners.iter().any(|p| sys::proc_start_time(*p).is_some())
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if reaped.is_empty() {
            return;
        }
        let Ok(cgroup) = self.pause_cgroups_path(rec) else {
            return;
        };
        // A systemd scope's dir: once emptied, systemd stops the scope and removes it.
        let cgroup = crate::cgroup::fs_path(&cgroup);
        let _ = tokio::task::spawn_blocking(move || {
            // Only once the shim is gone can nothing re-create the cgroup.
            for _ in 0..100 {
                if reaped.iter().all(|p| sys::proc_start_time(*p).is_none()) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            sys::kill_and_remove_cgroup(&cgroup);
        })
        .await;
    }

    /// A shim killed while containerd started it (mid RunPodSandbox) leaves its socket in
    /// containerd's socket dir, which nothing else removes. Remove it once nothing listens there.
    fn remove_dead_shim_socket(&self, id: &str) {
        let path = shim_socket(
            &self.cfg.containerd_address.to_string_lossy(),
            &self.cfg.containerd_namespace,
            id,
        );
        if !path.exists() || std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(pod = %id, socket = %path.display(), "removed the dead shim's socket")
            }
            Err(e) => {
                tracing::warn!(pod = %id, socket = %path.display(), error = %e, "removing the dead shim's socket failed")
            }
        }
    }

    /// CNI DEL of the pod's attachment. One that can never succeed (the plugin cannot even be
    /// started with this pod's arguments, the cached config is unreadable) is skipped with a
    /// warning and the attachment forgotten, so it cannot keep the pod from being stopped and
    /// removed forever; any other failure is returned, to be retried.
    pub(crate) async fn cni_del(&self, id: &str, netns: Option<&std::path::Path>) -> Result<()> {
        match self.cni.del(id, netns).await {
            Err(e) if e.is_permanent() => {
                tracing::warn!(pod = %id, error = %e, "CNI DEL can never succeed for this pod: skipped, its cached attachment dropped (whatever the plugins made stays)");
                self.cni
                    .forget(id)
                    .map_err(|e| crate::sandboxer::cni_err("CNI forget", e))
            }
            r => r.map_err(|e| crate::sandboxer::cni_err("CNI DEL", e)),
        }
    }

    /// Remove everything of the pod, continuing past failures; returns them.
    pub(crate) async fn teardown(&self, rec: &PodRecord) -> Vec<String> {
        let id = rec.id.as_str();
        let mut errs = Vec::new();
        let note = |errs: &mut Vec<String>, r: Result<()>| {
            if let Err(e) = r {
                errs.push(e.to_string());
            }
        };
        // The pod's containers: kill, delete task, delete container.
        match self.pod_containers(id).await {
            Ok(list) => {
                for c in list {
                    let r = async {
                        self.ctrd
                            .kill(&c, None, SIGKILL, true)
                            .await
                            .map_err(|s| ctrd_err("kill pod container", s))?;
                        ctrd::wait(&*self.ctrd, &c, KILL_WAIT)
                            .await
                            .map_err(|s| ctrd_err("wait pod container", s))?;
                        self.ctrd
                            .delete_task(&c)
                            .await
                            .map_err(|s| ctrd_err("delete pod container task", s))?;
                        self.ctrd
                            .delete_container(&c)
                            .await
                            .map_err(|s| ctrd_err("delete pod container", s))
                    }
                    .await;
                    note(&mut errs, r);
                }
            }
            Err(e) => note(&mut errs, Err(e)),
        }
        match self.stop_pause(id).await {
            Ok(true) => {}
            Ok(false) => {
                self.reap_orphan_shim(rec).await;
                self.remove_dead_shim_socket(id);
            }
            Err(e) => note(&mut errs, Err(e)),
        }
        note(
            &mut errs,
            self.ctrd
                .delete_container(id)
                .await
                .map_err(|s| ctrd_err("delete pause container", s)),
        );
        if matches!(self.cfg.pause, crate::config::PauseSource::Image(_)) {
            note(
                &mut errs,
                self.ctrd
                    .remove_snapshot(&Self::pause_snapshot_key(id))
                    .await
                    .map_err(|s| ctrd_err("remove pause snapshot", s)),
            );
        }
        if rec.phase == crate::store::Phase::Creating {
            self.finish_stray_cni_plugins(id).await;
        }
        let ns_path = self.netns_path(id);
        let live_ns = netns::exists(&ns_path).then_some(ns_path.as_path());
        note(&mut errs, self.cni_del(id, live_ns).await);
        note(
            &mut errs,
            netns::remove(&ns_path).map_err(|e| crate::sandboxer::io_step("remove netns", e)),
        );
        let run_dir = self.sandbox_run_dir(id);
        note(
            &mut errs,
            sys::unmount_all(&run_dir.join("shm"))
                .and_then(|_| match std::fs::remove_dir_all(&run_dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                })
                .map_err(|e| crate::sandboxer::io_step("remove shm", e)),
        );
        // The record goes last, and only when all else is gone, so a retry knows what to do.
        if errs.is_empty() {
            note(
                &mut errs,
                store::delete(self.state_dir(), id)
                    .map_err(|e| crate::sandboxer::io_step("delete pod record", e)),
            );
        }
        errs
    }
}

/// Where a shim for pod `id` listens: containerd's rule (and containerd-shim's), the hex sha256 of
/// `<containerd address>/<namespace>/<id>` in `/run/containerd/s`.
fn shim_socket(address: &str, namespace: &str, id: &str) -> std::path::PathBuf {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{address}/{namespace}/{id}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    std::path::Path::new("/run/containerd/s").join(hex)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shim_socket_is_containerds_hash() {
        // sha256("/run/containerd/containerd.sock/k8s.io/abc")
        let p = super::shim_socket("/run/containerd/containerd.sock", "k8s.io", "abc");
        assert!(p.starts_with("/run/containerd/s"));
        assert_eq!(p.file_name().map(|n| n.len()), Some(64));
    }
}
