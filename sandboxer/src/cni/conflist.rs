//! Loading a CNI network configuration list from the config dir, with errors
//! that name the file and the field.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Map, Value};

/// A parsed network configuration list.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfList {
    /// File it came from.
    pub file: PathBuf,
    pub name: String,
    pub cni_version: String,
    pub disable_check: bool,
    /// Each plugin's own object (with its `type`).
    pub plugins: Vec<Map<String, Value>>,
    /// The list as JSON (what the cache keeps so DEL runs with ADD's config).
    pub raw: Value,
}

impl ConfList {
    pub fn plugin_type(p: &Map<String, Value>) -> &str {
        p.get("type").and_then(Value::as_str).unwrap_or("")
    }

    /// Plugins declaring capability `cap` (`"capabilities": {"portMappings": true}`).
    pub fn has_capability(p: &Map<String, Value>, cap: &str) -> bool {
        p.get("capabilities")
            .and_then(|c| c.get(cap))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// Why no network config could be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfError {
    #[error("no network config found in {0}")]
    NoConfig(PathBuf),
    #[error("cannot read {dir}: {msg}")]
    Dir { dir: PathBuf, msg: String },
    #[error("{file}: {msg}")]
    Invalid { file: PathBuf, msg: String },
}

fn invalid(file: &Path, msg: impl Into<String>) -> ConfError {
    ConfError::Invalid {
        file: file.to_path_buf(),
        msg: msg.into(),
    }
}

/// Candidate files of `dir` in lexical order, with their mtimes (the cache key).
pub fn config_files(dir: &Path) -> Result<Vec<(PathBuf, Option<SystemTime>)>, ConfError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ConfError::Dir {
                dir: dir.to_path_buf(),
                msg: e.to_string(),
            })
        }
    };
    let mut files: Vec<_> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("conflist" | "conf" | "json")
            ) && p.is_file()
        })
        .map(|p| {
            let m = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
            (p, m)
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The network config in force: the first file (lexical order) of `dir`.
/// A malformed first file is an error, not skipped, so the operator sees it.
pub fn load_dir(dir: &Path) -> Result<ConfList, ConfError> {
    let files = config_files(dir)?;
    let (file, _) = files
        .first()
        .ok_or_else(|| ConfError::NoConfig(dir.to_path_buf()))?;
    load_file(file)
}

pub fn load_file(file: &Path) -> Result<ConfList, ConfError> {
    let bytes = std::fs::read(file).map_err(|e| invalid(file, e.to_string()))?;
    let is_list = file.extension().and_then(|e| e.to_str()) == Some("conflist");
    parse(file, &bytes, is_list)
}

/// Parse a `.conflist` (is_list) or a single-plugin `.conf`/`.json` (wrapped into a list).
pub fn parse(file: &Path, bytes: &[u8], is_list: bool) -> Result<ConfList, ConfError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| {
        invalid(
            file,
            format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let obj = v
        .as_object()
        .ok_or_else(|| invalid(file, "top level must be a JSON object"))?;
    let name = str_field(file, obj, "name", "")?;
    let cni_version = str_field(file, obj, "cniVersion", "")?;
    if is_list {
        let disable_check = match obj.get("disableCheck") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid(file, "field `disableCheck`: must be a boolean")),
        };
        let plugins = obj
            .get("plugins")
            .ok_or_else(|| invalid(file, "field `plugins`: missing"))?
            .as_array()
            .ok_or_else(|| invalid(file, "field `plugins`: must be an array"))?;
        if plugins.is_empty() {
            return Err(invalid(file, "field `plugins`: empty"));
        }
        let mut out = Vec::new();
        for (i, p) in plugins.iter().enumerate() {
            let p = p
                .as_object()
                .ok_or_else(|| invalid(file, format!("field `plugins[{i}]`: must be an object")))?;
            str_field(file, p, "type", &format!("plugins[{i}]."))?;
            out.push(p.clone());
        }
        Ok(ConfList {
            file: file.to_path_buf(),
            name,
            cni_version,
            disable_check,
            plugins: out,
            raw: v,
        })
    } else {
        str_field(file, obj, "type", "")?;
        let raw = serde_json::json!({
            "cniVersion": cni_version,
            "name": name,
            "plugins": [obj],
        });
        Ok(ConfList {
            file: file.to_path_buf(),
            name,
            cni_version,
            disable_check: false,
            plugins: vec![obj.clone()],
            raw,
        })
    }
}

/// Rebuild a list from the JSON kept in the cache.
pub fn from_cached(raw: &Value) -> Result<ConfList, ConfError> {
    let bytes =
        serde_json::to_vec(raw).map_err(|e| invalid(Path::new("<cache>"), e.to_string()))?;
    parse(Path::new("<cached config>"), &bytes, true)
}

fn str_field(
    file: &Path,
    obj: &Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Result<String, ConfError> {
    match obj.get(key) {
        None => Err(invalid(file, format!("field `{prefix}{key}`: missing"))),
        Some(Value::String(s)) if s.is_empty() => {
            Err(invalid(file, format!("field `{prefix}{key}`: empty")))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(invalid(
            file,
            format!("field `{prefix}{key}`: must be a string"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, list: bool) -> Result<ConfList, ConfError> {
        parse(Path::new("/x/10-net.conflist"), s.as_bytes(), list)
    }

    #[test]
    fn parses_list() {
        let c = p(
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
            true,
        )
        .expect("valid");
        assert_eq!(c.name, "n");
        assert_eq!(c.plugins.len(), 2);
        assert!(ConfList::has_capability(&c.plugins[1], "portMappings"));
        assert!(!ConfList::has_capability(&c.plugins[0], "portMappings"));
    }

    #[test]
    fn wraps_single_conf() {
        let c = p(
            r#"{"cniVersion":"0.4.0","name":"n","type":"bridge"}"#,
            false,
        )
        .expect("valid");
        assert_eq!(c.plugins.len(), 1);
        assert_eq!(c.raw["plugins"][0]["type"], "bridge");
    }

    #[test]
    fn errors_name_file_and_field() {
        let e = p(
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{}]}"#,
            true,
        )
        .expect_err("bad");
        let s = e.to_string();
        assert!(s.contains("/x/10-net.conflist"), "{s}");
        assert!(s.contains("plugins[1].type"), "{s}");
        let e = p(r#"{"name":"n","plugins":[]}"#, true).expect_err("bad");
        assert!(e.to_string().contains("`cniVersion`: missing"), "{e}");
        let e = p(r#"{"cniVersion":"1.0.0","name":"n"#, true).expect_err("bad");
        assert!(e.to_string().contains("invalid JSON at line 1"), "{e}");
        let e = p(
            r#"{"cniVersion":1,"name":"n","plugins":[{"type":"x"}]}"#,
            true,
        )
        .expect_err("bad");
        assert!(
            e.to_string().contains("`cniVersion`: must be a string"),
            "{e}"
        );
    }

    #[test]
    fn first_file_wins_and_empty_dir_is_no_config() {
        let d = tempfile::tempdir().expect("tempdir");
        assert!(matches!(load_dir(d.path()), Err(ConfError::NoConfig(_))));
        std::fs::write(
            d.path().join("20-b.conflist"),
            r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}"#,
        )
        .expect("write");
        std::fs::write(
            d.path().join("10-a.conf"),
            r#"{"cniVersion":"1.0.0","name":"a","type":"bridge"}"#,
        )
        .expect("write");
        std::fs::write(d.path().join("README"), "not a config").expect("write");
        assert_eq!(load_dir(d.path()).expect("load").name, "a");
    }
}
