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
//!   wait, when [`SETTLE_PIECES_WAITED`] have waited [`SETTLE_WAIT`], or when writes
//!   pause, in parts of [`SETTLE_PART`] trips a piece, writing new pieces between parts
//!   when points pile up ([`RouteStore::settle_some`]);
//! - after a settling, the route thread compacts the store's file when it has grown enough
//!   to pay for the pause ([`compaction`]).
//!
//! Fresh pieces have a bound too, [`MAX_FRESH_PIECES`]: when writes arrive faster than the
//! route thread settles them for long, pieces written between the parts of a settling pile
//! up (on the 2-core machine, trips at 680,000 points a second for 30 s left a 2.28 GB
//! file), and every reader of a trip reads a blob of each. Past the bound the store is
//! [`Routes::behind`]: position writes that hold trip points are refused before they are
//! logged (the edge answers 503 with `Retry-After`), so that the writers wait for the
//! route thread instead of the disk and the readers paying for it. What cannot be refused
//! (recovery, a cluster node applying its stream) still goes through.
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
//! waits at all, or the trip is watched and nothing was added to it since a reader last
//! settled it (its followers, woken by the same points, settle them once), when it reads
//! without waiting for the route thread.
//!
//! A narrowed trip's points outside its new window are trimmed off the write path, by the
//! route thread or the trip's next reader, and before the store is next made durable
//! ([`Routes::narrow`]); a reader never sees them once the narrowing is applied.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use super::EngineError;
use crate::routes::{RouteStore, RouteStoreError};

mod compaction;
mod pending;
#[cfg(test)]
mod tests;
mod thread;
mod trims;

use pending::ByTrip;
pub(crate) use pending::PendingPoints;
use trims::{Narrowing, Storing, StoringGuard};

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
/// Fresh pieces that make the route thread settle them at once. Each reader of a trip
/// reads a blob of each piece, and settling more at once touches each trip's chunks less
/// often: a settling costs a few B-tree descents a trip whatever its points, so with a
/// million trips it pays to wait for more points a trip. 128 pieces (32 million points,
/// 32 a trip) settle at 0.75–0.93 µs a point where 32 (8 a trip) settled at 1.32–1.51
/// (`cargo run --release -p proxima-engine --example route_pieces -- 1000000 250000 128
/// 1024 pieces near`, against `… 32 4096 …`), and the `trips` workload went from 0.37 to
/// 0.59 of the rate without trips over 90 s (`docs/performance.md`). A reader of a trip
/// with points in every piece then reads up to 128 blobs, so the thread waits for them
/// only while they arrive fast: see [`SETTLE_PIECES_WAITED`].
const SETTLE_PIECES: u64 = 128;
/// Fresh pieces that make the route thread settle them once the oldest has waited
/// [`SETTLE_WAIT`]. Under a heavy load 128 full pieces arrive within it, and settle then;
/// at a phone's pace (a million travellers reporting every few minutes, a piece of
/// 100,000 points every 10 s) 32 take five minutes, and settle at 32 as they did before
/// the 128, so that readers read no more blobs where settling less often would save little
/// (the route thread is busy a few percent of the time there).
const SETTLE_PIECES_WAITED: u64 = 32;
/// How long fresh pieces wait before [`SETTLE_PIECES_WAITED`] of them are settled.
const SETTLE_WAIT: Duration = Duration::from_secs(60);
/// Fresh pieces past which the store is behind its writes ([`Routes::behind`]): three
/// settlings' worth, about 96 million points. A settling of [`SETTLE_PIECES`] with a
/// million trips takes tens of seconds, more under load (the writers and the load
/// generator share the cores), and new pieces are written meanwhile; a bound nearer to it
/// would refuse writes under loads the thread keeps up with between settlings.
pub const MAX_FRESH_PIECES: u64 = 3 * SETTLE_PIECES;
/// Trips a piece settled in one transaction (readers and new pieces get in between): a
/// part holds up to this many trips of each of [`SETTLE_PIECES`] pieces, so that a reader
/// waiting for the part being settled waits about 100 ms, as with 4,096 trips of 32 pieces.
const SETTLE_PART: usize = 1_024;
/// How long after a failed start of the route thread it is tried again.
pub(super) const RESPAWN_AFTER: Duration = Duration::from_secs(1);

