//! Containers: `create`, `start`, `stop`, `rm`, `ps`, `inspect`, `update`, `run`.

use crate::configfile;
use crate::conn::Cri;
use crate::images;
use crate::output::{self, container_state, print_message, print_value, trunc_id, Format, Table};
use crate::pods;
use crate::timefmt::ago;
use anyhow::{bail, Context};
use clap::Args;
use crius_proto::runtime as cri;
use std::collections::HashMap;

/// When `create`/`run` pull the image.
#[derive(Args, Debug, Clone, Copy)]
pub struct PullFlags {
    /// Never pull the image.
    #[arg(long, conflicts_with = "with_pull")]
    no_pull: bool,
    /// Always pull the image (default: pull only when it is missing).
    #[arg(long)]
    with_pull: bool,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pull: PullFlags,
    /// The pod's id.
    pod_id: String,
    /// ContainerConfig file (JSON or YAML).
    container_config: String,
    /// The pod's PodSandboxConfig file (JSON or YAML).
    pod_config: String,
}

pub async fn create(c: &Cri, a: CreateArgs) -> anyhow::Result<()> {
    let ctr: cri::ContainerConfig =
        configfile::load(&a.container_config, "runtime.v1.ContainerConfig")?;
    let pod: cri::PodSandboxConfig =
        configfile::load(&a.pod_config, "runtime.v1.PodSandboxConfig")?;
    println!("{}", create_in(c, &a.pod_id, ctr, pod, a.pull).await?);
    Ok(())
}

async fn create_in(
    c: &Cri,
    pod_id: &str,
    ctr: cri::ContainerConfig,
    pod: cri::PodSandboxConfig,
    pull: PullFlags,
) -> anyhow::Result<String> {
    let image = ctr
        .image
        .as_ref()
        .map(|i| i.image.clone())
        .filter(|i| !i.is_empty())
        .context("container config names no image (image.image)")?;
    if !pull.no_pull && (pull.with_pull || !images::present(c, &image).await?) {
        images::pull_image(c, &image, None, Some(pod.clone())).await?;
    }
    let r = c
        .slow(
            "CreateContainer",
            c.runtime
                .clone()
                .create_container(cri::CreateContainerRequest {
                    pod_sandbox_id: pod_id.to_string(),
                    config: Some(ctr),
                    sandbox_config: Some(pod),
                }),
        )
        .await?;
    Ok(r.container_id)
}

#[derive(Args, Debug)]
pub struct IdsArgs {
    #[arg(required = true)]
    ids: Vec<String>,
}

pub async fn start(c: &Cri, a: IdsArgs) -> anyhow::Result<()> {
    for id in a.ids {
        start_one(c, &id).await?;
        println!("{id}");
    }
    Ok(())
}

async fn start_one(c: &Cri, id: &str) -> anyhow::Result<()> {
    c.slow(
        &format!("StartContainer {id}"),
        c.runtime
            .clone()
            .start_container(cri::StartContainerRequest {
                container_id: id.to_string(),
            }),
    )
    .await?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short, long, default_value_t = 0)]
    timeout: i64,
    #[arg(required = true)]
    ids: Vec<String>,
}

pub async fn stop(c: &Cri, a: StopArgs) -> anyhow::Result<()> {
    for id in a.ids {
        stop_one(c, &id, a.timeout).await?;
        println!("{id}");
    }
    Ok(())
}

async fn stop_one(c: &Cri, id: &str, timeout: i64) -> anyhow::Result<()> {
    c.slow(
        &format!("StopContainer {id}"),
        c.runtime.clone().stop_container(cri::StopContainerRequest {
            container_id: id.to_string(),
            timeout,
        }),
    )
    .await?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Stop a running container first.
    #[arg(short, long)]
    force: bool,
    /// Remove all containers.
    #[arg(short, long)]
    all: bool,
    ids: Vec<String>,
}

pub async fn rm(c: &Cri, a: RmArgs) -> anyhow::Result<()> {
    let mut ids = a.ids;
    if a.all {
        ids = list(c, cri::ContainerFilter::default())
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
    } else if ids.is_empty() {
        bail!("rm: give container ids, or -a for all");
    }
    for id in ids {
        if a.force {
            stop_one(c, &id, 0).await?;
        }
        c.slow(
            &format!("RemoveContainer {id}"),
            c.runtime
                .clone()
                .remove_container(cri::RemoveContainerRequest {
                    container_id: id.clone(),
                }),
        )
        .await?;
        println!("{id}");
    }
    Ok(())
}

