//! kubelet's bandwidth annotations (`kubernetes.io/ingress-bandwidth`,
//! `kubernetes.io/egress-bandwidth`, Kubernetes quantities in bits/s) to the
//! CNI `bandwidth` capability arg.

use std::collections::BTreeMap;

use serde_json::{json, Value};

pub const INGRESS: &str = "kubernetes.io/ingress-bandwidth";
pub const EGRESS: &str = "kubernetes.io/egress-bandwidth";

/// Parse a Kubernetes quantity ("10M", "1Gi", "500k", "1.5M") to an integer.
pub fn parse_quantity(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let mult: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        _ => return None,
    };
    let n: f64 = num.parse().ok()?;
    let v = (n * mult).round();
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then_some(v as u64)
}

/// The `bandwidth` runtimeConfig value, None when no annotation asks for one.
/// Bursts are unlimited, as containerd does.
pub fn from_annotations(ann: &BTreeMap<String, String>) -> Result<Option<Value>, String> {
    let get = |k: &str| -> Result<Option<u64>, String> {
        ann.get(k)
            .map(|v| parse_quantity(v).ok_or_else(|| format!("annotation {k}: bad quantity {v:?}")))
            .transpose()
    };
    let (ingress, egress) = (get(INGRESS)?, get(EGRESS)?);
    if ingress.is_none() && egress.is_none() {
        return Ok(None);
    }
    let mut m = serde_json::Map::new();
    if let Some(r) = ingress {
        m.insert("ingressRate".into(), json!(r));
        m.insert("ingressBurst".into(), json!(u32::MAX));
    }
    if let Some(r) = egress {
        m.insert("egressRate".into(), json!(r));
        m.insert("egressBurst".into(), json!(u32::MAX));
    }
    Ok(Some(Value::Object(m)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("10M"), Some(10_000_000));
        assert_eq!(parse_quantity("1Gi"), Some(1 << 30));
        assert_eq!(parse_quantity("1.5k"), Some(1500));
        assert_eq!(parse_quantity("100"), Some(100));
        assert_eq!(parse_quantity("10X"), None);
        assert_eq!(parse_quantity(""), None);
    }

    #[test]
    fn annotations() {
        let mut a = BTreeMap::new();
        assert_eq!(from_annotations(&a), Ok(None));
        a.insert(INGRESS.to_string(), "1M".to_string());
        let v = from_annotations(&a).expect("ok").expect("some");
        assert_eq!(v["ingressRate"], 1_000_000);
        assert!(v.get("egressRate").is_none());
        a.insert(EGRESS.to_string(), "lots".to_string());
        assert!(from_annotations(&a).is_err());
    }
}
