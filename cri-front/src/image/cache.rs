//! criusd's images in memory, as containerd's CRI keeps its image store: ContainerStatus,
//! CreateContainer, ImageStatus and ListImages read them without a containerd round-trip.
//!
//! - The views (all records grouped by image id) come from one Images.List and are kept until an
//!   image record changes: criusd's own pulls and removals ([`super::Images`] calls
//!   [`ImageCache::invalidate`]) and containerd's `/images/*` events of criusd's namespace (a
//!   change made beside criusd, `ctr images rm`). A list that raced a change is not kept.
//! - The views are kept only while the event subscription is up ([`ImageCache::set_live`]):
//!   with no one watching, every read lists again.
//! - Image configs are content addressed (the id is their digest): read once, kept while the
//!   image is listed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::manifest::ImageConfigFile;
use super::ImageView;

#[derive(Default)]
pub struct ImageCache {
    /// Bumped by every change; a list read under an older generation is stale.
    generation: AtomicU64,
    /// containerd's image events reach [`ImageCache::invalidate`].
    live: AtomicBool,
    views: Mutex<Option<(u64, Arc<Vec<ImageView>>)>>,
    configs: Mutex<HashMap<String, Arc<ImageConfigFile>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ImageCache {
    /// The views, when the cache holds a current list.
    pub fn views(&self) -> Option<Arc<Vec<ImageView>>> {
        if !self.live.load(Ordering::SeqCst) {
            return None;
        }
        let gen = self.generation.load(Ordering::SeqCst);
        match &*lock(&self.views) {
            Some((g, v)) if *g == gen => Some(v.clone()),
            _ => None,
        }
    }

    /// The generation to pass to [`ImageCache::store`]: read it before listing.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keep a list read under `gen` (not if anything changed since); the list.
    pub fn store(&self, gen: u64, views: Vec<ImageView>) -> Arc<Vec<ImageView>> {
        let views = Arc::new(views);
        if self.generation.load(Ordering::SeqCst) == gen {
            // Configs of images no longer listed go with them.
            lock(&self.configs).retain(|id, _| views.iter().any(|v| &v.id == id));
            *lock(&self.views) = Some((gen, views.clone()));
        }
        views
    }

    /// An image record changed: the next read lists again.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// The event subscription is up (true) or broke (false). Either way what was kept may
    /// have missed a change.
    pub fn set_live(&self, live: bool) {
        self.invalidate();
        self.live.store(live, Ordering::SeqCst);
    }

    pub fn config(&self, id: &str) -> Option<Arc<ImageConfigFile>> {
        lock(&self.configs).get(id).cloned()
    }

    pub fn keep_config(&self, id: &str, config: ImageConfigFile) -> Arc<ImageConfigFile> {
        let config = Arc::new(config);
        lock(&self.configs).insert(id.to_string(), config.clone());
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: &str) -> ImageView {
        ImageView {
            id: id.into(),
            names: vec![format!("r/{id}:latest")],
            size: 1,
            user: String::new(),
        }
    }

    #[test]
    fn a_change_drops_the_list_and_a_racing_list_is_not_kept() {
        let c = ImageCache::default();
        c.set_live(true);
        assert!(c.views().is_none());
        let g = c.generation();
        c.store(g, vec![view("a")]);
        assert_eq!(c.views().expect("kept").len(), 1);
        c.invalidate();
        assert!(c.views().is_none());
        // Listed before a change, stored after it: stale, not kept.
        let g = c.generation();
        c.invalidate();
        c.store(g, vec![view("b")]);
        assert!(c.views().is_none());
    }

    #[test]
    fn nothing_is_kept_while_no_events_come() {
        let c = ImageCache::default();
        let g = c.generation();
        c.store(g, vec![view("a")]);
        assert!(c.views().is_none(), "kept with no subscription");
        c.set_live(true);
        let g = c.generation();
        c.store(g, vec![view("a")]);
        assert!(c.views().is_some());
        // The subscription broke: a change may go unseen.
        c.set_live(false);
        assert!(c.views().is_none());
    }

    #[test]
    fn configs_go_with_their_images() {
        let c = ImageCache::default();
        c.keep_config("a", ImageConfigFile::default());
        c.keep_config("b", ImageConfigFile::default());
        let g = c.generation();
        c.store(g, vec![view("a")]);
        assert!(c.config("a").is_some());
        assert!(c.config("b").is_none());
    }
}
