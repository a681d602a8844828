//! Memory (`--what mem`): what each runtime's processes hold idle, with resident pods, after a burst
//! of pods and after a settle pause. Per target: `--resident` K pods (one `sleep` container each)
//! stay up throughout; then N pods in batches of `--batch` B, C at a time: RunPodSandbox →
//! PullImage → CreateContainer → StartContainer, then what kubelet asks of live pods
//! (PodSandboxStatus, ListContainers, ContainerStatus, ExecSync as a probe; the List and stats calls
//! once per batch), then StopPodSandbox → RemovePodSandbox. Batches interleave across targets.
//! `/proc/PID/status` of every `--pid LABEL=PID` is read at each stage; `--stack LABEL=L1+L2` adds
//! a row summing processes. Run it alone (`--what mem`) so "idle" is idle.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use crius_proto::runtime as cri;

use crate::pods::start_pod;
use crate::{concurrent, Args, Side};

/// The memory bench's own flags.
pub struct Opts {
    /// (label, pid) of each process to watch.
    pids: Vec<(String, u32)>,
    /// (label, labels of `pids` summed).
    stacks: Vec<(String, Vec<String>)>,
    batch: usize,
    resident: usize,
    settle: u64,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            pids: Vec::new(),
            stacks: Vec::new(),
            batch: 50,
            resident: 5,
            settle: 30,
        }
    }
}

impl Opts {
    /// Take flag `k` with value `v` if it is one of this bench's; false if not.
    pub fn flag(&mut self, k: &str, v: &str) -> Result<bool> {
        let num = |v: &str| v.parse::<usize>().with_context(|| format!("{k} {v}"));
        match k {
            "--pid" => {
                let (l, p) = v
                    .rsplit_once('=')
                    .ok_or_else(|| anyhow!("--pid {v}: want LABEL=PID"))?;
                let p = p.parse().with_context(|| format!("--pid {v}"))?;
                self.pids.push((l.into(), p));
            }
            "--stack" => {
                let (l, parts) = v
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--stack {v}: want LABEL=L1+L2"))?;
                self.stacks
                    .push((l.into(), parts.split('+').map(String::from).collect()));
            }
            "--batch" => self.batch = num(v)?.max(1),
            "--resident" => self.resident = num(v)?,
            "--settle" => self.settle = num(v)? as u64,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn check(&self) -> Result<()> {
        if self.pids.is_empty() {
            bail!("--what mem needs --pid LABEL=PID");
        }
        for (l, parts) in &self.stacks {
            if let Some(p) = parts
                .iter()
                .find(|p| !self.pids.iter().any(|(x, _)| x == *p))
            {
                bail!("--stack {l}: no --pid labelled {p}");
            }
        }
        Ok(())
    }
}

/// One reading of a process's `/proc/PID/status` (kB, threads).
#[derive(Clone, Copy, Default)]
struct Mem {
    rss: u64,
    anon: u64,
    peak: u64,
    threads: u64,
}

impl std::ops::Add for Mem {
    type Output = Mem;
    fn add(self, o: Mem) -> Mem {
        Mem {
            rss: self.rss + o.rss,
            anon: self.anon + o.anon,
            peak: self.peak + o.peak,
            threads: self.threads + o.threads,
        }
    }
}

fn read_mem(pid: u32) -> Result<Mem> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status (did the process die?)"))?;
    let mut m = Mem::default();
    for line in s.lines() {
        let (k, v) = line.split_once(':').unwrap_or((line, ""));
        let v: u64 = v
            .split_whitespace()
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        match k {
            "VmRSS" => m.rss = v,
            "RssAnon" => m.anon = v,
            "VmHWM" => m.peak = v,
            "Threads" => m.threads = v,
            _ => {}
        }
    }
    Ok(m)
}

/// Every watched process's memory, in `--pid` order.
fn sample(o: &Opts) -> Result<Vec<Mem>> {
    o.pids.iter().map(|(_, p)| read_mem(*p)).collect()
}

/// What kubelet asks of a live pod between its start and its stop.
async fn kubelet_queries(s: &Side, pod: &str) -> Result<()> {
    let mut c = s.client.clone();
    let ctx = |what: &str| format!("{}: {what} in {pod}", s.name);
    c.runtime
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.into(),
            verbose: false,
        })
        .await
        .with_context(|| ctx("PodSandboxStatus"))?;
    let ctrs = c
        .runtime
        .list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                pod_sandbox_id: pod.into(),
                ..Default::default()
            }),
        })
        .await
        .with_context(|| ctx("ListContainers"))?
        .into_inner()
        .containers;
    for ctr in ctrs {
        c.runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: ctr.id.clone(),
                verbose: false,
            })
            .await
            .with_context(|| ctx("ContainerStatus"))?;
        let probe = c
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: ctr.id.clone(),
                cmd: vec!["true".into()],
                timeout: 10,
            })
            .await
            .with_context(|| ctx("ExecSync"))?
            .into_inner();
        if probe.exit_code != 0 {
            bail!(
                "{}: probe `true` in {} exited {}",
                s.name,
                ctr.id,
                probe.exit_code
            );
        }
    }
    Ok(())
}

