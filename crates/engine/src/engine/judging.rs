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
//! The marks are coalesced per traveller (a traveller marked again before it was judged
//! keeps its place, with the strongest cause: deleted, then sharing, then moved), so the
//! backlog holds at most one entry per traveller, whatever the write rate. While the
//! judging thread keeps up, every change is judged; when it falls behind, a traveller that
//! moved several times is judged once, where it is by then, as a live map draws it: only a
//! traveller's newest position counts. A delete is never lost to coalescing: it is judged
//! before the traveller's later changes.
//!
//! In a cluster, and in tests, judging is **inline**: each change is judged as it is
//! applied, so that every node gives the same events, numbered when the change ends.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use foldhash::fast::RandomState;
use parking_lot::{Condvar, Mutex};

use crate::events::Cause;
use crate::travellers::TravellerId;

/// A traveller's changes waiting to be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Marked {
    /// The strongest cause among the changes to judge its state by (since its delete, if
    /// it was deleted): sharing, then moved.
    pub(super) cause: Cause,
    /// Whether it was deleted since it was last judged: its old memberships end first
    /// (cause `deleted`), then what there is now is judged.
    pub(super) deleted: bool,
    /// "Now" of the latest of them.
    pub(super) now_ms: i64,
}

#[derive(Default)]
struct Backlog {
    order: VecDeque<(TravellerId, u64)>,
    marked: HashMap<TravellerId, Marked, RandomState>,
    /// Marks taken in so far; each queued traveller carries the number of its first.
    taken: u64,
}

/// The travellers waiting to be judged, and how far judging has got.
pub(super) struct Judging {
    background: AtomicBool,
    backlog: Mutex<Backlog>,
    wake: Condvar,
    /// Every mark up to this number has been judged.
    judged: tokio::sync::watch::Sender<u64>,
}

impl Default for Judging {
    fn default() -> Self {
        Self {
            background: AtomicBool::new(false),
            backlog: Mutex::new(Backlog::default()),
            wake: Condvar::new(),
            judged: tokio::sync::watch::channel(0).0,
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

    /// Marks traveller `id` as changed by `cause` (moved, sharing or deleted) at `now_ms`.
    pub(super) fn mark(&self, id: &str, cause: Cause, now_ms: i64) {
        let deleted = cause == Cause::Deleted;
        let mut backlog = self.backlog.lock();
        backlog.taken += 1;
        let number = backlog.taken;
        match backlog.marked.get_mut(id) {
            Some(marked) if deleted => {
                // What came before the delete ended with it.
                marked.deleted = true;
                marked.cause = Cause::Moved;
                marked.now_ms = marked.now_ms.max(now_ms);
            }
            Some(marked) => {
                marked.cause = marked.cause.max(cause);
                marked.now_ms = marked.now_ms.max(now_ms);
            }
            None => {
                let id = TravellerId::from(id);
                backlog.marked.insert(
                    id.clone(),
                    Marked {
                        cause: if deleted { Cause::Moved } else { cause },
                        deleted,
                        now_ms,
                    },
                );
                backlog.order.push_back((id, number));
            }
        }
        drop(backlog);
        self.wake.notify_one();
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
        // A traveller taken out of turn ([`Judging::take_traveller`]) left its place.
        while let Some((id, number)) = backlog.order.pop_front() {
            if let Some(marked) = backlog.marked.remove(&id) {
                return Some((id, marked, number));
            }
        }
        None
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
        self.judged
            .send_modify(|judged| *judged = (*judged).max(upto.max(number)));
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
    fn marks_coalesce_per_traveller_in_the_order_first_marked_with_the_strongest_cause() {
        let judging = Judging::default();
        judging.mark("a", Cause::Moved, 1);
        judging.mark("b", Cause::Moved, 2);
        judging.mark("a", Cause::Sharing, 3);
        judging.mark("a", Cause::Moved, 4);
        judging.mark("c", Cause::Sharing, 5);
        judging.mark("c", Cause::Deleted, 6);
        judging.mark("c", Cause::Moved, 7);
        let (a, marked, number) = judging.take().expect("a");
        assert_eq!((a.as_str(), number), ("a", 1));
        assert_eq!(
            marked,
            Marked {
                cause: Cause::Sharing,
                deleted: false,
                now_ms: 4
            }
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
            (c.as_str(), marked.deleted, marked.cause),
            ("c", true, Cause::Moved),
            "deleted, then moved again: the sharing change before the delete is gone with it"
        );
        judging.done(number);
        assert_eq!(*judging.judged.borrow(), 7);
        judging.wait_for_work(Duration::ZERO);
        assert!(judging.take().is_none());
    }
}
