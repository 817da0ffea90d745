//! The engine's fence calls: fences stored and deleted as changes through the one write
//! path (ordered with every other traveller change); reads of definitions, of who is
//! inside, and of the event log that streams follow; and the judging of changed travellers
//! against fences and live maps (see [`super::judging`]).

use std::sync::Arc;
use std::time::Duration;

use super::judging::Marked;
use super::mutation::{DeleteFence, PutFence};
use super::{Engine, EngineError, Removed, Stored, Written};
use crate::events::{Cause, EventId, EventLog, SubscribeError, Subscription};
use crate::fences::{Fence, FenceCounts, FenceKey, InsidePage, WatchError, WatchHandle};
use crate::geometry::BBox;
use crate::travellers::{SeenAt, TravellerAt};

/// Why a subscription to fence events was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeFailure {
    /// The caller has no fence with this id.
    #[error("fence: no fence {0:?}")]
    NoFence(String),
    /// The server has as many subscribers as it allows.
    #[error(transparent)]
    Full(#[from] SubscribeError),
}

impl Engine {
    /// Creates or replaces a fence; everyone it concerns is judged at once. `privileged`:
    /// its owner is an admin-scope key (see [`crate::fences::FenceQuotas`]).
    pub fn put_fence(
        &self,
        fence: Fence,
        privileged: bool,
    ) -> Result<Written<Stored>, EngineError> {
        self.write(PutFence { fence, privileged })
    }

    /// Deletes a fence; its streams get a `deleted` event.
    pub fn delete_fence(&self, key: &FenceKey) -> Result<Written<Removed>, EngineError> {
        self.write(DeleteFence {
            owner: key.owner.to_string(),
            id: key.id.to_string(),
        })
    }

    /// The fence named `key`.
    pub fn fence(&self, key: &FenceKey) -> Option<Fence> {
        self.fences.get(key)
    }

    /// A page of `owner`'s fences by id, and the cursor to the next page. `cursor`
    /// continues a previous page of the same owner's.
    pub fn fence_page(
        &self,
        owner: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Fence>, Option<String>), EngineError> {
        let listing = format!("fences:{owner}");
        let after = cursor
            .map(|c| self.cursor_key.listing_after(&listing, c))
            .transpose()?;
        let (fences, more) = self.fences.list(owner, after.as_deref(), limit);
        let next = super::pois::next_cursor(&fences, more, |last| {
            self.cursor_key.listing_cursor(&listing, &last.id)
        });
        Ok((fences, next))
    }

