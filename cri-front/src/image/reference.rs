//! Image references: parse and normalise them the way containerd's CRI plugin names
//! its image records (`docker.io/library/busybox:latest`, `reg/repo@sha256:...`).
//!
//! The grammar is distribution's (`reference.go`), checked by hand: oci-spec's `Reference` parses
//! with one large regex whose compiled automaton stays in a static, about 7 MB resident for the
//! life of criusd (half of its heap after a first pull).

use std::fmt;

use crate::error::{Error, Result};

/// A pullable image reference, normalised: registry (`docker.io` for none), repository (with
/// `library/` for Docker Hub's one-component names), and a tag (`latest` when neither a tag nor
/// a digest was given) and/or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Longest repository name distribution accepts.
const NAME_MAX: usize = 255;

/// `name[:tag][@digest]` → a normalised reference, or what is wrong with it.
fn parse_reference(s: &str) -> std::result::Result<Reference, &'static str> {
    if s.is_empty() {
        return Err("repository name must have at least one component");
    }
    let (rest, digest) = match s.split_once('@') {
        Some((rest, d)) => (rest, Some(check_digest(d)?)),
        None => (s, None),
    };
    // A ':' after the last '/' starts the tag; one before it is a registry's port.
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        if !is_tag(t) {
            return Err("invalid reference format");
        }
    }
    let mut parts = name.split('/');
    let first = parts.next().unwrap_or_default();
    let more: Vec<&str> = parts.collect();
    if !more.iter().all(|c| is_path_component(c))
        || !(is_path_component(first) || (!more.is_empty() && is_domain(first)))
    {
        return Err("invalid reference format");
    }
    // Distribution's split: the first component is a registry only if it looks like a host.
    let (mut registry, mut repository) =
        if !more.is_empty() && (first.contains(['.', ':']) || first == "localhost") {
            (first.to_string(), more.join("/"))
        } else {
            ("docker.io".to_string(), name.to_string())
        };
    if registry == "index.docker.io" {
        registry = "docker.io".into();
    }
    if registry == "docker.io" && !repository.contains('/') {
        repository = format!("library/{repository}");
    }
    if repository.len() > NAME_MAX {
        return Err("repository name must not be more than 255 characters");
    }
    let tag = match (tag, &digest) {
        (None, None) => Some("latest".to_string()),
        (t, _) => t.map(String::from),
    };
    Ok(Reference {
        registry,
        repository,
        tag,
        digest,
    })
}

/// `[\w][\w.-]{0,127}` (ASCII word characters).
fn is_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
fn is_path_component(c: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    b.split(alnum)
        .filter(|sep| !sep.is_empty())
        .all(|sep| matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&x| x == b'-'))
}

/// `host[:port]`, host = dot-separated labels of letters, digits and inner `-`.
fn is_domain(d: &str) -> bool {
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let label = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    host.split('.').all(label)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// `algorithm:hex` with a hex length the algorithm has (sha256, sha384, sha512).
fn check_digest(d: &str) -> std::result::Result<String, &'static str> {
    let (alg, hex) = d.split_once(':').ok_or("invalid reference format")?;
    if hex.len() < 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) || !is_algorithm(alg) {
        return Err("invalid reference format");
    }
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err("unsupported digest algorithm"),
    };
    if hex.len() != want {
        return Err("invalid checksum digest length");
    }
    Ok(d.to_string())
}

/// `[A-Za-z][A-Za-z0-9]*` components joined by one of `-_+.`.
fn is_algorithm(a: &str) -> bool {
    a.split(['-', '_', '+', '.']).all(|c| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    })
}

/// What a CRI `ImageSpec.image` string names.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageName {
    /// An image id (`sha256:<64 hex>`, or the bare 64 hex): the config digest.
    Id(String),
    /// A pullable reference, normalised.
    Ref(Reference),
}

/// Parse what kubelet sent as an image.
pub fn parse(image: &str) -> Result<ImageName> {
    let image = image.trim();
    if image.is_empty() {
        return Err(Error::InvalidArgument("image reference is empty".into()));
    }
    if let Some(hex) = image.strip_prefix("sha256:") {
        if is_hex64(hex) {
            return Ok(ImageName::Id(image.to_string()));
        }
    }
    if is_hex64(image) {
        return Ok(ImageName::Id(format!("sha256:{image}")));
    }
    parse_ref(image).map(ImageName::Ref)
}