/// ListContainers, newest first.
pub async fn list(c: &Cri, filter: cri::ContainerFilter) -> anyhow::Result<Vec<cri::Container>> {
    let mut v = c
        .quick(
            "ListContainers",
            c.runtime
                .clone()
                .list_containers(cri::ListContainersRequest {
                    filter: Some(filter),
                }),
        )
        .await?
        .containers;
    v.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    Ok(v)
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers, not only running ones.
    #[arg(short, long)]
    all: bool,
    #[arg(long, default_value = "")]
    id: String,
    /// Only containers of this pod.
    #[arg(short, long, default_value = "")]
    pod: String,
    /// Only containers whose name contains this.
    #[arg(long)]
    name: Option<String>,
    /// key=value, repeatable.
    #[arg(long)]
    label: Vec<String>,
    /// created, running, exited or unknown.
    #[arg(short, long)]
    state: Option<String>,
    /// Only containers whose image contains this.
    #[arg(long)]
    image: Option<String>,
    #[arg(short, long)]
    quiet: bool,
    #[arg(short, long)]
    verbose: bool,
    #[arg(long)]
    no_trunc: bool,
    #[arg(short, long)]
    latest: bool,
    #[arg(short = 'n', long)]
    last: Option<usize>,
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

fn state_value(s: &str) -> anyhow::Result<i32> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "created" => 0,
        "running" => 1,
        "exited" => 2,
        "unknown" => 3,
        _ => bail!("--state {s:?}: want created, running, exited or unknown"),
    })
}

pub async fn ps(c: &Cri, a: PsArgs) -> anyhow::Result<()> {
    let state = match (
        &a.state,
        a.all || a.latest || a.last.is_some() || !a.id.is_empty(),
    ) {
        (Some(s), _) => Some(state_value(s)?),
        (None, true) => None,
        (None, false) => Some(1),
    };
    let filter = cri::ContainerFilter {
        id: a.id.clone(),
        state: state.map(|state| cri::ContainerStateValue { state }),
        pod_sandbox_id: a.pod.clone(),
        label_selector: output::labels(&a.label)?,
    };
    let mut items: Vec<cri::Container> = list(c, filter)
        .await?
        .into_iter()
        .filter(|ct| {
            let name = ct.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or("");
            let image = ct.image.as_ref().map(|i| i.image.as_str()).unwrap_or("");
            a.name.as_ref().is_none_or(|n| name.contains(n.as_str()))
                && a.image
                    .as_ref()
                    .is_none_or(|i| image.contains(i.as_str()) || ct.image_ref.contains(i.as_str()))
        })
        .collect();
    if let Some(n) = if a.latest { Some(1) } else { a.last } {
        items.truncate(n);
    }
    if a.quiet {
        for ct in &items {
            println!("{}", ct.id);
        }
        return Ok(());
    }
    if a.output != Format::Table {
        return print_message(
            &cri::ListContainersResponse { containers: items },
            "runtime.v1.ListContainersResponse",
            a.output,
        );
    }
    let pod_names: HashMap<String, String> = pods::list(c, None)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.id, p.metadata.map(|m| m.name).unwrap_or_default()))
        .collect();
    if a.verbose {
        for ct in &items {
            let m = ct.metadata.clone().unwrap_or_default();
            println!(
                "ID: {}\nName: {}\nAttempt: {}\nState: {}",
                ct.id,
                m.name,
                m.attempt,
                container_state(ct.state)
            );
            println!(
                "Image: {}\nImageRef: {}\nPodID: {}\nCreated: {}\n",
                ct.image.clone().unwrap_or_default().image,
                ct.image_ref,
                ct.pod_sandbox_id,
                crate::timefmt::rfc3339(ct.created_at)
            );
        }
        return Ok(());
    }
    let mut t = Table::new(&[
        "CONTAINER",
        "IMAGE",
        "CREATED",
        "STATE",
        "NAME",
        "ATTEMPT",
        "POD ID",
        "POD",
    ]);
    for ct in &items {
        let m = ct.metadata.clone().unwrap_or_default();
        let image = ct.image.clone().unwrap_or_default().image;
        t.row(vec![
            trunc_id(&ct.id, a.no_trunc),
            if a.no_trunc || !image.starts_with("sha256:") {
                image
            } else {
                trunc_id(&image, false)
            },
            ago(ct.created_at),
            container_state(ct.state).into(),
            m.name,
            m.attempt.to_string(),
            trunc_id(&ct.pod_sandbox_id, a.no_trunc),
            pod_names
                .get(&ct.pod_sandbox_id)
                .cloned()
                .unwrap_or_default(),
        ]);
    }
    t.print();
    Ok(())
}

/// ContainerStatus, verbose when asked.
pub async fn status(
    c: &Cri,
    id: &str,
    verbose: bool,
) -> anyhow::Result<cri::ContainerStatusResponse> {
    c.quick(
        &format!("ContainerStatus {id}"),
        c.runtime
            .clone()
            .container_status(cri::ContainerStatusRequest {
                container_id: id.to_string(),
                verbose,
            }),
    )
    .await
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(short, long, value_enum, default_value_t = Format::Json)]
    output: Format,
    #[arg(required = true)]
    ids: Vec<String>,
}

