//! Containers: in running pods, each container's CreateContainer, StartContainer, ContainerStatus
//! (3 calls on the running container), StopContainer and RemoveContainer timed apart. N containers
//! one at a time in one pod per target, then N in chunks of C where each op runs C at a time (all
//! C creates together, then all C starts, …), one container of the chunk in each of C pods (as
//! kubelet's parallel calls mostly are: containers of different pods), chunks interleaved across
//! targets.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use crius_proto::runtime as cri;

use crate::{cell, concurrent, pct, us, Args, Side};

const OPS: [&str; 5] = [
    "CreateContainer",
    "StartContainer",
    "ContainerStatus",
    "StopContainer",
    "RemoveContainer",
];
const STATUS_CALLS: usize = 3;

/// Per op (in [`OPS`] order), the µs of every call.
type OpTimes = [Vec<u64>; 5];

/// A target's pod the containers run in.
struct Pod {
    side: Side,
    id: String,
    config: cri::PodSandboxConfig,
    image: String,
}

impl Pod {
    async fn create(&self, name: String) -> Result<(String, u64)> {
        let mut c = self.side.client.clone();
        let t = Instant::now();
        let id = c
            .runtime
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: self.id.clone(),
                config: Some(self.side.container_config(&name, &self.image)),
                sandbox_config: Some(self.config.clone()),
            })
            .await
            .with_context(|| format!("{}: CreateContainer {name}", self.side.name))?
            .into_inner()
            .container_id;
        Ok((id, us(t)))
    }

    async fn start(&self, id: &str) -> Result<u64> {
        let mut c = self.side.client.clone();
        let t = Instant::now();
        c.runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.into(),
            })
            .await
            .with_context(|| format!("{}: StartContainer {id}", self.side.name))?;
        Ok(us(t))
    }

    /// [`STATUS_CALLS`] calls, one after another; each one's µs. The container must be running.
    async fn status(&self, id: &str) -> Result<Vec<u64>> {
        let mut c = self.side.client.clone();
        let mut v = Vec::new();
        for _ in 0..STATUS_CALLS {
            let t = Instant::now();
            let st = c
                .runtime
                .container_status(cri::ContainerStatusRequest {
                    container_id: id.into(),
                    verbose: false,
                })
                .await
                .with_context(|| format!("{}: ContainerStatus {id}", self.side.name))?
                .into_inner()
                .status
                .context("ContainerStatus without a status")?;
            v.push(us(t));
            anyhow::ensure!(
                st.state == cri::ContainerState::ContainerRunning as i32,
                "{}: container {id} is not running: {st:?}",
                self.side.name
            );
        }
        Ok(v)
    }

    async fn stop(&self, id: &str) -> Result<u64> {
        let mut c = self.side.client.clone();
        let t = Instant::now();
        c.runtime
            .stop_container(cri::StopContainerRequest {
                container_id: id.into(),
                timeout: 10,
            })
            .await
            .with_context(|| format!("{}: StopContainer {id}", self.side.name))?;
        Ok(us(t))
    }

    async fn remove(&self, id: &str) -> Result<u64> {
        let mut c = self.side.client.clone();
        let t = Instant::now();
        c.runtime
            .remove_container(cri::RemoveContainerRequest {
                container_id: id.into(),
            })
            .await
            .with_context(|| format!("{}: RemoveContainer {id}", self.side.name))?;
        Ok(us(t))
    }

    /// One container through all five ops, one after another.
    async fn cycle(&self, name: String, times: &mut OpTimes) -> Result<()> {
        let (id, t) = self.create(name).await?;
        times[0].push(t);
        times[1].push(self.start(&id).await?);
        times[2].extend(self.status(&id).await?);
        times[3].push(self.stop(&id).await?);
        times[4].push(self.remove(&id).await?);
        Ok(())
    }
}

