//! The shim's containers, each behind a lock of its own.
//!
//! A pod's containers share one shim, and runc create/start/exec take tens of milliseconds: one
//! lock over all of them made a sibling's State, Kill or Start wait behind them. Here the table's
//! own lock is held only to find or add a slot; a container's transitions hold its slot's lock.
//! Lock order: a slot, then the table (never the table while waiting for a slot).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::{Mutex as AsyncMutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use crate::container::Container;

/// A container's place in the table: empty while its create runs (and for good if it failed or
/// the container was deleted while someone waited for it).
type Slot = Arc<AsyncMutex<Option<Container>>>;

/// A locked slot, possibly empty.
pub type HeldSlot = OwnedMutexGuard<Option<Container>>;

/// A locked container.
pub type Held = OwnedMappedMutexGuard<Option<Container>, Container>;

#[derive(Default)]
pub struct Table {
    slots: Mutex<HashMap<String, Slot>>,
}

impl Table {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // Nothing panics while holding it; if something did, the map is still whole.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `id` for a create: the slot is added, empty and locked, so every other request for
    /// `id` waits until the create fills it or gives it up (`forget`). `None`: `id` is taken.
    pub fn reserve(&self, id: &str) -> Option<HeldSlot> {
        let mut slots = self.slots();
        if slots.contains_key(id) {
            return None;
        }
        let slot: Slot = Arc::default();
        // A new slot nobody else has seen: the lock is free.
        let held = slot.clone().try_lock_owned().ok()?;
        slots.insert(id.to_string(), slot);
        Some(held)
    }

    /// The container `id`, locked (after whatever transition holds it now).
    pub async fn lock(&self, id: &str) -> Option<Held> {
        OwnedMutexGuard::try_map(self.lock_slot(id).await?, Option::as_mut).ok()
    }

    /// The slot of `id`, locked, for a request that may empty it (delete).
    pub async fn lock_slot(&self, id: &str) -> Option<HeldSlot> {
        let slot = self.slots().get(id).cloned()?;
        Some(slot.lock_owned().await)
    }

    /// Drops `id` from the table; called with its slot held, and emptied, by the holder.
    pub fn forget(&self, id: &str) {
        self.slots().remove(id);
    }

    /// Whether a container here is one containerd may still ask about: one whose bundle is still
    /// there (or whose create is under way). containerd removes a bundle only once done with its
    /// task; when containerd dies while a create runs here, it cleans that bundle up on restart
    /// through `shim delete`, which never reaches this server, and the container left here would
    /// otherwise keep the shim up for good.
    pub async fn holds_known_tasks(&self) -> bool {
        let slots: Vec<Slot> = self.slots().values().cloned().collect();
        for slot in slots {
            // Empty once locked: a create that failed, or a container just deleted.
            if slot
                .lock()
                .await
                .as_ref()
                .is_some_and(|c| c.bundle.exists())
            {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use containerd_shim::asynchronous::io::Stdio;

    use super::*;
    use crate::{container::Kind, process::Process, runc::Runc};

    fn container(bundle: &str) -> Container {
        Container {
            bundle: bundle.into(),
            runc: Runc::new("test", "", ""),
            kind: Kind::Runc,
            init: Process::new(Stdio::new("", "", "", false)),
            execs: HashMap::new(),
            rootfs: None,
            shares_pid_ns: false,
        }
    }

    async fn soon<F: std::future::Future>(f: F) -> Option<F::Output> {
        tokio::time::timeout(Duration::from_millis(200), f)
            .await
            .ok()
    }

    #[tokio::test]
    async fn an_id_is_reserved_once() {
        let table = Table::default();
        let held = table.reserve("a");
        assert!(held.is_some());
        assert!(table.reserve("a").is_none(), "a second create of a");
        assert!(
            table.slots().contains_key("a"),
            "a create under way holds its slot"
        );
        table.forget("a");
        drop(held);
        assert!(table.slots().is_empty());
        assert!(table.reserve("a").is_some(), "a free again");
    }

    #[tokio::test]
    async fn a_held_container_does_not_hold_up_its_siblings() {
        let table = Arc::new(Table::default());
        *table.reserve("b").unwrap() = Some(container("/b"));
        let _creating = table.reserve("a").unwrap();
        let b = soon(table.lock("b")).await.expect("b waited behind a");
        assert_eq!(b.unwrap().bundle, std::path::Path::new("/b"));
        assert!(soon(table.lock("a")).await.is_none(), "a is mid-create");
    }

    #[tokio::test]
    async fn containers_whose_bundle_is_gone_are_not_known_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let table = Table::default();
        assert!(!table.holds_known_tasks().await);
        *table.reserve("gone").unwrap() = Some(container("/nonexistent/bundle"));
        assert!(
            !table.holds_known_tasks().await,
            "containerd removed its bundle"
        );
        *table.reserve("live").unwrap() = Some(container(dir.path().to_str().unwrap()));
        assert!(table.holds_known_tasks().await);
    }

    #[tokio::test]
    async fn waiters_see_what_the_create_left() {
        let table = Arc::new(Table::default());
        let mut creating = table.reserve("a").unwrap();
        let waiter = tokio::spawn({
            let table = table.clone();
            async move { table.lock("a").await.map(|c| c.bundle.clone()) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        *creating = Some(container("/a"));
        drop(creating);
        assert_eq!(waiter.await.unwrap(), Some("/a".into()));

        let failing = table.reserve("f").unwrap();
        let waiter = tokio::spawn({
            let table = table.clone();
            async move { table.lock("f").await.is_none() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        table.forget("f");
        drop(failing);
        assert!(waiter.await.unwrap(), "a failed create leaves no container");
        assert!(table.lock("f").await.is_none());
    }
}
