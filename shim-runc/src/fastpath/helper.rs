//! The pause helper: the shim binary re-executed in helper mode, before any
//! thread exists, so it may fork freely. It enters the namespaces, applies
//! the process settings and, after the shim's start signal, execs the pause;
//! the shim moves it into the pod's cgroup meanwhile.
//!
//! Protocol with the shim: the plan is argv[2] (JSON); stdin is the start
//! pipe (one byte = go, EOF = abandon; with `await_cgroup`, a first byte
//! once the shim has moved the helper into the pod's cgroup, which it does
//! while the helper starts up); stderr is /dev/null, opened read-write by the
//! shim, for the pause's stdio; stdout is the report pipe: the
//! helper writes `pid <n>` once the pause process exists, then `ready` once
//! it is set up, or `error <msg>`; after the start signal an exec failure is
//! written there too, and a clean EOF means the pause is running.

use std::{
    ffi::CString,
    fs::File,
    io::{Read, Write},
    os::fd::{AsFd, OwnedFd},
};

use nix::{
    fcntl::{fcntl, FcntlArg, FdFlag},
    mount::{mount, umount2, MntFlags, MsFlags},
    sched::{setns, unshare, CloneFlags},
    sys::{
        resource::{setrlimit, Resource},
        wait::{waitpid, WaitStatus},
    },
    unistd::{
        chdir, chroot, dup2_stderr, dup2_stdin, dup2_stdout, execve, pivot_root, setgid, setgroups,
        sethostname, setuid, Gid, Pid, Uid,
    },
};

use super::plan::{cap_last, Plan, UserNs};
use crate::sys;

pub const HELPER_ARG: &str = "__crius-pause-helper";

fn ns_flag(kind: &str) -> Option<CloneFlags> {
    Some(match kind {
        "pid" => CloneFlags::CLONE_NEWPID,
        "network" => CloneFlags::CLONE_NEWNET,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "mount" => CloneFlags::CLONE_NEWNS,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        _ => return None,
    })
}

/// Entry point of helper mode; never returns.
pub fn main(plan_json: &str) -> ! {
    let mut report = std::io::stdout();
    let plan: Plan = match serde_json::from_str(plan_json) {
        Ok(p) => p,
        Err(e) => fail(&mut report, &format!("bad plan: {e}")),
    };
    match prepare(&plan) {
        Ok(devnull) => run(&plan, devnull, report),
        Err(e) => fail(&mut report, &e),
    }
}

fn fail(report: &mut impl Write, msg: &str) -> ! {
    let _ = writeln!(report, "error {msg}");
    let _ = report.flush();
    sys::exit_now(1)
}

/// Everything done as the helper itself, before the pause process splits off.
fn prepare(plan: &Plan) -> Result<File, String> {
    // The shim's /dev/null: the pod's device rules, which may forbid opening it, can apply
    // to the helper at any moment now.
    let devnull = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .map_err(|e| format!("dup /dev/null: {e}"))?;
    // Open every namespace first: joining the net ns hides nothing, but a
    // later setns could make the paths resolve elsewhere.
    let mut joins = Vec::new();
    for (kind, path) in &plan.join {
        let flag = ns_flag(kind).ok_or_else(|| format!("unknown namespace {kind}"))?;
        let f = File::open(path).map_err(|e| format!("open {kind} namespace {path}: {e}"))?;
        joins.push((flag, f, path));
    }
    for (flag, f, path) in &joins {
        setns(f.as_fd(), *flag).map_err(|e| format!("setns {path}: {e}"))?;
    }
    // Both need CAP_SYS_RESOURCE in the host's user namespace: before leaving it.
    if let Some(score) = plan.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .map_err(|e| format!("oom_score_adj {score}: {e}"))?;
    }
    for (res, soft, hard) in &plan.rlimits {
        let r = rlimit_resource(*res).ok_or_else(|| format!("rlimit {res}"))?;
        setrlimit(r, *soft, *hard).map_err(|e| format!("setrlimit {res}: {e}"))?;
    }
    // First of the new namespaces, so that it owns the others.
    if let Some(u) = &plan.userns {
        enter_new_userns(u)?;
    }
    if plan.await_cgroup {
        // Unbuffered: the start byte that follows is the pause's to read.
        let mut moved = [0u8; 1];
        match nix::unistd::read(std::io::stdin().as_fd(), &mut moved) {
            Ok(1) => {}
            _ => return Err("the shim did not move the helper into the pod's cgroup".into()),
        }
    }
    let mut new = CloneFlags::empty();
    for kind in &plan.new {
        new |= ns_flag(kind).ok_or_else(|| format!("unknown namespace {kind}"))?;
    }
    if !new.is_empty() {
        unshare(new).map_err(|e| format!("unshare {new:?}: {e}"))?;
    }
    if new.contains(CloneFlags::CLONE_NEWNS) {
        // Nothing the pause does may propagate back to the host.
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(|e| format!("make / rslave: {e}"))?;
    }
    if let Some(h) = &plan.hostname {
        sethostname(h).map_err(|e| format!("sethostname {h}: {e}"))?;
    }
    // /proc/sys files act on the namespaces of whoever opens them: ours now.
    for (k, v) in &plan.sysctls {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).map_err(|e| format!("sysctl {k}={v}: {e}"))?;
    }
    Ok(devnull)
}

