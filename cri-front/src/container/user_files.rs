//! The image's /etc/passwd and /etc/group, remembered per image top-layer chain id. A chain id
//! names immutable content, so a second container of the same image needs no view snapshot of
//! it: without this every CreateContainer pays a View, a mount, an unmount and a snapshot Remove
//! just to learn root's groups (policy Merge reads them for every user, root included).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Images remembered at most: a node runs a few dozen distinct images; the oldest goes first.
const MAX_IMAGES: usize = 64;
/// Larger files are read each time rather than held (a directory service's dump, say).
const MAX_BYTES: usize = 64 * 1024;

/// `(passwd, group)` contents ("" for a file the image lacks).
pub type UserFiles = (String, String);

#[derive(Default)]
pub struct UserFilesCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_chain: HashMap<String, UserFiles>,
    /// Insertion order, for eviction.
    order: VecDeque<String>,
}

impl UserFilesCache {
    /// The files of the image whose top layer chain is `chain`, when already read.
    pub fn get(&self, chain: &str) -> Option<UserFiles> {
        self.lock().by_chain.get(chain).cloned()
    }

    /// Remember what was read from `chain`'s files.
    pub fn put(&self, chain: &str, files: &UserFiles) {
        if files.0.len() + files.1.len() > MAX_BYTES {
            return;
        }
        let mut inner = self.lock();
        if inner.by_chain.contains_key(chain) {
            return;
        }
        while inner.order.len() >= MAX_IMAGES {
            if let Some(old) = inner.order.pop_front() {
                inner.by_chain.remove(&old);
            }
        }
        inner.order.push_back(chain.to_string());
        inner.by_chain.insert(chain.to_string(), files.clone());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing in here can be left half-changed by a panic: take the map as it is.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(n: usize) -> UserFiles {
        (format!("root:x:0:0::/root:/bin/sh\n#{n}"), String::new())
    }

    #[test]
    fn remembers_per_chain_and_evicts_the_oldest() {
        let c = UserFilesCache::default();
        assert_eq!(c.get("sha256:a"), None);
        c.put("sha256:a", &files(0));
        assert_eq!(c.get("sha256:a"), Some(files(0)));
        for n in 1..=MAX_IMAGES {
            c.put(&format!("sha256:{n}"), &files(n));
        }
        assert_eq!(c.get("sha256:a"), None, "the oldest went first");
        assert_eq!(
            c.get(&format!("sha256:{MAX_IMAGES}")),
            Some(files(MAX_IMAGES))
        );
    }

    #[test]
    fn large_files_are_not_held() {
        let c = UserFilesCache::default();
        c.put("sha256:big", &("x".repeat(MAX_BYTES + 1), String::new()));
        assert_eq!(c.get("sha256:big"), None);
    }
}
