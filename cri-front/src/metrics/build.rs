//! Samples to CRI metrics. Values are taken live (timestamp 0, as the proto asks);
//! CRI values are integers, so CPU seconds are whole seconds (as CRI-O does too).

use crius_proto::runtime as cri;

use super::descriptors::{self as d, Desc};
use crate::stats::cgroup::CgroupSample;
use crate::stats::net_dev::IfCounters;

/// cAdvisor's labels of one series: `id` is the cgroup path, `name` the container id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    pub container: String,
    pub id: String,
    pub image: String,
    pub name: String,
    pub namespace: String,
    pub pod: String,
}

impl Labels {
    fn get(&self, key: &str) -> &str {
        match key {
            "container" => &self.container,
            "id" => &self.id,
            "image" => &self.image,
            "name" => &self.name,
            "namespace" => &self.namespace,
            "pod" => &self.pod,
            _ => "",
        }
    }
}

/// "No limit" reads as a huge number (v1) or is absent (v2 `max`); cAdvisor shows 0.
const UNLIMITED: u64 = 1 << 62;

/// One metric; label values in the descriptor's key order, `extra` for its own key.
pub fn metric(desc: &Desc, l: &Labels, extra: &str, value: u64) -> cri::Metric {
    cri::Metric {
        name: desc.name.into(),
        timestamp: 0,
        metric_type: desc.kind as i32,
        label_values: desc
            .label_keys()
            .into_iter()
            .map(|k| {
                if Some(k) == desc.extra {
                    extra.to_string()
                } else {
                    l.get(k).to_string()
                }
            })
            .collect(),
        value: Some(cri::UInt64Value { value }),
    }
}

/// CPU, memory and task counts of one cgroup; figures the cgroup lacks are left out.
pub fn cgroup_metrics(l: &Labels, s: &CgroupSample) -> Vec<cri::Metric> {
    const NS: u64 = 1_000_000_000;
    let mut out = Vec::new();
    let mut push = |desc: &Desc, extra: &str, v: Option<u64>| {
        if let Some(v) = v {
            out.push(metric(desc, l, extra, v));
        }
    };
    // kubelet turns off cAdvisor's per-cpu figures: one series, cpu="total".
    push(&d::CPU_USAGE, "total", s.cpu_ns.map(|n| n / NS));
    push(&d::CPU_USER, "", s.cpu_user_ns.map(|n| n / NS));
    push(&d::CPU_SYSTEM, "", s.cpu_system_ns.map(|n| n / NS));
    push(&d::MEM_USAGE, "", s.mem_usage);
    push(&d::MEM_WORKING_SET, "", s.mem_working_set);
    push(&d::MEM_RSS, "", s.mem_rss);
    push(&d::MEM_CACHE, "", s.mem_cache);
    push(&d::MEM_FAILCNT, "", s.mem_failcnt);
    // The limit only means something when the memory cgroup is there.
    let limit = s
        .mem_usage
        .map(|_| s.mem_limit.filter(|&l| l < UNLIMITED).unwrap_or(0));
    push(&d::SPEC_MEM_LIMIT, "", limit);
    push(&d::PROCESSES, "", s.processes);
    push(&d::THREADS, "", s.threads.or(s.pids));
    // Block I/O per device, as cAdvisor's blkio figures.
    for dev in &s.io {
        for (desc, v) in [
            (&d::FS_READ_BYTES, dev.read_bytes),
            (&d::FS_WRITE_BYTES, dev.write_bytes),
            (&d::FS_READS, dev.reads),
            (&d::FS_WRITES, dev.writes),
        ] {
            out.push(metric(desc, l, &dev.device, v));
        }
    }
    out
}

/// Counters of the pod's interfaces (what cAdvisor reports on the pause container).
pub fn network_metrics(l: &Labels, ifs: &[IfCounters]) -> Vec<cri::Metric> {
    let mut out = Vec::new();
    for i in ifs {
        for (desc, v) in [
            (&d::NET_RX_BYTES, i.rx_bytes),
            (&d::NET_RX_PACKETS, i.rx_packets),
            (&d::NET_RX_ERRORS, i.rx_errors),
            (&d::NET_RX_DROPPED, i.rx_dropped),
            (&d::NET_TX_BYTES, i.tx_bytes),
            (&d::NET_TX_PACKETS, i.tx_packets),
            (&d::NET_TX_ERRORS, i.tx_errors),
            (&d::NET_TX_DROPPED, i.tx_dropped),
        ] {
            out.push(metric(desc, l, &i.name, v));
        }
    }
    out
}

/// What a container adds to its cgroup's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerExtra {
    pub started_at_ns: i64,
    /// Writable layer bytes and the filesystem (mountpoint) it lives on.
    pub writable_layer: Option<(u64, String)>,
    pub now_s: u64,
}

