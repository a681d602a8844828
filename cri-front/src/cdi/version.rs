//! Which `cdiVersion`s a spec may declare: a released one, and no older than the features it
//! uses need (the reference library's rule; the version only gates fields, it changes no
//! meaning).

use super::schema::{Edits, SpecFile};

/// Released versions, newest first.
const VERSIONS: &[&str] = &[
    "1.1.0", "1.0.0", "0.8.0", "0.7.0", "0.6.0", "0.5.0", "0.4.0", "0.3.0", "0.2.0", "0.1.0",
];

/// What a spec with no newer feature needs.
const EARLIEST: &str = "0.3.0";

pub fn check(spec: &SpecFile) -> Result<(), String> {
    let declared = spec
        .cdi_version
        .strip_prefix('v')
        .unwrap_or(&spec.cdi_version);
    let Some(declared_at) = index(declared) else {
        return Err(format!("invalid version {:?}", spec.cdi_version));
    };
    let needed = required(spec);
    if index(needed).is_some_and(|n| n < declared_at) {
        return Err(format!("the spec version must be at least v{needed}"));
    }
    Ok(())
}

fn index(v: &str) -> Option<usize> {
    VERSIONS.iter().position(|k| *k == v)
}

/// The oldest version that has every field the spec uses.
fn required(spec: &SpecFile) -> &'static str {
    let all_edits: Vec<&Edits> = std::iter::once(&spec.container_edits)
        .chain(spec.devices.iter().map(|d| &d.container_edits))
        .collect();
    let any = |f: fn(&Edits) -> bool| all_edits.iter().any(|e| f(e));
    if any(|e| {
        !e.net_devices.is_empty()
            || e.intel_rdt
                .as_ref()
                .is_some_and(|r| r.schemata.is_some() || r.enable_monitoring)
    }) {
        return "1.1.0";
    }
    if any(|e| e.intel_rdt.is_some() || !e.additional_gids.is_empty()) {
        return "0.7.0";
    }
    let class_has_dot = spec
        .kind
        .split_once('/')
        .is_some_and(|(_, c)| c.contains('.'));
    if !spec.annotations.is_empty()
        || spec.devices.iter().any(|d| !d.annotations.is_empty())
        || class_has_dot
    {
        return "0.6.0";
    }
    if spec
        .devices
        .iter()
        .any(|d| d.name.starts_with(|c: char| c.is_ascii_digit()))
        || any(|e| e.device_nodes.iter().any(|n| !n.host_path.is_empty()))
    {
        return "0.5.0";
    }
    if any(|e| e.mounts.iter().any(|m| !m.kind.is_empty())) {
        return "0.4.0";
    }
    EARLIEST
}

#[cfg(test)]
mod tests {
    use super::super::schema::parse;
    use super::*;

    fn spec(version: &str, device: &str) -> SpecFile {
        parse(
            &format!("cdiVersion: {version:?}\nkind: a.com/b\ndevices: [{device}]\n"),
            false,
        )
        .unwrap()
    }

    #[test]
    fn versions_gate_fields() {
        let plain = "{name: x, containerEdits: {env: [A=1]}}";
        assert!(check(&spec("0.3.0", plain)).is_ok());
        assert!(check(&spec("v1.1.0", plain)).is_ok());
        assert!(check(&spec("0.9.0", plain))
            .unwrap_err()
            .contains("invalid version"));
        assert!(check(&spec("", plain)).is_err());
        // A device name starting with a digit came in 0.5.0.
        let digit = "{name: '0', containerEdits: {env: [A=1]}}";
        assert!(check(&spec("0.4.0", digit)).unwrap_err().contains("v0.5.0"));
        assert!(check(&spec("0.5.0", digit)).is_ok());
        let gids = "{name: x, containerEdits: {additionalGids: [5]}}";
        assert!(check(&spec("0.6.0", gids)).is_err());
        assert!(check(&spec("0.7.0", gids)).is_ok());
        let net = "{name: x, containerEdits: {netDevices: [{hostInterfaceName: a, name: b}]}}";
        assert!(check(&spec("1.0.0", net)).unwrap_err().contains("v1.1.0"));
        let mount =
            "{name: x, containerEdits: {mounts: [{hostPath: /a, containerPath: /b, type: bind}]}}";
        assert!(check(&spec("0.3.0", mount)).unwrap_err().contains("v0.4.0"));
    }
}
