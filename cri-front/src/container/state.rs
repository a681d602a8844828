//! A container's state machine and its per-container transition guard.
//!
//! Creating → Created → Starting → Running → Stopping → Exited → Removing (→ gone). The
//! record on disk keeps the stable states (Created, Running, Exited: [`Phase`]); the
//! in-flight ones (Creating, Starting, Stopping, Removing) live only while the RPC that
//! makes the transition holds the container's guard. Every RPC that changes a container
//! (Start, Stop, Remove, UpdateContainerResources) takes its guard first, then reads the
//! record and asks [`State::begin`] what it may do: concurrent RPCs on one container run
//! one after the other and each sees what the one before left, so they end in one
//! consistent state; RPCs on different containers never wait on each other.
//!
//! An exit is not a transition anyone asks for: the kernel decides it. It is recorded
//! (Running → Exited) whenever containerd reports it, without the guard, so a Stop that
//! waits out its grace period never delays another container's exit.
//!
//! After a criusd restart no guard is held: a record left mid-transition is in its last
//! stable phase, and what containerd holds resolves it (`start_truth.rs`, `recover.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::record::Phase;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Creating,
    Created,
    Starting,
    Running,
    Stopping,
    Exited,
    Removing,
}

/// A transition a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    Stop,
    Remove,
    /// UpdateContainerResources: no state of its own, but not while another change runs.
    Update,
}

/// What an [`Op`] may do from a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Go ahead; the container is in this state until the op ends.
    Go(State),
    /// Nothing to do: the op's goal holds already (Stop of a stopped container).
    Done,
    /// Not allowed from here: FAILED_PRECONDITION with this reason.
    Refuse(&'static str),
}

impl State {
    pub fn of(phase: Phase) -> State {
        match phase {
            Phase::Created => State::Created,
            Phase::Running => State::Running,
            Phase::Exited => State::Exited,
        }
    }

    /// True for the states only an RPC in flight is in.
    pub fn in_flight(self) -> bool {
        matches!(
            self,
            State::Creating | State::Starting | State::Stopping | State::Removing
        )
    }

    /// The transition table. Under the guard the state is never an in-flight one (the op
    /// that set it holds the guard); they are refused all the same, so a slip shows.
    pub fn begin(self, op: Op) -> Step {
        use State::*;
        match (op, self) {
            (_, Creating | Starting | Stopping | Removing) => Step::Refuse("is changing state"),
            (Op::Start, Created) => Step::Go(Starting),
            (Op::Start, Running) => Step::Refuse("is already running"),
            (Op::Start, Exited) => Step::Refuse("has exited; containers cannot be restarted"),
            (Op::Stop, Running) => Step::Go(Stopping),
            (Op::Stop, Created | Exited) => Step::Done,
            (Op::Remove, Created | Running | Exited) => Step::Go(Removing),
            (Op::Update, s @ (Created | Running)) => Step::Go(s),
            (Op::Update, Exited) => Step::Refuse("has exited"),
        }
    }
}

/// The per-container guards: one async mutex per container id, holding its state.
#[derive(Default)]
pub struct Transitions {
    slots: std::sync::Mutex<HashMap<String, Arc<Mutex<State>>>>,
}

/// A held guard: the container's state may be changed through it.
pub type Guard = OwnedMutexGuard<State>;

impl Transitions {
    fn slot(&self, id: &str, initial: State) -> Arc<Mutex<State>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(initial)))
            .clone()
    }

    /// Wait for container `id`'s guard. The caller then reads the record and sets the state
    /// from it (an exit may have been recorded since the last op).
    pub async fn lock(&self, id: &str) -> Guard {
        self.slot(id, State::Created).lock_owned().await
    }

    /// The guard of a container no one else can know yet (CreateContainer's new id).
    pub async fn lock_new(&self, id: &str) -> Guard {
        let slot = Arc::new(Mutex::new(State::Creating));
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), slot.clone());
        slot.lock_owned().await
    }

    /// The guard if no transition of `id` is in flight right now.
    pub fn try_lock(&self, id: &str) -> Option<Guard> {
        self.slot(id, State::Created).try_lock_owned().ok()
    }

    /// Drop the guard of a removed container (held by the caller, so no one holds it
    /// except waiters, who then find no record).
    pub fn forget(&self, id: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.remove(id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn start_only_from_created() {
        assert_eq!(State::Created.begin(Op::Start), Step::Go(State::Starting));
        assert!(matches!(State::Running.begin(Op::Start), Step::Refuse(_)));
        assert!(matches!(State::Exited.begin(Op::Start), Step::Refuse(_)));
    }

    #[test]
    fn stop_is_idempotent() {
        assert_eq!(State::Running.begin(Op::Stop), Step::Go(State::Stopping));
        assert_eq!(State::Created.begin(Op::Stop), Step::Done);
        assert_eq!(State::Exited.begin(Op::Stop), Step::Done);
    }

    #[test]
    fn remove_from_every_stable_state() {
        for s in [State::Created, State::Running, State::Exited] {
            assert_eq!(s.begin(Op::Remove), Step::Go(State::Removing));
        }
    }

    #[test]
    fn in_flight_states_refuse_everything() {
        for s in [
            State::Creating,
            State::Starting,
            State::Stopping,
            State::Removing,
        ] {
            assert!(s.in_flight());
            for op in [Op::Start, Op::Stop, Op::Remove, Op::Update] {
                assert!(matches!(s.begin(op), Step::Refuse(_)), "{s:?} {op:?}");
            }
        }
    }

    #[test]
    fn update_keeps_the_state() {
        assert_eq!(State::Running.begin(Op::Update), Step::Go(State::Running));
        assert_eq!(State::Created.begin(Op::Update), Step::Go(State::Created));
        assert!(matches!(State::Exited.begin(Op::Update), Step::Refuse(_)));
    }

    #[test]
    fn stable_states_follow_the_record() {
        assert_eq!(State::of(Phase::Created), State::Created);
        assert_eq!(State::of(Phase::Running), State::Running);
        assert_eq!(State::of(Phase::Exited), State::Exited);
        assert!(!State::of(Phase::Running).in_flight());
    }

    #[tokio::test]
    async fn one_container_serialises_others_do_not_wait() {
        let t = Arc::new(Transitions::default());
        let mut a = t.lock("a").await;
        *a = State::Starting;
        // Another container's guard is free while "a" is held.
        let b = tokio::time::timeout(Duration::from_millis(200), t.lock("b")).await;
        assert!(b.is_ok(), "container b waited on container a");
        // "a" itself is busy.
        assert!(t.try_lock("a").is_none());
        let t2 = t.clone();
        let waiter = tokio::spawn(async move { *t2.lock("a").await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "second op on a ran while the first held it"
        );
        *a = State::Running;
        drop(a);
        // The waiter sees what the first op left.
        assert_eq!(waiter.await.expect("join"), State::Running);
    }

    #[tokio::test]
    async fn new_containers_start_creating_and_removed_ones_are_forgotten() {
        let t = Transitions::default();
        let g = t.lock_new("n").await;
        assert_eq!(*g, State::Creating);
        assert!(t.try_lock("n").is_none());
        drop(g);
        assert_eq!(t.len(), 1);
        let g = t.lock("n").await;
        t.forget("n");
        drop(g);
        assert_eq!(t.len(), 0);
    }
}
