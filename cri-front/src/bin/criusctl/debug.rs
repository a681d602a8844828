//! `debug pod <id>`: one screen with what it takes to debug a pod on this host — netns, IPs, shim
//! pid and socket, pause pid, and each container's CRI and runc state, pid and cgroup path.
//!
//! Sources, in order: the runtime's verbose status `info["info"]` (criusd: `netns_path`, `ips`,
//! `pause_pid`, `cgroup_parent`, `shim_pid`, `shim_socket`; containers: `pid`, `cgroups_path`;
//! containerd's CRI plugin: `pid`, `runtimeSpec.linux.{namespaces,cgroupsPath}`), then the host
//! itself: the shim is the pause's parent, its socket the unix socket it listens on, runc's view comes
//! from `runc --root /run/containerd/runc/<namespace> state <id>`.

use crate::conn::Cri;
use crate::output::{container_state, pod_state};
use crate::{containers, pods};
use clap::Subcommand;
use crius_proto::runtime as cri;
use serde_json::Value;
use std::collections::HashSet;
use std::process::Command;

#[derive(Subcommand, Debug)]
pub enum DebugCmd {
    /// Netns, IPs, shim, pause and containers of a pod.
    Pod {
        /// Pod id (or unique prefix, where the runtime takes one).
        id: String,
    },
}

pub async fn run(c: &Cri, cmd: DebugCmd) -> anyhow::Result<()> {
    match cmd {
        DebugCmd::Pod { id } => pod(c, &id).await,
    }
}

/// `info["info"]` parsed, or Null.
fn verbose(info: &std::collections::HashMap<String, String>) -> Value {
    info.get("info")
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

fn str_at<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| v.pointer(k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

fn u32_at(v: &Value, keys: &[&str]) -> Option<u32> {
    keys.iter()
        .find_map(|k| v.pointer(k).and_then(Value::as_u64))
        .filter(|&p| p > 0)
        .map(|p| p as u32)
}

/// The network namespace path out of an OCI spec's namespaces.
fn spec_netns(v: &Value) -> Option<String> {
    v.pointer("/runtimeSpec/linux/namespaces")?
        .as_array()?
        .iter()
        .find(|n| n.get("type").and_then(Value::as_str) == Some("network"))?
        .get("path")?
        .as_str()
        .map(String::from)
}

/// The parent pid and command name of `pid`.
fn parent_of(pid: u32) -> Option<(u32, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may hold spaces; fields after the last ')' are fixed.
    let after = &stat[stat.rfind(')')? + 2..];
    let ppid: u32 = after.split(' ').nth(1)?.parse().ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{ppid}/comm")).ok()?;
    Some((ppid, comm.trim().to_string()))
}

/// Paths of the unix sockets `pid` listens on (its fds matched against its netns's /proc/net/unix).
fn listening_sockets(pid: u32) -> Vec<String> {
    let mut inodes = HashSet::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(t) = std::fs::read_link(e.path()) {
                let t = t.to_string_lossy().to_string();
                if let Some(i) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(i.to_string());
                }
            }
        }
    }
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/unix")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path; flag 00010000 = listening.
            (f.len() >= 8 && f[3] == "00010000" && inodes.contains(f[6])).then(|| f[7].to_string())
        })
        .collect()
}

/// `runc state` for `id`, under whichever namespace's runc root holds it.
fn runc_state(id: &str) -> Option<Value> {
    let roots = std::fs::read_dir("/run/containerd/runc").ok()?;
    for r in roots.flatten() {
        if r.path().join(id).exists() {
            let out = Command::new("runc")
                .arg("--root")
                .arg(r.path())
                .args(["state", id])
                .output()
                .ok()?;
            return serde_json::from_slice(&out.stdout).ok();
        }
    }
    None
}

/// The cgroup v1 path (or v2 path) of a live process, from /proc/<pid>/cgroup.
fn proc_cgroup(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let pick = |want: &str| {
        text.lines().find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrl, path) = (p.next()?, p.next()?, p.next()?);
            ctrl.split(',').any(|c| c == want).then(|| path.to_string())
        })
    };
    pick("memory").or_else(|| pick("pids")).or_else(|| pick(""))
}