/// Moves the helper into a new user namespace with the plan's mappings. A process cannot map
/// ids of the namespace it left, so a child that stays behind (as root of the host's) writes
/// them, once the helper has unshared.
fn enter_new_userns(u: &UserNs) -> Result<(), String> {
    let helper = std::process::id();
    let (unshared_r, unshared_w) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    let child = sys::fork_single_threaded().map_err(|e| format!("fork: {e}"))?;
    if child == 0 {
        drop(unshared_w);
        let mut b = [0u8; 1];
        let ok = matches!(File::from(unshared_r).read(&mut b), Ok(1))
            && std::fs::write(format!("/proc/{helper}/uid_map"), &u.uid_map).is_ok()
            && std::fs::write(format!("/proc/{helper}/gid_map"), &u.gid_map).is_ok();
        sys::exit_now(if ok { 0 } else { 1 });
    }
    drop(unshared_r);
    let unshared = unshare(CloneFlags::CLONE_NEWUSER);
    if unshared.is_ok() {
        let _ = File::from(unshared_w).write_all(b"1");
    }
    let status = waitpid(Pid::from_raw(child), None).map_err(|e| format!("waitpid: {e}"))?;
    unshared.map_err(|e| format!("unshare user namespace: {e}"))?;
    match status {
        WaitStatus::Exited(_, 0) => Ok(()),
        s => Err(format!(
            "writing the user namespace's uid_map {:?} / gid_map {:?} failed ({s:?})",
            u.uid_map.trim(),
            u.gid_map.trim()
        )),
    }
}

fn rlimit_resource(res: i32) -> Option<Resource> {
    use Resource::*;
    [
        RLIMIT_CPU,
        RLIMIT_FSIZE,
        RLIMIT_DATA,
        RLIMIT_STACK,
        RLIMIT_CORE,
        RLIMIT_RSS,
        RLIMIT_NPROC,
        RLIMIT_NOFILE,
        RLIMIT_MEMLOCK,
        RLIMIT_AS,
        RLIMIT_LOCKS,
        RLIMIT_SIGPENDING,
        RLIMIT_MSGQUEUE,
        RLIMIT_NICE,
        RLIMIT_RTPRIO,
        RLIMIT_RTTIME,
    ]
    .into_iter()
    .find(|r| *r as i32 == res)
}

/// Makes `rootfs` the root of our own mount namespace and drops every other
/// mount from it, as runc does: a copy of the host's mounts (other pods'
/// rootfs and netns bind mounts, on a host whose / is private) would
/// otherwise stay pinned for as long as the pause lives.
fn enter_root_detached(rootfs: &str) -> Result<(), String> {
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("bind {rootfs}: {e}"))?;
    chdir(rootfs).map_err(|e| format!("chdir {rootfs}: {e}"))?;
    pivot_root(".", ".").map_err(|e| format!("pivot_root {rootfs}: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detach old root: {e}"))?;
    chdir("/").map_err(|e| format!("chdir /: {e}"))
}

