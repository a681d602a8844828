//! Which uid/gid/groups a container runs as: CRI's security context, else the
//! image's `User`, with names resolved from the image's own /etc/passwd and /etc/group.

use crate::error::{Error, Result};

/// What the user was asked to be.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRequest {
    pub run_as_user: Option<i64>,
    pub run_as_username: String,
    pub run_as_group: Option<i64>,
    /// The image config's `User` (`name`, `uid`, `name:group`, `uid:gid`).
    pub image_user: String,
    pub supplemental_groups: Vec<i64>,
    /// SupplementalGroupsPolicy Strict: the image's /etc/group memberships are not added.
    pub strict_groups: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || l.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
        })
    })
}

/// (name, gid, members) of /etc/group.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 || l.starts_with('#') {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|x| !x.is_empty()).collect())
            .unwrap_or_default();
        Some((f[0], f[2].parse().ok()?, members))
    })
}

fn id(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::InvalidArgument(format!("{what} {v} is out of range")))
}

/// Resolve; `passwd`/`group` are the image's files ("" when absent).
pub fn resolve(req: &UserRequest, passwd: &str, group: &str) -> Result<ResolvedUser> {
    check_group_has_user(req.run_as_group, req.run_as_user, &req.run_as_username)?;
    let (user_part, group_part) = match req.image_user.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (req.image_user.clone(), None),
    };
    let (uid, mut gid, name): (u32, u32, Option<String>) = if let Some(u) = req.run_as_user {
        let uid = id(u, "run_as_user")?;
        let e = passwd_entries(passwd).find(|e| e.uid == uid);
        (
            uid,
            e.as_ref().map_or(0, |e| e.gid),
            e.map(|e| e.name.to_string()),
        )
    } else if !req.run_as_username.is_empty() {
        let e = passwd_entries(passwd)
            .find(|e| e.name == req.run_as_username)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "user {:?} not found in the image's /etc/passwd",
                    req.run_as_username
                ))
            })?;
        (e.uid, e.gid, Some(e.name.to_string()))
    } else if user_part.is_empty() {
        let e = passwd_entries(passwd).find(|e| e.uid == 0);
        (0, 0, e.map(|e| e.name.to_string()))
    } else if let Ok(n) = user_part.parse::<u32>() {
        let e = passwd_entries(passwd).find(|e| e.uid == n);
        (
            n,
            e.as_ref().map_or(0, |e| e.gid),
            e.map(|e| e.name.to_string()),
        )
    } else {
        let e = passwd_entries(passwd)
            .find(|e| e.name == user_part)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "image user {user_part:?} not found in the image's /etc/passwd"
                ))
            })?;
        (e.uid, e.gid, Some(e.name.to_string()))
    };
    // The image's group applies only when the image's user does.
    if req.run_as_user.is_none() && req.run_as_username.is_empty() {
        if let Some(g) = group_part.filter(|g| !g.is_empty()) {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => group_entries(group)
                    .find(|(n, _, _)| *n == g)
                    .map(|(_, id, _)| id)
                    .ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "image group {g:?} not found in the image's /etc/group"
                        ))
                    })?,
            };
        }
    }
    if let Some(g) = req.run_as_group {
        gid = id(g, "run_as_group")?;
    }
    // The primary gid first, as containerd does: setgroups() then holds it too, so the
    // process's groups (and what ContainerStatus.user reports) include it under both policies.
    let mut additional: Vec<u32> = vec![gid];
    if let Some(n) = name.as_ref().filter(|_| !req.strict_groups) {
        for (_, g, members) in group_entries(group) {
            if members.contains(&n.as_str()) && !additional.contains(&g) {
                additional.push(g);
            }
        }
    }
    for g in &req.supplemental_groups {
        let g = id(*g, "supplemental group")?;
        if !additional.contains(&g) {
            additional.push(g);
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
    })
}

/// kubelet's rule (and containerd's): a group alone does not say whom to run as.
pub fn check_group_has_user(
    run_as_group: Option<i64>,
    run_as_user: Option<i64>,
    run_as_username: &str,
) -> Result<()> {
    match run_as_group {
        Some(g) if run_as_user.is_none() && run_as_username.is_empty() => {
            Err(Error::InvalidArgument(format!(
                "run_as_group {g} is set without run_as_user or run_as_username"
            )))
        }
        _ => Ok(()),
    }
}

/// Whether resolving needs the image's files at all: a user to look up, or (policy Merge)
/// the image's /etc/group memberships of whoever runs, root included, as containerd merges.
pub fn needs_files(req: &UserRequest) -> bool {
    !req.strict_groups
        || req.run_as_user.is_some()
        || !req.run_as_username.is_empty()
        || !req.image_user.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\napp:x:1000:\nextra:x:2000:app,www\n";

    fn r(u: &str) -> UserRequest {
        UserRequest {
            image_user: u.into(),
            ..Default::default()
        }
    }

    #[test]
    fn image_user_forms() {
        assert_eq!(resolve(&r(""), PASSWD, GROUP).expect("r").uid, 0);
        let a = resolve(&r("app"), PASSWD, GROUP).expect("r");
        assert_eq!(
            (a.uid, a.gid, a.additional_gids.clone()),
            (1000, 1000, vec![1000, 2000])
        );
        let b = resolve(&r("33:extra"), PASSWD, GROUP).expect("r");
        assert_eq!((b.uid, b.gid), (33, 2000));
        let c = resolve(&r("4242"), PASSWD, GROUP).expect("r");
        assert_eq!((c.uid, c.gid), (4242, 0));
        assert!(resolve(&r("nobody"), PASSWD, GROUP).is_err());
        assert!(resolve(&r("app:nogroup"), PASSWD, GROUP).is_err());
    }

    #[test]
    fn cri_overrides_image() {
        let q = UserRequest {
            run_as_user: Some(33),
            run_as_group: Some(7),
            image_user: "app".into(),
            supplemental_groups: vec![9],
            ..Default::default()
        };
        let a = resolve(&q, PASSWD, GROUP).expect("r");
        assert_eq!((a.uid, a.gid, a.additional_gids), (33, 7, vec![7, 2000, 9]));
        // Strict: only the groups asked for, none from the image's /etc/group.
        let strict = UserRequest {
            strict_groups: true,
            ..q
        };
        let a = resolve(&strict, PASSWD, GROUP).expect("r");
        assert_eq!((a.uid, a.gid, a.additional_gids), (33, 7, vec![7, 9]));
        let q = UserRequest {
            run_as_username: "www".into(),
            ..Default::default()
        };
        assert_eq!(resolve(&q, PASSWD, GROUP).expect("r").uid, 33);
        let q = UserRequest {
            run_as_user: Some(-1),
            ..Default::default()
        };
        assert!(resolve(&q, PASSWD, GROUP).is_err());
    }

    #[test]
    fn group_without_user_is_refused() {
        let q = UserRequest {
            run_as_group: Some(7),
            image_user: "app".into(),
            ..Default::default()
        };
        assert!(matches!(
            resolve(&q, PASSWD, GROUP),
            Err(Error::InvalidArgument(_))
        ));
        let q = UserRequest {
            run_as_username: "www".into(),
            ..q
        };
        assert_eq!(resolve(&q, PASSWD, GROUP).expect("r").gid, 7);
    }
}
