//! Whether a spec file is one the registry takes: the checks the reference library makes when
//! it loads a spec, so a spec it refuses is refused here too.

use std::collections::BTreeSet;

use super::name;
use super::schema::{Edits, SpecFile};
use super::version;

pub const HOOK_NAMES: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The spec's `kind`, its version and every device, each with edits that can be applied.
pub fn spec(s: &SpecFile) -> Result<(), String> {
    version::check(s)?;
    let (vendor, class) = name::split_kind(&s.kind);
    name::vendor_name(vendor)?;
    name::class_name(class)?;
    edits(&s.container_edits).map_err(|e| format!("invalid container edits: {e}"))?;
    if s.devices.is_empty() {
        return Err("invalid spec, no devices".into());
    }
    let mut seen = BTreeSet::new();
    for d in &s.devices {
        name::device_name(&d.name)
            .map_err(|e| format!("failed to add device {:?}: {e}", d.name))?;
        if is_empty(&d.container_edits) {
            return Err(format!("invalid device {:?}, empty device edits", d.name));
        }
        edits(&d.container_edits).map_err(|e| format!("invalid device {:?}: {e}", d.name))?;
        if !seen.insert(d.name.as_str()) {
            return Err(format!("invalid spec, multiple device {:?}", d.name));
        }
    }
    Ok(())
}

fn is_empty(e: &Edits) -> bool {
    e.env.is_empty()
        && e.device_nodes.is_empty()
        && e.net_devices.is_empty()
        && e.hooks.is_empty()
        && e.mounts.is_empty()
        && e.intel_rdt.is_none()
        && e.additional_gids.is_empty()
}

pub fn edits(e: &Edits) -> Result<(), String> {
    env(&e.env)?;
    for d in &e.device_nodes {
        if d.path.is_empty() {
            return Err("invalid (empty) device path".into());
        }
        if !["", "b", "c", "u", "p"].contains(&d.kind.as_str()) {
            return Err(format!("device {:?}: invalid type {:?}", d.path, d.kind));
        }
        let p = d.permissions.as_str();
        if !(p.is_empty() || p == "none" || p.chars().all(|c| "rwm".contains(c))) {
            return Err(format!("device {:?}: invalid permissions {p:?}", d.path));
        }
    }
    for h in &e.hooks {
        if !HOOK_NAMES.contains(&h.hook_name.as_str()) {
            return Err(format!("invalid hook name {:?}", h.hook_name));
        }
        if h.path.is_empty() {
            return Err(format!("invalid hook {:?} with empty path", h.hook_name));
        }
        env(&h.env).map_err(|err| format!("invalid hook {:?}: {err}", h.hook_name))?;
    }
    for m in &e.mounts {
        if m.host_path.is_empty() {
            return Err("invalid mount, empty host path".into());
        }
        if m.container_path.is_empty() {
            return Err("invalid mount, empty container path".into());
        }
    }
    if let Some(r) = &e.intel_rdt {
        let c = r.clos_id.as_str();
        if c != "/" && (c.len() >= 4096 || c == "." || c == ".." || c.contains(['/', '\n'])) {
            return Err("invalid ClosID".into());
        }
    }
    let (mut hosts, mut names) = (BTreeSet::new(), BTreeSet::new());
    for n in &e.net_devices {
        if n.host_interface_name.is_empty() || n.name.is_empty() {
            return Err("invalid linux net device, empty HostInterfaceName or Name".into());
        }
        if !hosts.insert(&n.host_interface_name) || !names.insert(&n.name) {
            return Err(format!(
                "invalid linux net device, duplicate {:?} / {:?}",
                n.host_interface_name, n.name
            ));
        }
    }
    Ok(())
}

/// `KEY=value` with a non-empty key.
fn env(env: &[String]) -> Result<(), String> {
    match env.iter().find(|v| v.find('=').is_none_or(|i| i == 0)) {
        Some(v) => Err(format!("invalid environment variable {v:?}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::parse;
    use super::*;

    fn load(devices: &str) -> Result<(), String> {
        spec(
            &parse(
                &format!("cdiVersion: 1.1.0\nkind: a.com/b\ndevices: {devices}\n"),
                false,
            )
            .unwrap(),
        )
    }

    #[test]
    fn refused_specs() {
        assert!(load("[{name: x, containerEdits: {env: [A=1]}}]").is_ok());
        for (devices, says) in [
            ("[]", "no devices"),
            ("[{name: x}]", "empty device edits"),
            ("[{name: -x, containerEdits: {env: [A=1]}}]", "device name"),
            ("[{name: x, containerEdits: {env: [=1]}}]", "environment"),
            ("[{name: x, containerEdits: {env: [A]}}]", "environment"),
            ("[{name: x, containerEdits: {deviceNodes: [{path: ''}]}}]", "empty"),
            ("[{name: x, containerEdits: {deviceNodes: [{path: /d, type: z}]}}]", "type"),
            ("[{name: x, containerEdits: {deviceNodes: [{path: /d, permissions: rwx}]}}]", "permissions"),
            ("[{name: x, containerEdits: {hooks: [{hookName: later, path: /h}]}}]", "hook name"),
            ("[{name: x, containerEdits: {hooks: [{hookName: poststop}]}}]", "empty path"),
            ("[{name: x, containerEdits: {mounts: [{hostPath: /a}]}}]", "container path"),
            ("[{name: x, containerEdits: {intelRdt: {closID: a/b}}}]", "ClosID"),
            ("[{name: x, containerEdits: {env: [A=1]}}, {name: x, containerEdits: {env: [A=1]}}]", "multiple"),
        ] {
            let e = load(devices).expect_err(devices);
            assert!(e.contains(says), "{devices}: {e}");
        }
        let bad_kind = parse(
            "cdiVersion: 0.3.0\nkind: nokind\ndevices: [{name: x, containerEdits: {env: [A=1]}}]\n",
            false,
        )
        .unwrap();
        assert!(spec(&bad_kind).is_err());
    }
}
