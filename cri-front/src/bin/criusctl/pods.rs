//! Pod sandboxes: `runp`, `stopp`, `rmp`, `pods`, `inspectp`.

use crate::configfile;
use crate::conn::Cri;
use crate::output::{self, pod_state, print_message, print_value, trunc_id, Format, Table};
use crate::timefmt::ago;
use anyhow::bail;
use clap::Args;
use crius_proto::runtime as cri;

#[derive(Args, Debug)]
pub struct RunpArgs {
    /// Runtime handler (RuntimeClass) to run the pod with.
    #[arg(long, default_value = "")]
    pub runtime: String,
    /// PodSandboxConfig file (JSON or YAML).
    pub config: String,
}

pub async fn runp(c: &Cri, a: RunpArgs) -> anyhow::Result<()> {
    let config: cri::PodSandboxConfig = configfile::load(&a.config, "runtime.v1.PodSandboxConfig")?;
    println!("{}", run_pod(c, config, &a.runtime).await?);
    Ok(())
}

/// RunPodSandbox; the new pod's id.
pub async fn run_pod(
    c: &Cri,
    config: cri::PodSandboxConfig,
    runtime: &str,
) -> anyhow::Result<String> {
    let r = c
        .slow(
            "RunPodSandbox",
            c.runtime
                .clone()
                .run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(config),
                    runtime_handler: runtime.to_string(),
                }),
        )
        .await?;
    Ok(r.pod_sandbox_id)
}

#[derive(Args, Debug)]
pub struct IdsArgs {
    #[arg(required = true)]
    pub ids: Vec<String>,
}

pub async fn stopp(c: &Cri, a: IdsArgs) -> anyhow::Result<()> {
    for id in a.ids {
        stop_pod(c, &id).await?;
        println!("Stopped sandbox {id}");
    }
    Ok(())
}

async fn stop_pod(c: &Cri, id: &str) -> anyhow::Result<()> {
    c.slow(
        &format!("StopPodSandbox {id}"),
        c.runtime
            .clone()
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: id.to_string(),
            }),
    )
    .await?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct RmpArgs {
    /// Stop the pod first if it is running.
    #[arg(short, long)]
    force: bool,
    /// Remove all pods.
    #[arg(short, long)]
    all: bool,
    ids: Vec<String>,
}

pub async fn rmp(c: &Cri, a: RmpArgs) -> anyhow::Result<()> {
    let mut ids = a.ids;
    if a.all {
        ids = list(c, None).await?.into_iter().map(|p| p.id).collect();
    } else if ids.is_empty() {
        bail!("rmp: give pod ids, or -a for all");
    }
    for id in ids {
        if a.force {
            stop_pod(c, &id).await?;
        }
        c.slow(
            &format!("RemovePodSandbox {id}"),
            c.runtime
                .clone()
                .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: id.clone(),
                }),
        )
        .await?;
        println!("Removed sandbox {id}");
    }
    Ok(())
}

/// ListPodSandbox, newest first.
pub async fn list(
    c: &Cri,
    filter: Option<cri::PodSandboxFilter>,
) -> anyhow::Result<Vec<cri::PodSandbox>> {
    let mut items = c
        .quick(
            "ListPodSandbox",
            c.runtime
                .clone()
                .list_pod_sandbox(cri::ListPodSandboxRequest { filter }),
        )
        .await?
        .items;
    items.sort_by_key(|p| std::cmp::Reverse(p.created_at));
    Ok(items)
}

