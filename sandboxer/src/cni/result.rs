//! Reading pod IPs out of a CNI result (spec 0.3.x to 1.x, and 0.1/0.2's ip4/ip6).

use std::net::IpAddr;

use serde_json::Value;

/// Strip a `/prefix` and parse.
fn ip_of(cidr: &str) -> Option<IpAddr> {
    cidr.split('/').next()?.parse().ok()
}

/// IPs of interface `ifname` inside the sandbox; v4 first, order kept otherwise.
pub fn pod_ips(result: &Value, ifname: &str) -> Vec<IpAddr> {
    let mut ips = Vec::new();
    if let Some(list) = result.get("ips").and_then(Value::as_array) {
        let ifaces = result.get("interfaces").and_then(Value::as_array);
        let wanted = |idx: Option<u64>| -> bool {
            let (Some(ifaces), Some(idx)) = (ifaces, idx) else {
                return true;
            };
            ifaces
                .get(idx as usize)
                .map(|i| {
                    i.get("name").and_then(Value::as_str) == Some(ifname)
                        && i.get("sandbox")
                            .and_then(Value::as_str)
                            .is_some_and(|s| !s.is_empty())
                })
                .unwrap_or(false)
        };
        for ip in list {
            if !wanted(ip.get("interface").and_then(Value::as_u64)) {
                continue;
            }
            if let Some(a) = ip.get("address").and_then(Value::as_str).and_then(ip_of) {
                ips.push(a);
            }
        }
    } else {
        for key in ["ip4", "ip6"] {
            if let Some(a) = result
                .get(key)
                .and_then(|v| v.get("ip"))
                .and_then(Value::as_str)
                .and_then(ip_of)
            {
                ips.push(a);
            }
        }
    }
    ips.sort_by_key(|a| a.is_ipv6());
    ips
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_sandbox_eth0_ips() {
        let r = serde_json::json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "crius0", "mac": "aa"},
                {"name": "veth1", "mac": "bb"},
                {"name": "eth0", "mac": "cc", "sandbox": "/run/crius/netns/x"}
            ],
            "ips": [
                {"address": "fd00::5/64", "interface": 2},
                {"address": "10.99.0.5/24", "gateway": "10.99.0.1", "interface": 2},
                {"address": "10.99.0.1/24", "interface": 0}
            ]
        });
        let ips = pod_ips(&r, "eth0");
        assert_eq!(
            ips,
            vec![
                "10.99.0.5".parse::<IpAddr>().unwrap(),
                "fd00::5".parse().unwrap()
            ]
        );
    }

    #[test]
    fn legacy_result() {
        let r = serde_json::json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.1.2.3/16"}});
        assert_eq!(
            pod_ips(&r, "eth0"),
            vec!["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
    }
}
