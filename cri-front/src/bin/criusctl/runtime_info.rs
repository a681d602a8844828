//! `version` and `info`.

use crate::conn::Cri;
use crate::output::{info_json, print_value, Format};
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
    let mut v = info_json(&s.info);
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("status".into(), serde_json::to_value(&s.status)?);
    }
    print_value(&v, a.output)
}
