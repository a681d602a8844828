//! What kubelet sees, through the CRI socket (driven by `hack/bench/cri`, which sets up the
//! containerds, criusd, CNI and the registry). Per pod, kubelet's calls for one pod of one container:
//! RunPodSandbox → PullImage (image present) → CreateContainer → StartContainer; later, timed apart,
//! StopPodSandbox → RemovePodSandbox.
//!
//! 1. N pods one at a time, rounds interleaved (one pod per target per round, so outside load hits
//!    every target alike): p50/p99 of each step.
//! 2. N pods with C concurrent, in chunks of 4·C interleaved across targets: pods/s and p50/p99.
//!
//! Usage: bench-cri --target NAME=SOCK[,HANDLER] [--target ...] --image REF --log-dir DIR
//!                  --cgroup-parent PATH [--n N] [--concurrency C]

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

struct Args {
    targets: Vec<Target>,
    image: String,
    log_dir: PathBuf,
    cgroup_parent: String,
    n: usize,
    concurrency: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        targets: Vec::new(),
        image: String::new(),
        log_dir: PathBuf::new(),
        cgroup_parent: String::new(),
        n: 50,
        concurrency: 5,
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
            _ => bail!("unknown flag {k}"),
        }
    }
    if a.targets.is_empty() || a.image.is_empty() || a.log_dir.as_os_str().is_empty() {
        bail!("--target, --image and --log-dir are required");
    }
    if a.cgroup_parent.is_empty() || a.n == 0 || a.concurrency == 0 {
        bail!("--cgroup-parent is required; --n and --concurrency must be > 0");
    }
    Ok(a)
}

/// One pod's step times (µs).
#[derive(Clone, Copy, Default)]
struct PodTimes {
    run: u64,
    pull: u64,
    create_start: u64,
    ready: u64,
    teardown: u64,
}

/// Everything one target needs to start pods.
#[derive(Clone)]
struct Side {
    name: Arc<str>,
    handler: Arc<str>,
    client: CriClient,
    image: Arc<str>,
    log_dir: Arc<PathBuf>,
    cgroup_parent: Arc<str>,
}

fn us(t: Instant) -> u64 {
    t.elapsed().as_micros() as u64
}

