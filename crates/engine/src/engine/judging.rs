//! Judging fences and live maps, off the write path.
//!
//! A change to a traveller (a move, a sharing change, a delete) may concern fences and
//! live maps: its judging finds them, updates who is inside, and publishes events to their
//! subscribers. How much work that is depends on how many fences and maps there are near
//! the traveller, which callers set up, not the writer. So on a single node the write only
//! marks the traveller as changed and is acknowledged; a judging thread takes the marks in
//! order and judges each traveller as it is then. A write's latency does not grow with
//! fences or subscribers, and no caller can slow another's writes by setting them up.
//!
//! The marks are merged per traveller (a traveller marked again before it was judged keeps
//! its place, with the strongest cause: deleted, then sharing, then moved), so the backlog
//! holds at most one entry per traveller, whatever the write rate. Each entry keeps the
//! traveller's moves not yet judged, up to [`MAX_WAITING_MOVES`], and each is judged in
//! turn, where the traveller was then: however far behind the judging thread is, a quick
//! walk in and out of a fence between two judgements is told (an enter, then an exit).
//! Past that many moves the oldest waiting one is dropped, and counted
//! ([`Judging::coalesced`], `/v1/stats` `judging_coalesced`): a bound on the memory one
//! traveller's backlog takes, never silent. A delete is judged before the traveller's later
//! changes.
//!
//! In a cluster, and in tests, judging is **inline**: each change is judged as it is
//! applied, so that every node gives the same events, numbered when the change ends.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use foldhash::fast::RandomState;
use parking_lot::{Condvar, Mutex};

use crate::events::Cause;
use crate::travellers::{SeenAt, TravellerHandle, TravellerId};

/// The most moves of one traveller waiting to be judged; past it the oldest is dropped.
pub(super) const MAX_WAITING_MOVES: usize = 16;

/// The most entries a backlog holds when it gives back its room
/// ([`Backlog::shrink_to_what_is_held`]).
const SHRINK_HOLDING: usize = 1 << 14;

/// A traveller's changes waiting to be judged.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Marked {
    /// The strongest cause among the changes to judge its state by (since its delete, if
    /// it was deleted): sharing, then moved.
    pub(super) cause: Cause,
    /// Whether it was deleted since it was last judged: its old memberships end first
    /// (cause `deleted`), then what there is now is judged.
    pub(super) deleted: bool,
    /// "Now" of the latest of them.
    pub(super) now_ms: i64,
    /// Its changes since it was last judged (or deleted), oldest first, each where the
    /// traveller was when it was made: judging tells each in turn, there, as of its own
    /// "now" and with its own cause. Empty when the changes carried no position (judged
    /// as the traveller is now, with `cause`).
    pub(super) moves: Vec<Waiting>,
    /// Where the latest write that said found its record (a mark without it, a sharing
    /// change, keeps the one before): judging reads the record there if it is still the
    /// traveller's, else looks it up by id.
    pub(super) handle: Option<TravellerHandle>,
}

/// A change waiting to be judged: where the traveller was then, "now" then, and its cause
/// (a move, or a sharing change where it stood).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Waiting {
    pub(super) at: SeenAt,
    pub(super) now_ms: i64,
    pub(super) cause: Cause,
}

impl Marked {
    /// A first mark for `cause` at `now_ms`, where the traveller was (`at`) if it had a
    /// position, and where its record lies (`handle`) if the write said.
    pub(super) fn new(
        cause: Cause,
        now_ms: i64,
        at: Option<SeenAt>,
        handle: Option<TravellerHandle>,
    ) -> Self {
        let deleted = cause == Cause::Deleted;
        Self {
            cause: if deleted { Cause::Moved } else { cause },
            deleted,
            now_ms,
            moves: at
                .filter(|_| !deleted)
                .map(|at| Waiting { at, now_ms, cause })
                .into_iter()
                .collect(),
            handle: handle.filter(|_| !deleted),
        }
    }
}

#[derive(Default)]
struct Backlog {
    order: VecDeque<(TravellerId, u64)>,
    marked: HashMap<TravellerId, Marked, RandomState>,
    /// Marks taken in so far; each queued traveller carries the number of its first.
    taken: u64,
}

impl Backlog {
    /// Merges a mark of traveller `id` into its waiting marks, or queues it.
    fn mark(
        &mut self,
        id: &str,
        cause: Cause,
        now_ms: i64,
        at: Option<SeenAt>,
        handle: Option<TravellerHandle>,
        coalesced: &std::sync::atomic::AtomicU64,
    ) {
        let deleted = cause == Cause::Deleted;
        self.taken += 1;
        let number = self.taken;
        match self.marked.get_mut(id) {
            Some(marked) if deleted => {
                // What came before the delete ended with it.
                marked.deleted = true;
                marked.cause = Cause::Moved;
                marked.now_ms = marked.now_ms.max(now_ms);
                marked.moves.clear();
                marked.handle = None;
            }
            Some(marked) => {
                marked.cause = marked.cause.max(cause);
                marked.now_ms = marked.now_ms.max(now_ms);
                if let Some(at) = at {
                    if marked.moves.len() == MAX_WAITING_MOVES {
                        marked.moves.remove(0);
                        coalesced.fetch_add(1, Ordering::Relaxed);
                    }
                    marked.moves.push(Waiting { at, now_ms, cause });
                }
                if handle.is_some() {
                    marked.handle = handle;
                }
            }
            None => {
                let id = TravellerId::from(id);
                self.marked
                    .insert(id.clone(), Marked::new(cause, now_ms, at, handle));
                self.order.push_back((id, number));
            }
        }
    }