/// Reads of a trip that a rewrite of a trip in its stripe may overlap, before one that
/// holds `storing` ([`Routes::read_trip`]).
const READ_TRIES: usize = 3;

/// The longest the route thread sleeps.
const NAP: Duration = Duration::from_millis(500);

/// How the route store is set up.
#[derive(Debug, Clone, Copy)]
pub struct RouteConfig {
    /// The most memory `redb` keeps the store's pages in, bytes
    /// ([`crate::routes::DEFAULT_CACHE_BYTES`] by default).
    pub cache_bytes: usize,
}

impl Default for RouteConfig {
    fn default() -> Self {
        Self {
            cache_bytes: crate::routes::DEFAULT_CACHE_BYTES,
        }
    }
}

/// A trip followers watch.
struct Watched {
    /// Counts the trip's changes: each push of its points (after they wait for the store),
    /// each erasure or change of the trip.
    changes: tokio::sync::watch::Sender<u64>,
    /// Counts the changes to who may read the trip or what they may see of it (the trip
    /// put, deleted, started or ended, a follower or link changed, the traveller's zones
    /// changed): every [`Routes::notify`], and none of the pushes of points. A stream
    /// drops what it read under an older count instead of sending it.
    rules: Arc<AtomicU64>,
    /// The count of changes up to which a reader has settled every point of the trip into
    /// its chunks (`None`: none has since the trip was first watched). While the count has
    /// not moved past it, the trip has no point waiting or fresh, so the next reader need
    /// not settle it: each of a trip's followers is woken by the same points, and only the
    /// first has settling to do.
    settled_at: Option<u64>,
}

impl Watched {
    fn new() -> Self {
        Self {
            changes: tokio::sync::watch::channel(0).0,
            rules: Arc::default(),
            settled_at: None,
        }
    }
}

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
    /// reach it in the order they arrived; and the trips being rewritten in steps.
    storing: Mutex<Storing>,
    /// Told when a rewrite of a trip's route ends ([`Storing`]).
    rewritten: Condvar,
    /// Threads waiting for `storing` ([`Inner::lock_storing`]).
    storing_wanted: AtomicUsize,
    /// Rewrites begun since the start, counted in stripes by trip
    /// ([`Inner::rewrites_begun`]).
    begun_stripes: [AtomicU64; 32],
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
    /// Writes refused since the start because the store was behind ([`Routes::behind`]).
    refused: AtomicU64,
    /// Set by the first refusal while behind, cleared by the route thread when it has
    /// caught up: the log tells an episode once, not each refused request.
    refusing: AtomicBool,
    /// The number of the next fresh piece: pieces are numbered as their points are taken
    /// from `pending`, under its lock ([`Inner::number_pieces`]).
    next_piece: AtomicU64,
    /// Narrowed trips whose stored points are still to be trimmed, with their narrowings
    /// since the last trim, oldest first; see [`Routes::narrow`].
    trims: Mutex<HashMap<Box<str>, Vec<Narrowing>>>,
    /// How many trips `trims` holds: a reader looks a trip up in it only when some wait.
    trims_waiting: AtomicUsize,
    /// When the route thread may trim again of its own accord, and when it trimmed each
    /// trip lately ([`Inner::trim_all_now`]).
    trim_pacing: Mutex<trims::TrimPacing>,
    /// Run once by the next trim as it starts, holding `storing` (tests: what the write
    /// path may do meanwhile).
    #[cfg(test)]
    during_trim: Mutex<Option<DuringTrim>>,
    /// Run between the steps of every rewrite, `storing` held (tests).
    #[cfg(test)]
    between_steps: Mutex<Option<BetweenSteps>>,
    /// Points a rewrite writes back a step, in place of [`crate::routes::REWRITE_STEP`]
    /// (tests).
    #[cfg(test)]
    rewrite_step: Mutex<Option<usize>>,
    /// The longest a rewrite waits between steps, in place of its bound (tests).
    #[cfg(test)]
    max_gap: Mutex<Option<Duration>>,
    /// How long the route thread leaves trims after one, in place of
    /// [`trims::TRIM_PAUSE`] times the trim's time (tests).
    #[cfg(test)]
    trim_pause: Mutex<Option<Duration>>,
    /// Whether each of a rewrite's next steps fails, in turn (tests).
    #[cfg(test)]
    fail_steps: Mutex<std::collections::VecDeque<bool>>,
}

