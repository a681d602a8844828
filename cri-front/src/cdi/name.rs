//! CDI names: a spec's `kind` is `vendor/class`, a device is asked for by its qualified name
//! `vendor/class=name`. The character rules are the reference library's.

/// `vendor/class=name` split into its parts, each checked.
pub fn parse_qualified(device: &str) -> Result<(&str, &str, &str), String> {
    let unqualified =
        |what: &str| Err(format!("unqualified CDI device {device:?}, missing {what}"));
    if device.is_empty() || device.starts_with('/') {
        return unqualified("vendor");
    }
    let Some((kind, name)) = device.split_once('=') else {
        return unqualified("device name");
    };
    let (vendor, class) = split_kind(kind);
    if vendor.is_empty() {
        return unqualified("vendor");
    }
    if class.is_empty() {
        return unqualified("class");
    }
    if name.is_empty() {
        return unqualified("device name");
    }
    let invalid = |e: String| format!("invalid CDI device {device:?}: {e}");
    vendor_name(vendor).map_err(invalid)?;
    class_name(class).map_err(invalid)?;
    device_name(name).map_err(invalid)?;
    Ok((vendor, class, name))
}

/// A spec's `kind` as (vendor, class); the vendor is empty when there is no `/`.
pub fn split_kind(kind: &str) -> (&str, &str) {
    match kind.split_once('/') {
        Some((v, c)) if !v.is_empty() && !c.is_empty() => (v, c),
        _ => ("", kind),
    }
}

pub fn qualified(vendor: &str, class: &str, name: &str) -> String {
    format!("{vendor}/{class}={name}")
}

pub fn vendor_name(v: &str) -> Result<(), String> {
    label(v, "vendor")
}

pub fn class_name(c: &str) -> Result<(), String> {
    label(c, "class")
}

/// A letter first, a letter or digit last, `_ - .` allowed between.
fn label(s: &str, what: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return Err(format!("invalid {what}: empty name"));
    };
    if !first.is_ascii_alphabetic() {
        return Err(format!("invalid {what} {s:?}: should start with a letter"));
    }
    inner(s, b"_-.").map_err(|c| format!("invalid {what}: invalid character {c:?} in {s:?}"))?;
    if !last.is_ascii_alphanumeric() {
        return Err(format!(
            "invalid {what} {s:?}: should end with a letter or digit"
        ));
    }
    Ok(())
}

/// A letter or digit first and last, `_ - . :` allowed between.
pub fn device_name(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let (Some(first), Some(last)) = (b.first(), b.last()) else {
        return Err("invalid (empty) device name".into());
    };
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err(format!(
            "invalid device name {s:?}: should start and end with a letter or digit"
        ));
    }
    inner(s, b"_-.:").map_err(|c| format!("invalid character {c:?} in device name {s:?}"))
}

/// The characters between the first and the last: letters, digits and `extra`.
fn inner(s: &str, extra: &[u8]) -> Result<(), char> {
    if s.len() <= 2 {
        return Ok(());
    }
    match s[1..s.len() - 1]
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || (c.is_ascii() && extra.contains(&(*c as u8)))))
    {
        Some(c) => Err(c),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names() {
        assert_eq!(
            parse_qualified("nvidia.com/gpu=0").unwrap(),
            ("nvidia.com", "gpu", "0")
        );
        assert_eq!(
            parse_qualified("vendor.com/class.sub=dev:1_a").unwrap(),
            ("vendor.com", "class.sub", "dev:1_a")
        );
        for bad in [
            "",
            "/dev/zero",
            "gpu=0",
            "vendor.com/=0",
            "vendor.com/gpu",
            "vendor.com/gpu=",
            "1vendor/gpu=0",
            "vendor-/gpu=0",
            "vendor/gp u=0",
            "vendor/gpu=-0",
            "vendor/gpu=a/b",
            "vendör/gpu=0",
        ] {
            assert!(parse_qualified(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_qualified("gpu=0").unwrap_err().contains("vendor"));
    }

    #[test]
    fn kinds() {
        assert_eq!(split_kind("a.com/b"), ("a.com", "b"));
        assert_eq!(split_kind("nokind"), ("", "nokind"));
        assert_eq!(split_kind("/b"), ("", "/b"));
        assert!(vendor_name("a").is_ok());
        assert!(class_name("b.c").is_ok());
        assert!(device_name("0").is_ok());
    }
}
