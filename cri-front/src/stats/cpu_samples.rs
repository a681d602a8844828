//! The last CPU sample of each container and pod, from which the next stats call computes
//! `usage_nano_cores` (containerd's CRI does the same). Samples of containers and pods that
//! are gone are dropped at each list pass, so the map holds what exists, not all ever seen.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// A sample: (time ns, cumulative cpu ns).
type Sample = (i64, u64);

#[derive(Default)]
pub struct CpuSamples {
    /// By container id, or [`pod_key`] for a pod.
    last: Mutex<HashMap<String, Sample>>,
}

/// The key of a pod's samples (container ids and pod ids are both 64-hex).
pub fn pod_key(pod_id: &str) -> String {
    format!("pod:{pod_id}")
}

impl CpuSamples {
    /// Record `cpu_ns` at `now_ns` for `key`; the nano-cores used since its previous sample
    /// (None for a first one).
    pub fn rate(&self, key: &str, now_ns: i64, cpu_ns: u64) -> Option<u64> {
        let (t0, c0) = self.lock().insert(key.to_string(), (now_ns, cpu_ns))?;
        let dt = (now_ns - t0).max(1) as u128;
        Some((cpu_ns.saturating_sub(c0) as u128 * 1_000_000_000 / dt) as u64)
    }

    /// Drop the samples of containers not in `containers`, and, when `pods` is given, of
    /// pods not in it (a container-only pass leaves pods' samples alone).
    pub fn keep_only(&self, containers: &HashSet<&str>, pods: Option<&HashSet<&str>>) {
        self.lock().retain(|k, _| match k.strip_prefix("pod:") {
            Some(pod) => pods.is_none_or(|p| p.contains(pod)),
            None => containers.contains(k.as_str()),
        });
    }

    /// The keys held (tests).
    #[cfg(test)]
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self.lock().keys().cloned().collect();
        k.sort();
        k
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sample>> {
        // A panic while held cannot leave a sample half-written: the map is still good.
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_from_the_previous_sample() {
        let s = CpuSamples::default();
        assert_eq!(s.rate("c1", 1_000_000_000, 5_000_000_000), None);
        // Half a core over two seconds.
        assert_eq!(
            s.rate("c1", 3_000_000_000, 6_000_000_000),
            Some(500_000_000)
        );
        // A counter that went back (a new cgroup of the same name) reads as idle.
        assert_eq!(s.rate("c1", 4_000_000_000, 1), Some(0));
    }

    #[test]
    fn gone_containers_and_pods_are_dropped() {
        let s = CpuSamples::default();
        for k in ["c1", "c2", &pod_key("p1"), &pod_key("p2")] {
            s.rate(k, 1, 1);
        }
        let live: HashSet<&str> = ["c1"].into();
        s.keep_only(&live, None);
        assert_eq!(s.keys(), ["c1", "pod:p1", "pod:p2"]);
        let pods: HashSet<&str> = ["p2"].into();
        s.keep_only(&live, Some(&pods));
        assert_eq!(s.keys(), ["c1", "pod:p2"]);
        s.keep_only(&HashSet::new(), Some(&HashSet::new()));
        assert!(s.keys().is_empty());
    }
}