/// What a test does while a trim runs.
#[cfg(test)]
type DuringTrim = Box<dyn FnOnce(&Inner) + Send>;

/// What a test does between a rewrite's steps.
#[cfg(test)]
type BetweenSteps = Box<dyn FnMut(&Inner) + Send>;

/// Points taken from `pending` to be written as pieces, and the number of the first.
struct Taken {
    points: PendingPoints,
    first_piece: u64,
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
    /// When the route thread last failed to start, if it did: it is tried again
    /// [`RESPAWN_AFTER`] later, by the next write or refusal.
    failed_start: Mutex<Option<std::time::Instant>>,
    /// Starts the route thread failing on purpose, this many more times (tests).
    #[cfg(test)]
    pub(super) fail_starts: std::sync::atomic::AtomicU32,
    /// Each watched trip's counter of changes, for its followers' streams, and where it
    /// stood when the trip was last settled by a reader.
    watchers: Mutex<HashMap<Arc<str>, Watched>>,
    /// Reads of a trip that settled its waiting and fresh points first.
    reader_settlings: AtomicU64,
    /// How the store is opened.
    config: RouteConfig,
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
    fn write_grouped(&self, taken: &Taken) {
        let mut grouped = self.grouped.lock();
        taken.points.by_trip(&mut grouped);
        self.write(&grouped, taken.first_piece);
        grouped.keep_room(2 * WAKE_AT);
    }

    /// Writes trips' waiting points as fresh pieces of about [`PIECE`] points, numbered
    /// from `piece` (the caller holds `storing`).
    fn write(&self, trips: &ByTrip, mut piece: u64) {
        // Each piece is a run of the trips in key order, handed over as it lies (a list of
        // its trips, made afresh for each piece, cost the kernel a zeroed page every 2 MiB).
        let (mut first, mut points) = (0, 0);
        for (at, count) in trips.points_each().enumerate() {
            points += count;
            if points >= PIECE || at + 1 == trips.len() {
                let written = self
                    .store()
                    .read()
                    .add_fresh_piece(piece, trips.trips_in(first..at + 1));
                piece += 1;
                if let Err(e) = written {
                    self.failed.store(true, Ordering::Release);
                    tracing::error!(error = %e, points, "route store: points not stored; they will be replayed from the log at the next start");
                }
                (first, points) = (at + 1, 0);
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

    /// Numbers the pieces `points` taken waiting points will be written as: the first of
    /// them, with room for as many as [`Inner::write`] cuts (each but the last holds
    /// [`PIECE`] points or more). Called under the `pending` lock as the points are taken,
    /// so that a narrowing, under the same lock, knows that every point taken before it is
    /// in a piece numbered below the next ([`Routes::narrow`]).
    fn number_pieces(&self, points: usize) -> u64 {
        let count = points.div_ceil(PIECE).max(1) as u64;
        self.next_piece.fetch_add(count, Ordering::SeqCst)
    }

    /// Writes every point waiting, as fresh pieces.
    fn store_pending(&self) {
        let _storing = self.lock_storing();
        let spare = std::mem::take(&mut *self.spare.lock());
        let mut taken = {
            let mut pending = self.pending.lock();
            let first_piece = self.number_pieces(pending.len());
            Taken {
                points: std::mem::replace(&mut *pending, spare),
                first_piece,
            }
        };
        // Off the lock: the narrowings' cuts recorded while the points waited.
        taken.points.apply_cuts();
        let cut_away = taken.points.take_cut_away();
        self.write_grouped(&taken);
        // After the pieces are counted: a reader that sees no point waiting sees them.
        self.pending_points
            .fetch_sub(taken.points.len() + cut_away, Ordering::SeqCst);
        *self.spare.lock() = taken.points.emptied(WAKE_AT);
    }

    /// Writes about `points` waiting points, the oldest, as a piece.
    fn store_some(&self, points: usize) {
        let _storing = self.lock_storing();
        let taken = {
            let mut pending = self.pending.lock();
            let points = pending.take_oldest(points);
            self.pending_points
                .fetch_sub(pending.take_cut_away(), Ordering::SeqCst);
            Taken {
                first_piece: self.number_pieces(points.len()),
                points,
            }
        };
        self.write_grouped(&taken);
        self.pending_points
            .fetch_sub(taken.points.len(), Ordering::SeqCst);
    }

    /// Settles `trip`'s fresh and waiting points; gives the `storing` lock, held, so that
    /// the caller reads or changes the trip with nothing of it on the way.
    fn store_trip(&self, trip: &str) -> StoringGuard<'_> {
        let mut storing = self.lock_storing();
        // Not while a trim rewrites its route: it holds part of its points until done.
        self.wait_for_rewrite_of(trip, &mut storing);
        // The trip's waiting narrowings and its points waiting in memory, taken together
        // (a narrowing records itself under the same lock): the points came after every
        // narrowing taken, so those trim the store alone, before the points join it; a
        // narrowing that comes after both finds the points settled, and trims them too.
        let (narrowings, waiting) = {
            let mut pending = self.pending.lock();
            let taken = (self.seal(trip), pending.take_trip(trip));
            self.pending_points
                .fetch_sub(pending.take_cut_away(), Ordering::SeqCst);
            taken
        };
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.apply_narrowings(trip, narrowings, &mut storing);
        }));
        if let Err(panic) = applied {
            self.wait_again(trip, waiting);
            std::panic::resume_unwind(panic);
        }
        if self.part_rewritten(trip, &storing) {
            // Not into a route part rewritten: the points wait again, for its finish.
            self.wait_again(trip, waiting);
            return storing;
        }
        if let Err(e) = self.store().read().settle_trip(trip, &waiting) {
            self.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, trip, "route store: a trip's points were not settled; they will be replayed from the log at the next start");
        }
        // Only now that the store holds them: a reader that sees none waiting reads them.
        self.pending_points
            .fetch_sub(waiting.len(), Ordering::SeqCst);
        storing
    }
}

