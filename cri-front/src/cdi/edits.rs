//! CDI container edits applied to the container's OCI spec, as the reference library applies
//! them: env by key, device nodes (type and numbers from the host node when the spec leaves
//! them out) with their cgroup rule, mounts replacing one at the same path and then ordered
//! parents first, hooks, Intel RDT, net devices, additional gids.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{
    Hook as OciHook, Hooks, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxIntelRdt,
    LinuxNamespaceType, LinuxNetDevice, Mount as OciMount, Spec,
};

use super::schema::{DeviceNode, Edits, Hook, IntelRdt, Mount};
use crate::host_devices;

/// Add `more` to `into` (lists appended; Intel RDT replaced when `more` has one).
pub fn append(into: &mut Edits, more: &Edits) {
    into.env.extend(more.env.iter().cloned());
    into.device_nodes.extend(more.device_nodes.iter().cloned());
    into.net_devices.extend(more.net_devices.iter().cloned());
    into.hooks.extend(more.hooks.iter().cloned());
    into.mounts.extend(more.mounts.iter().cloned());
    if more.intel_rdt.is_some() {
        into.intel_rdt = more.intel_rdt.clone();
    }
    into.additional_gids
        .extend(more.additional_gids.iter().copied());
}

pub fn apply(spec: &mut Spec, e: &Edits) -> Result<(), String> {
    let (uid, gid) = spec
        .process()
        .as_ref()
        .map(|p| (p.user().uid(), p.user().gid()))
        .unwrap_or_default();
    let userns = spec.linux().as_ref().is_some_and(|l| {
        l.namespaces()
            .iter()
            .flatten()
            .any(|n| n.typ() == LinuxNamespaceType::User)
    });
    if !e.env.is_empty() {
        let process = spec.process_mut().get_or_insert_with(Default::default);
        let env = process.env_mut().get_or_insert_with(Vec::new);
        for v in &e.env {
            let key = v.split('=').next();
            match env.iter_mut().find(|x| x.split('=').next() == key) {
                Some(slot) => slot.clone_from(v),
                None => env.push(v.clone()),
            }
        }
    }
    for d in &e.device_nodes {
        let d = fill_from_host(d)?;
        device_node(spec, &d, uid, gid)?;
    }
    for n in &e.net_devices {
        let mut dev = LinuxNetDevice::default();
        dev.set_name(Some(n.name.clone()));
        spec.linux_mut()
            .get_or_insert_with(Default::default)
            .net_devices_mut()
            .get_or_insert_with(Default::default)
            .insert(n.host_interface_name.clone(), dev);
    }
    if !e.mounts.is_empty() {
        let mounts = spec.mounts_mut().get_or_insert_with(Vec::new);
        for m in &e.mounts {
            if let Some(i) = mounts
                .iter()
                .position(|o| o.destination() == Path::new(&m.container_path))
            {
                mounts.remove(i);
            }
            mounts.push(mount(m, userns));
        }
        // Parents before children, else a parent mounted later would hide its children.
        mounts.sort_by_key(|m| depth(m.destination()));
    }
    for h in &e.hooks {
        hook(spec.hooks_mut().get_or_insert_with(Hooks::default), h)?;
    }
    if let Some(r) = &e.intel_rdt {
        spec.linux_mut()
            .get_or_insert_with(Default::default)
            .set_intel_rdt(Some(intel_rdt(r)));
    }
    if !e.additional_gids.is_empty() {
        let process = spec.process_mut().get_or_insert_with(Default::default);
        let gids = process
            .user_mut()
            .additional_gids_mut()
            .get_or_insert_with(Vec::new);
        for g in &e.additional_gids {
            if *g != 0 && !gids.contains(g) {
                gids.push(*g);
            }
        }
    }
    Ok(())
}

/// The node's type, numbers and mode from its host node where the spec leaves them out. A
/// node given in full (type and major, or a fifo) needs no host node.
fn fill_from_host(d: &DeviceNode) -> Result<DeviceNode, String> {
    let mut d = d.clone();
    let complete = !d.kind.is_empty() && (d.major != 0 || d.kind == "p");
    if d.host_path.is_empty() {
        d.host_path.clone_from(&d.path);
    }
    let host = match host_devices::node(Path::new(&d.host_path)) {
        Ok(Some(h)) => h,
        _ if complete => return Ok(d),
        Ok(None) => {
            return Err(format!(
                "CDI host device {:?} is not a device node",
                d.host_path
            ))
        }
        Err(e) => {
            return Err(format!(
                "failed to stat CDI host device {:?}: {e}",
                d.host_path
            ))
        }
    };
    d.file_mode.get_or_insert(host.file_mode);
    if complete {
        return Ok(d);
    }
    let host_kind = host.kind.to_string();
    if d.kind.is_empty() {
        d.kind.clone_from(&host_kind);
    }
    if d.kind != host_kind {
        return Err(format!(
            "CDI device ({:?}, {:?}), host type mismatch ({}, {host_kind})",
            d.path, d.host_path, d.kind
        ));
    }
    if d.kind != "p" && d.major == 0 {
        (d.major, d.minor) = (host.major, host.minor);
    }
    Ok(d)
}