impl Side {
    fn pod_config(&self, tag: &str, i: usize) -> cri::PodSandboxConfig {
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

    /// Kubelet's calls to start one pod with its container; the pod id and step times.
    async fn start_pod(&self, tag: &str, i: usize) -> Result<(String, PodTimes)> {
        let mut c = self.client.clone();
        let pcfg = self.pod_config(tag, i);
        // Kubelet makes the pod's log dir before RunPodSandbox.
        std::fs::create_dir_all(&pcfg.log_directory)
            .with_context(|| format!("mkdir {}", pcfg.log_directory))?;
        let mut t = PodTimes::default();
        let t0 = Instant::now();
        let pod = c
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pcfg.clone()),
                runtime_handler: self.handler.to_string(),
            })
            .await
            .with_context(|| format!("{}: RunPodSandbox", self.name))?
            .into_inner()
            .pod_sandbox_id;
        t.run = us(t0);
        let t1 = Instant::now();
        let image = c
            .image
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
            .image_ref;
        t.pull = us(t1);
        let t2 = Instant::now();
        let ctr = c
            .runtime
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata {
                        name: "app".into(),
                        attempt: 0,
                    }),
                    // Kubelet passes the ref PullImage answered.
                    image: Some(cri::ImageSpec {
                        image,
                        ..Default::default()
                    }),
                    command: vec!["sleep".into(), "3600".into()],
                    log_path: "app/0.log".into(),
                    ..Default::default()
                }),
                sandbox_config: Some(pcfg),
            })
            .await
            .with_context(|| format!("{}: CreateContainer in {pod}", self.name))?
            .into_inner()
            .container_id;
        c.runtime
            .start_container(cri::StartContainerRequest {
                container_id: ctr.clone(),
            })
            .await
            .with_context(|| format!("{}: StartContainer {ctr}", self.name))?;
        t.create_start = us(t2);
        t.ready = us(t0);
        Ok((pod, t))
    }

    /// StopPodSandbox then RemovePodSandbox; µs taken.
    async fn teardown(&self, pod: &str) -> Result<u64> {
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
async fn concurrent<F, Fut, T>(
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

fn pct(v: &[u64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    let Some(last) = v.len().checked_sub(1) else {
        return 0.0;
    };
    let idx = (last as f64 * p).round() as usize;
    v[idx.min(last)] as f64 / 1000.0
}

/// "p50 / p99" in ms of one column of `t`.
fn cell(t: &[PodTimes], f: fn(&PodTimes) -> u64) -> String {
    let v: Vec<u64> = t.iter().map(f).collect();
    format!("{:.1} / {:.1}", pct(&v, 0.5), pct(&v, 0.99))
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args().context("usage: see the header of test/examples/bench-cri.rs")?;
    let mut sides = Vec::new();
    for t in &a.targets {
        let client = crius_test::cri::connect(&t.socket)
            .await
            .with_context(|| format!("{}: connect", t.name))?;
        let side = Side {
            name: t.name.as_str().into(),
            handler: t.handler.as_str().into(),
            client,
            image: a.image.as_str().into(),
            log_dir: Arc::new(a.log_dir.clone()),
            cgroup_parent: a.cgroup_parent.as_str().into(),
        };
        // Warm-up, untimed: the real pull, lazy connections, page cache.
        let (pod, _) = side.start_pod("warm", 0).await?;
        side.teardown(&pod).await?;
        sides.push(side);
    }

    // 1. One at a time, one pod per target per round.
    let mut seq: Vec<Vec<PodTimes>> = vec![Vec::new(); sides.len()];
    for i in 0..a.n {
        for (s, times) in sides.iter().zip(seq.iter_mut()) {
            let (pod, mut t) = s.start_pod("seq", i).await?;
            t.teardown = s.teardown(&pod).await?;
            times.push(t);
        }
    }

    // 2. C concurrent, chunks interleaved across targets.
    let chunk = (4 * a.concurrency).min(a.n);
    let mut conc: Vec<(Vec<PodTimes>, Duration, Duration)> =
        vec![(Vec::new(), Duration::ZERO, Duration::ZERO); sides.len()];
    for lo in (0..a.n).step_by(chunk) {
        let range = lo..(lo + chunk).min(a.n);
        for (s, (times, up, down)) in sides.iter().zip(conc.iter_mut()) {
            let (pods, wall) = concurrent(range.clone(), a.concurrency, |i| {
                let s = s.clone();
                async move { s.start_pod("conc", i).await }
            })
            .await?;
            *up += wall;
            let pods = Arc::new(pods);
            let (downs, wall) = concurrent(0..pods.len(), a.concurrency, |j| {
                let (s, pods) = (s.clone(), pods.clone());
                async move { s.teardown(&pods[j].0).await }
            })
            .await?;
            *down += wall;
            for ((_, t), d) in pods.iter().zip(downs) {
                times.push(PodTimes { teardown: d, ..*t });
            }
        }
    }

    println!(
        "\n{} pods one at a time (rounds interleaved), p50 / p99 ms:\n",
        a.n
    );
    println!("| target | RunPodSandbox | PullImage | Create+Start | **pod ready** | Stop+Remove |");
    println!("|---|---|---|---|---|---|");
    for (s, t) in sides.iter().zip(&seq) {
        println!(
            "| {} | {} | {} | {} | **{}** | {} |",
            s.name,
            cell(t, |x| x.run),
            cell(t, |x| x.pull),
            cell(t, |x| x.create_start),
            cell(t, |x| x.ready),
            cell(t, |x| x.teardown)
        );
    }
    if let Some(base) = seq.first() {
        let p50 = |t: &[PodTimes]| pct(&t.iter().map(|x| x.ready).collect::<Vec<_>>(), 0.5);
        println!();
        for (s, t) in sides.iter().zip(&seq).skip(1) {
            println!(
                "pod ready p50, {} / {}: {:.2}",
                sides[0].name,
                s.name,
                p50(base) / p50(t)
            );
        }
    }

    println!(
        "\n{} pods, {} concurrent (chunks of {chunk} interleaved), p50 / p99 ms:\n",
        a.n, a.concurrency
    );
    println!("| target | pods ready/s | RunPodSandbox | Create+Start | **pod ready** | pods removed/s | Stop+Remove |");
    println!("|---|---|---|---|---|---|---|");
    for (s, (t, up, down)) in sides.iter().zip(&conc) {
        println!(
            "| {} | {:.1} | {} | {} | **{}** | {:.1} | {} |",
            s.name,
            t.len() as f64 / up.as_secs_f64(),
            cell(t, |x| x.run),
            cell(t, |x| x.create_start),
            cell(t, |x| x.ready),
            t.len() as f64 / down.as_secs_f64(),
            cell(t, |x| x.teardown)
        );
    }
    Ok(())
}
