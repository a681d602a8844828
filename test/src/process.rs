//! Small process helpers: run a command for its output, find processes by what they carry.

use anyhow::{bail, Context};
use std::path::Path;
use std::process::Command;

/// Run `cmd`, return its stdout; a non-zero exit becomes an error with the command and its stderr.
pub fn output(cmd: &mut Command) -> crate::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True when `name` runs as a program on PATH.
pub fn have_tool(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(name).is_file()))
        .unwrap_or(false)
}

/// One process as the leak check sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcInfo {
    pub pid: i32,
    pub comm: String,
    pub cmdline: String,
    pub cgroup: String,
}

/// Every live process on the machine (those that vanish while being read are skipped). Zombies are
/// left out: they have exited and hold nothing but a pid, and reaping orphans is PID 1's job (on
/// these machines PID 1 is slow to do it, so exited shims linger as zombies of PID 1).
pub fn all_processes() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_proc)
        .collect()
}

fn read_proc(pid: i32) -> Option<ProcInfo> {
    let base = Path::new("/proc").join(pid.to_string());
    let stat = std::fs::read_to_string(base.join("stat")).ok()?;
    // The state letter follows the command name, which is in parentheses and may hold spaces.
    if stat
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('Z'))
    {
        return None;
    }
    let comm = std::fs::read_to_string(base.join("comm")).ok()?;
    let cmdline = std::fs::read(base.join("cmdline")).ok()?;
    let cgroup = std::fs::read_to_string(base.join("cgroup")).unwrap_or_default();
    Some(ProcInfo {
        pid,
        comm: comm.trim().to_string(),
        cmdline: String::from_utf8_lossy(&cmdline)
            .replace('\0', " ")
            .trim()
            .to_string(),
        cgroup,
    })
}

/// SIGKILL every process whose command line contains `needle` (shims of a dead test containerd).
pub fn kill_matching(needle: &str) {
    for p in all_processes() {
        if p.pid != std::process::id() as i32 && p.cmdline.contains(needle) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Lazily unmount every mount point under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let mut points: Vec<String> = crate::leaks::mounts()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| Path::new(m).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}
