//! [`Routes`]: the route store in the engine, with the points waiting to reach it, and who
//! is watching which route.
//!
//! Positions join their trips' routes as their change is applied, and reach the store's
//! file a little later, in three steps:
//! - the write path copies each point, with its trip's id, into one buffer in memory
//!   ([`PendingPoints`]);
//! - the route thread writes what waits as a fresh piece ([`RouteStore::add_fresh`]) when
//!   [`WAKE_AT`] points wait, when the oldest has waited [`PIECE_EVERY`], or when writes
//!   pause. Past [`MAX_PENDING`] points a writer writes a piece itself before it goes on:
//!   the bound, and the back pressure;
//! - the route thread settles the pieces into each trip's chunks when [`SETTLE_PIECES`]
//!   wait, or when writes pause, in parts of [`SETTLE_PART`] trips a piece, writing new
//!   pieces between parts when points pile up ([`RouteStore::settle_some`]);
//! - after a settling, the route thread compacts the store's file when it has grown enough
//!   to pay for the pause ([`compaction`]).
//!
//! Settling touches each trip's chunks once for all its points in the pieces, where storing
//! each batch's points straight into the chunks touched them once a batch: measured with a
//! million travellers, all on trips, reporting in batches of 1,000 (`scripts/trips-bench.sh`),
//! the batches' rate with trips went from 0.18 of the rate without to the figure in
//! `docs/performance.md`.
//!
//! Nothing is lost meanwhile: the log holds every change, and the store claims to hold
//! the log up to a sequence only after writing everything pending ([`Routes::make_durable`],
//! at each snapshot). A reader of a route sees every point applied before it: the trip's
//! pending and fresh points are settled first ([`Routes::read_trip`]), unless nothing
//! waits at all, when it reads without waiting for the route thread.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::EngineError;
use crate::routes::{RoutePoint, RouteStore};

mod compaction;
mod pending;

use pending::ByTrip;
pub(crate) use pending::PendingPoints;

/// The file of the route store in a data directory.
pub const ROUTES_FILE: &str = "routes.redb";

/// Points waiting that wake the route thread to write a piece.
const WAKE_AT: usize = 250_000;
/// The most points a fresh piece holds (one transaction; readers get in between).
const PIECE: usize = 250_000;
/// The most points that may wait: a writer that finds more writes a piece itself.
const MAX_PENDING: usize = 2_000_000;
/// The longest points wait in memory while writes go on, so that slow writes do not make
/// many small pieces.
const PIECE_EVERY: Duration = Duration::from_secs(10);
/// Fresh pieces that make the route thread settle them: each reader of a trip reads a
/// blob of each, and settling more at once touches each trip's chunks less often.
const SETTLE_PIECES: u64 = 32;
/// Trips a piece settled in one transaction (readers and new pieces get in between).
const SETTLE_PART: usize = 4_096;
/// The longest the route thread sleeps.
const NAP: Duration = Duration::from_millis(500);

/// The store and what waits for it, shared with the route thread.
#[derive(Default)]
struct Inner {
    store: OnceLock<RwLock<RouteStore>>,
    /// Holds an in-memory engine's store.
    temp: OnceLock<tempfile::TempDir>,
    /// Set when a write to the store failed: it is behind the log until the next start,
    /// so it must not claim to hold the log (the log is then kept for the replay).
    failed: AtomicBool,
    /// Points not yet stored, in the order they arrived.
    pending: Mutex<PendingPoints>,
    /// An empty buffer with room, swapped for `pending` when the route thread takes every
    /// point waiting, so that writers fill grown memory instead of growing a fresh buffer
    /// from nothing (its copies and the kernel zeroing its fresh pages showed on the write
    /// path in `perf` of the trips workload).
    spare: Mutex<PendingPoints>,
    /// The points being written, grouped by trip (filled again for each piece, under
    /// `storing`).
    grouped: Mutex<ByTrip>,
    /// How many points `pending` holds (changed under its lock).
    pending_points: AtomicUsize,
    /// How many fresh pieces the store holds, as last counted after writing or settling
    /// them: with `pending_points`, it lets a reader of a trip skip the `storing` lock
    /// when there is nothing to settle.
    fresh_pieces: AtomicU64,
    /// How many pushes there have been (the route thread sees a pause by it).
    pushes: AtomicU64,
    /// How many points have been pushed (the route thread's measure of the write rate).
    pushed_points: AtomicU64,
    /// Held while points go from `pending` into the store, so that each trip's points
    /// reach it in the order they arrived.
    storing: Mutex<()>,
    /// Wakes the route thread.
    wake: Condvar,
    awake: Mutex<bool>,
    /// Set when the engine goes: the route thread ends.
    closed: AtomicBool,
    /// When to compact the store's file.
    compaction: Mutex<compaction::Compaction>,
    /// The store's file length, as last seen by the route thread.
    file_bytes: AtomicU64,
    /// Compactions done since the start.
    compactions: AtomicU64,
}

