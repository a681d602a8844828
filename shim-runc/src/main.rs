//! `containerd-shim-crius-v2`: crius's containerd shim v2 (runtime type
//! `io.containerd.crius.v2`), a ttrpc Task service over runc.
//!
//! # Face to the other crates and to containerd
//! - Binary protocol as containerd 1.6 speaks it: `start` prints the bare
//!   ttrpc address, the Task service answers as `containerd.task.v2.Task`
//!   (and `v3`); `delete`, `-v`,
//!   and the flags containerd passes (`-namespace -id -address
//!   -publish-binary -bundle -debug`). Runtime options
//!   (`containerd.runc.v1.Options`): `binary_name`, `root`, `no_pivot_root`,
//!   `no_new_keyring` are honoured. `-info` (containerd 2.x) prints a
//!   `RuntimeInfo` with runc's `features` (see `info`).
//! - One shim per pod: a container whose spec annotation
//!   `io.kubernetes.cri.sandbox-id` or `io.crius.sandbox-id` names a sandbox
//!   joins that sandbox's shim; a sandbox (`io.kubernetes.cri.container-type`
//!   or `io.crius.container-type` = `sandbox`) or an unannotated container
//!   gets its own.
//! - Sandbox fast path: a sandbox task whose spec `fastpath::plan` covers
//!   (pause process without terminal/stdio; pid/net/ipc/uts/mount/cgroup
//!   namespaces by path or new; absolute cgroupfs path, or on cgroup v2 a
//!   systemd `slice:prefix:name` one (a transient scope made over D-Bus,
//!   `systemd`), with devices, cpu,
//!   memory-limit and pids resources; hostname, sysctls, user, caps,
//!   rlimits, oom score) is started by the shim itself through a
//!   single-threaded helper (this binary re-executed with
//!   `__crius-pause-helper`), not runc. `CRIUS_SHIM_SANDBOX_FASTPATH=0`
//!   turns it off. Exec into and Update of a fast-path sandbox are refused.
//! - Sandbox API (containerd 2.x `sandboxer = "shim"`):
//!   `containerd.runtime.sandbox.v1.Sandbox` on the same socket; the shim owns
//!   the pod without a pause container (see `sandbox`). An idle shim (no task,
//!   no sandbox) exits after `CRIUS_SHIM_IDLE_EXIT` seconds or on SIGTERM.
//! - oom_score_adj: without CAP_SYS_RESOURCE a requested score below the
//!   shim's own is clamped to the shim's own score, with one log line.
//! - Logs: tracing into containerd's `log` fifo, filter from
//!   `CRIUS_SHIM_LOG` (a level: error..trace), with `container_id` fields.
//! - stdio: fifos, `file://` paths, and `binary://` log drivers (containerd's
//!   protocol: stdout/stderr/ready on fds 3/4/5; started through this binary
//!   re-executed as `__crius-logger-exec`).
//! - UNIMPLEMENTED: Checkpoint (and restore), `binary://` with a terminal,
//!   Update of a fast-path sandbox. TaskOOM: cgroup v1 (eventfd) or v2
//!   (memory.events; untested on this v1 machine).

mod cgroups;
mod container;
mod error;
mod events;
mod fastpath;
mod idle;
mod idmap;
mod info;
mod kill;
mod logbinary;
mod logging;
mod oom;
mod process;
mod reaper;
mod runc;
mod sandbox;
mod service;
mod shim;
mod spec;
mod stdio;
mod sys;
mod systemd;
mod table;

pub const RUNTIME_ID: &str = "io.containerd.crius.v2";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // Helper mode runs before any thread exists, so it may fork.
    if args.get(1).map(String::as_str) == Some(fastpath::helper::HELPER_ARG) {
        fastpath::helper::main(args.get(2).map_or("", String::as_str));
    }
    if args.get(1).map(String::as_str) == Some(sandbox::PAUSE_ARG) {
        sys::pause_forever();
    }
    if args.get(1).map(String::as_str) == Some(logbinary::HELPER_ARG) {
        logbinary::helper_main(&args[2..]);
    }
    if args
        .iter()
        .skip(1)
        .any(|a| matches!(a.as_str(), "-v" | "--v" | "-version" | "--version"))
    {
        println!("containerd-shim-crius-v2:");
        println!("  Version:  {}", service::VERSION);
        println!("  Runtime:  {RUNTIME_ID}");
        return;
    }
    // One thread: a shim mostly waits, and fewer threads mean a smaller shim.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("containerd-shim-crius-v2: tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(shim::run(&args[1..])) {
        tracing::error!(error = %e, "shim failed");
        eprintln!("containerd-shim-crius-v2: {e}");
        std::process::exit(1);
    }
}
