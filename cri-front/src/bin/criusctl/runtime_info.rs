//! `version` and `info`.

use crate::conn::Cri;
use crate::output::{print_value, status_info, Format};
use clap::Args;
use crius_proto::runtime as cri;

pub async fn version(c: &Cri) -> anyhow::Result<()> {
    let v = c
        .quick(
            "Version",
            c.runtime.clone().version(cri::VersionRequest {
                version: "v1".into(),
            }),
        )
        .await?;
    println!("Version:  {}", v.version);
    println!("RuntimeName:  {}", v.runtime_name);
    println!("RuntimeVersion:  {}", v.runtime_version);
    println!("RuntimeApiVersion:  {}", v.runtime_api_version);
    Ok(())
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[arg(short, long, value_enum, default_value_t = Format::Json)]
    output: Format,
}

pub async fn info(c: &Cri, a: InfoArgs) -> anyhow::Result<()> {
    let s = c
        .quick(
            "Status",
            c.runtime
                .clone()
                .status(cri::StatusRequest { verbose: true }),
        )
        .await?;
    let status = match &s.status {
        Some(st) => crate::protojson::to_value(st, "runtime.v1.RuntimeStatus")?,
        None => serde_yaml::Value::Null,
    };
    print_value(&status_info(status, &s.info), a.output)
}
