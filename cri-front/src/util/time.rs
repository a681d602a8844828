//! Wall-clock times in CRI's unit: nanoseconds since the epoch.

/// Now, in nanoseconds since the epoch (one home, shared with the sandboxer).
pub use crius_sandboxer::util::now_ns;

/// A containerd timestamp in nanoseconds; now when it is missing or zero.
pub fn ts_ns(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map(|t| t.seconds * 1_000_000_000 + t.nanos as i64)
        .filter(|n| *n > 0)
        .unwrap_or_else(now_ns)
}
