//! Pods: kubelet's calls for one pod of one container, N one at a time and N with C concurrent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crius_proto::runtime as cri;

use crate::{cell, concurrent, pct, us, Args, Side};

/// One pod's step times (µs).
#[derive(Clone, Copy, Default)]
pub struct PodTimes {
    run: u64,
    pull: u64,
    create_start: u64,
    ready: u64,
    teardown: u64,
}

/// Kubelet's calls to start one pod with its container; the pod id and step times.
pub async fn start_pod(s: &Side, tag: &str, i: usize) -> Result<(String, PodTimes)> {
    let mut c = s.client.clone();
    let pcfg = s.pod_config(tag, i);
    let mut t = PodTimes::default();
    let t0 = Instant::now();
    let pod = s.run_pod(&pcfg).await?;
    t.run = us(t0);
    let t1 = Instant::now();
    let image = s.pull(&pcfg).await?;
    t.pull = us(t1);
    let t2 = Instant::now();
    let ctr = c
        .runtime
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(s.container_config("app", &image)),
            sandbox_config: Some(pcfg),
        })
        .await
        .with_context(|| format!("{}: CreateContainer in {pod}", s.name))?
        .into_inner()
        .container_id;
    c.runtime
        .start_container(cri::StartContainerRequest {
            container_id: ctr.clone(),
        })
        .await
        .with_context(|| format!("{}: StartContainer {ctr}", s.name))?;
    t.create_start = us(t2);
    t.ready = us(t0);
    Ok((pod, t))
}

fn col(t: &[PodTimes], f: fn(&PodTimes) -> u64) -> String {
    cell(&t.iter().map(f).collect::<Vec<_>>())
}

pub async fn run(sides: &[Side], a: &Args) -> Result<()> {
    for s in sides {
        // Warm-up, untimed: the real pull, lazy connections, page cache.
        let (pod, _) = start_pod(s, "warm", 0).await?;
        s.teardown(&pod).await?;
    }

    // 1. One at a time, one pod per target per round.
    let mut seq: Vec<Vec<PodTimes>> = vec![Vec::new(); sides.len()];
    for i in 0..a.n {
        for (s, times) in sides.iter().zip(seq.iter_mut()) {
            let (pod, mut t) = start_pod(s, "seq", i).await?;
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
                async move { start_pod(&s, "conc", i).await }
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
            col(t, |x| x.run),
            col(t, |x| x.pull),
            col(t, |x| x.create_start),
            col(t, |x| x.ready),
            col(t, |x| x.teardown)
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
            col(t, |x| x.run),
            col(t, |x| x.create_start),
            col(t, |x| x.ready),
            t.len() as f64 / down.as_secs_f64(),
            col(t, |x| x.teardown)
        );
    }
    Ok(())
}
