//! Fault injection: kill -9 of criusd, containerd or the pod's shim at a seeded random moment
//! inside RunPodSandbox, CreateContainer, StartContainer, StopPodSandbox and RemovePodSandbox,
//! restart what was killed, then check that every state criusd reports is true (a RUNNING
//! container has a live process in its cgroup, an EXITED one has none, a READY pod has its netns)
//! and that stop and remove succeed; the leak check runs at the end.
//!
//! Seeded and bounded: each round takes the next (RPC, target) pair, so 15 rounds cover every pair
//! once. `CRIUS_TEST_CHAOS_ROUNDS` (default 15) and `CRIUS_TEST_CHAOS_SEED` (default 16) for a long
//! run by hand; the seed is printed, and a failure names the round.

mod criusd_common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crius_proto::runtime as cri;
use crius_proto::tonic::Code;
use crius_test::cri::CriClient;
use crius_test::{env_or_skip, registry, TestEnv};
use criusd_common::{
    client, container_config, finish, pod_config, pod_log_dir, pull, rt, spawn, start, try_create,
    try_run_pod, Criusd,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rpc {
    RunPod,
    Create,
    Start,
    StopPod,
    RemovePod,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    Criusd,
    Containerd,
    Shim,
}

const RPCS: [Rpc; 5] = [
    Rpc::RunPod,
    Rpc::Create,
    Rpc::Start,
    Rpc::StopPod,
    Rpc::RemovePod,
];
const TARGETS: [Target; 3] = [Target::Criusd, Target::Containerd, Target::Shim];

/// xorshift64*: enough randomness for kill timings, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn criusd_chaos_kill9_inside_pod_and_container_rpcs() {
    let mut env = env_or_skip!("criusd_chaos_kill9_inside_pod_and_container_rpcs");
    let Some(mut d) = start(&mut env) else { return };
    let rounds = env_u64("CRIUS_TEST_CHAOS_ROUNDS", 15);
    let seed = env_u64("CRIUS_TEST_CHAOS_SEED", 16).max(1);
    eprintln!("chaos: {rounds} rounds, seed {seed} (CRIUS_TEST_CHAOS_SEED)");
    let mut rng = Rng(seed);
    // Every pair once per 15 rounds, in a seeded order.
    let mut pairs: Vec<(Rpc, Target)> = RPCS
        .iter()
        .flat_map(|&r| TARGETS.iter().map(move |&t| (r, t)))
        .collect();
    for i in (1..pairs.len()).rev() {
        pairs.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let log_dir = pod_log_dir(&env);
    let runtime = rt();
    runtime.block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
    });
    for round in 0..rounds as usize {
        let (rpc, target) = pairs[round % pairs.len()];
        let delay = Duration::from_millis(rng.below(if rpc == Rpc::RunPod { 40 } else { 80 }));
        let what =
            format!("round {round} (seed {seed}): kill -9 {target:?} {delay:?} into {rpc:?}");
        eprintln!("chaos: {what}");
        let pcfg = pod_config(&env, &format!("chaos-{round}"), &log_dir);
        runtime.block_on(one_round(
            &mut env, &mut d, rpc, target, delay, &pcfg, &what,
        ));
    }
    finish(env, &d);
}

