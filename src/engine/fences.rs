//! The engine's fence calls: fences stored and deleted as changes through the one write
//! path (ordered with every other traveller change); reads of definitions, of who is
//! inside, and of the event log that streams follow.

use std::sync::Arc;

use super::mutation::{DeleteFence, PutFence};
use super::{Engine, EngineError, Removed, Stored, Written};
use crate::events::EventLog;
use crate::fences::{Fence, FenceCounts, InsidePage, WatchError, WatchHandle};
use crate::geometry::BBox;
use crate::travellers::TravellerAt;

/// What fence-list cursors are bound to.
const FENCES_LISTING: &str = "fences";

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

    /// A page of fences by id, and the cursor to the next page. `cursor` continues a
    /// previous page.
    pub fn fence_page(
        &self,
        limit: usize,
        cursor: Option<&str>,
        viewer: Option<&str>,
    ) -> Result<(Vec<Fence>, Option<String>), EngineError> {
        let after = cursor
            .map(|c| self.cursor_key.listing_after(FENCES_LISTING, c))
            .transpose()?;
        let (fences, more) = self.fences.list(after.as_deref(), limit, viewer);
        let next = match fences.last() {
            Some(last) if more => Some(self.cursor_key.listing_cursor(FENCES_LISTING, &last.id)),
            _ => None,
        };
        Ok((fences, next))
    }

    /// A page of who is inside fence `id` (by traveller id), and the cursor to the next
    /// page; `None` if there is no such fence.
    pub fn fence_inside(
        &self,
        id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Option<(InsidePage, Option<String>)>, EngineError> {
        self.check_judging()?;
        // A cluster node numbers a change's events once the change is applied: a listing
        // between changes (the traveller-order lock) matches its "after change n" id.
        let _between = self
            .replicator()
            .is_some()
            .then(|| self.traveller_order.read());
        let listing = format!("inside:{id}");
        let after = cursor
            .map(|c| self.cursor_key.listing_after(&listing, c))
            .transpose()?;
        let Some(page) = self.fences.inside(id, after.as_deref(), limit) else {
            return Ok(None);
        };
        let next = match page.travellers.last() {
            Some(last) if page.more => Some(self.cursor_key.listing_cursor(&listing, &last.id)),
            _ => None,
        };
        Ok(Some((page, next)))
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
    /// past the retention window are dropped. Run every second. In a cluster only the
    /// node's own live maps and retention: the exits come from the stream's clock ticks
    /// ([`super::ExpireFences`]), at the same place on every node.
    pub fn expire_fences(&self) {
        let now = self.now_ms();
        if self.replicator().is_some() {
            self.fences.expire_watches(now);
        } else {
            self.fences.expire(now);
        }
        self.fences.events().expire(now);
    }

    /// Quiet: fences are not judged as changes are applied (a node recovering or catching
    /// up). Back to judging: who is inside each fence is worked out once from the state now.
    pub fn quiet_fences(&self, quiet: bool) {
        if !quiet {
            self.fences.recompute(&self.travellers, self.now_ms());
        }
        self.fences.set_quiet(quiet);
    }

    /// A cluster node that has caught up starts judging fences at the next clock tick in
    /// the stream (at once if there are no fences): who is inside each fence is worked out
    /// from the state as of that tick, which is what every node judging all along holds
    /// then, so from there on it gives the same events with the same ids. Call between
    /// changes, from the task that applies them.
    pub fn judge_fences_from_next_tick(&self) {
        if self.fences.count() == 0 {
            let applied = self
                .stream_applied
                .load(std::sync::atomic::Ordering::Acquire);
            self.fences.set_quiet(false);
            self.events().start_at(applied);
        } else {
            self.fences_wait_for_tick
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// After applying the clock tick at `seq` (of `at_ms`) while quiet: starts judging, if
    /// the node is waiting to.
    pub(super) fn judge_fences_if_waiting(&self, seq: u64, at_ms: i64) {
        if self
            .fences_wait_for_tick
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            self.fences.recompute(&self.travellers, at_ms);
            self.fences.set_quiet(false);
            self.events().start_at(seq);
            tracing::info!(seq, "cluster: judging fences from this clock tick on");
        }
    }

    /// Refuses what needs fences judged while a cluster node is still catching up.
    pub fn check_judging(&self) -> Result<(), EngineError> {
        if self.fences.is_judging() {
            Ok(())
        } else {
            Err(EngineError::FencesCatchingUp)
        }
    }

    /// How many fences there are.
    pub fn fence_count(&self) -> usize {
        self.fences.count()
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

    /// Opens a live map over `bbox` for `viewer`: its handle, and who is in the box now (at
    /// most `max_snapshot`); changes wait for the map, coalesced per traveller, up to
    /// `max_pending` travellers.
    pub fn open_watch(
        &self,
        bbox: BBox,
        viewer: Option<String>,
        max_snapshot: usize,
        max_pending: usize,
    ) -> Result<(WatchHandle, Vec<TravellerAt>), WatchError> {
        self.fences.watches().open(
            bbox,
            viewer,
            &self.travellers,
            self.now_ms(),
            max_snapshot,
            max_pending,
        )
    }

    /// Live maps open now.
    pub fn watch_count(&self) -> usize {
        self.fences.watches().count()
    }
}