#[derive(Args, Debug)]
pub struct PodsArgs {
    #[arg(long, default_value = "")]
    id: String,
    /// Only pods whose name contains this.
    #[arg(long)]
    name: Option<String>,
    /// Only pods whose namespace contains this.
    #[arg(long)]
    namespace: Option<String>,
    /// key=value, repeatable.
    #[arg(long)]
    label: Vec<String>,
    /// ready or notready.
    #[arg(short, long)]
    state: Option<String>,
    #[arg(short, long)]
    quiet: bool,
    #[arg(short, long)]
    verbose: bool,
    #[arg(long)]
    no_trunc: bool,
    /// Only the newest pod.
    #[arg(short, long)]
    latest: bool,
    /// Only the newest N pods.
    #[arg(short = 'n', long)]
    last: Option<usize>,
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

pub async fn pods(c: &Cri, a: PodsArgs) -> anyhow::Result<()> {
    let state = match a.state.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("ready") => Some(cri::PodSandboxStateValue { state: 0 }),
        Some("notready") => Some(cri::PodSandboxStateValue { state: 1 }),
        Some(s) => bail!("--state {s:?}: want ready or notready"),
    };
    let filter = cri::PodSandboxFilter {
        id: a.id,
        state,
        label_selector: output::labels(&a.label)?,
    };
    let mut items: Vec<cri::PodSandbox> = list(c, Some(filter))
        .await?
        .into_iter()
        .filter(|p| {
            let m = p.metadata.clone().unwrap_or_default();
            a.name.as_ref().is_none_or(|n| m.name.contains(n.as_str()))
                && a.namespace
                    .as_ref()
                    .is_none_or(|n| m.namespace.contains(n.as_str()))
        })
        .collect();
    let keep = if a.latest { Some(1) } else { a.last };
    if let Some(n) = keep {
        items.truncate(n);
    }
    if a.quiet {
        for p in &items {
            println!("{}", p.id);
        }
        return Ok(());
    }
    if a.output != Format::Table {
        return print_message(
            &cri::ListPodSandboxResponse { items },
            "runtime.v1.ListPodSandboxResponse",
            a.output,
        );
    }
    if a.verbose {
        for p in &items {
            let m = p.metadata.clone().unwrap_or_default();
            println!("ID: {}", p.id);
            println!(
                "Name: {}\nUID: {}\nNamespace: {}\nAttempt: {}",
                m.name, m.uid, m.namespace, m.attempt
            );
            println!("Status: {}", pod_state(p.state));
            println!("Created: {}", crate::timefmt::rfc3339(p.created_at));
            println!("Runtime: {}", p.runtime_handler);
            if !p.labels.is_empty() {
                println!("Labels:");
            }
            for (k, v) in sorted(&p.labels) {
                println!("\t{k} -> {v}");
            }
            println!();
        }
        return Ok(());
    }
    let mut t = Table::new(&[
        "POD ID",
        "CREATED",
        "STATE",
        "NAME",
        "NAMESPACE",
        "ATTEMPT",
        "RUNTIME",
    ]);
    for p in &items {
        let m = p.metadata.clone().unwrap_or_default();
        t.row(vec![
            trunc_id(&p.id, a.no_trunc),
            ago(p.created_at),
            pod_state(p.state).into(),
            m.name,
            m.namespace,
            m.attempt.to_string(),
            if p.runtime_handler.is_empty() {
                "(default)".into()
            } else {
                p.runtime_handler.clone()
            },
        ]);
    }
    t.print();
    Ok(())
}

fn sorted(m: &std::collections::HashMap<String, String>) -> Vec<(&String, &String)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort();
    v
}

/// PodSandboxStatus with verbose info.
pub async fn status(c: &Cri, id: &str) -> anyhow::Result<cri::PodSandboxStatusResponse> {
    c.quick(
        &format!("PodSandboxStatus {id}"),
        c.runtime
            .clone()
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.to_string(),
                verbose: true,
            }),
    )
    .await
}

#[derive(Args, Debug)]
pub struct InspectpArgs {
    #[arg(short, long, value_enum, default_value_t = Format::Json)]
    output: Format,
    #[arg(required = true)]
    ids: Vec<String>,
}

pub async fn inspectp(c: &Cri, a: InspectpArgs) -> anyhow::Result<()> {
    for id in &a.ids {
        let r = status(c, id).await?;
        if a.output == Format::Table {
            let s = r.status.unwrap_or_default();
            let m = s.metadata.clone().unwrap_or_default();
            let ip = s.network.as_ref().map(|n| n.ip.clone()).unwrap_or_default();
            println!(
                "ID: {}\nName: {}\nNamespace: {}\nState: {}\nIP: {ip}\nCreated: {}",
                s.id,
                m.name,
                m.namespace,
                pod_state(s.state),
                crate::timefmt::rfc3339(s.created_at)
            );
            continue;
        }
        // crictl: the status with createdAt as RFC 3339 text, then the verbose info.
        let status = match &r.status {
            Some(s) => output::status_with_times(
                crate::protojson::to_value(s, "runtime.v1.PodSandboxStatus")?,
                &[("createdAt", crate::timefmt::go_rfc3339_nano(s.created_at))],
            ),
            None => serde_yaml::Value::Null,
        };
        print_value(&output::status_info(status, &r.info), a.output)?;
    }
    Ok(())
}
