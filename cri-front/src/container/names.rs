//! Container name reservations (containerd's registrar): a pod's container name and
//! attempt belong to one container id from CreateContainer's first step until that
//! container is removed. Reserving is one short critical section, so CreateContainer
//! calls on different names run side by side; two on the same name cannot both win.

use std::collections::HashMap;
use std::sync::Mutex;

/// What kubelet keeps unique: (pod id, container name, attempt).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NameKey {
    pub pod_id: String,
    pub name: String,
    pub attempt: u32,
}

#[derive(Default)]
pub struct Names {
    by_key: Mutex<HashMap<NameKey, String>>,
}

impl Names {
    /// Reserve `key` for container `id`; Err(holder) when another container holds it.
    /// Reserving again for the same id is fine.
    pub fn reserve(&self, key: NameKey, id: &str) -> Result<(), String> {
        let mut m = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        match m.get(&key) {
            Some(holder) if holder != id => Err(holder.clone()),
            _ => {
                m.insert(key, id.to_string());
                Ok(())
            }
        }
    }

    /// Release whatever container `id` holds (nothing when it holds nothing).
    pub fn release(&self, id: &str) {
        let mut m = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|_, holder| holder != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, attempt: u32) -> NameKey {
        NameKey {
            pod_id: "p".into(),
            name: name.into(),
            attempt,
        }
    }

    #[test]
    fn one_holder_per_name() {
        let n = Names::default();
        assert_eq!(n.reserve(key("web", 0), "a"), Ok(()));
        assert_eq!(n.reserve(key("web", 0), "b"), Err("a".to_string()));
        assert_eq!(n.reserve(key("web", 0), "a"), Ok(()));
        // Another attempt or name is another key.
        assert_eq!(n.reserve(key("web", 1), "b"), Ok(()));
        assert_eq!(n.reserve(key("db", 0), "c"), Ok(()));
    }

    #[test]
    fn release_frees_the_name() {
        let n = Names::default();
        n.reserve(key("web", 0), "a").expect("reserve");
        n.release("a");
        assert_eq!(n.reserve(key("web", 0), "b"), Ok(()));
        n.release("nobody");
        assert_eq!(n.reserve(key("web", 0), "c"), Err("b".to_string()));
    }

    #[test]
    fn concurrent_reservations_have_one_winner() {
        let n = std::sync::Arc::new(Names::default());
        let wins: usize = (0..8)
            .map(|i| {
                let n = n.clone();
                std::thread::spawn(move || n.reserve(key("web", 0), &format!("c{i}")).is_ok())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap_or(false) as usize)
            .sum();
        assert_eq!(wins, 1);
    }
}
