//! What the shim reads from a bundle's OCI spec: the pod grouping, the
//! container kind, and the oom_score_adj clamp.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};

pub const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
pub const CRI_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
pub const CRIUS_CONTAINER_TYPE: &str = "io.crius.container-type";
pub const CRIUS_SANDBOX_ID: &str = "io.crius.sandbox-id";

/// Reads `config.json` of `bundle` as untyped JSON, so that rewriting it
/// keeps every field containerd put there.
pub fn read(bundle: &Path) -> Result<Value> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path)
        .map_err(|e| Error::InvalidArgument(format!("bad bundle: read {}: {e}", path.display())))?;
    serde_json::from_slice(&text)
        .map_err(|e| Error::InvalidArgument(format!("bad spec {}: {e}", path.display())))
}

pub fn write(bundle: &Path, spec: &Value) -> Result<()> {
    let path = bundle.join("config.json");
    let text = serde_json::to_vec(spec).map_err(|e| Error::Other(e.to_string()))?;
    std::fs::write(&path, text).map_err(Error::io(format!("write {}", path.display())))
}

pub fn annotation<'a>(spec: &'a Value, key: &str) -> Option<&'a str> {
    spec.get("annotations")?
        .get(key)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// Whether the spec is a pod sandbox (CRI's or crius's annotation).
/// Whether `linux.cgroupsPath` is in the systemd driver's `slice:prefix:name` form.
pub fn systemd_cgroups_path(spec: &Value) -> bool {
    spec.pointer("/linux/cgroupsPath")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.starts_with('/') && p.split(':').count() == 3)
}

pub fn is_sandbox(spec: &Value) -> bool {
    [CRI_CONTAINER_TYPE, CRIUS_CONTAINER_TYPE]
        .iter()
        .any(|k| annotation(spec, k) == Some("sandbox"))
}

/// Whether the container lacks a pid namespace of its own (host's, or
/// joined by path, e.g. a pod sharing its process namespace).
pub fn shares_pid_ns(spec: &Value) -> bool {
    let own = spec
        .pointer("/linux/namespaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|ns| {
            ns.get("type").and_then(Value::as_str) == Some("pid")
                && ns
                    .get("path")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
        });
    !own
}

/// The id whose shim this container joins: its pod's sandbox id, or its own.
pub fn group_id(spec: &Value, id: &str) -> String {
    if is_sandbox(spec) {
        return id.to_string();
    }
    [CRI_SANDBOX_ID, CRIUS_SANDBOX_ID]
        .iter()
        .find_map(|k| annotation(spec, k))
        .unwrap_or(id)
        .to_string()
}

/// The score to give a process asking for `wanted` when the shim runs with
/// `own` and may (`can_lower`) or may not lower scores. Without
/// CAP_SYS_RESOURCE the kernel refuses a score below the caller's, and runc
/// then dies with an unhelpful "can't get final child's PID from pipe: EOF".
pub fn clamp_oom(wanted: i64, own: i64, can_lower: bool) -> i64 {
    if wanted < own && !can_lower {
        own
    } else {
        wanted
    }
}

/// Applies [`clamp_oom`] to `process.oomScoreAdj`; returns `(old, new)` when
/// it changed the spec.
pub fn clamp_spec_oom(spec: &mut Value, own: i64, can_lower: bool) -> Option<(i64, i64)> {
    let process = spec.get_mut("process")?.as_object_mut()?;
    let wanted = process.get("oomScoreAdj")?.as_i64()?;
    let got = clamp_oom(wanted, own, can_lower);
    if got == wanted {
        return None;
    }
    process.insert("oomScoreAdj".into(), Value::from(got));
    Some((wanted, got))
}

/// The shim's own oom_score_adj.
pub fn own_oom_score() -> i64 {
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether the shim holds CAP_SYS_RESOURCE (bit 24 of CapEff).
pub fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grouping() {
        let sb = json!({"annotations": {CRI_CONTAINER_TYPE: "sandbox", CRI_SANDBOX_ID: "p1"}});
        assert!(is_sandbox(&sb));
        assert_eq!(group_id(&sb, "p1"), "p1");
        let c = json!({"annotations": {CRI_CONTAINER_TYPE: "container", CRI_SANDBOX_ID: "p1"}});
        assert!(!is_sandbox(&c));
        assert_eq!(group_id(&c, "c1"), "p1");
        let own =
            json!({"annotations": {CRIUS_CONTAINER_TYPE: "container", CRIUS_SANDBOX_ID: "p2"}});
        assert_eq!(group_id(&own, "c2"), "p2");
        let ownsb = json!({"annotations": {CRIUS_CONTAINER_TYPE: "sandbox"}});
        assert!(is_sandbox(&ownsb));
        assert_eq!(group_id(&json!({}), "solo"), "solo");
        assert_eq!(
            group_id(&json!({"annotations": {CRI_SANDBOX_ID: ""}}), "solo"),
            "solo"
        );
    }

    #[test]
    fn pid_namespace_sharing() {
        assert!(!shares_pid_ns(
            &json!({"linux": {"namespaces": [{"type": "pid"}]}})
        ));
        assert!(shares_pid_ns(
            &json!({"linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}})
        ));
        assert!(shares_pid_ns(
            &json!({"linux": {"namespaces": [{"type": "network"}]}})
        ));
    }

    #[test]
    fn oom_clamp() {
        assert_eq!(clamp_oom(-998, 0, false), 0);
        assert_eq!(clamp_oom(-998, 0, true), -998);
        assert_eq!(clamp_oom(500, 0, false), 500);
        assert_eq!(clamp_oom(-5, -10, false), -5);
        let mut s = json!({"process": {"oomScoreAdj": -998}});
        assert_eq!(clamp_spec_oom(&mut s, 1, false), Some((-998, 1)));
        assert_eq!(s["process"]["oomScoreAdj"], 1);
        let mut s = json!({"process": {"args": ["x"]}});
        assert_eq!(clamp_spec_oom(&mut s, 1, false), None);
    }
}