/// Splits off the pause process (in the new pid namespace, if any) and
/// turns it into the pause.
fn run(plan: &Plan, devnull: File, mut report: std::io::Stdout) -> ! {
    let new_pid_ns = plan.new.iter().any(|n| n == "pid");
    if new_pid_ns {
        match sys::fork_single_threaded() {
            Err(e) => fail(&mut report, &format!("fork: {e}")),
            Ok(0) => {}
            Ok(child) => {
                // The child reports its own setup errors; the shim learns the
                // pid from us and the child's fate through the same pipe.
                let _ = writeln!(report, "pid {child}");
                let _ = report.flush();
                sys::exit_now(0);
            }
        }
    } else {
        let _ = writeln!(report, "pid {}", std::process::id());
    }
    if let Err(e) = become_pause(plan, devnull, &mut report) {
        fail(&mut report, &e);
    }
    sys::exit_now(127)
}

/// Returns only on failure; on success the process is the pause.
fn become_pause(plan: &Plan, devnull: File, report: &mut impl Write) -> Result<(), String> {
    let exe = CString::new(plan.exe.as_str()).map_err(|e| e.to_string())?;
    let args = plan
        .args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let env = plan
        .env
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;

    if plan.new.iter().any(|n| n == "mount") {
        enter_root_detached(&plan.rootfs)?;
    } else {
        chroot(plan.rootfs.as_str()).map_err(|e| format!("chroot {}: {e}", plan.rootfs))?;
    }
    chdir(plan.cwd.as_str()).map_err(|e| format!("chdir {}: {e}", plan.cwd))?;

    let cap_last = cap_last();
    if let Some(caps) = &plan.caps {
        for cap in 0..=cap_last {
            if caps.bounding & (1 << cap) == 0 {
                sys::capbset_drop(cap).map_err(|e| format!("drop bounding cap {cap}: {e}"))?;
            }
        }
        sys::keep_caps(true).map_err(|e| format!("keepcaps: {e}"))?;
    }
    let groups: Vec<Gid> = plan.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    setgid(Gid::from_raw(plan.gid)).map_err(|e| format!("setgid {}: {e}", plan.gid))?;
    setuid(Uid::from_raw(plan.uid)).map_err(|e| format!("setuid {}: {e}", plan.uid))?;
    if let Some(caps) = &plan.caps {
        sys::keep_caps(false).map_err(|e| format!("keepcaps: {e}"))?;
        sys::capset(caps.effective, caps.permitted, caps.inheritable)
            .map_err(|e| format!("capset: {e}"))?;
        for cap in 0..=cap_last {
            if caps.ambient & (1 << cap) != 0 {
                sys::ambient_raise(cap).map_err(|e| format!("ambient cap {cap}: {e}"))?;
            }
        }
    }
    if plan.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no_new_privs: {e}"))?;
    }

    let _ = writeln!(report, "ready");
    let _ = report.flush();
    // Wait for Start. EOF means the shim gave up on this task.
    let mut go = [0u8; 1];
    match std::io::stdin().read(&mut go) {
        Ok(1) => {}
        _ => sys::exit_now(1),
    }
    // Keep a close-on-exec copy of the report pipe for an exec failure.
    let report: OwnedFd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("dup report pipe: {e}"))?;
    fcntl(&report, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| e.to_string())?;
    dup2_stdin(&devnull).map_err(|e| format!("dup2: {e}"))?;
    dup2_stdout(&devnull).map_err(|e| format!("dup2: {e}"))?;
    dup2_stderr(&devnull).map_err(|e| format!("dup2: {e}"))?;
    drop(devnull);
    let err = execve(&exe, &args, &env).err();
    let mut report = File::from(report);
    let _ = write!(
        report,
        "error exec {}: {}",
        plan.exe,
        err.map_or("unknown".into(), |e| e.to_string())
    );
    sys::exit_now(127)
}
