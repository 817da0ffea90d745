//! [`Routes`]: the route store in the engine, with the points waiting to reach it, and who
//! is watching which route.
//!
//! Positions join their trips' routes as their change is applied, but they reach the
//! `redb` file a little later, gathered by trip: a batch of 1,000 reports from 1,000
//! travellers touches 1,000 trips' chunks, which with a million trips lie on a thousand
//! different pages of the B-tree, each copied on write. Gathered over many batches and
//! written in key order, a piece of 20,000 points touches each page once: measured on a
//! million trips with one new point each, 110,000–150,000 points a second stored in sorted
//! pieces against 17,000 in the batches as they come (the same store, the same points).
//! So the write path only files the points by trip (`pending`), and a thread of its own
//! stores them in pieces, each trip's points in the order they arrived. It wakes when
//! [`WAKE_AT`] points wait, and at least every half second. Past [`MAX_PENDING`] points a
//! writer stores them itself before going on: the bound, and the back pressure.
//!
//! Nothing is lost meanwhile: the log holds every change, and the store claims to hold
//! the log up to a sequence only after storing everything pending ([`Routes::make_durable`],
//! at each snapshot). A reader of a route sees every point applied before it: the trip's
//! pending points are stored first ([`Routes::store_trip`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use super::EngineError;
use crate::routes::{RoutePoint, RouteStore};

/// The file of the route store in a data directory.
pub const ROUTES_FILE: &str = "routes.redb";

/// Points waiting that wake the route thread.
const WAKE_AT: usize = 20_000;
/// The most points that may wait: a writer that finds more stores them itself.
const MAX_PENDING: usize = 1_000_000;
/// Points stored in one transaction (the route thread lets readers in between).
const PIECE: usize = 20_000;
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
    /// Points not yet stored, by trip, in the order they arrived.
    pending: Mutex<HashMap<Arc<str>, Vec<RoutePoint>>>,
    /// How many points `pending` holds.
    pending_points: AtomicUsize,
    /// Held while points go from `pending` into the store, so that each trip's points
    /// reach it in the order they arrived.
    storing: Mutex<()>,
    /// Wakes the route thread.
    wake: Condvar,
    awake: Mutex<bool>,
    /// Set when the engine goes: the route thread ends.
    closed: AtomicBool,
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

    /// Stores `points` (the caller holds `storing`).
    fn write(&self, points: &[(Arc<str>, RoutePoint)]) {
        if points.is_empty() {
            return;
        }
        let borrowed: Vec<(&str, RoutePoint)> = points.iter().map(|(t, p)| (&**t, *p)).collect();
        if let Err(e) = self.store().read().append(&borrowed) {
            self.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, points = points.len(), "route store: points not stored; they will be replayed from the log at the next start");
        }
    }

    /// Stores every point waiting, in pieces, trips in the store's key order.
    fn store_pending(&self) {
        let mut trips: Vec<Arc<str>> = self.pending.lock().keys().cloned().collect();
        // The store's keys: the id's length, then the id.
        trips.sort_unstable_by(|a, b| (a.len(), &**a).cmp(&(b.len(), &**b)));
        let mut next = 0;
        while next < trips.len() {
            let _storing = self.storing.lock();
            let mut piece: Vec<(Arc<str>, RoutePoint)> = Vec::with_capacity(PIECE);
            {
                let mut pending = self.pending.lock();
                while next < trips.len() && piece.len() < PIECE {
                    if let Some(points) = pending.remove(&trips[next]) {
                        self.pending_points
                            .fetch_sub(points.len(), Ordering::Relaxed);
                        piece.extend(points.into_iter().map(|p| (trips[next].clone(), p)));
                    }
                    next += 1;
                }
            }
            self.write(&piece);
        }
    }

    /// Stores about `points` waiting points, of whichever trips come first.
    fn store_some(&self, points: usize) {
        let _storing = self.storing.lock();
        let mut piece: Vec<(Arc<str>, RoutePoint)> = Vec::with_capacity(points);
        {
            let mut pending = self.pending.lock();
            while piece.len() < points {
                let Some(trip) = pending.keys().next().cloned() else {
                    break;
                };
                let waiting = pending.remove(&trip).unwrap_or_default();
                self.pending_points
                    .fetch_sub(waiting.len(), Ordering::Relaxed);
                piece.extend(waiting.into_iter().map(|p| (trip.clone(), p)));
            }
        }
        piece.sort_by(|a, b| (a.0.len(), &*a.0).cmp(&(b.0.len(), &*b.0)));
        self.write(&piece);
    }

    /// Stores `trip`'s waiting points; gives the `storing` lock, held, so that the caller
    /// reads or changes the trip with nothing of it on the way.
    fn store_trip(&self, trip: &str) -> parking_lot::MutexGuard<'_, ()> {
        let storing = self.storing.lock();
        let waiting = self.pending.lock().remove(trip);
        if let Some(points) = waiting {
            self.pending_points
                .fetch_sub(points.len(), Ordering::Relaxed);
            let trip: Arc<str> = Arc::from(trip);
            let piece: Vec<(Arc<str>, RoutePoint)> =
                points.into_iter().map(|p| (trip.clone(), p)).collect();
            self.write(&piece);
        }
        storing
    }
}

/// The route thread: stores what waits when woken, or every [`NAP`]; ends with its engine.
fn run(inner: Weak<Inner>) {
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
        inner.store_pending();
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
        let _ = self.inner.store.set(RwLock::new(store));
        Ok(applied)
    }

    /// Files points of their trips for the store; wakes whoever watches those trips.
    pub(super) fn push(&self, points: Vec<(Arc<str>, RoutePoint)>) {
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
        {
            let watchers = self.watchers.lock();
            let mut pending = self.inner.pending.lock();
            let mut last: Option<Arc<str>> = None;
            for (trip, p) in points {
                if !watchers.is_empty()
                    && last.as_deref() != Some(&*trip)
                    && let Some(tx) = watchers.get(&*trip)
                {
                    tx.send_modify(|n| *n += 1);
                }
                last = Some(trip.clone());
                pending.entry(trip).or_default().push(p);
            }
        }
        let waiting = self
            .inner
            .pending_points
            .fetch_add(count, Ordering::Relaxed)
            + count;
        if waiting >= MAX_PENDING {
            // Past the bound: this writer stores a piece before it goes on (the route
            // thread cannot keep up; writers wait their turn, each for one piece).
            self.inner.store_some(PIECE);
        } else if waiting >= WAKE_AT {
            *self.inner.awake.lock() = true;
            self.inner.wake.notify_one();
        }
    }

    /// The store, with every point of `trip` applied so far stored (a reader's view of the
    /// trip holds every point applied before it asked).
    pub(super) fn read_trip(&self, trip: &str) -> parking_lot::RwLockReadGuard<'_, RouteStore> {
        drop(self.inner.store_trip(trip));
        self.inner.store().read()
    }

    /// Erases `trip`'s points, waiting ones included.
    pub(super) fn erase(&self, trip: &str) {
        let _storing = self.inner.store_trip(trip);
        if let Err(e) = self.inner.store().read().erase(trip) {
            self.inner.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, trip, "route store: a trip's points were not erased; the erasure will be replayed from the log at the next start");
        }
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
}