    /// Gives back the room of a backlog that has drained: its map keeps the buckets of its
    /// largest size, and a backlog that once held every traveller (a load, a judging thread
    /// that fell behind) made each later take a cache miss on a bucket of a table of 16 MB
    /// with 200,000 travellers (the backlog's `HashMap::remove` was 5 % of the server's CPU
    /// with 10,000 static fences and every move judged, 150 batches of 1,000 a second:
    /// `perf`). Shrinks to twice what is held once that is under a quarter of the room, so
    /// the rehashing is paid for by the takes before it; and only once at most
    /// [`SHRINK_HOLDING`] entries are left, since it runs under the lock writers mark their
    /// moves with (a rehash of that many takes a fraction of a millisecond).
    fn shrink_to_what_is_held(&mut self) {
        const SMALLEST: usize = 1 << 10;
        let held = self.marked.len();
        if held <= SHRINK_HOLDING && self.marked.capacity() > SMALLEST.max(held * 4) {
            self.marked.shrink_to(SMALLEST.max(held * 2));
        }
        let queued = self.order.len();
        if queued <= SHRINK_HOLDING && self.order.capacity() > SMALLEST.max(queued * 4) {
            self.order.shrink_to(SMALLEST.max(queued * 2));
        }
    }
}

/// The travellers waiting to be judged, and how far judging has got.
pub(super) struct Judging {
    background: AtomicBool,
    backlog: Mutex<Backlog>,
    wake: Condvar,
    /// Every mark up to this number has been judged.
    judged: tokio::sync::watch::Sender<u64>,
    /// Moves dropped unjudged, a traveller's waiting moves past [`MAX_WAITING_MOVES`].
    coalesced: std::sync::atomic::AtomicU64,
}

