//! A pod container's namespaces, rewritten for a sandbox without a process. containerd's CRI
//! (2.1) names every pod namespace of a container `/proc/<sandbox pid>/ns/<kind>`; the sandbox
//! reports pid 0, so those paths name nothing and are replaced: network → the pod's netns,
//! ipc/uts → the pod's pins, and a namespace the pod shares with the host is dropped (the
//! container then stays in the host's, as it would through a pause in the host's). A pod pid
//! namespace is asked for only when the pod has one (then a pause holds it and its pid is real);
//! otherwise the container gets its own.

use std::path::Path;

use serde_json::Value;

/// The pod's namespaces; `None` means the host's.
pub struct PodPaths<'a> {
    pub ready: bool,
    pub netns: Option<&'a Path>,
    pub ipc: Option<&'a Path>,
    pub uts: Option<&'a Path>,
    /// The pod uses the host's pid namespace (a pid namespace of the pod's own has a pause).
    pub host_pid: bool,
}

const NO_PROCESS: &str = "/proc/0/ns/";

/// Rewrites `spec`'s `linux.namespaces`; true when anything changed.
pub fn namespaces(spec: &mut Value, pod: &PodPaths) -> Result<bool, String> {
    let Some(list) = spec
        .pointer_mut("/linux/namespaces")
        .and_then(Value::as_array_mut)
    else {
        return Ok(false);
    };
    let mut changed = false;
    let mut out = Vec::with_capacity(list.len());
    for mut ns in std::mem::take(list) {
        let path = ns.get("path").and_then(Value::as_str).unwrap_or("");
        let Some(kind) = path.strip_prefix(NO_PROCESS) else {
            out.push(ns);
            continue;
        };
        if !pod.ready {
            return Err("the sandbox is not running".into());
        }
        let target = match kind {
            "net" => pod.netns,
            "ipc" => pod.ipc,
            "uts" => pod.uts,
            "pid" if pod.host_pid => None,
            "pid" => {
                // The pod gives each container its own (a pod-wide one would have a pause):
                // a container asking for the pod's gets a new one, as under a pause of its own.
                changed = true;
                if let Some(o) = ns.as_object_mut() {
                    o.remove("path");
                }
                out.push(ns);
                continue;
            }
            other => return Err(format!("the pod has no {other} namespace to join")),
        };
        changed = true;
        if let Some(p) = target {
            ns["path"] = Value::from(p.to_string_lossy().into_owned());
            out.push(ns);
        }
    }
    *list = out;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({"linux": {"namespaces": [
            {"type": "mount"},
            {"type": "network", "path": "/proc/0/ns/net"},
            {"type": "ipc", "path": "/proc/0/ns/ipc"},
            {"type": "uts", "path": "/proc/0/ns/uts"},
            {"type": "pid"},
        ]}})
    }

    #[test]
    fn points_at_the_pod() {
        let pod = PodPaths {
            ready: true,
            netns: Some(Path::new("/run/netns/cni-1")),
            ipc: Some(Path::new("/b/ns/ipc")),
            uts: Some(Path::new("/b/ns/uts")),
            host_pid: false,
        };
        let mut s = spec();
        assert_eq!(namespaces(&mut s, &pod), Ok(true));
        assert_eq!(
            s["linux"]["namespaces"],
            json!([
                {"type": "mount"},
                {"type": "network", "path": "/run/netns/cni-1"},
                {"type": "ipc", "path": "/b/ns/ipc"},
                {"type": "uts", "path": "/b/ns/uts"},
                {"type": "pid"},
            ])
        );
        assert_eq!(namespaces(&mut s, &pod), Ok(false));
    }

    #[test]
    fn host_namespaces_are_dropped() {
        let pod = PodPaths {
            ready: true,
            netns: None,
            ipc: None,
            uts: None,
            host_pid: true,
        };
        let mut s = spec();
        s["linux"]["namespaces"][4] = json!({"type": "pid", "path": "/proc/0/ns/pid"});
        assert_eq!(namespaces(&mut s, &pod), Ok(true));
        assert_eq!(s["linux"]["namespaces"], json!([{"type": "mount"}]));
    }

    #[test]
    fn refusals() {
        let pod = PodPaths {
            ready: false,
            netns: None,
            ipc: None,
            uts: None,
            host_pid: false,
        };
        assert!(namespaces(&mut spec(), &pod).is_err());
        let ready = PodPaths { ready: true, ..pod };
        let mut s = json!({"linux": {"namespaces": [{"type": "pid", "path": "/proc/0/ns/pid"}]}});
        assert_eq!(namespaces(&mut s, &ready), Ok(true));
        assert_eq!(s["linux"]["namespaces"], json!([{"type": "pid"}]));
        let mut s = json!({"linux": {"namespaces": [{"type": "user", "path": "/proc/0/ns/user"}]}});
        assert!(namespaces(&mut s, &ready).is_err());
        let mut other =
            json!({"linux": {"namespaces": [{"type": "network", "path": "/proc/42/ns/net"}]}});
        assert_eq!(namespaces(&mut other, &ready), Ok(false));
    }
}
