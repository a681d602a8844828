//! `events`: the GetContainerEvents stream, one line per event until interrupted.

use crate::conn::{status_error, Cri};
use crate::output::{self, container_state, Format};
use crate::timefmt::rfc3339;
use clap::Args;
use crius_proto::runtime as cri;

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// table: one line per event; json/yaml: each event whole as crictl prints it (indented
    /// protojson documents one after another; YAML documents separated by `---`).
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

fn kind(t: i32) -> &'static str {
    match t {
        0 => "CONTAINER_CREATED_EVENT",
        1 => "CONTAINER_STARTED_EVENT",
        2 => "CONTAINER_STOPPED_EVENT",
        3 => "CONTAINER_DELETED_EVENT",
        _ => "UNKNOWN_EVENT",
    }
}

pub async fn events(c: &Cri, a: EventsArgs) -> anyhow::Result<()> {
    let mut stream = c
        .runtime
        .clone()
        .get_container_events(cri::GetEventsRequest {})
        .await
        .map_err(|s| status_error("GetContainerEvents", &s))?
        .into_inner();
    loop {
        let ev = tokio::select! {
            m = stream.message() => m.map_err(|s| status_error("GetContainerEvents", &s))?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(ev) = ev else {
            return Ok(());
        };
        match a.output {
            Format::Table => {
                let state = ev
                    .containers_statuses
                    .iter()
                    .find(|s| s.id == ev.container_id)
                    .map(|s| container_state(s.state))
                    .unwrap_or("-");
                println!(
                    "{} {} container={} pod={} state={state}",
                    rfc3339(ev.created_at),
                    kind(ev.container_event_type),
                    ev.container_id,
                    ev.pod_sandbox_status
                        .as_ref()
                        .map(|p| p.id.as_str())
                        .unwrap_or("")
                );
            }
            Format::Json | Format::Yaml => {
                if a.output == Format::Yaml {
                    println!("---");
                }
                output::print_message(&ev, "runtime.v1.ContainerEventResponse", a.output)?;
            }
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
}