impl Default for Judging {
    fn default() -> Self {
        Self {
            background: AtomicBool::new(false),
            backlog: Mutex::new(Backlog::default()),
            wake: Condvar::new(),
            judged: tokio::sync::watch::channel(0).0,
            coalesced: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Judging {
    /// Whether a judging thread takes the marks (else the writer judges inline).
    pub(super) fn is_background(&self) -> bool {
        self.background.load(Ordering::Acquire)
    }

    /// From now on a judging thread takes the marks.
    pub(super) fn set_background(&self) {
        self.background.store(true, Ordering::Release);
    }

    /// Back to judging on the writer's thread (no judging thread could be started).
    pub(super) fn set_inline(&self) {
        self.background.store(false, Ordering::Release);
    }

    /// Marks traveller `id` as changed by `cause` (moved, sharing or deleted) at `now_ms`;
    /// `at` is where it moved to, for a move.
    pub(super) fn mark(&self, id: &str, cause: Cause, now_ms: i64, at: Option<SeenAt>) {
        self.backlog
            .lock()
            .mark(id, cause, now_ms, at, None, &self.coalesced);
        self.wake.notify_one();
    }

    /// Marks each of a batch's `moves` (traveller, where it moved to, where its record lies)
    /// as moved at `now_ms`,
    /// under one lock, and wakes the judging thread once: marking a batch's travellers one
    /// by one took the lock and woke the thread a thousand times a batch (the lock's
    /// contention and the wake-ups were 3.4 % of a batch's server time with 10,000 fences,
    /// `perf`).
    pub(super) fn mark_moved<'a>(
        &self,
        moves: impl IntoIterator<Item = (&'a str, SeenAt, TravellerHandle)>,
        now_ms: i64,
    ) {
        let mut backlog = self.backlog.lock();
        let mut any = false;
        for (id, at, handle) in moves {
            backlog.mark(
                id,
                Cause::Moved,
                now_ms,
                Some(at),
                Some(handle),
                &self.coalesced,
            );
            any = true;
        }
        drop(backlog);
        if any {
            self.wake.notify_one();
        }
    }

    /// Waits at most `wait` for a traveller to be marked.
    pub(super) fn wait_for_work(&self, wait: Duration) {
        let mut backlog = self.backlog.lock();
        if backlog.order.is_empty() {
            self.wake.wait_for(&mut backlog, wait);
        }
    }

    /// The next traveller to judge, if one is marked.
    pub(super) fn take(&self) -> Option<(TravellerId, Marked, u64)> {
        let mut backlog = self.backlog.lock();
        backlog.shrink_to_what_is_held();
        // A traveller taken out of turn ([`Judging::take_traveller`]) left its place.
        while let Some((id, number)) = backlog.order.pop_front() {
            if let Some(marked) = backlog.marked.remove(&id) {
                return Some((id, marked, number));
            }
        }
        None
    }

    /// Drops every waiting change but each traveller's newest, and counts them: a fence put
    /// or replaced now judges everyone where they are, so changes made before it must not
    /// be judged against it afterwards. Called with the traveller-order lock held
    /// exclusively (no judgement under way).
    pub(super) fn keep_newest_only(&self) {
        let mut backlog = self.backlog.lock();
        let mut dropped = 0u64;
        for marked in backlog.marked.values_mut() {
            if marked.moves.len() > 1 {
                let newest = marked.moves.len() - 1;
                dropped += newest as u64;
                marked.moves.drain(..newest);
            }
        }
        drop(backlog);
        self.coalesced.fetch_add(dropped, Ordering::Relaxed);
    }

    /// Takes traveller `id`'s marks out of turn, if it has any: a sharing change or a delete
    /// judges what came before it first, with the sharing it was made under.
    pub(super) fn take_traveller(&self, id: &str) -> Option<Marked> {
        self.backlog.lock().marked.remove(id)
    }

    /// Records that the traveller taken with `number` was judged: every mark up to the one
    /// before the next traveller queued is (a mark merged into an earlier entry was judged
    /// with it).
    pub(super) fn done(&self, number: u64) {
        let backlog = self.backlog.lock();
        let upto = match backlog.order.front() {
            Some((_, next)) => next.saturating_sub(1),
            None => backlog.taken,
        };
        drop(backlog);
        // Waiters are told only when there are any: telling none still went through every
        // one of the watch's wake lists after each traveller (1.1 % of the server's CPU with
        // 10,000 static fences and every move judged, `perf`). The count is read under the
        // watch's lock: a waiter subscribing after it reads the new number once it may.
        self.judged.send_if_modified(|judged| {
            *judged = (*judged).max(upto.max(number));
            self.judged.receiver_count() > 0
        });
    }

    /// Moves dropped unjudged since start: a traveller's waiting moves past
    /// [`MAX_WAITING_MOVES`].
    pub(super) fn coalesced(&self) -> u64 {
        self.coalesced.load(Ordering::Relaxed)
    }

    /// Travellers waiting.
    pub(super) fn waiting(&self) -> usize {
        self.backlog.lock().order.len()
    }

    /// Waits (at most `wait`) until every change marked before the call is judged.
    pub(super) async fn caught_up(&self, wait: Duration) {
        let target = self.backlog.lock().taken;
        let mut judged = self.judged.subscribe();
        let _ = tokio::time::timeout(wait, judged.wait_for(|&j| j >= target)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_merge_per_traveller_in_the_order_first_marked_with_the_strongest_cause() {
        let at = |ts: i64| {
            Some(SeenAt {
                position: crate::geometry::LatLon {
                    lat: 1.0,
                    lon: ts as f64,
                },
                ts,
                seen_ms: ts,
            })
        };
        let judging = Judging::default();
        judging.mark("a", Cause::Moved, 1, at(1));
        judging.mark("b", Cause::Moved, 2, at(2));
        judging.mark("a", Cause::Sharing, 3, None);
        judging.mark("a", Cause::Moved, 4, at(4));
        judging.mark("c", Cause::Sharing, 5, None);
        judging.mark("c", Cause::Moved, 6, at(6));
        judging.mark("c", Cause::Deleted, 7, None);
        judging.mark("c", Cause::Moved, 8, at(8));
        let (a, marked, number) = judging.take().expect("a");
        assert_eq!((a.as_str(), number), ("a", 1));
        assert_eq!(
            marked,
            Marked {
                cause: Cause::Sharing,
                deleted: false,
                now_ms: 4,
                moves: vec![
                    Waiting {
                        at: at(1).expect("a move"),
                        now_ms: 1,
                        cause: Cause::Moved
                    },
                    Waiting {
                        at: at(4).expect("a move"),
                        now_ms: 4,
                        cause: Cause::Moved
                    }
                ],
                handle: None,
            },
            "both of a's moves wait, in order"
        );
        judging.done(number);
        assert_eq!(
            *judging.judged.borrow(),
            1,
            "b, marked second, is not judged yet"
        );
        let (b, _, number) = judging.take().expect("b");
        assert_eq!(b.as_str(), "b");
        judging.done(number);
        assert_eq!(
            *judging.judged.borrow(),
            4,
            "a's later marks were judged with it"
        );
        let (c, marked, number) = judging.take().expect("c");
        assert_eq!(
            (c.as_str(), marked.deleted, marked.cause, marked.moves),
            (
                "c",
                true,
                Cause::Moved,
                vec![Waiting {
                    at: at(8).expect("a move"),
                    now_ms: 8,
                    cause: Cause::Moved
                }]
            ),
            "deleted, then moved again: what came before the delete is gone with it"
        );
        judging.done(number);
        assert_eq!(*judging.judged.borrow(), 8);
        judging.wait_for_work(Duration::ZERO);
        assert!(judging.take().is_none());
    }
}