pub async fn pod(c: &Cri, id: &str) -> anyhow::Result<()> {
    let r = pods::status(c, id).await?;
    let s = r.status.clone().unwrap_or_default();
    let info = verbose(&r.info);
    let m = s.metadata.clone().unwrap_or_default();
    println!(
        "Pod        {} ({}/{}, attempt {})",
        s.id, m.namespace, m.name, m.attempt
    );
    println!("State      {}", pod_state(s.state));
    let mut ips: Vec<String> = s
        .network
        .as_ref()
        .map(|n| {
            std::iter::once(n.ip.clone())
                .chain(n.additional_ips.iter().map(|i| i.ip.clone()))
                .filter(|i| !i.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if ips.is_empty() {
        if let Some(a) = info.get("ips").and_then(Value::as_array) {
            ips = a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
        }
    }
    println!(
        "IPs        {}",
        if ips.is_empty() {
            "-".into()
        } else {
            ips.join(", ")
        }
    );
    let netns = str_at(&info, &["/netns_path", "/netnsPath"])
        .map(String::from)
        .or_else(|| spec_netns(&info));
    let host_net = s
        .linux
        .as_ref()
        .and_then(|l| l.namespaces.as_ref())
        .and_then(|n| n.options.as_ref())
        .is_some_and(|o| o.network == 2);
    println!(
        "Netns      {}",
        netns.unwrap_or_else(|| if host_net { "host".into() } else { "-".into() })
    );
    let pause = u32_at(&info, &["/pause_pid", "/pid"]);
    println!("Pause pid  {}", pause.map_or("-".into(), |p| p.to_string()));
    let shim = u32_at(&info, &["/shim_pid"]).or_else(|| {
        pause
            .and_then(parent_of)
            .filter(|(_, comm)| comm.starts_with("containerd-shim"))
            .map(|(p, _)| p)
    });
    let socket = str_at(&info, &["/shim_socket"])
        .map(String::from)
        .or_else(|| shim.and_then(|p| listening_sockets(p).into_iter().next()));
    match shim {
        Some(p) => {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            println!("Shim       pid {p} ({})", comm.trim());
        }
        None => println!("Shim       -"),
    }
    println!("Shim sock  {}", socket.unwrap_or_else(|| "-".into()));
    let cg = str_at(&info, &["/cgroup_parent", "/config/linux/cgroup_parent"])
        .map(String::from)
        .or_else(|| pause.and_then(proc_cgroup));
    println!("Cgroup     {}", cg.unwrap_or_else(|| "-".into()));

    let list = if r.containers_statuses.is_empty() {
        containers::list(
            c,
            cri::ContainerFilter {
                pod_sandbox_id: s.id.clone(),
                ..Default::default()
            },
        )
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect::<Vec<_>>()
    } else {
        r.containers_statuses.iter().map(|c| c.id.clone()).collect()
    };
    println!("\nContainers ({})", list.len());
    for cid in list {
        let cr = containers::status(c, &cid, true).await?;
        let st = cr.status.unwrap_or_default();
        let ci = verbose(&cr.info);
        let runc = runc_state(&cid);
        let pid =
            u32_at(&ci, &["/pid"]).or_else(|| runc.as_ref().and_then(|r| u32_at(r, &["/pid"])));
        let cgroup = str_at(&ci, &["/cgroups_path", "/runtimeSpec/linux/cgroupsPath"])
            .map(String::from)
            .or_else(|| pid.and_then(proc_cgroup));
        let runc_status = runc
            .as_ref()
            .and_then(|r| r.get("status").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| "-".into());
        let name = st.metadata.map(|m| m.name).unwrap_or_default();
        println!("- {name} {}", st.id);
        println!(
            "    state {} (runc: {runc_status})  pid {}  exit {}",
            container_state(st.state),
            pid.map_or("-".into(), |p| p.to_string()),
            if st.state == 2 {
                st.exit_code.to_string()
            } else {
                "-".into()
            }
        );
        println!("    cgroup {}", cgroup.unwrap_or_else(|| "-".into()));
        println!(
            "    image  {}  log {}",
            st.image.map(|i| i.image).unwrap_or_default(),
            st.log_path
        );
    }
    Ok(())
}