impl Inner {
    /// Puts `trip`'s points, taken to be settled, back to wait in memory (its trim failed),
    /// narrowed to every window now waiting for the trip: narrowings that came while they
    /// were out did not see them, and their piece's number will be past those
    /// narrowings'. (Were the trip's window widened after one of the older narrowings, a
    /// point outside that one's window goes too: this is the path of a failed write.)
    fn wait_again(&self, trip: &str, points: Vec<crate::routes::RoutePoint>) {
        let mut pending = self.pending.lock();
        let window = self.waiting_window(trip);
        let mut again = PendingPoints::default();
        let mut dropped = 0;
        for point in points {
            if window.is_none_or(|(from, to)| (from..=to).contains(&point.ts)) {
                again.push(trip, point);
            } else {
                dropped += 1;
            }
        }
        pending.append(&again);
        self.pending_points.fetch_sub(dropped, Ordering::SeqCst);
    }

    /// [`Routes::make_durable`].
    fn make_durable(&self, seq: u64) -> Result<(), EngineError> {
        self.store_pending();
        let mut storing = self.lock_storing();
        // Every narrowing up to `seq` trimmed too: the log below it may go. And no route
        // part rewritten: what is durable must be a state the log's tail replays onto
        // (`trim_all` waits for the rewrites under way already, each trip's entry kept
        // until its rewrite ends; this says so where it matters).
        self.trim_all(&mut storing);
        self.wait_for_rewrites(&mut storing);
        // After a failed write the store is behind the log: the snapshot that asks must
        // fail too, so that the log it would trim is kept for the next start's replay
        // (which starts from the newest snapshot, and skips what the store says it holds).
        if self.failed.load(Ordering::Acquire) {
            return Err(RouteStoreError::Behind.into());
        }
        Ok(self.store().read().make_durable(seq)?)
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
        // A route a failed write left part rewritten: one more try, and if it fails again
        // the store is not closed (`redb` would make its commits durable as it closed), so
        // that the next start finds the last durable state and replays the log onto it.
        let part_rewritten = {
            let mut storing = self.inner.lock_storing();
            if self.inner.any_part_rewritten(&storing) {
                self.inner.trim_all(&mut storing);
            }
            self.inner.any_part_rewritten(&storing)
        };
        if part_rewritten
            && let Some(inner) = Arc::get_mut(&mut self.inner)
            && let Some(store) = inner.store.take()
        {
            tracing::error!(
                "route store: a route is part rewritten after failed writes; the store is left unclosed, and the next start replays the log"
            );
            std::mem::forget(store);
        }
    }
}

