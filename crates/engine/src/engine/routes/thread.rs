//! The route thread: what it does when woken (writes waiting points as pieces, settles
//! pieces into trips' chunks, compacts the file when that pays), and how it tells the end
//! of a refusal episode ([`super::Routes::behind`]). The module above says when each
//! happens.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::trims::MANY_NARROWINGS;
use super::{
    Inner, MAX_FRESH_PIECES, MAX_PENDING, NAP, PIECE_EVERY, SETTLE_PART, SETTLE_PIECES,
    SETTLE_PIECES_WAITED, SETTLE_WAIT, WAKE_AT, compaction,
};

/// A pause after a trim that [`Inner::trim_all_now`] waits out before the next trim, rather
/// than leave it to a later round.
const SHORT_PAUSE: Duration = Duration::from_millis(2);

/// Whether `pieces` fresh pieces, the oldest of them there for `waited`, are due to be
/// settled: [`SETTLE_PIECES`] at once, [`SETTLE_PIECES_WAITED`] once they have waited
/// [`SETTLE_WAIT`], and any when writes pause.
fn settle_due(pieces: u64, waited: Duration, paused: bool) -> bool {
    pieces >= SETTLE_PIECES
        || (pieces >= SETTLE_PIECES_WAITED && waited >= SETTLE_WAIT)
        || (paused && pieces > 0)
}

impl Inner {
    /// Compacts the store's file when the policy says it pays ([`compaction`]), under the
    /// store's write lock: called with no fresh piece left, with the points filed a second
    /// lately.
    fn compact_if_due(&self, rate: f64) {
        let before = match self.store().read().file_bytes() {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(error = %e, "route store: its file's length not read");
                return;
            }
        };
        self.file_bytes.store(before, Ordering::Relaxed);
        let writes = compaction::Writes {
            pending: self.pending_points.load(Ordering::Relaxed),
            rate,
            bound: MAX_PENDING,
        };
        if !self.compaction.lock().due(before, Instant::now(), writes) {
            return;
        }
        let started = Instant::now();
        let compacted = {
            // Not while a route is part rewritten, by a rewrite under way or one a failed
            // write left: compacting makes what the file holds durable.
            let mut storing = self.lock_storing();
            if !self.routes_whole(&mut storing) {
                return;
            }
            self.store().write().compact()
        };
        let after = self.store().read().file_bytes().unwrap_or(before);
        self.compaction.lock().done(after, Instant::now());
        self.file_bytes.store(after, Ordering::Relaxed);
        match compacted {
            Ok(()) => {
                self.compactions.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    before,
                    after,
                    millis = started.elapsed().as_millis() as u64,
                    "route store compacted"
                );
            }
            Err(e) => tracing::warn!(error = %e, "route store: not compacted"),
        }
    }

    /// Runs the narrowings' trims that wait, one trip at a time, so that readers and
    /// writers of pieces get in between, the trip trimmed longest ago first, until the
    /// route thread's pause after a trim ([`Inner::trim_paced`]) says to stop: a short
    /// pause (after a trim that cut nothing settled, the usual one) is waited out here, a
    /// longer one by the thread's nap. A trip with many narrowings waiting goes at once,
    /// pause or not ([`MANY_NARROWINGS`]), so that it does not reach the bound past which a
    /// narrowing trims on the write path.
    pub(super) fn trim_all_now(&self) {
        let (urgent, trips) = {
            let trims = self.trims.lock();
            let mut pacing = self.trim_pacing.lock();
            pacing.forget_lately(&trims);
            let urgent: Vec<Box<str>> = trims
                .iter()
                .filter(|(_, narrowings)| narrowings.len() >= MANY_NARROWINGS)
                .map(|(trip, _)| trip.clone())
                .collect();
            (urgent, pacing.longest_ago_first(trims.keys()))
        };
        let trips: Vec<Box<str>> = trips.into_iter().filter(|t| !urgent.contains(t)).collect();
        for trip in urgent {
            let mut storing = self.lock_storing();
            self.trim_paced(trip, &mut storing);
        }
        // Each once: a trim that failed waits again, for a later round.
        for trip in trips {
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            let left = self.trim_pacing.lock().left();
            if left > SHORT_PAUSE {
                return;
            }
            std::thread::sleep(left);
            let mut storing = self.lock_storing();
            self.trim_paced(trip, &mut storing);
        }
    }

    /// Settles every fresh piece written so far, a part at a time, writing waiting points
    /// as new pieces between parts when they pile up.
    pub(super) fn settle(&self) {
        let started = self.store().read().start_settling();
        let mut settling = match started {
            Ok(Some(settling)) => settling,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "route store: fresh pieces not settled");
                return;
            }
        };
        loop {
            let done = {
                let mut storing = self.lock_storing();
                // Narrowed trips trimmed before any of their later points join the chunks.
                // No settling while a route is part rewritten (by a reader's trim under
                // way, or one a failed write left): a settling's commits are made durable,
                // the part-written route with them.
                self.trim_before_settling(settling.upto(), &mut storing);
                if !self.routes_whole(&mut storing) {
                    return;
                }
                let done = self.store().read().settle_some(&mut settling, SETTLE_PART);
                if matches!(done, Ok(true)) {
                    // Under `storing`, so that no piece written meanwhile goes uncounted.
                    self.count_fresh_pieces();
                }
                done
            };
            match done {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    self.failed.store(true, Ordering::Release);
                    tracing::error!(error = %e, "route store: fresh pieces not settled; they will be replayed from the log at the next start");
                    return;
                }
            }
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            if self.pending_points.load(Ordering::Relaxed) >= WAKE_AT {
                self.store_pending();
            }
        }
    }
}