pub fn container_metrics(l: &Labels, s: &CgroupSample, x: &ContainerExtra) -> Vec<cri::Metric> {
    let mut out = cgroup_metrics(l, s);
    out.push(metric(&d::LAST_SEEN, l, "", x.now_s));
    if x.started_at_ns > 0 {
        let secs = x.started_at_ns as u64 / 1_000_000_000;
        out.push(metric(&d::START_TIME, l, "", secs));
    }
    if let Some((bytes, dev)) = &x.writable_layer {
        out.push(metric(&d::FS_USAGE, l, dev, *bytes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels {
            container: "app".into(),
            id: "/kubepods/pod1/c1".into(),
            image: "busybox:latest".into(),
            name: "c1".into(),
            namespace: "ns".into(),
            pod: "p".into(),
        }
    }

    fn sample() -> CgroupSample {
        CgroupSample {
            cpu_ns: Some(2_500_000_000),
            cpu_user_ns: Some(1_900_000_000),
            cpu_system_ns: Some(600_000_000),
            mem_usage: Some(4096),
            mem_working_set: Some(3000),
            mem_rss: Some(2000),
            mem_cache: Some(1000),
            mem_failcnt: Some(0),
            mem_limit: Some(9_223_372_036_854_771_712),
            pids: Some(3),
            processes: Some(1),
            threads: Some(3),
            io: vec![crate::stats::io::IoDevice {
                device: "/dev/vda".into(),
                read_bytes: 4096,
                write_bytes: 8192,
                reads: 1,
                writes: 2,
            }],
            ..Default::default()
        }
    }

    fn find<'a>(m: &'a [cri::Metric], name: &str) -> &'a cri::Metric {
        m.iter()
            .find(|x| x.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    /// Every metric is described, with as many values as keys and the right type.
    fn check_against_descriptors(m: &[cri::Metric]) {
        for x in m {
            let desc = d::ALL
                .iter()
                .find(|d| d.name == x.name)
                .unwrap_or_else(|| panic!("{} has no descriptor", x.name));
            assert_eq!(x.label_values.len(), desc.label_keys().len(), "{}", x.name);
            assert_eq!(x.metric_type, desc.kind as i32, "{}", x.name);
        }
    }

    #[test]
    fn container_values_labels_types() {
        let x = ContainerExtra {
            started_at_ns: 1_700_000_000_123_000_000,
            writable_layer: Some((8192, "/var/lib/containerd".into())),
            now_s: 1_700_000_100,
        };
        let m = container_metrics(&labels(), &sample(), &x);
        check_against_descriptors(&m);
        let cpu = find(&m, "container_cpu_usage_seconds_total");
        assert_eq!(cpu.value.map(|v| v.value), Some(2));
        assert_eq!(cpu.metric_type, cri::MetricType::Counter as i32);
        // Keys: container cpu id image name namespace pod.
        assert_eq!(
            cpu.label_values,
            [
                "app",
                "total",
                "/kubepods/pod1/c1",
                "busybox:latest",
                "c1",
                "ns",
                "p"
            ]
        );
        let ws = find(&m, "container_memory_working_set_bytes");
        assert_eq!(ws.value.map(|v| v.value), Some(3000));
        assert_eq!(ws.metric_type, cri::MetricType::Gauge as i32);
        let lim = find(&m, "container_spec_memory_limit_bytes");
        assert_eq!(lim.value.map(|v| v.value), Some(0), "unlimited shows 0");
        let fs = find(&m, "container_fs_usage_bytes");
        assert_eq!(fs.label_values[1], "/var/lib/containerd");
        let wb = find(&m, "container_fs_writes_bytes_total");
        assert_eq!(wb.label_values[1], "/dev/vda", "device label");
        assert_eq!(wb.value.map(|v| v.value), Some(8192));
        assert_eq!(
            find(&m, "container_fs_reads_total").value.map(|v| v.value),
            Some(1)
        );
        assert_eq!(
            find(&m, "container_start_time_seconds")
                .value
                .map(|v| v.value),
            Some(1_700_000_000)
        );
        assert_eq!(
            find(&m, "container_cpu_user_seconds_total")
                .value
                .map(|v| v.value),
            Some(1)
        );
        assert_eq!(
            find(&m, "container_threads").value.map(|v| v.value),
            Some(3)
        );
    }

    #[test]
    fn absent_figures_left_out() {
        let m = container_metrics(&labels(), &CgroupSample::default(), &Default::default());
        let names: Vec<&str> = m.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["container_last_seen"]);
    }

    #[test]
    fn limit_kept_when_set() {
        let s = CgroupSample {
            mem_usage: Some(1),
            mem_limit: Some(64 << 20),
            ..Default::default()
        };
        let m = cgroup_metrics(&labels(), &s);
        let lim = find(&m, "container_spec_memory_limit_bytes");
        assert_eq!(lim.value.map(|v| v.value), Some(64 << 20));
    }

    #[test]
    fn network_per_interface() {
        let ifs = [IfCounters {
            name: "eth0".into(),
            rx_bytes: 500,
            rx_packets: 5,
            tx_bytes: 700,
            tx_packets: 7,
            ..Default::default()
        }];
        let l = Labels {
            container: "POD".into(),
            ..labels()
        };
        let m = network_metrics(&l, &ifs);
        check_against_descriptors(&m);
        assert_eq!(m.len(), 8);
        assert!(m
            .iter()
            .all(|x| x.metric_type == cri::MetricType::Counter as i32));
        let rx = find(&m, "container_network_receive_bytes_total");
        // Keys: container id image interface name namespace pod.
        assert_eq!(rx.label_values[0], "POD");
        assert_eq!(rx.label_values[3], "eth0");
        assert_eq!(rx.value.map(|v| v.value), Some(500));
        assert_eq!(
            find(&m, "container_network_transmit_packets_total")
                .value
                .map(|v| v.value),
            Some(7)
        );
    }
}