fn device_node(spec: &mut Spec, d: &DeviceNode, uid: u32, gid: u32) -> Result<(), String> {
    let typ = match d.kind.as_str() {
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        "u" => LinuxDeviceType::U,
        "p" => LinuxDeviceType::P,
        k => return Err(format!("device {:?}: invalid type {k:?}", d.path)),
    };
    let mut dev = LinuxDevice::default();
    dev.set_path(PathBuf::from(&d.path));
    dev.set_typ(typ);
    dev.set_major(d.major);
    dev.set_minor(d.minor);
    dev.set_file_mode(d.file_mode);
    // A node the spec gives no owner belongs to the container's user, as in the reference.
    dev.set_uid(d.uid.or((uid > 0).then_some(uid)));
    dev.set_gid(d.gid.or((gid > 0).then_some(gid)));
    let linux = spec.linux_mut().get_or_insert_with(Default::default);
    let devices = linux.devices_mut().get_or_insert_with(Vec::new);
    if let Some(i) = devices.iter().position(|o| o.path() == dev.path()) {
        devices.remove(i);
    }
    match devices.iter_mut().find(|o| o.path() == dev.path()) {
        Some(slot) => *slot = dev,
        None => devices.push(dev),
    }
    if matches!(typ, LinuxDeviceType::B | LinuxDeviceType::C) {
        let access = match d.permissions.as_str() {
            "" => "rwm",
            "none" => "",
            p => p,
        };
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(typ));
        rule.set_major(Some(d.major));
        rule.set_minor(Some(d.minor));
        rule.set_access(Some(access.to_string()));
        linux
            .resources_mut()
            .get_or_insert_with(Default::default)
            .devices_mut()
            .get_or_insert_with(Vec::new)
            .push(rule);
    }
    Ok(())
}

fn mount(m: &Mount, userns: bool) -> OciMount {
    let mut o = OciMount::default();
    o.set_destination(PathBuf::from(&m.container_path));
    o.set_source(Some(PathBuf::from(&m.host_path)));
    o.set_typ((!m.kind.is_empty()).then(|| m.kind.clone()));
    let mut options = m.options.clone();
    if userns {
        // In a user namespace a bind mount needs an id-mapped one to show the host's owners.
        let has = |s: &str| options.iter().any(|x| x == s);
        if !has("idmap") && !has("ridmap") {
            if has("rbind") {
                options.push("ridmap".into());
            } else if has("bind") || m.kind == "bind" {
                options.push("idmap".into());
            }
        }
    }
    o.set_options((!options.is_empty()).then_some(options));
    o
}

/// How many `/` a cleaned path has (`/` and `/a` one, `/a/b` two).
fn depth(p: &Path) -> usize {
    let parts = p
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    if p.is_absolute() {
        parts.max(1)
    } else {
        parts.saturating_sub(1)
    }
}

#[allow(deprecated)] // prestart: deprecated by OCI, still a CDI hook name
fn hook(hooks: &mut Hooks, h: &Hook) -> Result<(), String> {
    let list = match h.hook_name.as_str() {
        "prestart" => hooks.prestart_mut(),
        "createRuntime" => hooks.create_runtime_mut(),
        "createContainer" => hooks.create_container_mut(),
        "startContainer" => hooks.start_container_mut(),
        "poststart" => hooks.poststart_mut(),
        "poststop" => hooks.poststop_mut(),
        n => return Err(format!("unknown hook name {n:?}")),
    };
    let mut o = OciHook::default();
    o.set_path(PathBuf::from(&h.path));
    o.set_args((!h.args.is_empty()).then(|| h.args.clone()));
    o.set_env((!h.env.is_empty()).then(|| h.env.clone()));
    o.set_timeout(h.timeout);
    list.get_or_insert_with(Vec::new).push(o);
    Ok(())
}

fn intel_rdt(r: &IntelRdt) -> LinuxIntelRdt {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut o = LinuxIntelRdt::default();
    o.set_clos_id(some(&r.clos_id));
    o.set_l3_cache_schema(some(&r.l3_cache_schema));
    o.set_mem_bw_schema(some(&r.mem_bw_schema));
    o.set_schemata(r.schemata.clone());
    o.set_enable_monitoring(r.enable_monitoring.then_some(true));
    o
}

#[cfg(test)]
mod tests {
    use super::super::schema::parse;
    use super::*;

