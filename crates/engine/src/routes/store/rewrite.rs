//! [`Rewrite`]: a trip's settled points cut to a window (a narrowed trip), written back in
//! steps of a bounded number of points, one transaction each, so that whoever holds the
//! store's writer between steps (other trips' readers settling them, the route thread
//! writing pieces) waits for one step, not for the route.
//!
//! Cut in one transaction, a route of a million points held the store's writer for about
//! 240 ms (read, erased, merged back with its figures worked out again), and an owner
//! narrowing such a trip one point at a time held every other trip's readers that long,
//! back to back. A step of [`REWRITE_STEP`] points is about a millisecond.
//!
//! Between the first step and the last, the trip's chunks hold only part of its points:
//! the caller keeps every reader and settler of that trip out until [`Rewrite::step`]
//! says it is done (the engine's route store does, `engine::routes`), and makes the store
//! durable only between rewrites, so that a crash finds the route as it was before, whose
//! narrowing the log then replays.

use redb::Durability;

use super::merge::Tables;
use super::{RouteStore, RouteStoreError, erase_settled};
use crate::routes::RoutePoint;

/// Points written back in one step. A route of a million points takes 244 steps, 0.85 ms
/// each on average, the first (which erases the route) about 9 ms. Another trip's reader,
/// while an owner narrowed such a trip back to back, waited 1.2 ms at p50 with steps of
/// 4,096 points and 2.5 ms with steps of 16,384 (`scripts/narrow-stall.sh`).
pub const REWRITE_STEP: usize = 4_096;

/// A trip's settled points cut to a window, being written back ([`RouteStore::rewrite`]).
#[derive(Debug)]
pub struct Rewrite {
    trip: String,
    /// The points kept, in `ts` order.
    kept: Vec<RoutePoint>,
    /// How many of `kept` are written back; `None` until the first step erased the route.
    written: Option<usize>,
}

impl Rewrite {
    /// Writes back up to `points` more of the kept points, in one transaction (the first
    /// erases the trip's settled points, figures and cells first). Gives whether every
    /// kept point is written back: until then the trip's chunks hold part of its route.
    pub fn step(&mut self, store: &RouteStore, points: usize) -> Result<bool, RouteStoreError> {
        let from = self.written.unwrap_or(0);
        let to = from.saturating_add(points.max(1)).min(self.kept.len());
        let mut txn = store.db.begin_write()?;
        txn.set_durability(Durability::None)?;
        if self.written.is_none() {
            erase_settled(&txn, &self.trip)?;
        }
        Tables::open(&txn)?.merge(&self.trip, &self.kept[from..to])?;
        txn.commit()?;
        store.figures_cache.committed();
        self.written = Some(to);
        Ok(to == self.kept.len())
    }

    /// Whether a step has been taken: the trip's settled points were erased, and until
    /// the last step only this holds the rest.
    pub fn started(&self) -> bool {
        self.written.is_some()
    }

    /// The points it keeps.
    pub fn kept(&self) -> usize {
        self.kept.len()
    }
}

impl RouteStore {
    /// Starts cutting `trip`'s settled points to those with `from <= ts <= to` (a trip
    /// whose times were narrowed): reads the points kept, or gives `None` when every
    /// settled point lies in the window already (the usual narrowing, a running trip ended
    /// now), which needs no read. Its fresh points are left as they are
    /// ([`RouteStore::narrow_fresh`] narrows those). Run the steps with [`Rewrite::step`].
    pub fn rewrite(
        &self,
        trip: &str,
        from: i64,
        to: i64,
    ) -> Result<Option<Rewrite>, RouteStoreError> {
        if self.settled_within(trip, from, to)? {
            return Ok(None);
        }
        let (kept, _) = self.read(trip, from, to, None, usize::MAX)?;
        Ok(Some(Rewrite {
            trip: trip.to_string(),
            kept,
            written: None,
        }))
    }
}
