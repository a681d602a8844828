//! What kubelet sees, through the CRI socket (driven by `hack/bench/cri`, which sets up the
//! containerds, criusd, CNI and the registry). Two benches, each run one at a time and C in
//! parallel, rounds interleaved across targets (one pod or container per target per round, so
//! outside load hits every target alike):
//!
//! - `pods` (pods.rs): per pod, kubelet's calls for one pod of one container: RunPodSandbox →
//!   PullImage (image present) → CreateContainer → StartContainer; later, timed apart,
//!   StopPodSandbox → RemovePodSandbox.
//! - `containers` (containers.rs): in one running pod per target, per container CreateContainer,
//!   StartContainer, ContainerStatus (3 calls), StopContainer, RemoveContainer, each timed apart.
//! - `mem` (memory.rs, driven by `hack/bench/mem`): the runtimes' processes' memory before and
//!   after a burst of pods; flags `--pid LABEL=PID`, `--stack LABEL=L1+L2`, `--batch B`,
//!   `--resident K`, `--settle SECS`.
//!
//! Usage: bench-cri --target NAME=SOCK[,HANDLER] [--target ...] --image REF --log-dir DIR
//!                  --cgroup-parent PATH [--n N] [--concurrency C] [--what pods,containers|mem]
//!                  [--base NAME]
//! `--base` names the target the others' p50s are divided by (default: the last target).

mod containers;
mod memory;
mod pods;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use crius_proto::runtime as cri;
use crius_test::cri::CriClient;

struct Target {
    name: String,
    socket: PathBuf,
    handler: String,
}

pub struct Args {
    targets: Vec<Target>,
    image: String,
    log_dir: PathBuf,
    cgroup_parent: String,
    pub n: usize,
    pub concurrency: usize,
    what: Vec<String>,
    base: String,
    mem: memory::Opts,
}

fn args() -> Result<Args> {
    let mut a = Args {
        targets: Vec::new(),
        image: String::new(),
        log_dir: PathBuf::new(),
        cgroup_parent: String::new(),
        n: 50,
        concurrency: 5,
        what: vec!["pods".into(), "containers".into()],
        base: String::new(),
        mem: memory::Opts::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| anyhow!("{k} needs a value"))?;
        match k.as_str() {
            "--target" => {
                let (name, rest) = v
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--target {v}: want NAME=SOCK[,HANDLER]"))?;
                let (sock, handler) = rest.split_once(',').unwrap_or((rest, ""));
                a.targets.push(Target {
                    name: name.into(),
                    socket: sock.into(),
                    handler: handler.into(),
                });
            }
            "--image" => a.image = v,
            "--log-dir" => a.log_dir = v.into(),
            "--cgroup-parent" => a.cgroup_parent = v,
            "--n" => a.n = v.parse().with_context(|| format!("--n {v}"))?,
            "--concurrency" => {
                a.concurrency = v.parse().with_context(|| format!("--concurrency {v}"))?
            }
            "--what" => a.what = v.split(',').map(str::to_string).collect(),
            "--base" => a.base = v,
            _ if a.mem.flag(&k, &v)? => {}
            _ => bail!("unknown flag {k}"),
        }
    }
    if a.targets.is_empty() || a.image.is_empty() || a.log_dir.as_os_str().is_empty() {
        bail!("--target, --image and --log-dir are required");
    }
    if a.cgroup_parent.is_empty() || a.n == 0 || a.concurrency == 0 {
        bail!("--cgroup-parent is required; --n and --concurrency must be > 0");
    }
    if let Some(w) = a
        .what
        .iter()
        .find(|w| !["pods", "containers", "mem"].contains(&w.as_str()))
    {
        bail!("--what {w}: want pods and/or containers, or mem");
    }
    if a.base.is_empty() {
        a.base = a.targets.last().map(|t| t.name.clone()).unwrap_or_default();
    }
    if !a.targets.iter().any(|t| t.name == a.base) {
        bail!("--base {}: no such target", a.base);
    }
    Ok(a)
}

/// Everything one target needs to start pods.
#[derive(Clone)]
pub struct Side {
    pub name: Arc<str>,
    pub handler: Arc<str>,
    pub client: CriClient,
    pub image: Arc<str>,
    log_dir: Arc<PathBuf>,
    cgroup_parent: Arc<str>,
}

pub fn us(t: Instant) -> u64 {
    t.elapsed().as_micros() as u64
}

