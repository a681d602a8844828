//! # CDI devices (Container Device Interface)
//!
//! A container asks for devices by qualified name `vendor/class=name`, in `CDI_devices` or in
//! kubelet's device-plugin annotations `cdi.k8s.io/<key>: <name>[,<name>…]`. Vendors describe
//! their devices in spec files (JSON or YAML, CDI spec versions 0.1.0–1.1.0) in the spec
//! directories, criusd's `cdi_spec_dirs` (default `/etc/cdi`, `/var/run/cdi`; later ones
//! override earlier ones). Each device's edits — device nodes, mounts, env, hooks, additional
//! gids, Intel RDT, net devices — and those of its spec as a whole are applied to the
//! container's OCI spec at CreateContainer; a name no spec offers is INVALID_ARGUMENT naming it.
//!
//! Semantics are those of the reference Go library (cncf-tags/container-device-interface,
//! `pkg/cdi`) as containerd uses it; written here on oci-spec because the Rust port pulls a
//! JSON-schema validator with an HTTP client and a C crypto library into the build, and refuses
//! every device when one spec file is broken.

mod check;
mod edits;
mod name;
mod registry;
mod schema;
mod version;

use std::collections::BTreeSet;
use std::path::PathBuf;

use crius_proto::runtime as cri;
use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

pub use registry::Registry;

/// kubelet's device-plugin form of a request.
pub const ANNOTATION_PREFIX: &str = "cdi.k8s.io/";

/// The spec directories when the config names none.
pub fn default_spec_dirs() -> Vec<PathBuf> {
    vec!["/etc/cdi".into(), "/var/run/cdi".into()]
}

/// The devices `c` asks for, `CDI_devices` first, then the annotations' (by key), each once;
/// a name that is not `vendor/class=name` is INVALID_ARGUMENT.
pub fn requested(c: &cri::ContainerConfig) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut add = |d: &str, from: &str| -> Result<()> {
        name::parse_qualified(d).map_err(|e| Error::InvalidArgument(format!("{from}: {e}")))?;
        if seen.insert(d.to_string()) {
            out.push(d.to_string());
        }
        Ok(())
    };
    for d in &c.cdi_devices {
        add(&d.name, "CDI_devices")?;
    }
    let mut keys: Vec<&String> = c
        .annotations
        .keys()
        .filter(|k| k.starts_with(ANNOTATION_PREFIX))
        .collect();
    keys.sort();
    for k in keys {
        for d in c.annotations[k].split(',') {
            add(d, &format!("annotation {k:?}"))?;
        }
    }
    Ok(out)
}

/// Apply the edits of `devices` (from [`requested`]) found in `dirs` to `spec`.
pub fn inject(
    dirs: &[PathBuf],
    spec: &mut Spec,
    devices: &[String],
    container: &str,
) -> Result<()> {
    if devices.is_empty() {
        return Ok(());
    }
    let reg = Registry::scan(dirs);
    for e in &reg.errors {
        tracing::warn!(container, error = %e, "CDI spec file left out");
    }
    let edits = reg.edits_for(devices).map_err(|unknown| {
        let mut m = format!("unresolvable CDI devices {}", unknown.join(", "));
        if !reg.errors.is_empty() {
            m.push_str(&format!(
                " (spec files left out: {})",
                reg.errors.join("; ")
            ));
        }
        Error::InvalidArgument(m)
    })?;
    edits::apply(spec, &edits)
        .map_err(|e| Error::InvalidArgument(format!("CDI devices {}: {e}", devices.join(", "))))?;
    tracing::info!(container, devices = ?devices, "CDI devices injected");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(cdi: &[&str], ann: &[(&str, &str)]) -> cri::ContainerConfig {
        cri::ContainerConfig {
            cdi_devices: cdi
                .iter()
                .map(|n| cri::CdiDevice {
                    name: n.to_string(),
                })
                .collect(),
            annotations: ann
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn requests_from_the_field_and_the_annotations() {
        let c = config(
            &["v.com/c=a", "v.com/c=a"],
            &[
                ("cdi.k8s.io/z", "v.com/c=b,v.com/c=a"),
                ("cdi.k8s.io/y", "v.com/c=c"),
                ("other", "not=looked/at"),
            ],
        );
        assert_eq!(
            requested(&c).unwrap(),
            ["v.com/c=a", "v.com/c=c", "v.com/c=b"]
        );
        let bad = config(&[], &[("cdi.k8s.io/x", "gpu0")]);
        let e = requested(&bad).unwrap_err().to_string();
        assert!(e.contains("cdi.k8s.io/x") && e.contains("gpu0"), "{e}");
        assert!(matches!(
            requested(&config(&["/dev/zero"], &[])),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn unknown_devices_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("v.yaml"),
            "cdiVersion: 0.6.0\nkind: v.com/c\ndevices: [{name: a, containerEdits: {env: [A=1]}}]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.json"), "{").unwrap();
        let mut spec = Spec::default();
        let dirs = [dir.path().to_path_buf()];
        let e = inject(
            &dirs,
            &mut spec,
            &["v.com/c=a".into(), "v.com/c=nope".into()],
            "t",
        )
        .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)));
        let m = e.to_string();
        assert!(
            m.contains("v.com/c=nope") && !m.contains("v.com/c=a,") && m.contains("broken.json"),
            "{m}"
        );
        inject(&dirs, &mut spec, &["v.com/c=a".into()], "t").unwrap();
        assert!(spec
            .process()
            .as_ref()
            .unwrap()
            .env()
            .as_ref()
            .unwrap()
            .contains(&"A=1".to_string()));
    }
}
