//! Every metric criusd serves, as cAdvisor names and documents it.
//!
//! Label keys are cAdvisor's container labels as kubelet sets them
//! (`container`, `id`, `image`, `name`, `namespace`, `pod`), plus at most one
//! metric-specific key (`cpu`, `interface`, `device`), kept sorted.

use crius_proto::runtime as cri;

use cri::MetricType::{Counter, Gauge};

/// The labels of every metric.
pub const BASE_KEYS: [&str; 6] = ["container", "id", "image", "name", "namespace", "pod"];

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Desc {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: cri::MetricType,
    /// A label key of this metric only.
    pub extra: Option<&'static str>,
}

impl Desc {
    const fn new(name: &'static str, help: &'static str, kind: cri::MetricType) -> Desc {
        Desc {
            name,
            help,
            kind,
            extra: None,
        }
    }

    const fn with(self, extra: &'static str) -> Desc {
        Desc {
            extra: Some(extra),
            ..self
        }
    }

    /// The base keys and `extra`, sorted; metric label values follow this order.
    pub fn label_keys(&self) -> Vec<&'static str> {
        let mut k: Vec<&'static str> = BASE_KEYS.to_vec();
        k.extend(self.extra);
        k.sort_unstable();
        k
    }

    pub fn to_cri(&self) -> cri::MetricDescriptor {
        cri::MetricDescriptor {
            name: self.name.into(),
            help: self.help.into(),
            label_keys: self.label_keys().into_iter().map(String::from).collect(),
        }
    }
}

pub const CPU_USAGE: Desc = Desc::new(
    "container_cpu_usage_seconds_total",
    "Cumulative cpu time consumed in seconds.",
    Counter,
)
.with("cpu");
pub const CPU_USER: Desc = Desc::new(
    "container_cpu_user_seconds_total",
    "Cumulative user cpu time consumed in seconds.",
    Counter,
);
pub const CPU_SYSTEM: Desc = Desc::new(
    "container_cpu_system_seconds_total",
    "Cumulative system cpu time consumed in seconds.",
    Counter,
);
pub const MEM_USAGE: Desc = Desc::new(
    "container_memory_usage_bytes",
    "Current memory usage in bytes, including all memory regardless of when it was accessed",
    Gauge,
);
pub const MEM_WORKING_SET: Desc = Desc::new(
    "container_memory_working_set_bytes",
    "Current working set in bytes.",
    Gauge,
);
pub const MEM_RSS: Desc = Desc::new("container_memory_rss", "Size of RSS in bytes.", Gauge);
pub const MEM_CACHE: Desc = Desc::new(
    "container_memory_cache",
    "Number of bytes of page cache memory.",
    Gauge,
);
pub const MEM_FAILCNT: Desc = Desc::new(
    "container_memory_failcnt",
    "Number of memory usage hits limits",
    Counter,
);
pub const SPEC_MEM_LIMIT: Desc = Desc::new(
    "container_spec_memory_limit_bytes",
    "Memory limit for the container.",
    Gauge,
);
pub const NET_RX_BYTES: Desc = Desc::new(
    "container_network_receive_bytes_total",
    "Cumulative count of bytes received",
    Counter,
)
.with("interface");
pub const NET_RX_PACKETS: Desc = Desc::new(
    "container_network_receive_packets_total",
    "Cumulative count of packets received",
    Counter,
)
.with("interface");
pub const NET_RX_ERRORS: Desc = Desc::new(
    "container_network_receive_errors_total",
    "Cumulative count of errors encountered while receiving",
    Counter,
)
.with("interface");
pub const NET_RX_DROPPED: Desc = Desc::new(
    "container_network_receive_packets_dropped_total",
    "Cumulative count of packets dropped while receiving",
    Counter,
)
.with("interface");
pub const NET_TX_BYTES: Desc = Desc::new(
    "container_network_transmit_bytes_total",
    "Cumulative count of bytes transmitted",
    Counter,
)
.with("interface");
pub const NET_TX_PACKETS: Desc = Desc::new(
    "container_network_transmit_packets_total",
    "Cumulative count of packets transmitted",
    Counter,
)
.with("interface");
pub const NET_TX_ERRORS: Desc = Desc::new(
    "container_network_transmit_errors_total",
    "Cumulative count of errors encountered while transmitting",
    Counter,
)
.with("interface");
pub const NET_TX_DROPPED: Desc = Desc::new(
    "container_network_transmit_packets_dropped_total",
    "Cumulative count of packets dropped while transmitting",
    Counter,
)
.with("interface");
pub const LAST_SEEN: Desc = Desc::new(
    "container_last_seen",
    "Last time a container was seen by the exporter",
    Gauge,
);
pub const START_TIME: Desc = Desc::new(
    "container_start_time_seconds",
    "Start time of the container since unix epoch in seconds.",
    Gauge,
);
pub const PROCESSES: Desc = Desc::new(
    "container_processes",
    "Number of processes running inside the container.",
    Gauge,
);
pub const THREADS: Desc = Desc::new(
    "container_threads",
    "Number of threads running inside the container",
    Gauge,
);
pub const FS_USAGE: Desc = Desc::new(
    "container_fs_usage_bytes",
    "Number of bytes that are consumed by the container on this filesystem.",
    Gauge,
)
.with("device");
pub const FS_READ_BYTES: Desc = Desc::new(
    "container_fs_reads_bytes_total",
    "Cumulative count of bytes read",
    Counter,
)
.with("device");
pub const FS_WRITE_BYTES: Desc = Desc::new(
    "container_fs_writes_bytes_total",
    "Cumulative count of bytes written",
    Counter,
)
.with("device");
pub const FS_READS: Desc = Desc::new(
    "container_fs_reads_total",
    "Cumulative count of reads completed",
    Counter,
)
.with("device");
pub const FS_WRITES: Desc = Desc::new(
    "container_fs_writes_total",
    "Cumulative count of writes completed",
    Counter,
)
.with("device");
/// What ListMetricDescriptors answers.
pub const ALL: [Desc; 26] = [
    CPU_USAGE,
    CPU_USER,
    CPU_SYSTEM,
    MEM_USAGE,
    MEM_WORKING_SET,
    MEM_RSS,
    MEM_CACHE,
    MEM_FAILCNT,
    SPEC_MEM_LIMIT,
    NET_RX_BYTES,
    NET_RX_PACKETS,
    NET_RX_ERRORS,
    NET_RX_DROPPED,
    NET_TX_BYTES,
    NET_TX_PACKETS,
    NET_TX_ERRORS,
    NET_TX_DROPPED,
    LAST_SEEN,
    START_TIME,
    PROCESSES,
    THREADS,
    FS_USAGE,
    FS_READ_BYTES,
    FS_WRITE_BYTES,
    FS_READS,
    FS_WRITES,
];