impl Side {
    pub fn pod_config(&self, tag: &str, i: usize) -> cri::PodSandboxConfig {
        let name = format!("bench-{}-{tag}-{i}", self.name);
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.clone(),
                uid: format!("uid-{name}"),
                namespace: "bench".into(),
                attempt: 0,
            }),
            hostname: name.clone(),
            log_directory: self.log_dir.join(&name).display().to_string(),
            dns_config: Some(cri::DnsConfig {
                servers: vec!["10.96.0.10".into()],
                searches: vec!["bench.svc.cluster.local".into()],
                options: vec!["ndots:5".into()],
            }),
            linux: Some(cri::LinuxPodSandboxConfig {
                // Pod cgroups are kubelet's to make and remove; hack/bench/cri removes this tree.
                cgroup_parent: format!("{}/{name}", self.cgroup_parent),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Kubelet makes the pod's log dir before RunPodSandbox, then runs the pod; its id.
    pub async fn run_pod(&self, pcfg: &cri::PodSandboxConfig) -> Result<String> {
        std::fs::create_dir_all(&pcfg.log_directory)
            .with_context(|| format!("mkdir {}", pcfg.log_directory))?;
        let mut c = self.client.clone();
        crius_test::cri::run_pod(&mut c, pcfg, &self.handler)
            .await
            .with_context(|| format!("{}: RunPodSandbox", self.name))
    }

    /// The image ref PullImage answers (kubelet passes it on to CreateContainer).
    pub async fn pull(&self, pcfg: &cri::PodSandboxConfig) -> Result<String> {
        let mut c = self.client.clone();
        Ok(c.image
            .pull_image(cri::PullImageRequest {
                image: Some(cri::ImageSpec {
                    image: self.image.to_string(),
                    ..Default::default()
                }),
                sandbox_config: Some(pcfg.clone()),
                ..Default::default()
            })
            .await
            .with_context(|| format!("{}: PullImage {}", self.name, self.image))?
            .into_inner()
            .image_ref)
    }

    /// The bench's container: busybox `sleep 3600` under a shell that exits on SIGTERM, logging to `<name>.log` in the pod's log dir,
    /// with the Linux settings kubelet sends for a BestEffort container: a runtime that is sent no
    /// masked or read-only paths (containerd's CRI) would otherwise do less work than under kubelet.
    pub fn container_config(&self, name: &str, image: &str) -> cri::ContainerConfig {
        cri::ContainerConfig {
            linux: Some(kubelet_linux_config()),
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            // pid 1 of its own pid namespace (kubelet's default), where SIGTERM kills only a
            // process that handles it: StopContainer then ends at once, not after the grace.
            command: vec![
                "sh".into(),
                "-c".into(),
                "trap 'exit 0' TERM; sleep 3600 & wait".into(),
            ],
            log_path: format!("{name}/0.log"),
            ..Default::default()
        }
    }

    /// StopPodSandbox then RemovePodSandbox; µs taken.
    pub async fn teardown(&self, pod: &str) -> Result<u64> {
        let mut c = self.client.clone();
        let t = Instant::now();
        c.runtime
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: pod.into(),
            })
            .await
            .with_context(|| format!("{}: StopPodSandbox {pod}", self.name))?;
        c.runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod.into(),
            })
            .await
            .with_context(|| format!("{}: RemovePodSandbox {pod}", self.name))?;
        Ok(us(t))
    }
}

/// Run `f(i)` for i in `range` with `c` at a time; the results in order and the wall time.
pub async fn concurrent<F, Fut, T>(
    range: std::ops::Range<usize>,
    c: usize,
    f: F,
) -> Result<(Vec<T>, Duration)>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(c));
    let start = Instant::now();
    let mut handles = Vec::new();
    for i in range {
        let permit = sem.clone().acquire_owned().await?;
        let fut = f(i);
        handles.push(tokio::spawn(async move {
            let r = fut.await;
            drop(permit);
            r
        }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await??);
    }
    Ok((out, start.elapsed()))
}

/// The `p` quantile of `v` (µs) in ms.
pub fn pct(v: &[u64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    let Some(last) = v.len().checked_sub(1) else {
        return 0.0;
    };
    let idx = (last as f64 * p).round() as usize;
    v[idx.min(last)] as f64 / 1000.0
}

/// "p50 / p99" in ms of `v` (µs).
pub fn cell(v: &[u64]) -> String {
    format!("{:.1} / {:.1}", pct(v, 0.5), pct(v, 0.99))
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args().context("usage: see the header of test/examples/bench-cri/main.rs")?;
    let mut sides = Vec::new();
    for t in &a.targets {
        let client = crius_test::cri::connect(&t.socket)
            .await
            .with_context(|| format!("{}: connect", t.name))?;
        sides.push(Side {
            name: t.name.as_str().into(),
            handler: t.handler.as_str().into(),
            client,
            image: a.image.as_str().into(),
            log_dir: Arc::new(a.log_dir.clone()),
            cgroup_parent: a.cgroup_parent.as_str().into(),
        });
    }
    let base = sides
        .iter()
        .position(|s| *s.name == *a.base)
        .context("--base")?;
    if a.what.iter().any(|w| w == "pods") {
        pods::run(&sides, &a).await?;
    }
    if a.what.iter().any(|w| w == "containers") {
        containers::run(&sides, base, &a).await?;
    }
    if a.what.iter().any(|w| w == "mem") {
        memory::run(&sides, &a).await?;
    }
    Ok(())
}

/// What kubelet (1.3x, SeccompDefault off) puts in a BestEffort container's `linux` config.
fn kubelet_linux_config() -> cri::LinuxContainerConfig {
    const MASKED: &[&str] = &[
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ];
    const READ_ONLY: &[&str] = &[
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ];
    cri::LinuxContainerConfig {
        resources: Some(cri::LinuxContainerResources {
            cpu_shares: 2,
            oom_score_adj: 1000,
            ..Default::default()
        }),
        security_context: Some(cri::LinuxContainerSecurityContext {
            namespace_options: Some(cri::NamespaceOption {
                network: cri::NamespaceMode::Pod as i32,
                pid: cri::NamespaceMode::Container as i32,
                ipc: cri::NamespaceMode::Pod as i32,
                ..Default::default()
            }),
            masked_paths: MASKED.iter().map(|p| p.to_string()).collect(),
            readonly_paths: READ_ONLY.iter().map(|p| p.to_string()).collect(),
            seccomp: Some(cri::SecurityProfile {
                profile_type: cri::security_profile::ProfileType::Unconfined as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}