impl Routes {
    /// A route store to be opened as `config` says (an engine with no data directory keeps
    /// it in a temporary one, with the default cache).
    pub(super) fn new(config: RouteConfig) -> Self {
        let mut routes = Self::default();
        routes.config = config;
        routes
    }

    /// Opens the store at `path`; gives the log sequence it holds durably.
    pub(super) fn open(&self, path: &Path) -> Result<u64, EngineError> {
        let store = RouteStore::open_with_cache(path, self.config.cache_bytes)?;
        let applied = store.applied_seq()?;
        let fresh = store.fresh_pieces()?;
        if let Ok(bytes) = store.file_bytes() {
            self.inner.file_bytes.store(bytes, Ordering::Relaxed);
            *self.inner.compaction.lock() = compaction::Compaction::opened(bytes);
        }
        let next_piece = store.next_piece()?;
        if self.inner.store.set(RwLock::new(store)).is_ok() {
            self.inner.next_piece.store(next_piece, Ordering::SeqCst);
        }
        self.inner.fresh_pieces.store(fresh, Ordering::SeqCst);
        Ok(applied)
    }

    /// Starts the route thread unless it runs already, or failed to start less than
    /// [`RESPAWN_AFTER`] ago. Without the thread, writers past the bound still write the
    /// points waiting as pieces, but nothing settles the pieces, so the store falls behind
    /// and positions on trips are refused: a start that failed (no memory or threads left
    /// for a moment) is tried again, not given up on for the life of the process.
    fn start_thread(&self) {
        if self.thread.get().is_some() {
            return;
        }
        let mut failed = self.failed_start.lock();
        if self.thread.get().is_some() || failed.is_some_and(|at| at.elapsed() < RESPAWN_AFTER) {
            return;
        }
        let inner = Arc::downgrade(&self.inner);
        let spawned = self.refuse_start_for_tests().and_then(|()| {
            std::thread::Builder::new()
                .name("proxima-routes".into())
                .spawn(move || thread::run(inner))
        });
        match spawned {
            Ok(handle) => {
                *failed = None;
                let _ = self.thread.set(Mutex::new(Some(handle)));
            }
            Err(e) => {
                *failed = Some(std::time::Instant::now());
                tracing::error!(error = %e, retry_in_s = RESPAWN_AFTER.as_secs(), "no route thread: points are stored as writers pass the bound, and the start is tried again");
            }
        }
    }

