//! # crius-test — the integration harness
//!
//! Every integration test in `test/tests/` stands on this small library. Its face:
//!
//! - [`TestEnv::new`]`("name")` — `None` (after printing one `SKIP:` line) when the test cannot run here
//!   (not root, or a tool missing); otherwise a private temp dir, a short unique [`TestEnv::id`] to name
//!   what the test makes (bridges, netns, cgroup parents: the leak check recognises it), and a baseline
//!   for the leak check.
//! - [`TestEnv::containerd`] — starts a private containerd (own config, root, state and socket in the
//!   temp dir; the crius shim from `target/debug` on its PATH), optionally with containerd's own CRI
//!   plugin ([`ContainerdOptions`]). [`Containerd::ctr`] runs `ctr` against it. `CRIUS_CONTAINERD=2.1`
//!   makes it Debian forky's containerd 2.1 (config version 3) instead of the system's 1.6
//!   ([`paths::ContainerdVersion`]).
//! - [`registry::ensure`] — the local registry on 127.0.0.1:5000 with the local images, started and
//!   built through `hack/` when missing. Image names: [`registry::BUSYBOX`], [`registry::CONFIG_TEST`],
//!   [`registry::PAUSE`].
//! - [`secure_registry::SecureRegistry`] — a second registry over the same images that asks for TLS
//!   from the test's CA, client certificates, and basic or token-flow credentials.
//! - [`TestEnv::cni`] — a CNI conflist of the test's own (own bridge, subnet and lease dir).
//! - [`cri::connect`] — CRI v1 clients over a unix socket (criusd's, or containerd's CRI plugin).
//! - [`TestEnv::finish`] — stops what the env started, then runs the **leak check** (netns mounts, veth
//!   links, mounts under the test's dirs, shim/runc/pause processes, cgroups, CNI leases) and returns
//!   its findings as an error. Dropping a `TestEnv` without `finish` (a failed assertion) still cleans
//!   everything up; leaks found then are printed.
//!
//! Leak scope: by default only what carries the test's marks (its dir, its id, its bridge, its lease
//! dirs) counts, so tests can run on a busy dev machine. `CRIUS_LEAK_CHECK=strict` (set by `hack/test.sh`,
//! where tests run one at a time) also counts anything new on the machine: netns mounts, veths, shim,
//! runc and pause processes, cgroups.

pub mod cri;
pub mod leaks;
pub mod paths;
pub mod registry;
pub mod secure_registry;

mod containerd;
mod env;
pub mod process;

pub use containerd::{Containerd, ContainerdOptions};
pub use env::{CniNetwork, TestEnv};
pub use leaks::{Leak, Snapshot};

/// The result type of harness calls: errors carry context as text, which is what a failed test shows.
pub type Result<T> = anyhow::Result<T>;

/// Skip the calling test (return from it) unless a [`TestEnv`] can be made; binds it to `$env`.
///
/// ```ignore
/// let mut env = crius_test::env_or_skip!("shim_echo");
/// ```
#[macro_export]
macro_rules! env_or_skip {
    ($name:expr) => {
        match $crate::TestEnv::new($name) {
            Some(env) => env,
            None => return,
        }
    };
}

/// Say why the calling test cannot run here (one `SKIP:` line) — and fail it instead where skipping
/// proves nothing: under CI (`CI` set) or `hack/test.sh` (`CRIUS_TEST_NO_SKIP=1`), a test that does
/// not run is a test that fails.
pub fn skip(why: impl std::fmt::Display) {
    let strict = ["CI", "CRIUS_TEST_NO_SKIP"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|x| !x.is_empty() && x != "0" && x != "false"));
    if strict {
        panic!("SKIP is a failure here (CI / hack/test.sh): {why}");
    }
    eprintln!("SKIP: {why}");
}