/// The route thread: writes what waits as pieces and settles them (see the module's
/// doc); ends with its engine.
pub(super) fn run(inner: Weak<Inner>) {
    let mut last_piece = Instant::now();
    let mut seen_pushes = 0;
    // When a round last saw the pushes change.
    let mut pushes_seen_at = Instant::now();
    // When the last round began, and the points pushed by then: the write rate since.
    let mut round = (Instant::now(), 0u64);
    // Since when fresh pieces have waited (about: the first round that found them, or the
    // start of the settling that left them).
    let mut waiting_since: Option<Instant> = None;
    while let Some(inner) = inner.upgrade() {
        {
            // A nap, or less while trims wait for the end of the pause after one (not
            // none: trims that wait with no pause left have failed, and wait a nap).
            let left = match inner.trims_waiting.load(Ordering::SeqCst) {
                0 => Duration::ZERO,
                _ => inner.trim_pacing.lock().left(),
            };
            let nap = if left.is_zero() { NAP } else { left.min(NAP) };
            let mut awake = inner.awake.lock();
            if !*awake && !inner.closed.load(Ordering::Acquire) {
                inner.wake.wait_for(&mut awake, nap);
            }
            *awake = false;
        }
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        // Writes paused: no push for a nap. Not "none since the last round": a round woken
        // by something else (each narrowing wakes it) would take a busy store for a paused
        // one, and write a piece and settle it after every narrowing.
        let pushes = inner.pushes.load(Ordering::Relaxed);
        if pushes != seen_pushes {
            seen_pushes = pushes;
            pushes_seen_at = Instant::now();
        }
        let paused = pushes_seen_at.elapsed() >= NAP;
        if inner.trims_waiting.load(Ordering::SeqCst) > 0 {
            inner.trim_all_now();
        }
        let pending = inner.pending_points.load(Ordering::Relaxed);
        if pending >= WAKE_AT || (pending > 0 && (paused || last_piece.elapsed() >= PIECE_EVERY)) {
            inner.store_pending();
            last_piece = Instant::now();
        }
        let fresh = inner.store().read().fresh_pieces();
        let this_round = (Instant::now(), inner.pushed_points.load(Ordering::Relaxed));
        if let Ok(pieces) = fresh {
            if pieces == 0 {
                waiting_since = None;
            } else if waiting_since.is_none() {
                waiting_since = Some(this_round.0);
            }
        }
        let waited = waiting_since.map_or(Duration::ZERO, |since| since.elapsed());
        match fresh {
            Ok(pieces) if settle_due(pieces, waited, paused) => {
                let started = Instant::now();
                inner.settle();
                let fresh = inner.fresh_pieces.load(Ordering::SeqCst);
                // Pieces written meanwhile are younger than the settling.
                waiting_since = (fresh > 0).then_some(started);
                if fresh < MAX_FRESH_PIECES && inner.refusing.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        fresh_pieces = fresh,
                        refused = inner.refused.load(Ordering::Relaxed),
                        "route store caught up: positions on trips are taken again"
                    );
                }
                if inner.fresh_pieces.load(Ordering::SeqCst) == 0
                    && !inner.closed.load(Ordering::Acquire)
                {
                    let points = inner.pushed_points.load(Ordering::Relaxed);
                    let secs = round.0.elapsed().as_secs_f64().max(1e-3);
                    inner.compact_if_due(points.saturating_sub(round.1) as f64 / secs);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "route store: its fresh pieces not read"),
        }
        round = this_round;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_settle_at_once_past_the_most_after_a_wait_past_the_least_and_when_writes_pause() {
        let (brief, long) = (Duration::from_secs(1), SETTLE_WAIT);
        // A heavy load: many pieces soon.
        assert!(settle_due(SETTLE_PIECES, brief, false));
        assert!(!settle_due(SETTLE_PIECES - 1, brief, false));
        // A light one: fewer, after the wait.
        assert!(!settle_due(SETTLE_PIECES_WAITED, long - brief, false));
        assert!(settle_due(SETTLE_PIECES_WAITED, long, false));
        assert!(!settle_due(SETTLE_PIECES_WAITED - 1, long * 10, false));
        // Writes paused: whatever waits.
        assert!(settle_due(1, Duration::ZERO, true));
        assert!(!settle_due(0, long, true));
    }
}