    /// A spec shaped as criusd builds them: a user, env, a /dev tmpfs, deny-all devices.
    fn base() -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.1.0",
            "process": {"user": {"uid": 1000, "gid": 1000}, "args": ["sh"], "env": ["PATH=/bin", "A=old"], "cwd": "/"},
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/data", "type": "bind", "source": "/old", "options": ["rbind"]}
            ],
            "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]}, "namespaces": [{"type": "mount"}]}
        }))
        .unwrap()
    }

    fn edits(yaml: &str) -> Edits {
        let s = parse(
            &format!("cdiVersion: 1.1.0\nkind: a.com/b\ndevices: [{{name: x, containerEdits: {yaml}}}]\n"),
            false,
        )
        .unwrap();
        s.devices[0].container_edits.clone()
    }

    #[test]
    fn env_devices_mounts_hooks_gids() {
        let mut spec = base();
        let e = edits(
            r#"{
            env: [A=new, B=1],
            deviceNodes: [{path: /dev/cdi-zero, hostPath: /dev/zero, permissions: rw},
                          {path: /dev/given, type: b, major: 7, minor: 9, uid: 0}],
            mounts: [{hostPath: /host/lib, containerPath: /usr/lib/x/y, options: [ro, rbind]},
                     {hostPath: /new, containerPath: /data, options: [bind]}],
            hooks: [{hookName: createRuntime, path: /bin/sh, args: [sh, -c, 'true'], timeout: 3},
                    {hookName: poststop, path: /bin/true}],
            additionalGids: [0, 44, 44],
            intelRdt: {closID: c1},
            netDevices: [{hostInterfaceName: eth9, name: net0}]
        }"#,
        );
        apply(&mut spec, &e).unwrap();
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.env().as_ref().unwrap(), &["PATH=/bin", "A=new", "B=1"]);
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &[44]);

        let linux = spec.linux().as_ref().unwrap();
        let devs = linux.devices().as_ref().unwrap();
        assert_eq!(devs[0].path(), Path::new("/dev/cdi-zero"));
        assert_eq!(
            (devs[0].typ(), devs[0].major(), devs[0].minor()),
            (LinuxDeviceType::C, 1, 5)
        );
        assert_eq!((devs[0].uid(), devs[0].gid()), (Some(1000), Some(1000)));
        assert!(devs[0].file_mode().is_some());
        assert_eq!((devs[1].major(), devs[1].uid()), (7, Some(0)));
        let rules = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert_eq!(rules.len(), 3, "deny-all then one allow per node");
        assert!(!rules[0].allow());
        assert_eq!(
            (rules[1].major(), rules[1].access().as_deref()),
            (Some(1), Some("rw"))
        );
        assert_eq!(
            (rules[2].typ(), rules[2].access().as_deref()),
            (Some(LinuxDeviceType::B), Some("rwm"))
        );
        assert_eq!(
            linux.intel_rdt().as_ref().unwrap().clos_id().as_deref(),
            Some("c1")
        );
        assert!(linux.net_devices().as_ref().unwrap().contains_key("eth9"));

        let dests: Vec<_> = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect();
        // /data replaced (and moved with the sort), parents before children.
        assert_eq!(dests, ["/proc", "/dev", "/data", "/usr/lib/x/y"]);
        let data = &spec.mounts().as_ref().unwrap()[2];
        assert_eq!(data.source().as_deref(), Some(Path::new("/new")));

        let hooks = spec.hooks().as_ref().unwrap();
        let cr = hooks.create_runtime().as_ref().unwrap();
        assert_eq!(
            (cr[0].path(), cr[0].timeout()),
            (&PathBuf::from("/bin/sh"), Some(3))
        );
        assert_eq!(hooks.poststop().as_ref().unwrap().len(), 1);
        // What criusd hands containerd still reads back as an OCI spec.
        let back: Spec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn host_nodes_fill_what_the_spec_leaves_out() {
        let mut spec = base();
        let missing = edits("{deviceNodes: [{path: /dev/nope-cdi-test}]}");
        assert!(apply(&mut spec, &missing)
            .unwrap_err()
            .contains("/dev/nope-cdi-test"));
        let mismatch = edits("{deviceNodes: [{path: /dev/null, type: b}]}");
        assert!(apply(&mut spec, &mismatch)
            .unwrap_err()
            .contains("mismatch"));
        let not_node = edits("{deviceNodes: [{path: /x, hostPath: /etc/hostname}]}");
        assert!(apply(&mut spec, &not_node)
            .unwrap_err()
            .contains("not a device node"));
        // Complete without a host node; none = no cgroup access.
        let complete = edits(
            "{deviceNodes: [{path: /dev/virt, type: c, major: 240, minor: 1, permissions: none}]}",
        );
        apply(&mut spec, &complete).unwrap();
        let rules = spec
            .linux()
            .as_ref()
            .unwrap()
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .clone()
            .unwrap();
        assert_eq!(rules.last().unwrap().access().as_deref(), Some(""));
    }

    #[test]
    fn idmap_in_a_user_namespace_and_depth() {
        let m = Mount {
            host_path: "/a".into(),
            container_path: "/b".into(),
            options: vec!["rbind".into()],
            kind: String::new(),
        };
        assert_eq!(
            mount(&m, true).options().clone().unwrap(),
            ["rbind", "ridmap"]
        );
        assert_eq!(mount(&m, false).options().clone().unwrap(), ["rbind"]);
        assert_eq!(depth(Path::new("/")), 1);
        assert_eq!(depth(Path::new("/a/")), 1);
        assert_eq!(depth(Path::new("/a/b")), 2);
    }
}