/// Parse a pullable reference (no ids).
pub fn parse_ref(image: &str) -> Result<Reference> {
    let r = parse_reference(image)
        .map_err(|e| Error::InvalidArgument(format!("invalid image reference {image:?}: {e}")))?;
    // The distribution spec allows only lower case in repository paths.
    if r.repository().chars().any(|c| c.is_ascii_uppercase()) {
        return Err(Error::InvalidArgument(format!(
            "invalid image reference {image:?}: repository name must be lowercase"
        )));
    }
    Ok(r)
}

/// The containerd image record name for a reference: `reg/repo:tag`, or
/// `reg/repo@digest` when a digest is given (the tag is then dropped, as containerd does).
pub fn record_name(r: &Reference) -> String {
    match (r.tag(), r.digest()) {
        (_, Some(d)) => format!("{}/{}@{}", r.registry(), r.repository(), d),
        (Some(t), None) => format!("{}/{}:{}", r.registry(), r.repository(), t),
        (None, None) => format!("{}/{}:latest", r.registry(), r.repository()),
    }
}

/// The `repo@digest` name of an image pulled through `r`.
pub fn digest_name(r: &Reference, digest: &str) -> String {
    format!("{}/{}@{}", r.registry(), r.repository(), digest)
}

/// True when a record name is a `repo@digest` name (else a tag).
pub fn is_digest_name(name: &str) -> bool {
    name.contains('@')
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> String {
        match parse(s).expect("parse") {
            ImageName::Ref(r) => record_name(&r),
            ImageName::Id(id) => id,
        }
    }

    #[test]
    fn normalises_like_containerd() {
        assert_eq!(name("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            name("library/busybox:1.36"),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(
            name("127.0.0.1:5000/crius/busybox"),
            "127.0.0.1:5000/crius/busybox:latest"
        );
        let d = "sha256:".to_string() + &"a".repeat(64);
        assert_eq!(
            name(&format!("127.0.0.1:5000/crius/busybox:latest@{d}")),
            format!("127.0.0.1:5000/crius/busybox@{d}")
        );
    }

    #[test]
    fn grammar_like_distribution() {
        assert_eq!(
            name("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(name("index.docker.io/x/y:1.0"), "docker.io/x/y:1.0");
        assert_eq!(name("localhost/foo"), "localhost/foo:latest");
        assert_eq!(name("localhost:5000/a/b"), "localhost:5000/a/b:latest");
        assert_eq!(
            name("Reg.Example/a__b.c-d--e"),
            "Reg.Example/a__b.c-d--e:latest"
        );
        assert_eq!(name("foo/bar:v1_2.3-x"), "docker.io/foo/bar:v1_2.3-x");
        assert!(parse_ref("reg.io/x:t@sha256:").is_err());
        let d = "sha256:".to_string() + &"0".repeat(64);
        let r = parse_ref(&format!("reg.io/x:t@{d}")).expect("tag and digest");
        assert_eq!((r.tag(), r.digest()), (Some("t"), Some(d.as_str())));
        assert_eq!(r.to_string(), format!("reg.io/x:t@{d}"));
        let r = parse_ref(&format!("x@{d}")).expect("digest only");
        assert_eq!(
            (r.tag(), r.to_string()),
            (None, format!("docker.io/library/x@{d}"))
        );
        assert!(parse_ref(&"a".repeat(256)).is_err());
    }

    #[test]
    fn ids() {
        let hex = "b".repeat(64);
        assert_eq!(
            parse(&hex).expect("id"),
            ImageName::Id(format!("sha256:{hex}"))
        );
        assert_eq!(
            parse(&format!("sha256:{hex}")).expect("id"),
            ImageName::Id(format!("sha256:{hex}"))
        );
    }

    #[test]
    fn invalid_refs() {
        for bad in [
            "",
            "  ",
            "UPPER/case",
            "a b",
            "busybox:",
            "reg:5000/x@sha256:12",
            "reg:port/x",
            "a..b/c",
            "-reg/x",
            "x/y/",
            "foo___bar",
            "foo/bar:-tag",
            "foo@md5:0123456789abcdef0123456789abcdef",
            "foo@sha256:0123456789abcdef0123456789abcdef",
        ] {
            assert!(
                matches!(parse(bad), Err(Error::InvalidArgument(_))),
                "{bad:?} should be invalid"
            );
        }
    }
}
