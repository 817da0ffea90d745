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
//! however large the store grows. And only when the writes would not fill the waiting
//! points' bound meanwhile (twice the points expected at the latest rate, over the pause
//! expected at [`BYTES_PER_S`]): a writer past the bound would wait for the compaction
//! on a request worker. Under a load that heavy it waits for the load to ease.

use std::time::{Duration, Instant};

/// The least the file must have grown since the last compaction.
pub(super) const MIN_GROWTH: u64 = 256 << 20;
/// The least time between two compactions.
pub(super) const GAP: Duration = Duration::from_secs(10 * 60);
/// How fast a compaction goes through the file, at the least, for the pause's estimate:
/// measured 0.57–0.69 GB/s (through the server, 1.14 GB in 1.9–2.0 s and 570 MB in
/// 0.8–1.9 s, `scripts/route-disk.sh`; in process, 1.1 GB in 1.6 s).
pub(super) const BYTES_PER_S: f64 = 500e6;

/// What the writes are doing when a compaction is considered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Writes {
    /// Points waiting for the store.
    pub(super) pending: usize,
    /// Points filed a second, lately.
    pub(super) rate: f64,
    /// The most points that may wait.
    pub(super) bound: usize,
}

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

    /// Whether a file of `bytes` should be compacted at `now`, with `writes` going on.
    pub(super) fn due(&self, bytes: u64, now: Instant, writes: Writes) -> bool {
        let grown = bytes.saturating_sub(self.baseline);
        let pause_s = bytes as f64 / BYTES_PER_S;
        let filled = writes.pending as f64 + 2.0 * writes.rate * pause_s;
        grown >= MIN_GROWTH
            && bytes >= self.baseline.saturating_mul(2)
            && self
                .last
                .is_none_or(|last| now.saturating_duration_since(last) >= GAP)
            && filled < writes.bound as f64
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
    const QUIET: Writes = Writes {
        pending: 0,
        rate: 0.0,
        bound: 2_000_000,
    };

    #[test]
    fn compacts_a_file_doubled_by_enough_and_not_again_within_the_gap() {
        let start = Instant::now();
        let mut policy = Compaction::opened(300 * MIB);
        assert!(!policy.due(300 * MIB, start, QUIET));
        // Grown by half: not yet.
        assert!(!policy.due(450 * MIB, start, QUIET));
        // Doubled, by more than the least growth: due.
        assert!(policy.due(600 * MIB, start, QUIET));
        policy.done(200 * MIB, start);
        // Doubled again, but within the gap.
        assert!(!policy.due(900 * MIB, start + GAP / 2, QUIET));
        assert!(policy.due(900 * MIB, start + GAP, QUIET));
    }

    #[test]
    fn a_small_file_is_left_alone_however_much_it_grew() {
        let start = Instant::now();
        // A new file.
        let policy = Compaction::default();
        assert!(!policy.due(MIB, start, QUIET));
        // A hundred times larger, but by less than the least growth.
        assert!(!policy.due(100 * MIB, start, QUIET));
        assert!(!policy.due(MIN_GROWTH - MIB, start, QUIET));
        assert!(policy.due(MIN_GROWTH, start, QUIET));
    }

    #[test]
    fn a_compaction_waits_while_writes_would_fill_the_bound_meanwhile() {
        let start = Instant::now();
        let policy = Compaction::default();
        let gb = 1_000_000_000;
        // 2 s expected for 1 GB: 100,000 points a second fill 400,000 of the bound.
        let light = Writes {
            rate: 100_000.0,
            ..QUIET
        };
        assert!(policy.due(gb, start, light));
        // 500,000 a second would fill 2,000,000.
        let heavy = Writes {
            rate: 500_000.0,
            ..QUIET
        };
        assert!(!policy.due(gb, start, heavy));
        // Points already waiting count too.
        let backlog = Writes {
            pending: 1_700_000,
            ..light
        };
        assert!(!policy.due(gb, start, backlog));
    }
}
