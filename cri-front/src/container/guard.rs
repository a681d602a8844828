//! How a container RPC takes its container's transition guard ([`super::state`]): resolve
//! the id, wait for the guard, then read the record under it — what the op before left.

use super::record::ContainerRecord;
use super::state::{Guard, Op, State, Step};
use super::Containers;
use crate::error::{Error, Result};

impl Containers {
    /// Container `id`'s guard (an id or a unique prefix) and its record as of now.
    pub(crate) async fn guarded(&self, id: &str) -> Result<(Guard, ContainerRecord)> {
        let full = self.store.find(id).await?.id;
        let mut g = self.transitions.lock(&full).await;
        let Some(rec) = self.store.get_live(&full).await else {
            // Removed while we waited: its guard goes with it.
            self.transitions.forget(&full);
            return Err(Error::NotFound(format!("container {full:?} not found")));
        };
        *g = State::of(rec.phase);
        Ok((g, rec))
    }

    /// [`Containers::guarded`], then what the state machine lets `op` do: Some(guard, record)
    /// to go ahead (the guard holds the in-flight state), None when there is nothing to do.
    pub(crate) async fn begin(&self, id: &str, op: Op) -> Result<Option<(Guard, ContainerRecord)>> {
        let (mut g, rec) = self.guarded(id).await?;
        match g.begin(op) {
            Step::Go(s) => {
                *g = s;
                Ok(Some((g, rec)))
            }
            Step::Done => Ok(None),
            Step::Refuse(why) => Err(Error::FailedPrecondition(format!(
                "container {} {why}",
                rec.id
            ))),
        }
    }
}
