//! OOM score policy: lowering `oom_score_adj` needs CAP_SYS_RESOURCE.

use crate::config::OomScorePolicy;

/// The pause's requested score (containerd's default for sandboxes).
pub const PAUSE_OOM_SCORE_ADJ: i32 = -998;

/// Score to put in a spec: `requested`, or `own` if clamping applies and
/// `requested` is lower (raising one's score never needs a capability).
pub fn effective_score(requested: i32, own: i32, clamp: bool) -> i32 {
    if clamp && requested < own {
        own
    } else {
        requested
    }
}

/// Whether to clamp, given the policy and whether CAP_SYS_RESOURCE is held.
pub fn should_clamp(policy: OomScorePolicy, has_cap_sys_resource: bool) -> bool {
    match policy {
        OomScorePolicy::Auto => !has_cap_sys_resource,
        OomScorePolicy::Clamp => true,
        OomScorePolicy::Allow => false,
    }
}

/// True if the CapEff line of a `/proc/<pid>/status` text has CAP_SYS_RESOURCE (bit 24).
pub fn status_has_cap_sys_resource(status: &str) -> Option<bool> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let caps = u64::from_str_radix(hex, 16).ok()?;
    Some(caps & (1 << 24) != 0)
}

/// Does this process hold CAP_SYS_RESOURCE? (false if unreadable: the safe answer).
pub fn has_cap_sys_resource() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_has_cap_sys_resource(&s))
        .unwrap_or(false)
}

/// This process's own current `oom_score_adj` (0 if unreadable).
pub fn own_score() -> i32 {
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_only_downwards() {
        assert_eq!(effective_score(-998, 0, true), 0);
        assert_eq!(effective_score(-998, -500, true), -500);
        assert_eq!(effective_score(500, 0, true), 500);
        assert_eq!(effective_score(-998, 0, false), -998);
    }

    #[test]
    fn policy() {
        assert!(should_clamp(OomScorePolicy::Auto, false));
        assert!(!should_clamp(OomScorePolicy::Auto, true));
        assert!(should_clamp(OomScorePolicy::Clamp, true));
        assert!(!should_clamp(OomScorePolicy::Allow, false));
    }

    #[test]
    fn capeff_bit_24() {
        let with = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        let without = "CapEff:\t000001fffeffffff\n";
        assert_eq!(status_has_cap_sys_resource(with), Some(true));
        assert_eq!(status_has_cap_sys_resource(without), Some(false));
        assert_eq!(status_has_cap_sys_resource("nothing"), None);
    }
}
