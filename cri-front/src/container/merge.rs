//! Merging the image config with the CRI ContainerConfig, the way kubelet expects
//! (Kubernetes' command/args vs. Docker's Entrypoint/Cmd rules).

use crate::error::{Error, Result};
use crate::image::manifest::RunConfig;

/// The process argv.
/// - `command` set: `command + args` (the image's Entrypoint and Cmd are ignored);
/// - only `args` set: image `Entrypoint + args`;
/// - neither: image `Entrypoint + Cmd`.
pub fn argv(image: &RunConfig, command: &[String], args: &[String]) -> Result<Vec<String>> {
    let entry = image.entrypoint.clone().unwrap_or_default();
    let cmd = image.cmd.clone().unwrap_or_default();
    let v: Vec<String> = if !command.is_empty() {
        command.iter().chain(args).cloned().collect()
    } else if !args.is_empty() {
        entry.into_iter().chain(args.iter().cloned()).collect()
    } else {
        entry.into_iter().chain(cmd).collect()
    };
    if v.is_empty() {
        return Err(Error::InvalidArgument(
            "no command: neither the container config nor the image specify one".into(),
        ));
    }
    Ok(v)
}

/// Environment: a default PATH, HOSTNAME, then the image's, then kubelet's;
/// a later value replaces an earlier one with the same name, keeping its place.
pub fn env(image: &RunConfig, cri: &[(String, String)], hostname: &str) -> Vec<String> {
    let mut out: Vec<(String, String)> = vec![(
        "PATH".into(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
    )];
    if !hostname.is_empty() {
        out.push(("HOSTNAME".into(), hostname.into()));
    }
    let image_env = image.env.clone().unwrap_or_default();
    let image_pairs = image_env.iter().map(|kv| match kv.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (kv.clone(), String::new()),
    });
    for (k, v) in image_pairs.chain(cri.iter().cloned()) {
        match out.iter_mut().find(|(ek, _)| *ek == k) {
            Some(e) => e.1 = v,
            None => out.push((k, v)),
        }
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Working directory: kubelet's, else the image's, else `/`.
pub fn cwd(image: &RunConfig, cri: &str) -> String {
    if !cri.is_empty() {
        return cri.to_string();
    }
    match image.working_dir.as_deref() {
        Some(w) if !w.is_empty() => w.to_string(),
        _ => "/".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> RunConfig {
        RunConfig {
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["a".into(), "b".into()]),
            env: Some(vec![
                "PATH=/img/bin".into(),
                "FOO=img".into(),
                "BARE".into(),
            ]),
            working_dir: Some("/work".into()),
            ..Default::default()
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn argv_rules() {
        assert_eq!(argv(&img(), &[], &[]).expect("a"), s(&["/entry", "a", "b"]));
        assert_eq!(
            argv(&img(), &[], &s(&["x"])).expect("a"),
            s(&["/entry", "x"])
        );
        assert_eq!(
            argv(&img(), &s(&["sh", "-c"]), &s(&["echo"])).expect("a"),
            s(&["sh", "-c", "echo"])
        );
        assert!(argv(&RunConfig::default(), &[], &[]).is_err());
        let only_cmd = RunConfig {
            cmd: Some(s(&["sh"])),
            ..Default::default()
        };
        assert_eq!(argv(&only_cmd, &[], &[]).expect("a"), s(&["sh"]));
    }

    #[test]
    fn env_overrides_in_place() {
        let e = env(
            &img(),
            &[("FOO".into(), "cri".into()), ("NEW".into(), "1".into())],
            "pod-a",
        );
        assert_eq!(
            e,
            s(&[
                "PATH=/img/bin",
                "HOSTNAME=pod-a",
                "FOO=cri",
                "BARE=",
                "NEW=1"
            ])
        );
    }

    #[test]
    fn cwd_rules() {
        assert_eq!(cwd(&img(), ""), "/work");
        assert_eq!(cwd(&img(), "/x"), "/x");
        assert_eq!(cwd(&RunConfig::default(), ""), "/");
    }
}
