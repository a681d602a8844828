//! crius's RuntimeDefault seccomp profile: the allow-list containerd and Docker ship. The
//! syscall names are data (`seccomp/allowed.txt`: always, by kernel, by architecture, by
//! capability); the rules with argument conditions are here. Everything not allowed fails with
//! EPERM, so a RuntimeDefault container is as confined as on containerd.

use serde_json::{json, Value};

const ALLOWED: &str = include_str!("seccomp/allowed.txt");

/// socket(2) address families the profile keeps from containers.
const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;
/// The namespace flags an unprivileged clone(2) may not carry (CLONE_NEWNS … CLONE_NEWCGROUP).
const CLONE_NAMESPACES: u64 =
    0x0002_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000 | 0x0200_0000;
const ENOSYS: u32 = 38;

/// One `[kind values…]` section of the data file.
struct Section<'a> {
    kind: &'a str,
    values: Vec<&'a str>,
    names: Vec<&'a str>,
}

fn sections() -> Vec<Section<'static>> {
    let mut out: Vec<Section> = Vec::new();
    for line in ALLOWED.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(h) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let mut w = h.split_whitespace();
            out.push(Section {
                kind: w.next().unwrap_or_default(),
                values: w.collect(),
                names: Vec::new(),
            });
        } else if let Some(s) = out.last_mut() {
            s.names.extend(line.split_whitespace());
        }
    }
    out
}

/// The kernel's (major, minor), from its release string (`6.1.0-18-amd64`).
fn kernel_version(release: &str) -> (u32, u32) {
    let mut it = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// libseccomp's names of the architectures a process of `arch` may call in (containerd's list).
fn architectures(arch: &str) -> Vec<&'static str> {
    match arch {
        "x86_64" => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" => vec!["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"],
        "mips64" => vec!["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32"],
        "s390x" => vec!["SCMP_ARCH_S390", "SCMP_ARCH_S390X"],
        "riscv64" => vec!["SCMP_ARCH_RISCV64"],
        "loongarch64" => vec!["SCMP_ARCH_LOONGARCH64"],
        _ => vec![],
    }
}

fn allow(names: &[&str]) -> Value {
    json!({ "names": names, "action": "SCMP_ACT_ALLOW" })
}

fn allow_if(name: &str, index: u32, op: &str, value: u64) -> Value {
    json!({
        "names": [name], "action": "SCMP_ACT_ALLOW",
        "args": [{ "index": index, "value": value, "op": op }],
    })
}

/// The profile for a container with bounding set `caps`, on this host.
pub fn runtime_default(caps: &[String]) -> Value {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    profile(caps, std::env::consts::ARCH, kernel_version(&release))
}

pub fn profile(caps: &[String], arch: &str, kernel: (u32, u32)) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut rules = Vec::new();
    for s in sections() {
        let on = match s.kind {
            "all" => true,
            "kernel" => s
                .values
                .first()
                .is_some_and(|v| kernel >= kernel_version(v)),
            "arch" => s.values.contains(&arch),
            "cap" => s.values.iter().any(|c| has(c)),
            _ => false,
        };
        if on && !s.names.is_empty() {
            rules.push(allow(&s.names));
        }
    }
    // socket(2) for every family but AF_ALG and AF_VSOCK: three one-condition rules (runc
    // turns several conditions on one argument into an OR).
    rules.push(allow_if("socket", 0, "SCMP_CMP_LT", AF_ALG));
    rules.push(allow_if("socket", 0, "SCMP_CMP_EQ", AF_ALG + 1));
    rules.push(allow_if("socket", 0, "SCMP_CMP_GT", AF_VSOCK));
    // personality(2): only the harmless personas (Linux, UNAME26 and their 32-bit forms, query).
    for p in [0x0, 0x0008, 0x2_0000, 0x2_0008, 0xffff_ffff] {
        rules.push(allow_if("personality", 0, "SCMP_CMP_EQ", p));
    }
    if !has("CAP_SYS_ADMIN") {
        // clone(2) without namespace flags (its flags are the second argument on s390), and
        // clone3(2), whose flags seccomp cannot see, answers ENOSYS so libcs fall back to clone.
        let index = if arch.starts_with("s390") { 1 } else { 0 };
        rules.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{ "index": index, "value": CLONE_NAMESPACES, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }],
        }));
        rules.push(json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS }));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": architectures(arch),
        "syscalls": rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(p: &Value) -> Vec<String> {
        p["syscalls"]
            .as_array()
            .expect("rules")
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
            .flat_map(|r| r["names"].as_array().expect("names").clone())
            .map(|n| n.as_str().expect("name").to_string())
            .collect()
    }

    #[test]
    fn the_data_parses() {
        let s = sections();
        let all = s.iter().find(|s| s.kind == "all").expect("[all]");
        assert!(all.names.len() > 300, "{}", all.names.len());
        assert!(all.names.contains(&"read") && all.names.contains(&"execve"));
        assert!(s.iter().all(|s| !s.names.is_empty()));
    }

    #[test]
    fn default_caps_keep_the_host_out() {
        let caps: Vec<String> = super::super::spec::DEFAULT_CAPS
            .iter()
            .map(|c| c.to_string())
            .collect();
        let p = profile(&caps, "x86_64", (6, 1));
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        let a = allowed(&p);
        for n in [
            "read",
            "write",
            "openat",
            "execve",
            "arch_prctl",
            "ptrace",
            "chroot",
        ] {
            assert!(a.iter().any(|x| x == n), "{n} allowed");
        }
        for n in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "reboot",
            "init_module",
            "bpf",
            "clone",
            "keyctl",
            "kexec_load",
            "open_by_handle_at",
            "swapon",
        ] {
            assert!(!a.iter().any(|x| x == n), "{n} not allowed unconditionally");
        }
        let rules = p["syscalls"].as_array().expect("rules");
        assert!(rules
            .iter()
            .any(|r| r["names"][0] == "clone" && r["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"));
        assert!(rules
            .iter()
            .any(|r| r["names"][0] == "clone3" && r["errnoRet"] == 38));
        // An old kernel: no ptrace; an arm host: no arch_prctl.
        assert!(!allowed(&profile(&caps, "x86_64", (4, 4)))
            .iter()
            .any(|x| x == "ptrace"));
        assert!(!allowed(&profile(&caps, "aarch64", (6, 1)))
            .iter()
            .any(|x| x == "arch_prctl"));
    }

    #[test]
    fn capabilities_widen_it() {
        let caps = vec!["CAP_SYS_ADMIN".to_string(), "CAP_SYS_TIME".to_string()];
        let p = profile(&caps, "x86_64", (6, 1));
        let a = allowed(&p);
        for n in [
            "mount",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "settimeofday",
        ] {
            assert!(a.iter().any(|x| x == n), "{n} with its capability");
        }
        assert!(!p["syscalls"]
            .as_array()
            .expect("r")
            .iter()
            .any(|r| r["names"][0] == "clone3" && r["action"] == "SCMP_ACT_ERRNO"));
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.18.44-fc-v657"), (6, 18));
        assert_eq!(kernel_version("4.8"), (4, 8));
        assert_eq!(kernel_version(""), (0, 0));
    }
}
