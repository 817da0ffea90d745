//! [`FiguresCache`]: the figures of trips read lately, so that a follower's page polling
//! `GET /v1/trips/{id}` does not open a read transaction of the store each time.
//!
//! A read transaction, a table and a B-tree lookup, then decoding the figures, cost the
//! trip's answer about a fifth of its time against a traveller's lookup (`wrk` on one trip
//! and on its traveller, `scripts/trips-bench.sh`).
//!
//! Kept right without knowing which trips a commit changed: a count of the store's commits
//! that may change figures is bumped after each of them, and an entry is good only while
//! the count is the one read *before* its figures were read from the store. An entry read
//! across a commit is thrown away at its next lookup; a commit is counted before the
//! change that made it returns, so a reader that asks after sees the new figures. Under
//! steady writes the cache is mostly cold; on a quiet trip, or between settlings, it
//! answers.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::fast::RandomState;
use parking_lot::Mutex;

use crate::routes::TripFigures;

/// Slots: trips cached at once (each a few hundred bytes at most).
const SLOTS: usize = 4096;

struct Cached {
    generation: u64,
    trip: Box<str>,
    figures: Option<TripFigures>,
}

/// Trips' figures as last read, one slot a hash of the trip's id.
pub(super) struct FiguresCache {
    generation: AtomicU64,
    hasher: RandomState,
    slots: Box<[Mutex<Option<Cached>>]>,
}

impl Default for FiguresCache {
    fn default() -> Self {
        Self {
            generation: AtomicU64::new(0),
            hasher: RandomState::default(),
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }
}

impl FiguresCache {
    fn slot(&self, trip: &str) -> &Mutex<Option<Cached>> {
        &self.slots[self.hasher.hash_one(trip) as usize % SLOTS]
    }

    /// `trip`'s figures from the cache, or read by `read` and kept.
    pub(super) fn get_or_read<E>(
        &self,
        trip: &str,
        read: impl FnOnce() -> Result<Option<TripFigures>, E>,
    ) -> Result<Option<TripFigures>, E> {
        let generation = self.generation.load(Ordering::SeqCst);
        let slot = self.slot(trip);
        if let Some(cached) = &*slot.lock()
            && cached.generation == generation
            && &*cached.trip == trip
        {
            return Ok(cached.figures.clone());
        }
        let figures = read()?;
        *slot.lock() = Some(Cached {
            generation,
            trip: trip.into(),
            figures: figures.clone(),
        });
        Ok(figures)
    }

    /// Called after every commit that may have changed some trip's figures.
    pub(super) fn committed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(points: u64) -> Option<TripFigures> {
        let mut figures = TripFigures::default();
        figures.points = points;
        Some(figures)
    }

    #[test]
    fn figures_are_read_once_until_a_commit() {
        let cache = FiguresCache::default();
        let mut reads = 0;
        let mut read = |n| {
            reads += 1;
            Ok::<_, ()>(figures(n))
        };
        assert_eq!(cache.get_or_read("a", || read(1)), Ok(figures(1)));
        assert_eq!(cache.get_or_read("a", || read(2)), Ok(figures(1)));
        cache.committed();
        assert_eq!(cache.get_or_read("a", || read(3)), Ok(figures(3)));
        assert_eq!(reads, 2);
    }

    #[test]
    fn figures_read_across_a_commit_are_not_kept() {
        let cache = FiguresCache::default();
        // A commit lands while the store is being read: what was read may be older.
        let stale = cache.get_or_read("a", || {
            cache.committed();
            Ok::<_, ()>(figures(1))
        });
        assert_eq!(stale, Ok(figures(1)));
        assert_eq!(
            cache.get_or_read("a", || Ok::<_, ()>(figures(2))),
            Ok(figures(2))
        );
    }

    #[test]
    fn trips_sharing_a_slot_each_get_their_own() {
        let cache = FiguresCache::default();
        for i in 0..(SLOTS * 3) as u64 {
            let trip = format!("t{i}");
            assert_eq!(
                cache.get_or_read(&trip, || Ok::<_, ()>(figures(i))),
                Ok(figures(i))
            );
        }
        for i in 0..(SLOTS * 3) as u64 {
            let trip = format!("t{i}");
            assert_eq!(
                cache.get_or_read(&trip, || Ok::<_, ()>(figures(i))),
                Ok(figures(i))
            );
        }
    }
}
