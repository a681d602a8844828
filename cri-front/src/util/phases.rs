//! How long each step of an RPC took, for one debug line at its end (what `hack/bench/cri`
//! cannot see inside an RPC). Cheap enough to keep always on: a clock read per step and one
//! small allocation; the line is formatted only when debug logging is enabled.

use std::fmt;
use std::time::{Duration, Instant};

/// The steps of one RPC so far, each with the time since the one before.
pub struct Phases {
    last: Instant,
    took: Vec<(&'static str, Duration)>,
}

impl Phases {
    /// Timing starts now.
    pub fn new() -> Phases {
        Phases {
            last: Instant::now(),
            took: Vec::with_capacity(6),
        }
    }

    /// The step `name` ends now.
    pub fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.took.push((name, now - self.last));
        self.last = now;
    }
}

impl Default for Phases {
    fn default() -> Self {
        Phases::new()
    }
}

/// `rootfs=0.4ms stdio=1.2ms ...`
impl fmt::Display for Phases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, d)) in self.took.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{name}={:.1}ms", d.as_secs_f64() * 1e3)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_mark_in_order() {
        let mut p = Phases::new();
        assert_eq!(p.to_string(), "");
        p.mark("a");
        std::thread::sleep(Duration::from_millis(2));
        p.mark("b");
        let s = p.to_string();
        let names: Vec<&str> = s.split(' ').filter_map(|w| w.split('=').next()).collect();
        assert_eq!(names, ["a", "b"], "{s}");
        assert!(s.ends_with("ms"), "{s}");
        assert!(p.took[1].1 >= Duration::from_millis(2), "{s}");
    }
}