/// Containers `range` of a chunk, container j in `pods[j % C]`, each op C at a time.
async fn chunk(
    pods: &[Arc<Pod>],
    range: std::ops::Range<usize>,
    times: &mut OpTimes,
) -> Result<()> {
    let c = pods.len();
    let (made, _) = concurrent(range, c, |i| {
        let p = pods[i % c].clone();
        async move { Ok((p.create(format!("conc-{i}")).await?, i % c)) }
    })
    .await?;
    times[0].extend(made.iter().map(|((_, t), _)| *t));
    let made: Arc<Vec<(String, usize)>> =
        Arc::new(made.into_iter().map(|((id, _), p)| (id, p)).collect());
    // Each later op over every container, C at a time.
    macro_rules! each {
        ($op:ident) => {
            concurrent(0..made.len(), c, |j| {
                let made = made.clone();
                let p = pods[made[j].1].clone();
                async move { p.$op(&made[j].0).await }
            })
            .await?
            .0
        };
    }
    times[1].extend(each!(start));
    times[2].extend(each!(status).into_iter().flatten());
    times[3].extend(each!(stop));
    times[4].extend(each!(remove));
    Ok(())
}

fn table(title: &str, sides: &[Side], times: &[OpTimes]) {
    println!("\n{title}, p50 / p99 ms:\n");
    println!("| target | {} |", OPS.join(" | "));
    println!("|---|---|---|---|---|---|");
    for (s, t) in sides.iter().zip(times) {
        let cells: Vec<String> = t.iter().map(|v| cell(v)).collect();
        println!("| {} | {} |", s.name, cells.join(" | "));
    }
}

pub async fn run(sides: &[Side], base: usize, a: &Args) -> Result<()> {
    let c = a.concurrency;
    // Per target: C pods; the one-at-a-time containers run in the first.
    let mut pods: Vec<Vec<Arc<Pod>>> = Vec::new();
    for s in sides {
        let mut mine = Vec::new();
        for j in 0..c {
            let config = s.pod_config("ctrs", j);
            let id = s.run_pod(&config).await?;
            let image = s.pull(&config).await?;
            let pod = Arc::new(Pod {
                side: s.clone(),
                id,
                config,
                image,
            });
            // Warm-up, untimed: lazy connections, the pod's shim, page cache.
            pod.cycle("warm".into(), &mut OpTimes::default()).await?;
            mine.push(pod);
        }
        pods.push(mine);
    }

    let mut seq: Vec<OpTimes> = vec![OpTimes::default(); pods.len()];
    for i in 0..a.n {
        for (p, t) in pods.iter().zip(seq.iter_mut()) {
            p[0].cycle(format!("seq-{i}"), t).await?;
        }
    }
    let mut par: Vec<OpTimes> = vec![OpTimes::default(); pods.len()];
    for lo in (0..a.n).step_by(c) {
        let range = lo..(lo + c).min(a.n);
        for (p, t) in pods.iter().zip(par.iter_mut()) {
            chunk(p, range.clone(), t).await?;
        }
    }
    for p in pods.iter().flatten() {
        p.side.teardown(&p.id).await?;
    }

    table(
        &format!(
            "{} containers one at a time in one pod per target (rounds interleaved; \
             ContainerStatus: {STATUS_CALLS} calls per container)",
            a.n
        ),
        sides,
        &seq,
    );
    table(
        &format!(
            "{} containers, each op {c} in parallel in {c} pods (chunks interleaved across targets)",
            a.n
        ),
        sides,
        &par,
    );
    println!(
        "\np50 ratios against {} (one at a time; {c} in parallel):\n",
        sides[base].name
    );
    println!("| target | {} |", OPS.join(" | "));
    println!("|---|---|---|---|---|---|");
    let ratio = |t: &OpTimes, b: &OpTimes, k: usize| pct(&t[k], 0.5) / pct(&b[k], 0.5);
    for (i, s) in sides.iter().enumerate().filter(|(i, _)| *i != base) {
        let cells: Vec<String> = (0..OPS.len())
            .map(|k| {
                format!(
                    "{:.2}; {:.2}",
                    ratio(&seq[i], &seq[base], k),
                    ratio(&par[i], &par[base], k)
                )
            })
            .collect();
        println!("| {} | {} |", s.name, cells.join(" | "));
    }
    Ok(())
}