pub async fn inspect(c: &Cri, a: InspectArgs) -> anyhow::Result<()> {
    for id in &a.ids {
        let r = status(c, id, true).await?;
        if a.output == Format::Table {
            let s = r.status.unwrap_or_default();
            let m = s.metadata.clone().unwrap_or_default();
            println!(
                "ID: {}\nName: {}\nState: {}\nExitCode: {}\nReason: {}\nLogPath: {}\n",
                s.id,
                m.name,
                container_state(s.state),
                s.exit_code,
                s.reason,
                s.log_path
            );
            continue;
        }
        let status = match &r.status {
            Some(s) => output::status_with_times(
                crate::protojson::to_value(s, "runtime.v1.ContainerStatus")?,
                &status_times(s),
            ),
            None => serde_yaml::Value::Null,
        };
        print_value(&output::status_info(status, &r.info), a.output)?;
    }
    Ok(())
}

/// crictl's inspect times: RFC 3339 text; startedAt only once started, finishedAt only once exited
/// (or unknown with a finish time), the Go zero time otherwise.
fn status_times(s: &cri::ContainerStatus) -> [(&'static str, String); 3] {
    use crate::timefmt::{go_rfc3339_nano, GO_ZERO_TIME};
    let started = s.state != cri::ContainerState::ContainerCreated as i32;
    let finished = s.state == cri::ContainerState::ContainerExited as i32
        || (s.state == cri::ContainerState::ContainerUnknown as i32 && s.finished_at > 0);
    let time_if = |cond: bool, ns: i64| {
        if cond {
            go_rfc3339_nano(ns)
        } else {
            GO_ZERO_TIME.to_string()
        }
    };
    [
        ("createdAt", go_rfc3339_nano(s.created_at)),
        ("startedAt", time_if(started, s.started_at)),
        ("finishedAt", time_if(finished, s.finished_at)),
    ]
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[arg(long = "cpu-share", default_value_t = 0)]
    cpu_share: i64,
    #[arg(long = "cpu-quota", default_value_t = 0)]
    cpu_quota: i64,
    #[arg(long = "cpu-period", default_value_t = 0)]
    cpu_period: i64,
    #[arg(long = "cpuset-cpus", default_value = "")]
    cpuset_cpus: String,
    #[arg(long = "cpuset-mems", default_value = "")]
    cpuset_mems: String,
    /// Memory limit in bytes.
    #[arg(long, default_value_t = 0)]
    memory: i64,
    #[arg(required = true)]
    ids: Vec<String>,
}

pub async fn update(c: &Cri, a: UpdateArgs) -> anyhow::Result<()> {
    let linux = cri::LinuxContainerResources {
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpu_shares: a.cpu_share,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        memory_limit_in_bytes: a.memory,
        ..Default::default()
    };
    for id in &a.ids {
        c.slow(
            &format!("UpdateContainerResources {id}"),
            c.runtime
                .clone()
                .update_container_resources(cri::UpdateContainerResourcesRequest {
                    container_id: id.clone(),
                    linux: Some(linux.clone()),
                    ..Default::default()
                }),
        )
        .await?;
        println!("{id}");
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[arg(long, default_value = "")]
    runtime: String,
    #[command(flatten)]
    pull: PullFlags,
    /// ContainerConfig file (JSON or YAML).
    container_config: String,
    /// PodSandboxConfig file (JSON or YAML).
    pod_config: String,
}

pub async fn run(c: &Cri, a: RunArgs) -> anyhow::Result<()> {
    let ctr: cri::ContainerConfig =
        configfile::load(&a.container_config, "runtime.v1.ContainerConfig")?;
    let pod: cri::PodSandboxConfig =
        configfile::load(&a.pod_config, "runtime.v1.PodSandboxConfig")?;
    let pod_id = pods::run_pod(c, pod.clone(), &a.runtime).await?;
    let made = async {
        let id = create_in(c, &pod_id, ctr, pod, a.pull).await?;
        start_one(c, &id).await?;
        anyhow::Ok(id)
    }
    .await;
    match made {
        Ok(id) => {
            println!("{id}");
            Ok(())
        }
        Err(e) => {
            // Leave nothing half-made behind: the pod goes with the failed container.
            let mut rt = c.runtime.clone();
            let _ = rt
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: pod_id.clone(),
                })
                .await;
            let _ = rt
                .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: pod_id.clone(),
                })
                .await;
            Err(e.context(format!("run: pod {pod_id} removed again")))
        }
    }
}