/// The route store in the engine.
#[derive(Default)]
pub(super) struct Routes {
    inner: Arc<Inner>,
    /// Set while recovery replays changes the store already holds durably.
    skip: AtomicBool,
    /// The route thread, started with the first point, joined when the engine goes (so that
    /// the store's file is closed when the engine is dropped).
    thread: OnceLock<Mutex<Option<std::thread::JoinHandle<()>>>>,
    /// Each watched trip's counter of changes, for its followers' streams.
    pub(super) watchers: Mutex<HashMap<Arc<str>, tokio::sync::watch::Sender<u64>>>,
}

impl Inner {
    fn store(&self) -> &RwLock<RouteStore> {
        self.store.get_or_init(|| {
            let dir = self.temp.get_or_init(|| {
                tempfile::tempdir().expect("a temporary directory for an in-memory route store")
            });
            RwLock::new(
                RouteStore::open(&dir.path().join(ROUTES_FILE))
                    .expect("a route store in a fresh temporary directory opens"),
            )
        })
    }

    /// Writes `taken` as fresh pieces, grouped by trip (the caller holds `storing`).
    fn write_grouped(&self, taken: &PendingPoints) {
        let mut grouped = self.grouped.lock();
        taken.by_trip(&mut grouped);
        self.write(&grouped);
        grouped.keep_room(2 * WAKE_AT);
    }

    /// Writes trips' waiting points as fresh pieces of about [`PIECE`] points (the caller
    /// holds `storing`).
    fn write(&self, trips: &ByTrip) {
        let mut piece: Vec<(&str, &[RoutePoint])> = Vec::new();
        let mut points = 0;
        let mut left = trips.len();
        for (trip, waiting) in trips.trips() {
            left -= 1;
            points += waiting.len();
            piece.push((trip, waiting));
            if points >= PIECE || left == 0 {
                if let Err(e) = self.store().read().add_fresh_trips(piece.drain(..)) {
                    self.failed.store(true, Ordering::Release);
                    tracing::error!(error = %e, points, "route store: points not stored; they will be replayed from the log at the next start");
                }
                points = 0;
            }
        }
        self.count_fresh_pieces();
    }

    /// Counts the store's fresh pieces again (after writing or settling some).
    fn count_fresh_pieces(&self) {
        match self.store().read().fresh_pieces() {
            Ok(n) => self.fresh_pieces.store(n, Ordering::SeqCst),
            // Unknown: readers take the slow way, which settles whatever there is.
            Err(_) => self.fresh_pieces.store(u64::MAX, Ordering::SeqCst),
        }
    }

    /// Writes every point waiting, as fresh pieces.
    fn store_pending(&self) {
        let _storing = self.storing.lock();
        let spare = std::mem::take(&mut *self.spare.lock());
        let taken = std::mem::replace(&mut *self.pending.lock(), spare);
        self.write_grouped(&taken);
        // After the pieces are counted: a reader that sees no point waiting sees them.
        self.pending_points.fetch_sub(taken.len(), Ordering::SeqCst);
        *self.spare.lock() = taken.emptied(WAKE_AT);
    }

    /// Writes about `points` waiting points, the oldest, as a piece.
    fn store_some(&self, points: usize) {
        let _storing = self.storing.lock();
        let taken = self.pending.lock().take_oldest(points);
        self.write_grouped(&taken);
        self.pending_points.fetch_sub(taken.len(), Ordering::SeqCst);
    }