/// Bring a pod to just before `rpc`, run it with `target` killed `delay` into it, restart, check.
async fn one_round(
    env: &mut TestEnv,
    d: &mut Criusd,
    rpc: Rpc,
    target: Target,
    delay: Duration,
    pcfg: &cri::PodSandboxConfig,
    what: &str,
) {
    let mut c = client(d).await;
    let mut pod = String::new();
    let mut ctr = String::new();
    if rpc != Rpc::RunPod {
        pod = criusd_common::run_pod(&mut c, d, pcfg).await;
    }
    let cfg = container_config("sleeper", registry::BUSYBOX, &["sleep", "1000"]);
    if matches!(rpc, Rpc::Start | Rpc::StopPod | Rpc::RemovePod) {
        ctr = try_create(&mut c, &pod, cfg.clone(), pcfg)
            .await
            .unwrap_or_else(|e| panic!("{what}: create: {e}\n{}", d.log_tail()));
    }
    if matches!(rpc, Rpc::StopPod | Rpc::RemovePod) {
        criusd_common::start_container(&mut c, d, &ctr, "sleeper").await;
    }

    let call = {
        let mut c = c.clone();
        let (pod, ctr, pcfg) = (pod.clone(), ctr.clone(), pcfg.clone());
        tokio::spawn(async move {
            let r = match rpc {
                Rpc::RunPod => try_run_pod(&mut c, &pcfg).await.map(|_| ()),
                Rpc::Create => try_create(&mut c, &pod, cfg, &pcfg).await.map(|_| ()),
                Rpc::Start => c
                    .runtime
                    .start_container(cri::StartContainerRequest { container_id: ctr })
                    .await
                    .map(|_| ()),
                Rpc::StopPod => criusd_common::stop_pod(&mut c, &pod).await,
                Rpc::RemovePod => criusd_common::remove_pod(&mut c, &pod).await,
            };
            r.err().map(|s| (s.code(), s.message().to_string()))
        })
    };
    tokio::time::sleep(delay).await;
    kill(env, d, target).await;
    let answer = tokio::time::timeout(Duration::from_secs(90), call).await;
    eprintln!("chaos:   {rpc:?} answered {answer:?}");
    assert!(
        answer.is_ok(),
        "{what}: the RPC never answered\n{}",
        d.log_tail()
    );
    // A failed RunPodSandbox names the pod it gave up on: its shim's leftovers are checked too.
    let mut pod_ids: Vec<String> = answer
        .ok()
        .and_then(|r| r.ok())
        .flatten()
        .and_then(|(_, msg)| pod_id_in(&msg))
        .into_iter()
        .collect();
    pod_ids.extend((!pod.is_empty()).then(|| pod.clone()));

    // Everything criusd reports is true, then every pod stops and goes.
    let mut c = client(d).await;
    check_truth(&mut c, d, what).await;
    let pods = list_pods(&c, d, what).await;
    for p in pods {
        let id = p.id.clone();
        pod_ids.push(id.clone());
        retry(what, d, || {
            let mut c = c.clone();
            let id = id.clone();
            async move { criusd_common::stop_pod(&mut c, &id).await }
        })
        .await;
        retry(what, d, || {
            let mut c = c.clone();
            let id = id.clone();
            async move { criusd_common::remove_pod(&mut c, &id).await }
        })
        .await;
    }
    let left = criusd_common::all_containers(&mut c).await;
    assert!(left.is_empty(), "{what}: containers left {left:?}");
    let netns = entries(&d.dir.join("run/netns"));
    assert!(
        netns.is_empty(),
        "{what}: netns left {netns:?}\n{}",
        d.log_tail()
    );
    // No shim bundle and no shim socket outlives its pod.
    let ctrd = env.running_containerd().expect("containerd");
    let state = ctrd.dir().join("state/io.containerd.runtime.v2.task/crius");
    // containerd's own half-deleted bundles (`.<id>`, renamed before removal) when containerd
    // itself was killed mid-delete are containerd's to mend (1.6 skips them on restart).
    let bundles = || {
        entries(&state)
            .into_iter()
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect::<Vec<_>>()
    };
    // containerd cleans up after a dead shim in the background: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bundles().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bundles = bundles();
    assert!(
        bundles.is_empty(),
        "{what}: shim bundles left {bundles:?}\n{}\n--- containerd ---\n{}",
        d.log_tail(),
        ctrd.log_tail()
    );
    let address = ctrd.socket().display().to_string();
    for id in pod_ids {
        let sock = shim_socket(&address, &id);
        // A dying shim removes its own socket as it goes: a moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        while sock.exists() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A shim killed within milliseconds of its spawn once bound its socket after the pod's
        // teardown: its server now exits when its `start` process died first.
        assert!(
            !sock.exists(),
            "{what}: shim socket {} of pod {id} left\n{}",
            sock.display(),
            d.log_tail()
        );
    }
}

