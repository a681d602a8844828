//! Small helpers the sandboxer and criusd both need, in one place: wall-clock nanoseconds
//! (CRI's unit) and OCI layer chain ids (the snapshot keys image layers are unpacked under).

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Chain ids of a layer stack, bottom first: chain(0) = diff(0),
/// chain(n) = sha256(chain(n-1) + " " + diff(n)) (OCI image spec). The last is the top
/// layer's, the parent of a container's rootfs snapshot.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let h = Sha256::digest(format!("{prev} {d}").as_bytes());
                format!("sha256:{}", hex::encode(h))
            }
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_of_layer_stacks() {
        let a = "sha256:aaaa".to_string();
        assert_eq!(chain_ids(std::slice::from_ref(&a)), vec![a.clone()]);
        let two = chain_ids(&[a.clone(), "sha256:bbbb".into()]);
        assert_eq!(two[0], a);
        assert!(two[1].starts_with("sha256:") && two[1].len() == 71);
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ns() > 1_577_836_800_000_000_000);
    }
}
