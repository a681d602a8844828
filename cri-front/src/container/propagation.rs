//! Mount propagation of bind mounts, as containerd checks it: a Bidirectional (`rshared`) mount
//! needs its source on a shared mount, a HostToContainer (`rslave`) one on a shared or slave
//! mount, or nothing would propagate; such a source is refused with the mount point to fix
//! (`mount --make-shared <it>`), as containerd refuses it. The container's rootfs propagation
//! follows (see `spec::build`).

use std::path::{Path, PathBuf};

use crius_proto::runtime as cri;

use super::view::unescape;
use crate::error::{Error, Result};

/// One line of /proc/self/mountinfo: where, and its optional fields (`shared:N`, `master:N`).
#[derive(Debug, Clone, PartialEq)]
pub struct MountPoint {
    pub path: PathBuf,
    pub optional: Vec<String>,
}

pub fn parse_mountinfo(text: &str) -> Vec<MountPoint> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some(MountPoint {
                path: PathBuf::from(unescape(f.get(4)?)),
                optional: f.get(6..sep)?.iter().map(|s| s.to_string()).collect(),
            })
        })
        .collect()
}

/// The mount `path` (absolute, symlinks resolved) is on: the longest mount point above it, the
/// last mounted when several are stacked.
pub fn mount_of<'a>(mounts: &'a [MountPoint], path: &Path) -> Option<&'a MountPoint> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.path))
        .max_by_key(|(i, m)| (m.path.components().count(), *i))
        .map(|(_, m)| m)
}

/// The OCI option for a CRI propagation, after checking the source's own propagation allows it.
pub fn option_for(m: &cri::Mount, mounts: &[MountPoint]) -> Result<&'static str> {
    use cri::MountPropagation as P;
    let want = match P::try_from(m.propagation) {
        Ok(P::PropagationPrivate) => return Ok("rprivate"),
        Ok(P::PropagationHostToContainer) => P::PropagationHostToContainer,
        Ok(P::PropagationBidirectional) => P::PropagationBidirectional,
        Err(_) => {
            return Err(Error::InvalidArgument(format!(
                "mount {}: unknown propagation {}",
                m.container_path, m.propagation
            )))
        }
    };
    let src = std::fs::canonicalize(&m.host_path)
        .map_err(|e| Error::io(format!("mount source {}", m.host_path), e))?;
    let on = mount_of(mounts, &src)
        .ok_or_else(|| Error::Internal(format!("no mount holds {} in mountinfo", src.display())))?;
    let shared = on.optional.iter().any(|o| o.starts_with("shared:"));
    let slave = on.optional.iter().any(|o| o.starts_with("master:"));
    let (ok, option, needs) = match want {
        P::PropagationBidirectional => (shared, "rshared", "a shared mount"),
        _ => (shared || slave, "rslave", "a shared or slave mount"),
    };
    if !ok {
        return Err(Error::FailedPrecondition(format!(
            "mount {}: propagation {} needs its source {} on {needs}, but {} is not one (mount --make-shared {} on the host)",
            m.container_path,
            want.as_str_name(),
            m.host_path,
            on.path.display(),
            on.path.display()
        )));
    }
    Ok(option)
}

/// criusd's mount table now.
pub fn mounts_now() -> Result<Vec<MountPoint>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
    Ok(parse_mountinfo(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
        40 27 0:35 / /srv rw shared:5 - tmpfs tmpfs rw\n\
        41 40 0:36 / /srv/slave rw master:5 - tmpfs tmpfs rw\n\
        42 27 0:37 / /srv/both\\040x rw shared:7 master:5 - tmpfs tmpfs rw\n";

    fn m(host: &str, p: cri::MountPropagation) -> cri::Mount {
        cri::Mount {
            container_path: "/c".into(),
            host_path: host.into(),
            propagation: p as i32,
            ..Default::default()
        }
    }

    #[test]
    fn finds_the_mount_a_path_is_on() {
        let all = parse_mountinfo(INFO);
        assert_eq!(all.len(), 4);
        let on = |p: &str| mount_of(&all, Path::new(p)).expect("mount").path.clone();
        assert_eq!(on("/srv/slave/x"), PathBuf::from("/srv/slave"));
        assert_eq!(on("/srv/slavery"), PathBuf::from("/srv"));
        assert_eq!(on("/home"), PathBuf::from("/"));
        assert_eq!(on("/srv/both x/y"), PathBuf::from("/srv/both x"));
        assert_eq!(all[3].optional, vec!["shared:7", "master:5"]);
    }

    #[test]
    fn propagation_needs_a_fitting_source() {
        use cri::MountPropagation as P;
        // The checks run on real paths: this host's root and /proc.
        let all = mounts_now().expect("mountinfo");
        let root_shared = mount_of(&all, Path::new("/"))
            .is_some_and(|r| r.optional.iter().any(|o| o.starts_with("shared:")));
        assert_eq!(
            option_for(&m("/", P::PropagationPrivate), &all).expect("private"),
            "rprivate"
        );
        let bidir = option_for(&m("/", P::PropagationBidirectional), &all);
        assert_eq!(bidir.is_ok(), root_shared, "{bidir:?}");
        if let Err(e) = bidir {
            assert!(matches!(e, Error::FailedPrecondition(_)), "{e}");
        }
        let mut bad = m("/", P::PropagationPrivate);
        bad.propagation = 42;
        assert!(matches!(
            option_for(&bad, &all),
            Err(Error::InvalidArgument(_))
        ));
    }
}
