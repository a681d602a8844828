//! The CDI devices the spec directories offer, read afresh for each container that asks for
//! one (a vendor's tool may write its spec just before). As the reference library: the files
//! `*.json` and `*.yaml` directly in each directory, a device in a later directory overrides
//! one of the same name in an earlier one, two of the same name in one directory cancel out
//! (both refused), and a file that cannot be taken is left out (and said why) without keeping
//! the other files' devices from being used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::schema::{self, Edits, SpecFile};
use super::{check, edits, name};

/// One file taken.
#[derive(Debug)]
struct Loaded {
    path: PathBuf,
    /// Its directory's place in the list: later wins.
    priority: usize,
    file: SpecFile,
}

#[derive(Debug, Default)]
pub struct Registry {
    specs: Vec<Loaded>,
    /// Qualified name → (spec, device index in it).
    devices: BTreeMap<String, (usize, usize)>,
    /// Files left out, each with why.
    pub errors: Vec<String>,
}

impl Registry {
    pub fn scan(dirs: &[PathBuf]) -> Registry {
        let mut r = Registry::default();
        let mut conflicts = BTreeSet::new();
        for (priority, dir) in dirs.iter().enumerate() {
            for path in spec_files(dir, &mut r.errors) {
                let file = match read(&path) {
                    Ok(f) => f,
                    Err(e) => {
                        r.errors.push(format!("{}: {e}", path.display()));
                        continue;
                    }
                };
                let at = r.specs.len();
                let (vendor, class) = name::split_kind(&file.kind);
                for (i, d) in file.devices.iter().enumerate() {
                    let q = name::qualified(vendor, class, &d.name);
                    if let Some(&(other, _)) = r.devices.get(&q) {
                        let old = &r.specs[other];
                        if old.priority == priority {
                            r.errors.push(format!(
                                "conflicting device {q:?} (specs {}, {})",
                                path.display(),
                                old.path.display()
                            ));
                            conflicts.insert(q);
                            continue;
                        }
                    }
                    r.devices.insert(q, (at, i));
                }
                r.specs.push(Loaded {
                    path,
                    priority,
                    file,
                });
            }
        }
        for q in conflicts {
            r.devices.remove(&q);
        }
        r
    }

    /// The edits for `devices`: each device's spec-wide edits once, then the device's own;
    /// Err with the names no spec offers.
    pub fn edits_for(&self, devices: &[String]) -> Result<Edits, Vec<String>> {
        let unknown: Vec<String> = devices
            .iter()
            .filter(|d| !self.devices.contains_key(*d))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(unknown);
        }
        let mut out = Edits::default();
        let mut specs_done = BTreeSet::new();
        for d in devices {
            let (s, i) = self.devices[d];
            let file = &self.specs[s].file;
            if specs_done.insert(s) {
                edits::append(&mut out, &file.container_edits);
            }
            edits::append(&mut out, &file.devices[i].container_edits);
        }
        Ok(out)
    }

    /// The qualified names on offer.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.devices.keys().map(String::as_str)
    }
}

/// `dir`'s `*.json` and `*.yaml` files in name order (no subdirectories); a missing directory
/// has none.
fn spec_files(dir: &Path, errors: &mut Vec<String>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            errors.push(format!("{}: {e}", dir.display()));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json" || x == "yaml"))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> Result<SpecFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let json = path.extension().is_some_and(|x| x == "json");
    let file = schema::parse(&text, json).map_err(|e| format!("failed to parse CDI spec: {e}"))?;
    check::spec(&file).map_err(|e| format!("invalid CDI spec: {e}"))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, kind: &str, devices: &[(&str, &str)]) {
        let devs: Vec<String> = devices
            .iter()
            .map(|(n, env)| format!("{{name: {n}, containerEdits: {{env: [{env}]}}}}"))
            .collect();
        std::fs::write(
            dir.join(file),
            format!(
                "cdiVersion: 0.6.0\nkind: {kind}\ncontainerEdits: {{env: [SPEC={file}]}}\ndevices: [{}]\n",
                devs.join(", ")
            ),
        )
        .unwrap();
    }

    #[test]
    fn later_dirs_override_same_dir_conflicts_cancel_bad_files_are_left_out() {
        let low = tempfile::tempdir().unwrap();
        let high = tempfile::tempdir().unwrap();
        write(
            low.path(),
            "a.yaml",
            "v.com/c",
            &[("d0", "FROM=low"), ("d1", "FROM=low")],
        );
        write(high.path(), "b.yaml", "v.com/c", &[("d0", "FROM=high")]);
        write(high.path(), "c.yaml", "v.com/x", &[("same", "N=1")]);
        write(high.path(), "d.yaml", "v.com/x", &[("same", "N=2")]);
        std::fs::write(high.path().join("broken.yaml"), "cdiVersion: [").unwrap();
        std::fs::write(high.path().join("notes.txt"), "not a spec").unwrap();
        std::fs::write(
            high.path().join("j.json"),
            r#"{"cdiVersion": "0.3.0", "kind": "j.com/k", "devices": [{"name": "n", "containerEdits": {"env": ["J=1"]}}]}"#,
        )
        .unwrap();
        let missing = low.path().join("absent");
        let r = Registry::scan(&[low.path().into(), missing, high.path().into()]);

        let names: Vec<&str> = r.names().collect();
        assert_eq!(names, ["j.com/k=n", "v.com/c=d0", "v.com/c=d1"]);
        let e = r.edits_for(&["v.com/c=d0".into()]).unwrap();
        assert_eq!(e.env, ["SPEC=b.yaml", "FROM=high"]);
        // Two devices of one spec: its spec-wide edits once.
        let e = r
            .edits_for(&["v.com/c=d1".into(), "j.com/k=n".into()])
            .unwrap();
        assert_eq!(e.env, ["SPEC=a.yaml", "FROM=low", "J=1"]);
        assert_eq!(
            r.edits_for(&[
                "v.com/x=same".into(),
                "v.com/c=d1".into(),
                "no.com/c=x".into()
            ])
            .unwrap_err(),
            ["v.com/x=same", "no.com/c=x"]
        );
        assert!(
            r.errors.iter().any(|e| e.contains("conflicting device")),
            "{:?}",
            r.errors
        );
        assert!(
            r.errors.iter().any(|e| e.contains("broken.yaml")),
            "{:?}",
            r.errors
        );
    }
}
