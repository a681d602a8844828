//! An in-memory containerd for unit tests of the code above it: containers, tasks (init and
//! exec'd processes, their exits and exit events), snapshots (parents, kinds, labels), image
//! records, blobs and leases, with containerd's refusals (NOT_FOUND, ALREADY_EXISTS,
//! FAILED_PRECONDITION for a running task's delete, …).
//!
//! What it does not do: run anything (pids are counters, mounts name no real directory), unpack
//! layers ([`crate::Content::apply_diff`] is UNIMPLEMENTED), measure disk usage (zero).
//! Processes end when signalled (exit code 128+signal) unless made to ignore catchable signals
//! ([`Fake::ignore_term`]), or when told to ([`Fake::exit`]); exec'd processes exit as soon as
//! they start, with [`Fake::set_exec_exit_code`]'s code (0 by default). Any verb can be made to
//! fail once with [`Fake::fail_next`].

mod service;
mod store;
mod tasks;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use containerd_client::tonic::Code;
use tokio::sync::{broadcast, watch};

use crate::error::{Error, Result};
use crate::types::*;

/// A handle on one in-memory containerd; clones share it.
#[derive(Clone)]
pub struct Fake {
    inner: Arc<Inner>,
}

struct Inner {
    namespace: String,
    snapshotter: String,
    state: Mutex<State>,
    events: broadcast::Sender<TaskEvent>,
}

#[derive(Default)]
struct State {
    containers: BTreeMap<String, ContainerInfo>,
    tasks: BTreeMap<String, Task>,
    snapshots: BTreeMap<String, SnapshotInfo>,
    images: BTreeMap<String, Image>,
    blobs: HashMap<String, (Vec<u8>, HashMap<String, String>)>,
    leases: BTreeSet<String>,
    next_pid: u32,
    exec_exit_code: u32,
    /// Containers whose init ignores every signal but SIGKILL.
    stubborn: HashSet<String>,
    /// One-shot failures by verb.
    failures: Vec<(String, Error)>,
    /// Verbs called, with their object ("start c1").
    calls: Vec<String>,
}

/// A process of a task.
struct Proc {
    pid: u32,
    status: TaskStatus,
    io: Stdio,
    done: watch::Sender<Option<Exit>>,
}

struct Task {
    init: Proc,
    execs: BTreeMap<String, Proc>,
    /// The last resources a task update gave (JSON).
    resources: Option<Vec<u8>>,
}

impl Default for Fake {
    fn default() -> Self {
        Fake::new()
    }
}

impl Fake {
    /// Namespace `k8s.io`, snapshotter `overlayfs`.
    pub fn new() -> Fake {
        let (events, _) = broadcast::channel(256);
        Fake {
            inner: Arc::new(Inner {
                namespace: "k8s.io".into(),
                snapshotter: "overlayfs".into(),
                state: Mutex::new(State {
                    next_pid: 1000,
                    ..Default::default()
                }),
                events,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock poisons it; the state is still whole.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Note the call `verb obj`; the injected failure for `verb`, if any.
    fn call(&self, verb: &str, obj: &str) -> Result<MutexGuard<'_, State>> {
        let mut st = self.state();
        st.calls.push(format!("{verb} {obj}"));
        if let Some(i) = st.failures.iter().position(|(v, _)| v == verb) {
            return Err(st.failures.remove(i).1);
        }
        Ok(st)
    }

    /// Make the next call of `verb` (a trait method's name, e.g. "start") fail with `err`.
    pub fn fail_next(&self, verb: &str, err: Error) {
        self.state().failures.push((verb.to_string(), err));
    }

    /// Every verb called so far, with its object ("create_task c1"), oldest first.
    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// The init of container `id`'s task exits by itself with `code`.
    pub fn exit(&self, id: &str, code: u32) {
        let mut st = self.state();
        if let Some(t) = st.tasks.get_mut(id) {
            let ev = end(&mut t.init, code);
            drop(st);
            self.emit(ev, id, id);
        }
    }

    /// Container `id`'s init ignores every signal but SIGKILL (a process with a SIGTERM handler
    /// that does not exit).
    pub fn ignore_term(&self, id: &str) {
        self.state().stubborn.insert(id.to_string());
    }

    /// The code exec'd processes exit with.
    pub fn set_exec_exit_code(&self, code: u32) {
        self.state().exec_exit_code = code;
    }

    /// The stdio a process was created with.
    pub fn stdio(&self, id: &str, exec: Option<&str>) -> Option<Stdio> {
        let st = self.state();
        let t = st.tasks.get(id)?;
        match exec {
            None => Some(t.init.io.clone()),
            Some(e) => t.execs.get(e).map(|p| p.io.clone()),
        }
    }

    /// The resources of the last task update (JSON).
    pub fn task_resources(&self, id: &str) -> Option<Vec<u8>> {
        self.state().tasks.get(id)?.resources.clone()
    }

    /// Whether a process with `pid` exists and has not ended (what `kill(pid, 0)` tells of a
    /// real one once its parent has reaped it): a task's init or exec'd process not stopped.
    pub fn process_alive(&self, pid: u32) -> bool {
        self.state().tasks.values().any(|t| {
            std::iter::once(&t.init)
                .chain(t.execs.values())
                .any(|p| p.pid == pid && p.status != TaskStatus::Stopped)
        })
    }

    /// Lease ids that exist.
    pub fn lease_ids(&self) -> Vec<String> {
        self.state().leases.iter().cloned().collect()
    }

    fn emit(&self, exit: Option<Exit>, container_id: &str, id: &str) {
        if let Some(exit) = exit {
            // No subscriber is fine: events are for whoever listens.
            let _ = self.inner.events.send(TaskEvent::Exit {
                container_id: container_id.to_string(),
                id: id.to_string(),
                exit,
            });
        }
    }
}

/// End a live process with `code`; the exit, or None if it had ended already.
fn end(p: &mut Proc, code: u32) -> Option<Exit> {
    if p.status == TaskStatus::Stopped {
        return None;
    }
    let exit = Exit {
        code,
        at_ns: Some(now_ns()),
    };
    p.status = TaskStatus::Stopped;
    p.done.send_replace(Some(exit));
    Some(exit)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

fn not_found(op: impl Into<String>, what: &str) -> Error {
    Error::new(Code::NotFound, op, format!("{what}: not found"))
}

fn exists(op: impl Into<String>, what: &str) -> Error {
    Error::new(Code::AlreadyExists, op, format!("{what}: already exists"))
}

fn precondition(op: impl Into<String>, msg: impl Into<String>) -> Error {
    Error::new(Code::FailedPrecondition, op, msg)
}
