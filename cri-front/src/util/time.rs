//! Wall-clock times in CRI's unit: nanoseconds since the epoch.

/// Now, in nanoseconds since the epoch (one home, shared with the sandboxer).
pub use crius_sandboxer::util::now_ns;

/// When a process exited, as containerd says; now when it does not.
pub fn exited_at(e: &crius_ctrd::Exit) -> i64 {
    e.at_ns.unwrap_or_else(now_ns)
}
