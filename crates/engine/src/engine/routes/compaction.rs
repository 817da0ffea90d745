//! When the route thread compacts the route store ([`Compaction::due`]).
//!
//! `redb` never shrinks its file by itself: pages freed by copy-on-write commits and by
//! settled fresh pieces are kept for later commits, and pages split by growing chunks stay
//! part full. The file is therefore its high-water mark: measured with the `route_pieces`
//! example (250,000 trips, three rounds of 8M points settled), 47.5 bytes a point on disk
//! for 15.3 allocated, and 11.1 after [`RouteStore::compact`](crate::routes::RouteStore::compact)
//! (in 1.6 s for a 1.1 GB file). Compacting holds the store's write lock: readers of
//! routes wait, and so do writers once [`MAX_PENDING`](super::MAX_PENDING) points wait.
//! So it runs only when it pays: after a settling leaves no fresh piece, when the file has
//! at least doubled since the last compaction (or the start) by at least [`MIN_GROWTH`],
//! and at most once per [`GAP`]. Doubling makes its cost a constant share of the writes
//! however large the store grows.

use std::time::{Duration, Instant};

/// The least the file must have grown since the last compaction.
pub(super) const MIN_GROWTH: u64 = 256 << 20;
/// The least time between two compactions.
pub(super) const GAP: Duration = Duration::from_secs(10 * 60);

/// The state of the compaction policy.
#[derive(Debug, Default)]
pub(super) struct Compaction {
    /// The file's length after the last compaction, or when the store was opened (0 for
    /// a new file).
    baseline: u64,
    /// When the last compaction ended.
    last: Option<Instant>,
}

impl Compaction {
    /// The policy for a store whose file was `bytes` long when opened.
    pub(super) fn opened(bytes: u64) -> Self {
        Self {
            baseline: bytes,
            last: None,
        }
    }

    /// Whether a file of `bytes` should be compacted at `now`.
    pub(super) fn due(&self, bytes: u64, now: Instant) -> bool {
        let grown = bytes.saturating_sub(self.baseline);
        grown >= MIN_GROWTH
            && bytes >= self.baseline.saturating_mul(2)
            && self
                .last
                .is_none_or(|last| now.saturating_duration_since(last) >= GAP)
    }

    /// A compaction ended at `now`, leaving a file of `bytes`.
    pub(super) fn done(&mut self, bytes: u64, now: Instant) {
        self.baseline = bytes;
        self.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn compacts_a_file_doubled_by_enough_and_not_again_within_the_gap() {
        let start = Instant::now();
        let mut policy = Compaction::opened(300 * MIB);
        assert!(!policy.due(300 * MIB, start));
        // Grown by half: not yet.
        assert!(!policy.due(450 * MIB, start));
        // Doubled, by more than the least growth: due.
        assert!(policy.due(600 * MIB, start));
        policy.done(200 * MIB, start);
        // Doubled again, but within the gap.
        assert!(!policy.due(900 * MIB, start + GAP / 2));
        assert!(policy.due(900 * MIB, start + GAP));
    }

    #[test]
    fn a_small_file_is_left_alone_however_much_it_grew() {
        let start = Instant::now();
        // A new file.
        let policy = Compaction::default();
        assert!(!policy.due(MIB, start));
        // A hundred times larger, but by less than the least growth.
        assert!(!policy.due(100 * MIB, start));
        assert!(!policy.due(MIN_GROWTH - MIB, start));
        assert!(policy.due(MIN_GROWTH, start));
    }
}
