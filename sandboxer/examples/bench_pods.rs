//! Pod start benchmark (driven by `hack/bench/pods`, which sets up containerd, CNI and the registry).
//!
//! 1. The sandboxer's `run` N times in a row: latency p50/p99 per phase (prepare, netns, CNI ADD,
//!    pause start, total), each pod removed before the next; interleaved with one containerd CRI
//!    RunPodSandbox per handler per round, so outside load hits both alike.
//! 2. The sandboxer with C concurrent requests: throughput (pods/s) and latency p50/p99.
//! 3. The concurrent run against containerd's own CRI plugin (RunPodSandbox, same CNI conflist, a
//!    locally served pause image), for every runtime handler given.
//!
//! Usage: bench-pods --containerd SOCK --cni-conf-dir DIR --pause BIN --work DIR
//!                   [--runtime NAME] [--n N] [--concurrency C] [--cri SOCK --handlers runc,crius]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crius_proto::runtime as cri;
use crius_proto::tonic::transport::{Channel, Endpoint, Uri};
use crius_proto::RuntimeServiceClient;
use crius_sandboxer::{
    DnsConfig, OomScorePolicy, PauseSource, PodConfig, RunTimings, Sandboxer, SandboxerConfig,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    containerd: PathBuf,
    cni_conf_dir: PathBuf,
    pause: PathBuf,
    work: PathBuf,
    runtime: String,
    n: usize,
    concurrency: usize,
    cri: Option<PathBuf>,
    handlers: Vec<String>,
}

fn args() -> Result<Args, String> {
    let mut m: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        m.insert(k.trim_start_matches("--").to_string(), v);
    }
    let need = |k: &str| {
        m.get(k)
            .cloned()
            .ok_or_else(|| format!("--{k} is required"))
    };
    Ok(Args {
        containerd: need("containerd")?.into(),
        cni_conf_dir: need("cni-conf-dir")?.into(),
        pause: need("pause")?.into(),
        work: need("work")?.into(),
        runtime: m
            .get("runtime")
            .cloned()
            .unwrap_or_else(|| "io.containerd.crius.v2".into()),
        n: m.get("n").and_then(|s| s.parse().ok()).unwrap_or(100),
        concurrency: m
            .get("concurrency")
            .and_then(|s| s.parse().ok())
            .unwrap_or(10),
        cri: m.get("cri").map(PathBuf::from),
        handlers: m
            .get("handlers")
            .map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    })
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable();
    let idx = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[idx.min(v.len() - 1)] as f64 / 1000.0
}

fn row(name: &str, mut v: Vec<u64>) {
    println!(
        "  {name:<16} p50 {:>8.1} ms   p99 {:>8.1} ms",
        pct(&mut v, 0.50),
        pct(&mut v, 0.99)
    );
}

fn pod(i: usize, tag: &str) -> PodConfig {
    let mut c = PodConfig::default();
    c.metadata.name = format!("bench-{tag}-{i}");
    c.metadata.namespace = "bench".into();
    c.metadata.uid = format!("uid-{tag}-{i}");
    c.hostname = c.metadata.name.clone();
    c.dns = Some(DnsConfig {
        servers: vec!["10.96.0.10".into()],
        ..Default::default()
    });
    c
}

async fn sandboxer_bench(a: &Args) -> Result<(), BoxError> {
    let cfg = SandboxerConfig {
        state_dir: a.work.join("sb/state"),
        run_dir: a.work.join("sb/run"),
        cni_conf_dir: a.cni_conf_dir.clone(),
        cni_bin_dirs: vec!["/usr/lib/cni".into(), "/opt/cni/bin".into()],
        cni_cache_dir: a.work.join("sb/cni-cache"),
        containerd_address: a.containerd.clone(),
        runtime: a.runtime.clone(),
        pause: PauseSource::Binary(a.pause.clone()),
        oom_score: OomScorePolicy::Auto,
        default_cgroup_parent: "/crius-bench-pods".into(),
        ..SandboxerConfig::default()
    };
    let sb = Arc::new(Sandboxer::new(cfg).await?);
    sb.recover().await?;
    // Warm-up: the first pod pays for containerd's lazy connection and page cache.
    let w = sb.run(pod(0, "warm")).await?;
    sb.remove(&w.id).await?;

    // One at a time, interleaved: each round starts one pod on every system
    // under test, so load from elsewhere on the machine hits all alike.
    let mut cri = Vec::new();
    if let Some(sock) = &a.cri {
        for h in &a.handlers {
            let mut c = cri_client(sock).await?;
            let w = cri_run(&mut c, 0, &format!("warm-{h}"), h).await?;
            cri_remove(&mut c, &w).await?;
            cri.push((h.clone(), c, Vec::new()));
        }
    }
    let mut t: Vec<RunTimings> = Vec::new();
    let mut removes = Vec::new();
    for i in 0..a.n {
        let p = sb.run(pod(i, "seq")).await?;
        t.push(p.timings);
        let r = Instant::now();
        sb.remove(&p.id).await?;
        removes.push(r.elapsed().as_micros() as u64);
        // The handlers in another order each round: a pod started right after another's removal
        // shares the machine with that teardown (a runc-v2 shim exiting, containerd's GC), so no
        // handler may always follow the same one.
        let k = cri.len();
        for j in 0..k {
            let (h, c, lat) = &mut cri[(i + j) % k];
            let t = Instant::now();
            let id = cri_run(c, i, &format!("seq-{h}"), h).await?;
            lat.push(t.elapsed().as_micros() as u64);
            cri_remove(c, &id).await?;
        }
    }
    println!("{} pods one at a time (interleaved):", a.n);
    println!("sandboxer (pause runtime {}):", a.runtime);
    row("prepare", t.iter().map(|x| x.prepare_us).collect());
    row("netns", t.iter().map(|x| x.netns_us).collect());
    row("CNI ADD", t.iter().map(|x| x.cni_add_us).collect());
    row("pause start", t.iter().map(|x| x.pause_start_us).collect());
    row("run total", t.iter().map(|x| x.total_us).collect());
    row("stop+remove", removes);
    let mut sb_total: Vec<u64> = t.iter().map(|x| x.total_us).collect();
    let sb_p50 = pct(&mut sb_total, 0.5);
    for (h, _, lat) in cri {
        println!("containerd CRI RunPodSandbox (handler {h}):");
        let mut l = lat.clone();
        let p50 = pct(&mut l, 0.5);
        row("run total", lat);
        println!("  sandboxer p50 / this p50 = {:.2}", sb_p50 / p50);
    }

    let (lat, wall) = concurrent(a.n, a.concurrency, |i| {
        let sb = sb.clone();
        async move {
            let t = Instant::now();
            let p = sb.run(pod(i, "conc")).await?;
            Ok::<_, BoxError>((t.elapsed().as_micros() as u64, p.id))
        }
    })
    .await?;
    println!(
        "sandboxer, {} pods, {} concurrent: {:.1} pods/s",
        a.n,
        a.concurrency,
        a.n as f64 / wall.as_secs_f64()
    );
    row("run", lat.iter().map(|x| x.0).collect());
    for (_, id) in lat {
        sb.remove(&id).await?;
    }
    Ok(())
}

