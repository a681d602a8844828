//! Rules for the strings a request carries on to CNI (environment, CNI_ARGS), runc (argv,
//! config.json, sysctl files), the container's environment and file names. A string that cannot
//! get there whole — a NUL byte, a value longer than the kernel or the format takes — is refused
//! here, before anything is made, instead of failing half-way (and failing again on teardown).

use std::collections::HashMap;
use std::path::{Component, Path};

/// Why a string was refused: what it is and what is wrong with it.
pub type Check = Result<(), String>;

/// Longest path the kernel takes (PATH_MAX, with its NUL).
pub const PATH_MAX: usize = 4095;
/// Longest file name component (NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Longest single argv or environment string execve takes (MAX_ARG_STRLEN, with its NUL).
pub const ARG_MAX_ONE: usize = 128 * 1024 - 1;
/// What argv and environment may add up to: well under execve's limit (a quarter of the
/// default 8 MiB stack), which also holds the pointers and the runtime's own strings.
pub const ARGV_ENV_TOTAL: usize = 1024 * 1024;
/// Kubernetes' own limit on a pod's annotations (and ours on labels) taken together.
pub const MAP_TOTAL: usize = 256 * 1024;
/// A label or annotation key: a DNS-subdomain prefix, `/`, a 63-byte name (Kubernetes' rule).
pub const KEY_MAX: usize = 253 + 1 + 63;
/// Object names (pod name, namespace, uid, container name): a DNS subdomain.
pub const NAME_253: usize = 253;
/// sethostname's limit (HOST_NAME_MAX).
pub const HOSTNAME_MAX: usize = 64;

fn shown(s: &str) -> String {
    let mut t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        t.push('…');
    }
    format!("{t:?}")
}

/// No NUL byte and at most `max` bytes.
pub fn plain(what: &str, s: &str, max: usize) -> Check {
    if s.contains('\0') {
        return Err(format!("{what} {} contains a NUL byte", shown(s)));
    }
    if s.len() > max {
        return Err(format!("{what} is {} bytes long, more than {max}", s.len()));
    }
    Ok(())
}

/// As [`plain`], and no control characters: the value becomes one line of a file
/// (/etc/hosts, resolv.conf, /etc/hostname) or one CNI argument.
pub fn line(what: &str, s: &str, max: usize) -> Check {
    plain(what, s, max)?;
    if s.chars().any(char::is_control) {
        return Err(format!("{what} {} contains a control character", shown(s)));
    }
    Ok(())
}

/// A pod's name, namespace or uid: one line, and no `;` or `=` (CNI_ARGS is
/// `K=V;K=V`, and a plugin refuses a pair it cannot split).
pub fn cni_arg(what: &str, s: &str) -> Check {
    line(what, s, NAME_253)?;
    if s.contains([';', '=']) {
        return Err(format!(
            "{what} {} contains ';' or '=', which CNI_ARGS cannot carry",
            shown(s)
        ));
    }
    Ok(())
}

/// A path: no NUL, within PATH_MAX, each component within NAME_MAX; `..` only where
/// `dotdot` allows it.
pub fn path(what: &str, s: &str, dotdot: bool) -> Check {
    plain(what, s, PATH_MAX)?;
    for c in Path::new(s).components() {
        match c {
            Component::ParentDir if !dotdot => {
                return Err(format!("{what} {} must not contain '..'", shown(s)))
            }
            Component::Normal(n) if n.len() > NAME_MAX => {
                return Err(format!(
                    "{what} {} has a component longer than {NAME_MAX} bytes",
                    shown(s)
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// As [`path`], and absolute unless empty.
pub fn abs_path(what: &str, s: &str, dotdot: bool) -> Check {
    path(what, s, dotdot)?;
    if !s.is_empty() && !s.starts_with('/') {
        return Err(format!("{what} {} must be an absolute path", shown(s)));
    }
    Ok(())
}

/// Labels or annotations: keys non-empty, one line, within [`KEY_MAX`]; values without NUL;
/// everything together within [`MAP_TOTAL`].
pub fn map(what: &str, m: &HashMap<String, String>) -> Check {
    let mut total = 0;
    for (k, v) in m {
        if k.is_empty() {
            return Err(format!("{what}: empty key"));
        }
        line(&format!("{what} key"), k, KEY_MAX)?;
        plain(&format!("{what} {k:?}"), v, MAP_TOTAL)?;
        total += k.len() + v.len();
    }
    if total > MAP_TOTAL {
        return Err(format!(
            "{what} add up to {total} bytes, more than {MAP_TOTAL}"
        ));
    }
    Ok(())
}

/// A command line and environment a process is exec'd with.
pub fn argv_env<'a>(
    argv: impl IntoIterator<Item = &'a str>,
    env: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Check {
    let mut total = 0;
    for a in argv {
        plain("argument", a, ARG_MAX_ONE)?;
        total += a.len() + 1;
    }
    for (k, v) in env {
        if k.is_empty() || k.contains('=') {
            return Err(format!(
                "environment variable name {} must be non-empty and without '='",
                shown(k)
            ));
        }
        plain("environment variable name", k, ARG_MAX_ONE)?;
        if v.contains(&0) {
            return Err(format!("environment variable {k} contains a NUL byte"));
        }
        let one = k.len() + 1 + v.len();
        if one > ARG_MAX_ONE {
            return Err(format!(
                "environment variable {k} is {one} bytes long, more than {ARG_MAX_ONE}"
            ));
        }
        total += one + 1;
    }
    if total > ARGV_ENV_TOTAL {
        return Err(format!(
            "command line and environment add up to {total} bytes, more than {ARGV_ENV_TOTAL}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        assert!(plain("x", "a\0b", 10).unwrap_err().contains("NUL"));
        assert!(plain("x", "abcdef", 3).unwrap_err().contains("6 bytes"));
        assert!(line("x", "a\nb", 10).is_err());
        assert!(cni_arg("name", "a;b").is_err());
        assert!(cni_arg("name", "web-0").is_ok());
        assert!(path("p", "a/../b", false).is_err());
        assert!(path("p", "a/../b", true).is_ok());
        assert!(path("p", &format!("/{}", "x".repeat(256)), true).is_err());
        assert!(abs_path("p", "rel", true).is_err());
        assert!(abs_path("p", "", true).is_ok());
    }

    #[test]
    fn maps_and_argv() {
        let m: HashMap<_, _> = [("k".to_string(), "v\0".to_string())].into();
        assert!(map("labels", &m).is_err());
        let m: HashMap<_, _> = [(String::new(), "v".to_string())].into();
        assert!(map("labels", &m).is_err());
        let big = "x".repeat(200 * 1024);
        let m: HashMap<_, _> = [("a".into(), big.clone()), ("b".into(), big.clone())].into();
        assert!(map("annotations", &m).unwrap_err().contains("add up"));
        assert!(argv_env(["sh", "-c"], [("A", b"1".as_slice())]).is_ok());
        assert!(argv_env(["a\0"], []).is_err());
        assert!(argv_env([big.as_str()], []).is_err());
        assert!(argv_env([], [("A=B", b"1".as_slice())]).is_err());
        assert!(argv_env([], [("A", b"1\0".as_slice())]).is_err());
        let many: Vec<String> = (0..20).map(|_| "y".repeat(100 * 1024)).collect();
        assert!(argv_env(many.iter().map(String::as_str), [])
            .unwrap_err()
            .contains("add up"));
    }
}
