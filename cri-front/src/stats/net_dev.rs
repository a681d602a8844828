//! A network namespace's interface counters, from `/proc/<pid>/net/dev` of a process in it.

use crius_proto::runtime as cri;

use super::u;
use crate::util::time::now_ns;

/// One interface's line of `/proc/<pid>/net/dev`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IfCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Interfaces of a `/proc/<pid>/net/dev` text, `lo` left out.
pub fn net_dev_counters(text: &str) -> Vec<IfCounters> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let name = name.trim();
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if name == "lo" || f.len() < 16 {
                return None;
            }
            Some(IfCounters {
                name: name.to_string(),
                rx_bytes: f[0],
                rx_packets: f[1],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_packets: f[9],
                tx_errors: f[10],
                tx_dropped: f[11],
            })
        })
        .collect()
}

/// Interface counters of the netns process `pid` is in.
pub fn read_net_dev(pid: u32) -> Option<Vec<IfCounters>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    Some(net_dev_counters(&text))
}

/// Per-interface counters of `/proc/<pid>/net/dev` (the netns `pid` lives in), `lo` left out.
pub fn parse_net_dev(text: &str) -> Vec<cri::NetworkInterfaceUsage> {
    net_dev_counters(text)
        .into_iter()
        .map(|c| cri::NetworkInterfaceUsage {
            name: c.name,
            rx_bytes: u(Some(c.rx_bytes)),
            rx_errors: u(Some(c.rx_errors)),
            tx_bytes: u(Some(c.tx_bytes)),
            tx_errors: u(Some(c.tx_errors)),
        })
        .collect()
}

/// Network usage of the netns process `pid` is in; `eth0` (CNI_IFNAME) is the default interface.
pub fn network_usage(pid: u32) -> Option<cri::NetworkUsage> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    let interfaces = parse_net_dev(&text);
    Some(cri::NetworkUsage {
        timestamp: now_ns(),
        default_interface: interfaces.iter().find(|i| i.name == "eth0").cloned(),
        interfaces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev() {
        let t = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n  eth0: 500 5 1 0 0 0 0 0 700 7 2 0 0 0 0 0\n";
        let v = parse_net_dev(t);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].name, "eth0");
        assert_eq!(v[0].rx_bytes.map(|x| x.value), Some(500));
        assert_eq!(v[0].tx_errors.map(|x| x.value), Some(2));
        let c = net_dev_counters(t);
        assert_eq!((c[0].rx_packets, c[0].tx_packets), (5, 7));
        assert_eq!(
            (c[0].rx_errors, c[0].rx_dropped, c[0].tx_dropped),
            (1, 0, 0)
        );
    }
}