/// Run `f(i)` for i in 0..n with `c` at a time; results and the wall time.
async fn concurrent<F, Fut, T>(n: usize, c: usize, f: F) -> Result<(Vec<T>, Duration), BoxError>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, BoxError>> + Send + 'static,
    T: Send + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(c));
    let start = Instant::now();
    let mut handles = Vec::new();
    for i in 0..n {
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

async fn cri_client(sock: &Path) -> Result<RuntimeServiceClient<Channel>, BoxError> {
    let path = sock.to_path_buf();
    let ch = Endpoint::try_from("http://[::]")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await?;
    Ok(RuntimeServiceClient::new(ch))
}

fn cri_pod(i: usize, tag: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: format!("bench-{tag}-{i}"),
            uid: format!("uid-{tag}-{i}"),
            namespace: "bench".into(),
            attempt: 0,
        }),
        hostname: format!("bench-{tag}-{i}"),
        dns_config: Some(cri::DnsConfig {
            servers: vec!["10.96.0.10".into()],
            ..Default::default()
        }),
        // As kubelet sends it for a pod without shareProcessNamespace: each container in a pid
        // namespace of its own, so the pause is not their init.
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: "/crius-bench-pods-cri".into(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Pod as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ipc: cri::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                seccomp: Some(cri::SecurityProfile {
                    profile_type: cri::security_profile::ProfileType::Unconfined as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn cri_run(
    c: &mut RuntimeServiceClient<Channel>,
    i: usize,
    tag: &str,
    handler: &str,
) -> Result<String, BoxError> {
    let r = c
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(cri_pod(i, tag)),
            runtime_handler: handler.to_string(),
        })
        .await?;
    Ok(r.into_inner().pod_sandbox_id)
}

async fn cri_remove(c: &mut RuntimeServiceClient<Channel>, id: &str) -> Result<(), BoxError> {
    c.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: id.to_string(),
    })
    .await?;
    c.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: id.to_string(),
    })
    .await?;
    Ok(())
}

async fn cri_bench(a: &Args, sock: &Path, handler: &str) -> Result<(), BoxError> {
    let c = cri_client(sock).await?;
    let tag = format!("conc-{handler}");
    let handler_s = handler.to_string();
    let (lat, wall) = concurrent(a.n, a.concurrency, |i| {
        let mut c = c.clone();
        let tag = tag.clone();
        let handler = handler_s.clone();
        async move {
            let t = Instant::now();
            let id = cri_run(&mut c, i, &tag, &handler).await?;
            Ok::<_, BoxError>((t.elapsed().as_micros() as u64, id))
        }
    })
    .await?;
    println!(
        "containerd CRI (handler {handler}), {} pods, {} concurrent: {:.1} pods/s",
        a.n,
        a.concurrency,
        a.n as f64 / wall.as_secs_f64()
    );
    row("run", lat.iter().map(|x| x.0).collect());
    let mut c = c;
    for (_, id) in lat {
        cri_remove(&mut c, &id).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // RUST_LOG=crius_sandboxer::cni=debug shows each CNI plugin's time.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let a = args().map_err(|e| format!("{e}\nusage: see the file header"))?;
    sandboxer_bench(&a).await?;
    if let Some(sock) = &a.cri {
        for h in &a.handlers {
            cri_bench(&a, sock, h).await?;
        }
    }
    Ok(())
}