pub fn list() -> Vec<cri::MetricDescriptor> {
    ALL.iter().map(Desc::to_cri).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_and_cadvisor_like() {
        let mut names: Vec<&str> = ALL.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for d in ALL {
            assert!(d.name.starts_with("container_"), "{}", d.name);
            assert!(!d.help.is_empty(), "{}", d.name);
            // Prometheus convention: counters end in _total (cAdvisor's failcnt is the exception).
            let counter = d.kind == Counter;
            assert_eq!(
                counter,
                d.name.ends_with("_total") || d.name == "container_memory_failcnt",
                "{}",
                d.name
            );
        }
    }

    #[test]
    fn label_keys_sorted_with_extra() {
        assert_eq!(
            CPU_USAGE.label_keys(),
            [
                "container",
                "cpu",
                "id",
                "image",
                "name",
                "namespace",
                "pod"
            ]
        );
        assert_eq!(MEM_RSS.label_keys(), BASE_KEYS);
        assert_eq!(NET_RX_BYTES.to_cri().label_keys[3], "interface");
        for d in ALL {
            let k = d.label_keys();
            assert!(k.windows(2).all(|w| w[0] < w[1]), "{}", d.name);
        }
    }

    #[test]
    fn kubelet_expected_names_present() {
        let l = list();
        for n in [
            "container_cpu_usage_seconds_total",
            "container_memory_working_set_bytes",
            "container_network_receive_bytes_total",
            "container_start_time_seconds",
            "container_spec_memory_limit_bytes",
        ] {
            assert!(l.iter().any(|d| d.name == n), "{n}");
        }
    }
}
