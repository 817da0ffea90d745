//! The engine's fence calls: fences stored and deleted as changes through the one write
//! path (ordered with every other traveller change); reads of definitions, of who is
//! inside, and of the event log that streams follow.

use std::sync::Arc;

use super::mutation::{DeleteFence, PutFence};
use super::{Engine, EngineError, Removed, Stored, Written};
use crate::events::EventLog;
use crate::fences::{Fence, FenceCounts, InsidePage};

impl Engine {
    /// Creates or replaces a fence; everyone it concerns is judged at once.
    pub fn put_fence(&self, fence: Fence) -> Result<Written<Stored>, EngineError> {
        self.write(PutFence(fence))
    }

    /// Deletes a fence; its streams get a `deleted` event.
    pub fn delete_fence(&self, id: &str) -> Result<Written<Removed>, EngineError> {
        self.write(DeleteFence(id.to_string()))
    }

    /// The fence with this id.
    pub fn fence(&self, id: &str) -> Option<Fence> {
        self.fences.get(id)
    }

    /// The ids in `ids` that name no fence.
    pub fn missing_fences<'a>(&self, ids: &'a [String]) -> Vec<&'a str> {
        self.fences.missing(ids)
    }

    /// Fences by id after `after`, at most `limit`, and whether more follow.
    pub fn fences(&self, after: Option<&str>, limit: usize) -> (Vec<Fence>, bool) {
        self.fences.list(after, limit)
    }

    /// Who is inside fence `id`, by id after `after`, at most `limit`.
    pub fn fence_inside(&self, id: &str, after: Option<&str>, limit: usize) -> Option<InsidePage> {
        self.fences.inside(id, after, limit)
    }

    /// The event log that fence streams follow.
    pub fn events(&self) -> &Arc<EventLog> {
        self.fences.events()
    }

    /// Fence sizes, for metrics.
    pub fn fence_counts(&self) -> FenceCounts {
        self.fences.counts()
    }

    /// Travellers whose position passed the time-to-live leave their fences, and events
    /// past the retention window are dropped. Run every second.
    pub fn expire_fences(&self) {
        let now = self.now_ms();
        self.fences.expire(now);
        self.fences.events().expire(now);
    }

    /// Every fence, by id: for tests comparing whole states.
    #[doc(hidden)]
    pub fn dump_fences(&self) -> Vec<Fence> {
        let mut fences = Vec::new();
        let _ = self.fences.export(|f| {
            fences.push(f.clone());
            Ok::<(), ()>(())
        });
        fences
    }
}
