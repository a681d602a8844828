//! The leak check: a [`Snapshot`] of what a test could leave behind, taken before and after, and the
//! difference, filtered by the test's [`Marks`].

use crate::process::{all_processes, ProcInfo};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// Process names that belong to a pod or container; new ones after a test are leaks in strict mode.
const RUNTIME_COMMS: &[&str] = &["containerd-shim", "runc", "crius-pause", "pause"];

/// What identifies a test's own things.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    /// Dirs the test owns (temp dir): mounts under them, processes naming them.
    pub dirs: Vec<PathBuf>,
    /// Short ids the test names things with (netns, cgroup parents, links).
    pub ids: Vec<String>,
    /// Bridges the test's CNI networks use: veths enslaved to them are leaks; the bridges are not.
    pub bridges: Vec<String>,
    /// host-local lease dirs: any IP lease file left there is a leak.
    pub lease_dirs: Vec<PathBuf>,
    /// Processes that are meant to outlive the check (the test's own containerd).
    pub allowed_pids: Vec<i32>,
    /// Count anything new on the machine, not only what carries a mark (tests run one at a time).
    pub strict: bool,
}

impl Marks {
    fn marked(&self, text: &str) -> bool {
        self.dirs
            .iter()
            .any(|d| text.contains(&*d.to_string_lossy()))
            || self.ids.iter().any(|id| text.contains(id.as_str()))
    }
}

/// One mount, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mount {
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
}

/// One network link of the host's network namespace, from `/sys/class/net`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Link {
    pub name: String,
    /// Has a peer (veth and friends): `iflink != ifindex`.
    pub paired: bool,
    pub master: Option<String>,
}

/// Everything the leak check compares.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub mounts: BTreeSet<Mount>,
    pub links: BTreeSet<Link>,
    pub processes: Vec<ProcInfo>,
    pub cgroups: BTreeSet<PathBuf>,
    pub leases: BTreeSet<PathBuf>,
}

/// One thing a test left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leak {
    Mount(Mount),
    Link(Link),
    Process(ProcInfo),
    Cgroup(PathBuf),
    Lease(PathBuf),
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leak::Mount(m) if m.fstype == "nsfs" => {
                write!(f, "netns mount {} ({})", m.mount_point, m.source)
            }
            Leak::Mount(m) => write!(
                f,
                "mount {} ({} from {})",
                m.mount_point, m.fstype, m.source
            ),
            Leak::Link(l) => write!(
                f,
                "link {} (master {:?}, paired {})",
                l.name, l.master, l.paired
            ),
            Leak::Process(p) => write!(f, "process {} {} [{}]", p.pid, p.comm, p.cmdline),
            Leak::Cgroup(c) => write!(f, "cgroup {}", c.display()),
            Leak::Lease(l) => write!(f, "CNI IP lease {}", l.display()),
        }
    }
}

impl Snapshot {
    /// Read the machine now; `lease_dirs` are the host-local data dirs to list.
    pub fn take(lease_dirs: &[PathBuf]) -> Self {
        Snapshot {
            mounts: mounts().into_iter().collect(),
            links: links(),
            processes: all_processes(),
            cgroups: cgroups(),
            leases: lease_dirs.iter().flat_map(|d| leases(d)).collect(),
        }
    }

    /// What is in `self` (after) and not in `baseline` (before), and belongs to the test.
    pub fn leaks_since(&self, baseline: &Snapshot, marks: &Marks) -> Vec<Leak> {
        let mut found = Vec::new();
        for m in self.mounts.difference(&baseline.mounts) {
            if marks.strict || marks.marked(&m.mount_point) || marks.marked(&m.source) {
                found.push(Leak::Mount(m.clone()));
            }
        }
        for l in self.links.difference(&baseline.links) {
            let on_our_bridge = l.master.as_ref().is_some_and(|m| marks.bridges.contains(m));
            let ours = marks.bridges.contains(&l.name);
            // Strict: any new link (veth, the bandwidth plugin's ifb, a stray bridge) but ours and
            // the devices a kernel module makes when it first loads.
            let strict_leak = marks.strict && !is_module_default(&l.name);
            if !ours && (on_our_bridge || marks.marked(&l.name) || strict_leak) {
                found.push(Leak::Link(l.clone()));
            }
        }
        let before: BTreeSet<(i32, &str)> = baseline
            .processes
            .iter()
            .map(|p| (p.pid, p.cmdline.as_str()))
            .collect();
        for p in &self.processes {
            if before.contains(&(p.pid, p.cmdline.as_str())) || marks.allowed_pids.contains(&p.pid)
            {
                continue;
            }
            let runtime =
                RUNTIME_COMMS.iter().any(|c| p.comm.starts_with(c)) || p.comm.starts_with("runc:");
            if marks.marked(&p.cmdline) || marks.marked(&p.cgroup) || (marks.strict && runtime) {
                found.push(Leak::Process(p.clone()));
            }
        }
        for c in self.cgroups.difference(&baseline.cgroups) {
            if marks.strict || marks.marked(&c.to_string_lossy()) {
                found.push(Leak::Cgroup(c.clone()));
            }
        }
        for l in self.leases.difference(&baseline.leases) {
            found.push(Leak::Lease(l.clone()));
        }
        // Leases that were there before but sit in the test's own dirs are the test's too.
        for l in &self.leases {
            if baseline.leases.contains(l) && marks.lease_dirs.iter().any(|d| l.starts_with(d)) {
                found.push(Leak::Lease(l.clone()));
            }
        }
        found
    }
}

