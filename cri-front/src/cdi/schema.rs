//! The CDI spec file as it is written (the CDI project's `specs-go` types, spec 1.1.0), read
//! from JSON or YAML. Unknown fields are refused, as the reference library reads strictly; a
//! list written as `null` (or left empty in YAML) is an empty list.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// One spec file: a vendor's device class and its devices.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SpecFile {
    pub cdi_version: String,
    /// `vendor/class`.
    pub kind: String,
    #[serde(deserialize_with = "nullable")]
    pub annotations: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub devices: Vec<Device>,
    /// Edits made for every container that gets one of this spec's devices.
    #[serde(deserialize_with = "nullable")]
    pub container_edits: Edits,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Device {
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub annotations: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub container_edits: Edits,
}

/// What a device (or a spec, for all its devices) changes in the container's OCI spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Edits {
    #[serde(deserialize_with = "nullable")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub device_nodes: Vec<DeviceNode>,
    #[serde(deserialize_with = "nullable")]
    pub net_devices: Vec<NetDevice>,
    #[serde(deserialize_with = "nullable")]
    pub hooks: Vec<Hook>,
    #[serde(deserialize_with = "nullable")]
    pub mounts: Vec<Mount>,
    pub intel_rdt: Option<IntelRdt>,
    #[serde(deserialize_with = "nullable")]
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceNode {
    /// In the container.
    pub path: String,
    /// On the host; empty: the same as `path`.
    pub host_path: String,
    /// `b`, `c`, `u`, `p`; empty: the host node's.
    #[serde(rename = "type")]
    pub kind: String,
    pub major: i64,
    pub minor: i64,
    pub file_mode: Option<u32>,
    /// cgroup access, `rwm` by default; `none` for no access.
    pub permissions: String,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    #[serde(deserialize_with = "nullable")]
    pub options: Vec<String>,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Hook {
    /// `prestart`, `createRuntime`, `createContainer`, `startContainer`, `poststart`, `poststop`.
    pub hook_name: String,
    pub path: String,
    #[serde(deserialize_with = "nullable")]
    pub args: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub env: Vec<String>,
    pub timeout: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct IntelRdt {
    #[serde(rename = "closID")]
    pub clos_id: String,
    pub l3_cache_schema: String,
    pub mem_bw_schema: String,
    /// `None` and `Some([])` differ to the version check, as in the reference.
    pub schemata: Option<Vec<String>>,
    pub enable_monitoring: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct NetDevice {
    pub host_interface_name: String,
    pub name: String,
}

/// Read a spec file's text: JSON for `.json`, YAML otherwise (YAML also reads JSON, but not
/// JSON indented with tabs, which is common).
pub fn parse(text: &str, json: bool) -> Result<SpecFile, String> {
    if json {
        serde_json::from_str(text).map_err(|e| e.to_string())
    } else {
        serde_yaml::from_str(text).map_err(|e| e.to_string())
    }
}

/// `null` (or an empty YAML value) as the type's default.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_read_the_same() {
        let yaml = r#"
cdiVersion: "0.6.0"
kind: vendor.com/gpu
annotations:
  a.b/c: d
devices:
  - name: gpu0
    containerEdits:
      deviceNodes:
        - path: /dev/gpu0
          hostPath: /dev/zero
          type: c
          fileMode: 438
          permissions: rw
      env: ["GPU=0"]
containerEdits:
  mounts:
    - hostPath: /lib/gpu
      containerPath: /usr/lib/gpu
      options: [ro, bind]
  hooks:
    - hookName: createRuntime
      path: /bin/hook
      args: [hook, "1"]
      timeout: 5
  intelRdt:
    closID: c1
  additionalGids: [44]
  netDevices:
    - hostInterfaceName: eth9
      name: net0
"#;
        let json = r#"{
	"cdiVersion": "0.6.0",
	"kind": "vendor.com/gpu",
	"annotations": {"a.b/c": "d"},
	"devices": [{"name": "gpu0", "containerEdits": {
		"deviceNodes": [{"path": "/dev/gpu0", "hostPath": "/dev/zero", "type": "c", "fileMode": 438, "permissions": "rw"}],
		"env": ["GPU=0"]}}],
	"containerEdits": {
		"mounts": [{"hostPath": "/lib/gpu", "containerPath": "/usr/lib/gpu", "options": ["ro", "bind"]}],
		"hooks": [{"hookName": "createRuntime", "path": "/bin/hook", "args": ["hook", "1"], "timeout": 5}],
		"intelRdt": {"closID": "c1"},
		"additionalGids": [44],
		"netDevices": [{"hostInterfaceName": "eth9", "name": "net0"}]}
}"#;
        let y = parse(yaml, false).unwrap();
        let j = parse(json, true).unwrap();
        assert_eq!(y, j);
        assert_eq!(y.devices[0].container_edits.device_nodes[0].kind, "c");
        assert_eq!(y.container_edits.intel_rdt.as_ref().unwrap().clos_id, "c1");
        assert_eq!(y.container_edits.hooks[0].timeout, Some(5));
    }

    #[test]
    fn unknown_fields_are_refused_and_null_lists_are_empty() {
        let e = parse(
            "cdiVersion: 0.3.0\nkind: a.com/b\ndevices: [{name: x, bogus: 1}]\n",
            false,
        )
        .unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let s = parse(
            "cdiVersion: 0.3.0\nkind: a.com/b\ndevices:\n  - name: x\n    containerEdits:\n      env:\n",
            false,
        )
        .unwrap();
        assert!(s.devices[0].container_edits.env.is_empty());
    }
}
