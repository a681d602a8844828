//! Image references: parse and normalise them the way containerd's CRI plugin names
//! its image records (`docker.io/library/busybox:latest`, `reg/repo@sha256:...`).

use oci_spec::distribution::Reference;

use crate::error::{Error, Result};

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
    let r: Reference = image
        .parse()
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
        ] {
            assert!(
                matches!(parse(bad), Err(Error::InvalidArgument(_))),
                "{bad:?} should be invalid"
            );
        }
    }
}