    /// A start of the route thread failing on purpose, while a test asks for it.
    fn refuse_start_for_tests(&self) -> std::io::Result<()> {
        #[cfg(test)]
        if self
            .fail_starts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(std::io::Error::other("a start refused by a test"));
        }
        Ok(())
    }

    /// Whether the route thread runs.
    #[cfg(test)]
    pub(super) fn has_thread(&self) -> bool {
        self.thread.get().is_some()
    }

    /// Whether the store is behind its writes: [`MAX_FRESH_PIECES`] or more wait to be
    /// settled. Writes that add trip points are then refused before they are logged
    /// ([`Routes::refused`] counts them), and the route thread is woken to settle. An
    /// atomic load while the store keeps up.
    pub(super) fn behind(&self) -> bool {
        let fresh = self.inner.fresh_pieces.load(Ordering::SeqCst);
        // `u64::MAX`: the count failed, which is a storage error, not a backlog.
        fresh >= MAX_FRESH_PIECES && fresh != u64::MAX
    }

    /// Counts a write refused while the store was [`Routes::behind`], and makes sure the
    /// route thread is at work on the backlog ([`Routes::work_on_backlog`]).
    pub(super) fn refuse(&self) {
        self.inner.refused.fetch_add(1, Ordering::Relaxed);
        if !self.inner.refusing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                fresh_pieces = self.fresh_pieces(),
                "route store behind its writes: positions on trips are refused (503) until it catches up"
            );
        }
        self.work_on_backlog();
    }

    /// Makes sure the route thread is at work on what waits: starts it (it starts with the
    /// first point pushed, and after a restart with pieces left none may have been) and
    /// wakes it.
    pub(super) fn work_on_backlog(&self) {
        self.start_thread();
        *self.inner.awake.lock() = true;
        self.inner.wake.notify_one();
    }

    /// Writes refused since the start because the store was behind.
    pub(super) fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Fresh pieces waiting to be settled, as last counted.
    pub(super) fn fresh_pieces(&self) -> u64 {
        match self.inner.fresh_pieces.load(Ordering::Relaxed) {
            u64::MAX => 0,
            n => n,
        }
    }

    /// Files points of their trips for the store; wakes whoever watches those trips.
    pub(super) fn push(&self, points: &PendingPoints) {
        self.start_thread();
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
                        && let Some(watched) = watchers.get(trip)
                    {
                        watched.changes.send_modify(|n| *n += 1);
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

    /// `read` of the store, with every point of `trip` applied so far stored (a reader's
    /// view of the trip holds every point applied before it asked), and none of its route
    /// part rewritten: a read that a rewrite of the trip began during (a narrowing that
    /// came after it settled, say) is read again, and after [`READ_TRIES`] such reads, read
    /// holding `storing`, under which no rewrite begins. A route left part rewritten by a
    /// failed write is not read ([`RouteStoreError::PartRewritten`]).
    pub(super) fn read_trip<T>(
        &self,
        trip: &str,
        read: impl Fn(&RouteStore) -> Result<T, RouteStoreError>,
    ) -> Result<T, RouteStoreError> {
        let begun = self.inner.rewrites_begun(trip);
        for _ in 0..READ_TRIES {
            let before = self.settle_for_reading(trip)?;
            let read = read(&self.inner.store().read())?;
            if begun.load(Ordering::SeqCst) == before {
                return Ok(read);
            }
        }
        let storing = self.settle_holding(trip)?;
        let read = read(&self.inner.store().read());
        drop(storing);
        read
    }

    /// Settles `trip` for a reader, unless it need not; gives the count of rewrites begun
    /// among the trip's stripe, as it stood when no rewrite of the trip was under way.
    fn settle_for_reading(&self, trip: &str) -> Result<u64, RouteStoreError> {
        // Before the checks: a rewrite of the trip under way keeps its narrowings' entry,
        // so the checks below settle the trip, which waits for it.
        let begun = self.inner.rewrites_begun(trip).load(Ordering::SeqCst);
        // Nothing waiting and no fresh piece (in this order: points leave `pending` only
        // after the pieces holding them are counted): the chunks hold every point, and the
        // reader need not wait for a settling under way.
        // A trip narrowed and not yet trimmed is trimmed first, whatever else waits.
        let untrimmed = self.inner.trim_waits(trip);
        let quiet = !untrimmed
            && self.inner.pending_points.load(Ordering::SeqCst) == 0
            && self.inner.fresh_pieces.load(Ordering::SeqCst) == 0;
        if quiet {
            return Ok(begun);
        }
        // Read before settling: every point counted up to it was waiting before the
        // settling took the trip's points (a push counts its points after filing them), so
        // the settling holds them all.
        let changes = self.watched_changes(trip);
        if let Some((count, Some(settled))) = changes
            && settled == count
            && !untrimmed
        {
            return Ok(begun);
        }
        let storing = self.settle_holding(trip)?;
        // Under `storing`, past any rewrite of the trip: one that begins later counts.
        let begun = self.inner.rewrites_begun(trip).load(Ordering::SeqCst);
        drop(storing);
        if let Some((count, _)) = changes {
            self.settled(trip, count);
        }
        Ok(begun)
    }

    /// Settles `trip` for a reader, giving `storing` held, unless its route is part
    /// rewritten.
    fn settle_holding(&self, trip: &str) -> Result<StoringGuard<'_>, RouteStoreError> {
        let storing = self.inner.store_trip(trip);
        self.reader_settlings.fetch_add(1, Ordering::Relaxed);
        if self.inner.part_rewritten(trip, &storing) {
            return Err(RouteStoreError::PartRewritten);
        }
        Ok(storing)
    }

    /// A watched trip's count of changes, and where it stood when a reader last settled it.
    fn watched_changes(&self, trip: &str) -> Option<(u64, Option<u64>)> {
        let watchers = self.watchers.lock();
        let watched = watchers.get(trip)?;
        Some((*watched.changes.borrow(), watched.settled_at))
    }

    /// Notes that every point of `trip` counted up to `count` is settled.
    fn settled(&self, trip: &str, count: u64) {
        if let Some(watched) = self.watchers.lock().get_mut(trip) {
            watched.settled_at = Some(watched.settled_at.map_or(count, |at| at.max(count)));
        }
    }

    /// A counter that changes whenever `trip`'s route, or the trip, changes.
    pub(super) fn watch(&self, trip: &str) -> tokio::sync::watch::Receiver<u64> {
        let mut watchers = self.watchers.lock();
        watchers.retain(|_, watched| watched.changes.receiver_count() > 0);
        watchers
            .entry(Arc::from(trip))
            .or_insert_with(Watched::new)
            .changes
            .subscribe()
    }

    /// The count of changes to who may read `trip` or what they may see of it (see
    /// `Watched::rules`), shared with whoever watches it.
    pub(super) fn rules(&self, trip: &str) -> Arc<AtomicU64> {
        self.watchers
            .lock()
            .entry(Arc::from(trip))
            .or_insert_with(Watched::new)
            .rules
            .clone()
    }

    /// How many streams watch routes.
    pub(super) fn watchers(&self) -> usize {
        self.watchers
            .lock()
            .values()
            .map(|watched| watched.changes.receiver_count())
            .sum()
    }

    /// Reads of a trip that settled its waiting and fresh points first, since the start.
    pub(super) fn reader_settlings(&self) -> u64 {
        self.reader_settlings.load(Ordering::Relaxed)
    }

    /// Erases `trip`'s points, waiting and fresh ones included: a narrowing to no time at
    /// all ([`Routes::narrow`]), so that deleting a trip or a traveller, under the
    /// travellers' exclusive lock, neither waits for the store (a settling's part, another
    /// trip's trim) nor pays for the route there. A trip made again with the same id keeps
    /// its own points: they are written after the erasure, which applies only before.
    pub(super) fn erase(&self, trip: &str) {
        self.narrow(trip, i64::MAX, i64::MIN);
        self.notify(trip);
    }

    /// Keeps only `trip`'s points with `from <= ts <= to`, as every reader sees it from
    /// now on. Called under the travellers' exclusive lock, so it touches only memory, for
    /// a time bounded by the points waiting there, never by the route:
    /// - the trip's points waiting in memory are narrowed at once;
    /// - the rest waits as a [`Narrowing`] for [`Inner::trim`], run by the route thread
    ///   soon after, by the next reader of the trip, or before the store is next made
    ///   durable, whichever comes first, and always before a later point of the trip joins
    ///   its chunks. Fresh pieces are numbered as their points leave memory, under the lock
    ///   this takes, so the narrowing applies to exactly the pieces written before it;
    ///   points reported after it, in a window widened meanwhile, stay.
    ///
    /// Trimmed here, a narrowing that cut one point from a route of a million held every
    /// position write for about 240 ms (the route read and rewritten, its figures worked
    /// out again, under the lock and the store's writer), and a traveller's token could
    /// repeat it for each point.
    pub(super) fn narrow(&self, trip: &str, from: i64, to: i64) {
        if self.skipping() {
            // Recovery replaying what the store holds durably: the store has it already,
            // with the points reported after it, which a trim now would cut.
            return;
        }
        self.inner.narrow(trip, from, to);
    }

    /// Wakes whoever watches `trip`.
    pub(super) fn notify(&self, trip: &str) {
        if let Some(watched) = self.watchers.lock().get(trip) {
            watched.rules.fetch_add(1, Ordering::SeqCst);
            watched.changes.send_modify(|n| *n += 1);
        }
    }

    /// Stores every waiting point and runs every narrowing's trim that waits, then makes
    /// the store durable as holding the log up to `seq` (unless a write failed).
    pub(super) fn make_durable(&self, seq: u64) -> Result<(), EngineError> {
        self.inner.make_durable(seq)
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