/// A pod id (64 hex digits after "pod ") in an error message.
fn pod_id_in(msg: &str) -> Option<String> {
    let at = msg.find("pod ")? + 4;
    let id: String = msg[at..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    (id.len() == 64).then_some(id)
}

/// Where the shim of pod `id` listens: containerd's rule (sha256 of `<address>/<ns>/<id>`).
fn shim_socket(address: &str, id: &str) -> PathBuf {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{address}/crius/{id}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    PathBuf::from("/run/containerd/s").join(hex)
}

/// kill -9 `target` and bring it back (a shim is not restarted: containerd notices it died).
async fn kill(env: &mut TestEnv, d: &mut Criusd, target: Target) {
    match target {
        Target::Criusd => {
            env.stop_service(d.pid, true).expect("kill -9 criusd");
            spawn(env, d);
        }
        Target::Containerd => {
            let ctrd = env.running_containerd().expect("containerd");
            ctrd.kill9().expect("kill -9 containerd");
            tokio::time::sleep(Duration::from_millis(200)).await;
            ctrd.restart().expect("restart containerd");
        }
        Target::Shim => {
            // The pod's shim may not exist yet (early in RunPodSandbox): wait for one, briefly.
            let sock = env
                .running_containerd()
                .expect("containerd")
                .socket()
                .display()
                .to_string();
            let deadline = Instant::now() + Duration::from_millis(500);
            loop {
                let shims = shims_of(&sock);
                for pid in &shims {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(*pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                if !shims.is_empty() || Instant::now() >= deadline {
                    eprintln!("chaos:   killed shims {shims:?}");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// Live shim processes of the test's containerd.
fn shims_of(socket: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("containerd-shim") && cmd.contains(socket) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Not exited (zombies linger here: PID 1 reaps slowly).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

/// Live processes in the cgroup `path` (any v1 controller that has it, or the v2 tree).
fn cgroup_procs(path: &str) -> Vec<i32> {
    let rel = path.trim_start_matches('/');
    for root in ["pids", "memory", "cpu,cpuacct", "unified", ""] {
        let file = Path::new("/sys/fs/cgroup")
            .join(root)
            .join(rel)
            .join("cgroup.procs");
        if let Ok(s) = std::fs::read_to_string(&file) {
            return s
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .filter(|p| alive(*p))
                .collect();
        }
    }
    Vec::new()
}

/// Container `id`'s reported state, its cgroup path and the live processes in it.
async fn observe(
    c: &mut CriClient,
    d: &Criusd,
    what: &str,
    id: &str,
) -> (cri::ContainerState, String, Vec<i32>) {
    let r = retry(what, d, || {
        let mut c = c.clone();
        let id = id.to_string();
        async move {
            c.runtime
                .container_status(cri::ContainerStatusRequest {
                    container_id: id,
                    verbose: true,
                })
                .await
                .map(|r| r.into_inner())
        }
    })
    .await;
    let st = r.status.expect("status");
    let info: serde_json::Value =
        serde_json::from_str(r.info.get("info").map(String::as_str).unwrap_or("{}"))
            .unwrap_or_default();
    let cg = info["cgroups_path"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let state = cri::ContainerState::try_from(st.state).unwrap_or_default();
    // criusd kills what an exited container left in its cgroup: SIGKILL takes a moment.
    let mut procs = cgroup_procs(&cg);
    let deadline = Instant::now() + Duration::from_secs(10);
    while state == cri::ContainerState::ContainerExited
        && !procs.is_empty()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        procs = cgroup_procs(&cg);
    }
    (state, cg, procs)
}

/// Each container's reported state against its cgroup, each pod's against its netns.
async fn check_truth(c: &mut CriClient, d: &Criusd, what: &str) {
    let ids: Vec<String> = retry(what, d, || {
        let mut c = c.clone();
        async move {
            c.runtime
                .list_containers(cri::ListContainersRequest { filter: None })
                .await
                .map(|r| r.into_inner().containers)
        }
    })
    .await
    .into_iter()
    .map(|k| k.id)
    .collect();
    for id in ids {
        // A RUNNING answer and the cgroup read after it are two moments: a process that ends in
        // between (containerd kills a dead shim's containers) must be reported EXITED soon after.
        let deadline = Instant::now() + Duration::from_secs(5);
        let (state, cg, procs) = loop {
            let seen = observe(c, d, what, &id).await;
            if seen.0 != cri::ContainerState::ContainerRunning
                || !seen.2.is_empty()
                || Instant::now() >= deadline
            {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        eprintln!(
            "chaos:   container {} {state:?}, cgroup procs {procs:?}",
            &id[..12]
        );
        match state {
            cri::ContainerState::ContainerRunning => assert!(
                !procs.is_empty(),
                "{what}: container {id} reported RUNNING with no process in {cg}\n{}",
                d.log_tail()
            ),
            cri::ContainerState::ContainerExited => assert!(
                procs.is_empty(),
                "{what}: container {id} reported EXITED while {procs:?} run in {cg}\n{}",
                d.log_tail()
            ),
            _ => {}
        }
    }
    let pods = list_pods(c, d, what).await;
    for p in pods {
        if p.state == cri::PodSandboxState::SandboxReady as i32 {
            let ns = d.dir.join("run/netns").join(&p.id);
            assert!(
                ns.exists(),
                "{what}: pod {} reported READY without its netns",
                p.id
            );
        }
    }
}

/// `f` until it succeeds; UNAVAILABLE (criusd or containerd coming back) is retried for up to a
/// minute, any other error fails the round.
async fn retry<T, F, Fut>(what: &str, d: &Criusd, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crius_proto::tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("{what}: {e}\n{}", d.log_tail()),
        }
    }
}

/// Every pod criusd lists (retried while it comes back).
async fn list_pods(c: &CriClient, d: &Criusd, what: &str) -> Vec<cri::PodSandbox> {
    retry(what, d, || {
        let mut c = c.clone();
        async move {
            c.runtime
                .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
                .await
                .map(|r| r.into_inner().items)
        }
    })
    .await
}

/// The state a crash mid-StartContainer leaves, made on purpose: criusd's record says CREATED
/// while the task was started behind its back (as a start cut off after Tasks.Start reached the
/// shim). ContainerStatus says RUNNING, and StartContainer then is refused as for any running
/// container, instead of failing the start into EXITED while the process runs.
#[test]
fn criusd_status_follows_a_task_started_behind_its_back() {
    let mut env = env_or_skip!("criusd_status_follows_a_task_started_behind_its_back");
    let Some(d) = start(&mut env) else { return };
    let log_dir = pod_log_dir(&env);
    let runtime = rt();
    let pcfg = pod_config(&env, "behind", &log_dir);
    let (pod, id) = runtime.block_on(async {
        let mut c = client(&d).await;
        pull(&mut c, registry::BUSYBOX).await;
        let pod = criusd_common::run_pod(&mut c, &d, &pcfg).await;
        let cfg = container_config("sleeper", registry::BUSYBOX, &["sleep", "1000"]);
        let id = try_create(&mut c, &pod, cfg, &pcfg).await.expect("create");
        (pod, id)
    });
    criusd_common::ctr(&mut env, &["tasks", "start", "-d", "--null-io", &id]);
    runtime.block_on(async {
        let mut c = client(&d).await;
        let st = criusd_common::container_state(&mut c, &id).await;
        assert_eq!(
            st.state,
            cri::ContainerState::ContainerRunning as i32,
            "a started task is RUNNING: {st:?}\n{}",
            d.log_tail()
        );
        // It runs, as its status says: a second start is refused, nothing is marked EXITED.
        let e = c
            .runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect_err("already running");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        let st = criusd_common::container_state(&mut c, &id).await;
        assert_eq!(
            st.state,
            cri::ContainerState::ContainerRunning as i32,
            "{st:?}"
        );
        criusd_common::stop_pod(&mut c, &pod)
            .await
            .expect("stop pod");
        let st = criusd_common::container_state(&mut c, &id).await;
        assert_eq!(
            st.state,
            cri::ContainerState::ContainerExited as i32,
            "{st:?}"
        );
        criusd_common::remove_pod(&mut c, &pod)
            .await
            .expect("remove pod");
    });
    finish(env, &d);
}