    /// A page of who is inside fence `key` (by traveller id), and the cursor to the next
    /// page; `None` if there is no such fence.
    pub fn fence_inside(
        &self,
        key: &FenceKey,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Option<(InsidePage, Option<String>)>, EngineError> {
        self.check_judging()?;
        // A cluster node numbers a change's events once the change is applied: a listing
        // between changes (the traveller-order lock) matches its place.
        let _between = self.is_replicated().then(|| self.traveller_order.read());
        let listing = format!("inside:{key}");
        let after = cursor
            .map(|c| self.cursor_key.listing_after(&listing, c))
            .transpose()?;
        let Some(page) = self.fences.inside(key, after.as_deref(), limit) else {
            return Ok(None);
        };
        let next = super::pois::next_cursor(&page.travellers, page.more, |last| {
            self.cursor_key.listing_cursor(&listing, &last.id)
        });
        Ok(Some((page, next)))
    }

    /// Subscribes to the events of `owner`'s fences `ids` after `after` (from now on with
    /// `None`). A resume from before any of them was created is told to list again.
    pub fn subscribe_fences(
        &self,
        owner: &str,
        ids: &[String],
        after: Option<EventId>,
    ) -> Result<Subscription, SubscribeFailure> {
        // Between fence changes: a fence deleted and made again cannot slip in between
        // reading where it was born and subscribing.
        let _between = self.traveller_order.read();
        let born = self
            .fences
            .births(owner, ids)
            .map_err(|id| SubscribeFailure::NoFence(id.to_string()))?;
        let fences = ids.iter().map(|id| Arc::from(id.as_str())).collect();
        Ok(self
            .events()
            .subscribe(owner, fences, &born, after, self.now_ms())?)
    }

    /// The event log that fence streams follow.
    pub fn events(&self) -> &Arc<EventLog> {
        self.fences.events()
    }

    /// Fence sizes, for metrics.
    pub fn fence_counts(&self) -> FenceCounts {
        self.fences.counts()
    }

    /// Moves dropped unjudged since start, a traveller's waiting moves past the bound (see
    /// [`super::judging`]).
    pub fn judging_coalesced(&self) -> u64 {
        self.judging.coalesced()
    }

    /// Travellers changed and not yet judged against fences and live maps.
    pub fn judging_backlog(&self) -> usize {
        self.judging.waiting()
    }

    /// Whether any fence or live map could care about a traveller's change.
    pub(super) fn has_observers(&self) -> bool {
        self.fences.is_judging() && (self.fences.count() > 0 || self.fences.watches().count() > 0)
    }

    /// A traveller changed (`cause`: moved, sharing or deleted; `at`: where it moved to):
    /// judged at once (inline), or marked for the judging thread.
    pub(super) fn changed(&self, id: &str, cause: Cause, now_ms: i64, at: Option<SeenAt>) {
        if self.judging.is_background() {
            self.judging.mark(id, cause, now_ms, at);
        } else {
            // Judged as it is now: the only move waiting is the one just made.
            self.judge_traveller(id, Marked::new(cause, now_ms, None, None));
        }
    }

    /// Before a sharing change or a delete of traveller `id`: judges its moves still waiting
    /// for the judging thread, under the sharing they were made with, so that a move in and
    /// a change of sharing that follows it are told apart (an enter, then an exit) however
    /// far the judging thread is behind.
    pub(super) fn judge_pending(&self, id: &str) {
        if let Some(marked) = self.judging.take_traveller(id) {
            self.judge_traveller(id, marked);
        }
    }

    /// Judges a changed traveller against fences and live maps: each of its waiting
    /// changes where it was then (the judging thread, behind), or, with none, as it is now.
    pub(super) fn judge_traveller(&self, id: &str, marked: Marked) {
        let now = marked.now_ms;
        if marked.deleted {
            let around = self.fences.on_gone(id, now, Cause::Deleted);
            self.fences
                .reevaluate(&around, &self.travellers, now, Cause::Deleted);
        }
        let Some((last, earlier)) = marked.moves.split_last() else {
            // The judging thread is the only one judging (sharing changes and deletes
            // judge under the order lock it holds shared), so it judges a copy and holds
            // no shard lock meanwhile; judging inline, the lock orders concurrent writers'
            // judgements.
            let judge = |seen: crate::travellers::Seen<'_>| {
                self.fences.on_traveller(seen, now, marked.cause)
            };
            let judged = if self.judging.is_background() {
                self.travellers.with_seen_copy(id, judge)
            } else {
                self.travellers.with_seen(id, judge)
            };
            self.after_judging(id, judged, now, marked.cause, marked.deleted);
            return;
        };
        // The changes before the newest, each where the traveller was then, against the
        // fences alone: a walk in and out between two judgements is told. The fences that
        // follow it, and live maps (which draw only the newest position), move once, to
        // the newest; a later change is in an entry of its own, judged after this one.
        for w in earlier {
            let judge = |seen: crate::travellers::Seen<'_>| {
                self.fences.judge_passing(seen, w.now_ms, w.cause)
            };
            let _ = self
                .travellers
                .with_seen_copy_at(id, marked.handle, w.at, judge);
        }
        let judge = |seen: crate::travellers::Seen<'_>| {
            self.fences.on_traveller(seen, last.now_ms, last.cause)
        };
        let judged = self
            .travellers
            .with_seen_copy_at(id, marked.handle, last.at, judge);
        self.after_judging(id, judged, last.now_ms, last.cause, marked.deleted);
    }

    /// After a traveller's judgement: the roaming fences whose circle moved with it judge
    /// those around them; a traveller swept since it changed leaves as expired.
    fn after_judging(
        &self,
        id: &str,
        judged: Option<Vec<Arc<crate::fences::Subject>>>,
        now: i64,
        cause: Cause,
        deleted: bool,
    ) {
        match judged {
            Some(moved) => self.fences.reevaluate(&moved, &self.travellers, now, cause),
            None if !deleted => {
                let around = self.fences.on_gone(id, now, Cause::Expired);
                self.fences
                    .reevaluate(&around, &self.travellers, now, Cause::Expired);
            }
            None => {}
        }
    }

    /// From now on, changed travellers are judged by a thread of their own, off the write
    /// path (a single node serving; see [`super::judging`]). The thread ends once the
    /// engine is dropped.
    pub fn judge_in_background(self: &Arc<Self>) {
        self.judging.set_background();
        let engine = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("proxima-judge".into())
            .spawn(move || {
                // Judging waits without harm; requests cannot (see `crate::background`).
                crate::background::lower_this_thread();
                loop {
                    let Some(engine) = engine.upgrade() else {
                        return;
                    };
                    engine.judging.wait_for_work(Duration::from_millis(200));
                    // Taken and judged under the order lock, shared with position writes: a
                    // sharing change or a delete (which judge their traveller's marks
                    // first, under it alone) never overlaps a judgement of its traveller.
                    let _order = engine.traveller_order.read();
                    if let Some((id, marked, number)) = engine.judging.take() {
                        engine.judge_traveller(&id, marked);
                        engine.judging.done(number);
                    }
                }
            });
        if let Err(e) = spawned {
            // Without the thread, judge inline: slower writes, nothing lost.
            tracing::error!(error = %e, "no judging thread; judging on the write path");
            self.judging.set_inline();
        }
    }

    /// Waits (at most `wait`) until every traveller changed before the call has been
    /// judged: a listing of who is inside then reflects the caller's own writes.
    pub async fn judged(&self, wait: Duration) {
        if self.judging.is_background() {
            self.judging.caught_up(wait).await;
        }
    }

    /// Travellers whose position passed the time-to-live leave their fences, and events
    /// past the retention window are dropped. Run every second. In a cluster only the
    /// node's own live maps and retention: the exits come from the stream's clock ticks
    /// ([`super::ExpireFences`]), at the same place on every node.
    pub fn expire_fences(&self) {
        let now = self.now_ms();
        if self.is_replicated() {
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
            self.fences.set_quiet(false);
            self.events().start_here(false);
        } else {
            self.fences_wait_for_tick
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// After applying the clock tick of `at_ms` while quiet: starts judging, if the node is
    /// waiting to.
    pub(super) fn judge_fences_if_waiting(&self, at_ms: i64) {
        if self
            .fences_wait_for_tick
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            self.fences.recompute(&self.travellers, at_ms);
            self.fences.set_quiet(false);
            self.events().start_here(true);
            tracing::info!(at_ms, "cluster: judging fences from this clock tick on");
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

    /// Every fence, by key: for tests comparing whole states.
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