/// Kubelet's periodic node-wide calls (pod and container lists, stats).
async fn kubelet_sweep(s: &Side) -> Result<()> {
    let mut c = s.client.clone();
    let r = &mut c.runtime;
    let ctx = |what: &str| format!("{}: {what}", s.name);
    r.list_pod_sandbox(cri::ListPodSandboxRequest::default())
        .await
        .with_context(|| ctx("ListPodSandbox"))?;
    r.list_containers(cri::ListContainersRequest::default())
        .await
        .with_context(|| ctx("ListContainers"))?;
    r.list_container_stats(cri::ListContainerStatsRequest::default())
        .await
        .with_context(|| ctx("ListContainerStats"))?;
    r.list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest::default())
        .await
        .with_context(|| ctx("ListPodSandboxStats"))?;
    Ok(())
}

/// One batch on one target: `range`'s pods up, queried, swept, torn down.
async fn batch(s: &Side, range: std::ops::Range<usize>, conc: usize) -> Result<()> {
    let (pods, _) = concurrent(range, conc, |i| {
        let s = s.clone();
        async move {
            let (pod, _) = start_pod(&s, "burst", i).await?;
            kubelet_queries(&s, &pod).await?;
            Ok(pod)
        }
    })
    .await?;
    kubelet_sweep(s).await?;
    let pods = Arc::new(pods);
    concurrent(0..pods.len(), conc, |j| {
        let (s, pods) = (s.clone(), pods.clone());
        async move { s.teardown(&pods[j]).await }
    })
    .await?;
    Ok(())
}

fn mb(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

fn print_table(o: &Opts, stages: &[(String, Vec<Mem>)]) {
    print!("| process |");
    for (name, _) in stages {
        print!(" {name} |");
    }
    println!(" peak RSS |");
    println!("|---|{}---|", "---|".repeat(stages.len()));
    let row = |label: &str, pick: &dyn Fn(&[Mem]) -> Mem| {
        print!("| {label} |");
        for (_, m) in stages {
            let x = pick(m);
            print!(" {} / {} ({} thr) |", mb(x.rss), mb(x.anon), x.threads);
        }
        let last = stages.last().map(|(_, m)| pick(m)).unwrap_or_default();
        println!(" {} |", mb(last.peak));
    };
    for (i, (label, _)) in o.pids.iter().enumerate() {
        row(label, &|m| m[i]);
    }
    for (label, parts) in &o.stacks {
        let idx: Vec<usize> = parts
            .iter()
            .filter_map(|p| o.pids.iter().position(|(x, _)| x == p))
            .collect();
        row(&format!("**{label}**"), &|m| {
            idx.iter().map(|&i| m[i]).fold(Mem::default(), |x, y| x + y)
        });
    }
}

pub async fn run(sides: &[Side], a: &Args) -> Result<()> {
    let o = &a.mem;
    o.check()?;
    let mut stages = vec![("idle (started)".to_string(), sample(o)?)];
    // The resident pods (the first also pulls the image for real).
    let mut resident: Vec<Vec<String>> = Vec::new();
    for s in sides {
        let mut pods = Vec::new();
        for i in 0..o.resident {
            pods.push(start_pod(s, "resident", i).await?.0);
        }
        resident.push(pods);
    }
    stages.push((format!("{} resident pods", o.resident), sample(o)?));

    let t0 = std::time::Instant::now();
    for lo in (0..a.n).step_by(o.batch) {
        let range = lo..(lo + o.batch).min(a.n);
        for s in sides {
            batch(s, range.clone(), a.concurrency).await?;
        }
        eprintln!(
            "bench-cri mem: {} of {} pods per target ({:.0} s)",
            range.end,
            a.n,
            t0.elapsed().as_secs_f64()
        );
    }
    for s in sides {
        kubelet_sweep(s).await?;
    }
    stages.push((format!("after {} pods", a.n), sample(o)?));
    tokio::time::sleep(Duration::from_secs(o.settle)).await;
    stages.push((format!("+{} s idle", o.settle), sample(o)?));

    for (s, pods) in sides.iter().zip(&resident) {
        for pod in pods {
            s.teardown(pod).await?;
        }
    }

    println!(
        "\nMemory, MB: RSS / anon RSS (threads); {} resident pods, then {} pods in batches of {}, {} at a time:\n",
        o.resident, a.n, o.batch, a.concurrency
    );
    print_table(o, &stages);
    Ok(())
}
