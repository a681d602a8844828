//! Wall-clock times in CRI's unit: nanoseconds since the epoch.

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    ::time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// A containerd timestamp in nanoseconds; now when it is missing or zero.
pub fn ts_ns(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map(|t| t.seconds * 1_000_000_000 + t.nanos as i64)
        .filter(|n| *n > 0)
        .unwrap_or_else(now_ns)
}
