//! Resource usage: `stats` (containers) and `statsp` (pods).

use crate::conn::Cri;
use crate::output::{self, human_size, print_message, trunc_id, Format, Table};
use clap::Args;
use crius_proto::runtime as cri;

/// CPU % from nano-cores (what the runtime measured over its own window).
fn cpu_pct(cpu: &Option<cri::CpuUsage>) -> String {
    let nano = cpu
        .as_ref()
        .and_then(|c| c.usage_nano_cores.as_ref())
        .map(|v| v.value)
        .unwrap_or(0);
    format!("{:.2}", nano as f64 / 1e7)
}

fn mem(m: &Option<cri::MemoryUsage>) -> String {
    human_size(
        m.as_ref()
            .and_then(|m| m.working_set_bytes.as_ref())
            .map(|v| v.value)
            .unwrap_or(0),
    )
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Include stopped containers.
    #[arg(short, long)]
    all: bool,
    #[arg(long, default_value = "")]
    id: String,
    #[arg(short, long, default_value = "")]
    pod: String,
    #[arg(long)]
    label: Vec<String>,
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// One container (same as --id).
    container: Option<String>,
}

pub async fn stats(c: &Cri, a: StatsArgs) -> anyhow::Result<()> {
    let id = a.container.clone().unwrap_or(a.id.clone());
    let mut items = if id.is_empty() {
        c.quick(
            "ListContainerStats",
            c.runtime
                .clone()
                .list_container_stats(cri::ListContainerStatsRequest {
                    filter: Some(cri::ContainerStatsFilter {
                        id: String::new(),
                        pod_sandbox_id: a.pod.clone(),
                        label_selector: output::labels(&a.label)?,
                    }),
                }),
        )
        .await?
        .stats
    } else {
        c.quick(
            &format!("ContainerStats {id}"),
            c.runtime
                .clone()
                .container_stats(cri::ContainerStatsRequest { container_id: id }),
        )
        .await?
        .stats
        .into_iter()
        .collect()
    };
    if !a.all && a.container.is_none() && a.id.is_empty() {
        // Only running containers, like crictl: ask which ones run.
        let running: std::collections::HashSet<String> = crate::containers::list(
            c,
            cri::ContainerFilter {
                state: Some(cri::ContainerStateValue { state: 1 }),
                ..Default::default()
            },
        )
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
        items.retain(|s| {
            s.attributes
                .as_ref()
                .is_some_and(|a| running.contains(&a.id))
        });
    }
    if a.output != Format::Table {
        return print_message(
            &cri::ListContainerStatsResponse { stats: items },
            "runtime.v1.ListContainerStatsResponse",
            a.output,
        );
    }
    let mut t = Table::new(&["CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"]);
    for s in &items {
        let at = s.attributes.clone().unwrap_or_default();
        let fs = s.writable_layer.clone().unwrap_or_default();
        t.row(vec![
            trunc_id(&at.id, false),
            at.metadata.map(|m| m.name).unwrap_or_default(),
            cpu_pct(&s.cpu),
            mem(&s.memory),
            human_size(fs.used_bytes.map(|v| v.value).unwrap_or(0)),
            fs.inodes_used.map(|v| v.value).unwrap_or(0).to_string(),
        ]);
    }
    t.print();
    Ok(())
}

#[derive(Args, Debug)]
pub struct StatspArgs {
    #[arg(long, default_value = "")]
    id: String,
    #[arg(long)]
    label: Vec<String>,
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    pod: Option<String>,
}

pub async fn statsp(c: &Cri, a: StatspArgs) -> anyhow::Result<()> {
    let id = a.pod.clone().unwrap_or(a.id.clone());
    let items = if id.is_empty() {
        c.quick(
            "ListPodSandboxStats",
            c.runtime
                .clone()
                .list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest {
                    filter: Some(cri::PodSandboxStatsFilter {
                        id: String::new(),
                        label_selector: output::labels(&a.label)?,
                    }),
                }),
        )
        .await?
        .stats
    } else {
        c.quick(
            &format!("PodSandboxStats {id}"),
            c.runtime
                .clone()
                .pod_sandbox_stats(cri::PodSandboxStatsRequest { pod_sandbox_id: id }),
        )
        .await?
        .stats
        .into_iter()
        .collect()
    };
    if a.output != Format::Table {
        return print_message(
            &cri::ListPodSandboxStatsResponse { stats: items },
            "runtime.v1.ListPodSandboxStatsResponse",
            a.output,
        );
    }
    let mut t = Table::new(&["POD", "POD ID", "CPU %", "MEM"]);
    for s in &items {
        let at = s.attributes.clone().unwrap_or_default();
        let linux = s.linux.clone().unwrap_or_default();
        t.row(vec![
            at.metadata.map(|m| m.name).unwrap_or_default(),
            trunc_id(&at.id, false),
            cpu_pct(&linux.cpu),
            mem(&linux.memory),
        ]);
    }
    t.print();
    Ok(())
}