    /// Settles `trip`'s fresh and waiting points; gives the `storing` lock, held, so that
    /// the caller reads or changes the trip with nothing of it on the way.
    fn store_trip(&self, trip: &str) -> parking_lot::MutexGuard<'_, ()> {
        let storing = self.storing.lock();
        let waiting = self.pending.lock().take_trip(trip);
        if let Err(e) = self.store().read().settle_trip(trip, &waiting) {
            self.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, trip, "route store: a trip's points were not settled; they will be replayed from the log at the next start");
        }
        // Only now that the store holds them: a reader that sees none waiting reads them.
        self.pending_points
            .fetch_sub(waiting.len(), Ordering::SeqCst);
        storing
    }

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
        let compacted = self.store().write().compact();
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

    /// Settles every fresh piece written so far, a part at a time, writing waiting points
    /// as new pieces between parts when they pile up.
    fn settle(&self) {
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
                let _storing = self.storing.lock();
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
fn run(inner: Weak<Inner>) {
    let mut last_piece = Instant::now();
    let mut seen_pushes = 0;
    // When the last round began, and the points pushed by then: the write rate since.
    let mut round = (Instant::now(), 0u64);
    while let Some(inner) = inner.upgrade() {
        {
            let mut awake = inner.awake.lock();
            if !*awake && !inner.closed.load(Ordering::Acquire) {
                inner.wake.wait_for(&mut awake, NAP);
            }
            *awake = false;
        }
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let pushes = inner.pushes.load(Ordering::Relaxed);
        let paused = pushes == seen_pushes;
        seen_pushes = pushes;
        let pending = inner.pending_points.load(Ordering::Relaxed);
        if pending >= WAKE_AT || (pending > 0 && (paused || last_piece.elapsed() >= PIECE_EVERY)) {
            inner.store_pending();
            last_piece = Instant::now();
        }
        let fresh = inner.store().read().fresh_pieces();
        let this_round = (Instant::now(), inner.pushed_points.load(Ordering::Relaxed));
        match fresh {
            Ok(pieces) if pieces >= SETTLE_PIECES || (paused && pieces > 0) => {
                inner.settle();
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

impl Drop for Routes {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Release);
        *self.inner.awake.lock() = true;
        self.inner.wake.notify_one();
        if let Some(handle) = self.thread.get().and_then(|t| t.lock().take()) {
            let _ = handle.join();
        }
    }
}

impl Routes {
    /// Opens the store at `path`; gives the log sequence it holds durably.
    pub(super) fn open(&self, path: &Path) -> Result<u64, EngineError> {
        let store = RouteStore::open(path)?;
        let applied = store.applied_seq()?;
        let fresh = store.fresh_pieces()?;
        if let Ok(bytes) = store.file_bytes() {
            self.inner.file_bytes.store(bytes, Ordering::Relaxed);
            *self.inner.compaction.lock() = compaction::Compaction::opened(bytes);
        }
        let _ = self.inner.store.set(RwLock::new(store));
        self.inner.fresh_pieces.store(fresh, Ordering::SeqCst);
        Ok(applied)
    }

    /// Files points of their trips for the store; wakes whoever watches those trips.
    pub(super) fn push(&self, points: &PendingPoints) {
        self.thread.get_or_init(|| {
            let inner = Arc::downgrade(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("proxima-routes".into())
                .spawn(move || run(inner))
                .inspect_err(|e| tracing::error!(error = %e, "no route thread: points are stored as writers pass the bound"))
                .ok();
            Mutex::new(spawned)
        });
        let count = points.len();
        self.inner.pushes.fetch_add(1, Ordering::Relaxed);
        self.inner
            .pushed_points
            .fetch_add(count as u64, Ordering::Relaxed);
        let waiting = {
            let mut pending = self.inner.pending.lock();
            pending.append(points);
            // Under the lock, before the change is applied: a reader that asks after sees
            // the points waiting.
            self.inner.pending_points.fetch_add(count, Ordering::SeqCst) + count
        };
        {
            let watchers = self.watchers.lock();
            if !watchers.is_empty() {
                let mut last: Option<&str> = None;
                for (trip, _) in points.iter() {
                    if last != Some(trip)
                        && let Some(tx) = watchers.get(trip)
                    {
                        tx.send_modify(|n| *n += 1);
                    }
                    last = Some(trip);
                }
            }
        }
        if waiting >= MAX_PENDING {
            // Past the bound: this writer writes a piece before it goes on (the route
            // thread cannot keep up; writers wait their turn, each for one piece).
            self.inner.store_some(PIECE);
        } else if waiting >= WAKE_AT {
            *self.inner.awake.lock() = true;
            self.inner.wake.notify_one();
        }
    }

    /// Settles `trip`'s fresh and waiting points into its chunks now, on the caller's
    /// thread (a bulk writer's back pressure, outside every lock of the write path).
    pub(super) fn settle_trip(&self, trip: &str) {
        drop(self.inner.store_trip(trip));
    }

    /// The store, with every point of `trip` applied so far stored (a reader's view of the
    /// trip holds every point applied before it asked).
    pub(super) fn read_trip(&self, trip: &str) -> parking_lot::RwLockReadGuard<'_, RouteStore> {
        // Nothing waiting and no fresh piece (in this order: points leave `pending` only
        // after the pieces holding them are counted): the chunks hold every point, and the
        // reader need not wait for a settling under way.
        let quiet = self.inner.pending_points.load(Ordering::SeqCst) == 0
            && self.inner.fresh_pieces.load(Ordering::SeqCst) == 0;
        if !quiet {
            drop(self.inner.store_trip(trip));
        }
        self.inner.store().read()
    }

    /// Erases `trip`'s points, waiting and fresh ones included.
    pub(super) fn erase(&self, trip: &str) {
        let _storing = self.inner.storing.lock();
        let waiting = self.inner.pending.lock().take_trip(trip);
        if let Err(e) = self.inner.store().read().erase(trip) {
            self.inner.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, trip, "route store: a trip's points were not erased; the erasure will be replayed from the log at the next start");
        }
        self.inner
            .pending_points
            .fetch_sub(waiting.len(), Ordering::SeqCst);
        drop(_storing);
        self.notify(trip);
    }

    /// Keeps only `trip`'s points with `from <= ts <= to`.
    pub(super) fn retain_window(&self, trip: &str, from: i64, to: i64) {
        let _storing = self.inner.store_trip(trip);
        if let Err(e) = self.inner.store().read().retain_window(trip, from, to) {
            self.inner.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, trip, "route store: a narrowed trip's points were not trimmed");
        }
    }

    /// Wakes whoever watches `trip`.
    pub(super) fn notify(&self, trip: &str) {
        if let Some(tx) = self.watchers.lock().get(trip) {
            tx.send_modify(|n| *n += 1);
        }
    }

    /// Stores every waiting point, then makes the store durable as holding the log up to
    /// `seq` (unless a write failed).
    pub(super) fn make_durable(&self, seq: u64) -> Result<(), EngineError> {
        self.inner.store_pending();
        if self.inner.failed.load(Ordering::Acquire) {
            tracing::warn!(
                "route store: behind the log after a failed write; not marking it durable"
            );
            return Ok(());
        }
        let _storing = self.inner.storing.lock();
        Ok(self.inner.store().read().make_durable(seq)?)
    }

    pub(super) fn set_skip(&self, skip: bool) {
        self.skip.store(skip, Ordering::Release);
    }

    pub(super) fn skipping(&self) -> bool {
        self.skip.load(Ordering::Acquire)
    }

    /// Points waiting for the store.
    pub(super) fn pending(&self) -> usize {
        self.inner.pending_points.load(Ordering::Relaxed)
    }

    /// The store's file length as last seen by the route thread, and how many times it was
    /// compacted since the start.
    pub(super) fn file(&self) -> (u64, u64) {
        (
            self.inner.file_bytes.load(Ordering::Relaxed),
            self.inner.compactions.load(Ordering::Relaxed),
        )
    }
}
