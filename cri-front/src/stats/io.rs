//! Block I/O of a cgroup per device, as cAdvisor reads it: cgroup v2 `io.stat`
//! (`rbytes wbytes rios wios`), cgroup v1 blkio's `throttle.io_service_bytes` and
//! `throttle.io_serviced` (the `_recursive` files when the kernel has them: a pod cgroup holds
//! no task itself). Devices are named `/dev/<name>` from /sys/dev/block, as cAdvisor labels
//! them, or `major:minor` when the kernel knows no name.

use std::{collections::BTreeMap, path::Path};

/// One device's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IoDevice {
    pub device: String,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub reads: u64,
    pub writes: u64,
}

/// `io.stat` of cgroup v2: `MAJ:MIN key=value …` a line.
pub fn parse_v2(text: &str) -> BTreeMap<String, IoDevice> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(dev) = fields.next().filter(|d| d.contains(':')) else {
            continue;
        };
        let mut d = IoDevice::default();
        for kv in fields {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let v = v.parse().unwrap_or(0);
            match k {
                "rbytes" => d.read_bytes = v,
                "wbytes" => d.write_bytes = v,
                "rios" => d.reads = v,
                "wios" => d.writes = v,
                _ => {}
            }
        }
        out.insert(dev.to_string(), d);
    }
    out
}

/// A v1 blkio file (`MAJ:MIN Read|Write|Sync|Async|Discard|Total N` lines, and a last `Total N`):
/// the Read and Write figures per device.
fn parse_v1(text: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(dev), Some(op), Some(v)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Ok(v) = v.parse::<u64>() else {
            continue;
        };
        let e = out.entry(dev.to_string()).or_default();
        match op {
            "Read" => e.0 = v,
            "Write" => e.1 = v,
            _ => {}
        }
    }
    out
}

/// v1: the blkio hierarchy's dir of the cgroup; bytes and operations joined per device.
pub fn read_v1(dir: &Path) -> Option<BTreeMap<String, IoDevice>> {
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(format!("{file}_recursive")))
            .or_else(|_| std::fs::read_to_string(dir.join(file)))
            .ok()
    };
    let bytes = parse_v1(&read("blkio.throttle.io_service_bytes")?);
    let ops = parse_v1(&read("blkio.throttle.io_serviced").unwrap_or_default());
    let mut out = BTreeMap::new();
    for (dev, (rb, wb)) in bytes {
        let (r, w) = ops.get(&dev).copied().unwrap_or_default();
        out.insert(
            dev,
            IoDevice {
                read_bytes: rb,
                write_bytes: wb,
                reads: r,
                writes: w,
                ..Default::default()
            },
        );
    }
    Some(out)
}

/// v2: the cgroup's dir in the unified tree.
pub fn read_v2(dir: &Path) -> Option<BTreeMap<String, IoDevice>> {
    Some(parse_v2(
        &std::fs::read_to_string(dir.join("io.stat")).ok()?,
    ))
}

/// `/dev/<name>` of a block device number, from its uevent; `maj:min` when unknown.
fn device_name(majmin: &str) -> String {
    std::fs::read_to_string(format!("/sys/dev/block/{majmin}/uevent"))
        .ok()
        .and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("DEVNAME=").map(|n| format!("/dev/{n}")))
        })
        .unwrap_or_else(|| majmin.to_string())
}

/// The per-device map as a list, each named.
pub fn named(devices: BTreeMap<String, IoDevice>) -> Vec<IoDevice> {
    devices
        .into_iter()
        .map(|(majmin, d)| IoDevice {
            device: device_name(&majmin),
            ..d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_io_stat() {
        let m = parse_v2(
            "8:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n\
             253:1 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        );
        assert_eq!(m.len(), 2);
        let d = &m["8:0"];
        assert_eq!(
            (d.read_bytes, d.write_bytes, d.reads, d.writes),
            (1459200, 314773504, 192, 353)
        );
        assert!(parse_v2("").is_empty());
    }

    #[test]
    fn v1_blkio() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("blkio.throttle.io_service_bytes"),
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n\
             8:0 Total 12288\nTotal 12288\n",
        )
        .unwrap();
        std::fs::write(
            tmp.path().join("blkio.throttle.io_serviced"),
            "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n",
        )
        .unwrap();
        let m = read_v1(tmp.path()).unwrap();
        let d = &m["8:0"];
        assert_eq!(
            (d.read_bytes, d.write_bytes, d.reads, d.writes),
            (4096, 8192, 1, 2)
        );
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(read_v1(&tmp.path().join("none")).is_none());
    }
}
