//! Durations and times as crictl shows and takes them.

use anyhow::{bail, Context};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A Go-style duration: `1h2m3s`, `500ms`, `2s`; a bare number is seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs >= 0.0 && secs.is_finite() {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        bail!("empty duration");
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .with_context(|| format!("duration {s:?}: missing unit (ms, s, m, h)"))?;
        let n: f64 = rest[..num_end]
            .parse()
            .with_context(|| format!("duration {s:?}: bad number"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => bail!("duration {s:?}: unknown unit {u:?}"),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

pub use crius_cri_front::util::time::now_ns;

/// "3 minutes ago", like crictl's CREATED column.
pub fn ago(ns: i64) -> String {
    if ns <= 0 {
        return "-".into();
    }
    let secs = (now_ns() - ns).max(0) / 1_000_000_000;
    let (n, unit) = match secs {
        0..=1 => return "Less than a second ago".into(),
        2..=59 => (secs, "second"),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    if n == 1 {
        format!(
            "About a{} {unit} ago",
            if unit == "hour" { "n" } else { "" }
        )
    } else {
        format!("{n} {unit}s ago")
    }
}

/// RFC 3339 with nanoseconds, UTC.
pub fn rfc3339(ns: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ns.to_string())
}

/// Go's zero `time.Time` in RFC 3339, what crictl shows for times not reached yet.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Go's `time.RFC3339Nano` of nanoseconds since the epoch (crictl inspect's times), in UTC:
/// fractional seconds without trailing zeros, none when whole.
pub fn go_rfc3339_nano(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let Some(whole) = OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
    else {
        return ns.to_string();
    };
    if frac == 0 {
        return whole;
    }
    let digits = format!("{frac:09}");
    let z = whole.strip_suffix('Z').unwrap_or(&whole);
    format!("{z}.{}Z", digits.trim_end_matches('0'))
}

/// RFC 3339 text to nanoseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("2s").ok(), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_duration("500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_duration("1m30s").ok(), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("3").ok(), Some(Duration::from_secs(3)));
        assert!(parse_duration("3x").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn go_rfc3339_nano_trims_zeros() {
        assert_eq!(go_rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            go_rfc3339_nano(1_700_000_000_120_000_000),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(
            go_rfc3339_nano(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
    }

    #[test]
    fn rfc3339_round_trip() {
        let ns = 1_700_000_000_123_456_789;
        assert_eq!(parse_rfc3339(&rfc3339(ns)), Some(ns));
    }
}