/// `ifb0`, `ifb1`, `dummy0`…: made once per boot when the module loads (the first bandwidth
/// plugin call loads `ifb`), owned by no test.
fn is_module_default(name: &str) -> bool {
    ["ifb", "dummy", "bond"].iter().any(|prefix| {
        name.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Every mount of this mount namespace.
pub fn mounts() -> Vec<Mount> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            // id parent major:minor root mount_point options [optional...] - fstype source super
            let (left, right) = line.split_once(" - ")?;
            let mount_point = unescape(left.split(' ').nth(4)?);
            let mut r = right.split(' ');
            let fstype = r.next()?.to_string();
            let source = r.next().unwrap_or("").to_string();
            Some(Mount {
                mount_point,
                fstype,
                source,
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn links() -> BTreeSet<Link> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return BTreeSet::new();
    };
    dir.filter_map(|e| e.ok())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let base = e.path();
            let read = |f: &str| {
                std::fs::read_to_string(base.join(f))
                    .map(|s| s.trim().to_string())
                    .ok()
            };
            let paired = matches!((read("iflink"), read("ifindex")), (Some(a), Some(b)) if a != b);
            let master = std::fs::read_link(base.join("master"))
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
            Link {
                name,
                paired,
                master,
            }
        })
        .collect()
}

/// Every cgroup dir (v1 hierarchies and the v2 mount), a few levels deep: enough for
/// `<parent>/<pod>/<container>` layouts.
fn cgroups() -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Ok(roots) = std::fs::read_dir("/sys/fs/cgroup") else {
        return out;
    };
    for root in roots.filter_map(|e| e.ok()) {
        walk_dirs(&root.path(), 5, &mut out);
    }
    out
}

fn walk_dirs(dir: &Path, depth: usize, out: &mut BTreeSet<PathBuf>) {
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            let p = e.path();
            out.insert(p.clone());
            walk_dirs(&p, depth - 1, out);
        }
    }
}

/// IP lease files of host-local under `dir` (`<dir>/<network>/<ip>`), without its bookkeeping files.
fn leases(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(nets) = std::fs::read_dir(dir) else {
        return out;
    };
    for net in nets.filter_map(|e| e.ok()).filter(|e| e.path().is_dir()) {
        let Ok(files) = std::fs::read_dir(net.path()) else {
            continue;
        };
        for f in files.filter_map(|e| e.ok()) {
            let name = f.file_name().to_string_lossy().into_owned();
            if name != "lock" && !name.starts_with("last_reserved_ip") {
                out.push(f.path());
            }
        }
    }
    out
}

/// The roots of the cgroup hierarchies: each v1 controller's mount under `/sys/fs/cgroup`, or
/// `/sys/fs/cgroup` itself on a cgroup v2 (unified only) host.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_path_buf()];
    }
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}

/// Remove `<hierarchy>/<top>` and every cgroup under it, deepest first, in every hierarchy (a
/// cgroup goes only once its children have). For the cgroup parents a test named: kubelet owns
/// those, and containerd's CRI plugin leaves them, as runtimes remove only their containers' own.
pub fn remove_cgroup_tree(top: &str) {
    for h in cgroup_hierarchies() {
        let root = h.join(top);
        if !root.is_dir() {
            continue;
        }
        let mut dirs = vec![root];
        let mut i = 0;
        while i < dirs.len() {
            if let Ok(rd) = std::fs::read_dir(&dirs[i]) {
                dirs.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
            i += 1;
        }
        for d in dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_default_links_are_not_leaks() {
        assert!(is_module_default("ifb0") && is_module_default("dummy12"));
        assert!(
            !is_module_default("ifb")
                && !is_module_default("bwp1234")
                && !is_module_default("veth0")
        );
    }

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape("/a\\040b"), "/a b");
    }

    #[test]
    fn marked_mount_is_a_leak_and_unmarked_is_not() {
        let before = Snapshot::default();
        let mut after = Snapshot::default();
        after.mounts.insert(Mount {
            mount_point: "/tmp/t1/x".into(),
            fstype: "tmpfs".into(),
            source: "t".into(),
        });
        after.mounts.insert(Mount {
            mount_point: "/elsewhere".into(),
            fstype: "tmpfs".into(),
            source: "t".into(),
        });
        let marks = Marks {
            dirs: vec!["/tmp/t1".into()],
            ..Default::default()
        };
        let leaks = after.leaks_since(&before, &marks);
        assert_eq!(leaks.len(), 1, "{leaks:?}");
        let strict = Marks {
            strict: true,
            ..marks
        };
        assert_eq!(after.leaks_since(&before, &strict).len(), 2);
    }

    #[test]
    fn veth_on_our_bridge_is_a_leak_bridge_is_not() {
        let before = Snapshot::default();
        let mut after = Snapshot::default();
        after.links.insert(Link {
            name: "crb1".into(),
            paired: false,
            master: None,
        });
        after.links.insert(Link {
            name: "veth1".into(),
            paired: true,
            master: Some("crb1".into()),
        });
        let marks = Marks {
            bridges: vec!["crb1".into()],
            ..Default::default()
        };
        let leaks = after.leaks_since(&before, &marks);
        assert_eq!(
            leaks,
            vec![Leak::Link(Link {
                name: "veth1".into(),
                paired: true,
                master: Some("crb1".into())
            })]
        );
    }
}
