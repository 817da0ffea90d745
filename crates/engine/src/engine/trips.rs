//! Trips in the engine: their changes ([`PutTrip`] and the rest, each a [`Change`]), the
//! route store's place in the one write path, and the reads the edge makes of trips,
//! routes and links.
//!
//! A position joins a trip's route when [`Positions`](super::Positions) is applied: live,
//! on recovery and on a cluster node alike, so the route store is derived from the log.
//! It is keyed by (trip, `ts`), so applying a change twice stores nothing twice. The store
//! is made durable with each snapshot, before the snapshot is written, and records the log
//! sequence it then holds: recovery skips the route appends the store already holds and
//! replays only the tail, and the log is never trimmed past what the store made durable.
//!
//! Who sees a running trip's traveller is kept on the traveller's record (its followers,
//! [`crate::travellers::TripShare`]), set whenever a trip starts, ends, changes or gains or
//! loses a follower, through the same path as a sharing change: the traveller's waiting
//! moves are judged first, then fences and live maps judge it again with cause `sharing`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use super::mutation::{
    Change, CreateLink, DeleteFollower, DeleteTrip, Order, PutFollower, PutTrip, RevokeLink,
    TickTrips,
};
use super::{Engine, EngineError, Removed, Stored, Written};
use crate::events::Cause;
use crate::routes::{RoutePoint, RouteStore, TripFigures};
use crate::travellers::PositionUpdate;
use crate::trips::{Link, Trip, TripRecord};

/// The file of the route store in a data directory.
pub const ROUTES_FILE: &str = "routes.redb";

/// The route store, opened with the data directory (or in a temporary directory for an
/// in-memory engine), and who is watching which route.
#[derive(Default)]
pub(super) struct Routes {
    store: OnceLock<RwLock<RouteStore>>,
    /// Holds an in-memory engine's store.
    temp: OnceLock<tempfile::TempDir>,
    /// Set while recovery replays changes the store already holds durably.
    skip: AtomicBool,
    /// Set when a write to the store failed: it is behind the log until the next start,
    /// so it must not claim to hold the log (the log is then kept for the replay).
    failed: AtomicBool,
    /// Each watched trip's counter of changes, for its followers' streams.
    watchers: Mutex<HashMap<Arc<str>, tokio::sync::watch::Sender<u64>>>,
}

impl Routes {
    /// Opens the store at `path`; gives the log sequence it holds durably.
    pub(super) fn open(&self, path: &Path) -> Result<u64, EngineError> {
        let store = RouteStore::open(path)?;
        let applied = store.applied_seq()?;
        let _ = self.store.set(RwLock::new(store));
        Ok(applied)
    }

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

    fn append(&self, points: &[(Arc<str>, RoutePoint)]) {
        let borrowed: Vec<(&str, RoutePoint)> = points.iter().map(|(t, p)| (&**t, *p)).collect();
        if let Err(e) = self.store().read().append(&borrowed) {
            self.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, points = points.len(), "route store: points not stored; they will be replayed from the log at the next start");
        }
        let watchers = self.watchers.lock();
        if !watchers.is_empty() {
            let mut last: Option<&str> = None;
            for (trip, _) in points {
                if last != Some(&**trip) {
                    last = Some(trip);
                    if let Some(tx) = watchers.get(&**trip) {
                        tx.send_modify(|n| *n += 1);
                    }
                }
            }
        }
    }

    fn erase(&self, trip: &str) {
        if let Err(e) = self.store().read().erase(trip) {
            self.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, trip, "route store: a trip's points were not erased; the erasure will be replayed from the log at the next start");
        }
        self.notify(trip);
    }

    fn retain_window(&self, trip: &str, from: i64, to: i64) {
        if let Err(e) = self.store().read().retain_window(trip, from, to) {
            self.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, trip, "route store: a narrowed trip's points were not trimmed");
        }
    }

    /// Wakes whoever watches `trip`.
    fn notify(&self, trip: &str) {
        if let Some(tx) = self.watchers.lock().get(trip) {
            tx.send_modify(|n| *n += 1);
        }
    }

    /// Makes the store durable as holding the log up to `seq` (unless a write failed).
    pub(super) fn make_durable(&self, seq: u64) -> Result<(), EngineError> {
        if self.failed.load(Ordering::Acquire) {
            tracing::warn!(
                "route store: behind the log after a failed write; not marking it durable"
            );
            return Ok(());
        }
        Ok(self.store().read().make_durable(seq)?)
    }

    pub(super) fn set_skip(&self, skip: bool) {
        self.skip.store(skip, Ordering::Release);
    }
}

impl Engine {
    /// Creates or replaces a trip.
    pub fn put_trip(&self, trip: Trip) -> Result<Written<Stored>, EngineError> {
        self.write(PutTrip(trip))
    }

    /// Deletes a trip, its route, followers and links.
    pub fn delete_trip(&self, id: &str) -> Result<Written<Removed>, EngineError> {
        self.write(DeleteTrip { id: id.to_owned() })
    }

    /// A trip's record.
    pub fn trip(&self, id: &str) -> Option<TripRecord> {
        self.trips.get(id)
    }

    /// A traveller's trips, newest first.
    pub fn trips_of(&self, traveller: &str) -> Vec<TripRecord> {
        self.trips.of_traveller(traveller)
    }

    /// How many trips there are.
    pub fn trip_count(&self) -> usize {
        self.trips.len()
    }

    /// A trip's figures, kept as its points arrived (no point read).
    pub fn trip_figures(&self, id: &str) -> Result<TripFigures, EngineError> {
        Ok(self.routes.store().read().figures(id)?.unwrap_or_default())
    }

    /// A trip's route points with `from <= ts <= to`, after `after`, at most `limit`; and
    /// whether more follow.
    pub fn route(
        &self,
        id: &str,
        from: i64,
        to: i64,
        after: Option<i64>,
        limit: usize,
    ) -> Result<(Vec<RoutePoint>, bool), EngineError> {
        Ok(self
            .routes
            .store()
            .read()
            .read(id, from, to, after, limit)?)
    }

    /// Adds a follower to a trip.
    pub fn add_follower(&self, trip: &str, viewer: &str) -> Result<Written<()>, EngineError> {
        self.write(PutFollower {
            trip: trip.to_owned(),
            viewer: viewer.to_owned(),
        })
    }

    /// Removes a follower from a trip.
    pub fn remove_follower(
        &self,
        trip: &str,
        viewer: &str,
    ) -> Result<Written<Removed>, EngineError> {
        self.write(DeleteFollower {
            trip: trip.to_owned(),
            viewer: viewer.to_owned(),
        })
    }

    /// Creates a share link; gives it and its token (shown once: only its hash is kept).
    pub fn create_link(
        &self,
        trip: &str,
        expires_at: i64,
        show_from: Option<i64>,
        show_to: Option<i64>,
    ) -> Result<(Written<()>, Link, String), EngineError> {
        let (link, token) = Link::mint(expires_at, show_from, show_to);
        let written = self.write(CreateLink {
            trip: trip.to_owned(),
            link: link.clone(),
        })?;
        Ok((written, link, token))
    }

    /// Revokes a share link.
    pub fn revoke_link(&self, trip: &str, link: &str) -> Result<Written<Removed>, EngineError> {
        self.write(RevokeLink {
            trip: trip.to_owned(),
            link: link.to_owned(),
        })
    }

    /// The trip and link a token opens now, if any.
    pub fn open_link(&self, token: &str) -> Option<(TripRecord, Link)> {
        self.trips.open_link(token, self.now_ms())
    }

    /// A counter that changes whenever `trip`'s route, or the trip, changes: a follower's
    /// stream waits on it, then reads the route after its last point.
    pub fn watch_route(&self, trip: &str) -> tokio::sync::watch::Receiver<u64> {
        let mut watchers = self.routes.watchers.lock();
        watchers.retain(|_, tx| tx.receiver_count() > 0);
        watchers
            .entry(Arc::from(trip))
            .or_insert_with(|| tokio::sync::watch::channel(0).0)
            .subscribe()
    }

    /// How many streams watch routes.
    pub fn route_watchers(&self) -> usize {
        self.routes
            .watchers
            .lock()
            .values()
            .map(tokio::sync::watch::Sender::receiver_count)
            .sum()
    }

    /// If a trip starts or ends, or a link expires, by now, logs the clock tick that makes
    /// it so ([`TickTrips`]); called every second.
    pub fn tick_trips(&self) -> Result<(), EngineError> {
        let now = self.now_ms();
        if self.trips.next_due().is_some_and(|due| due <= now) {
            // A tick is made again from the trips if lost: nobody waits for it.
            drop(self.write(TickTrips { at_ms: now })?);
        }
        Ok(())
    }

    /// Whether a trip starts or ends, or a link expires, by `now_ms`.
    pub fn trips_due(&self, now_ms: i64) -> bool {
        self.trips.next_due().is_some_and(|due| due <= now_ms)
    }

    /// Sets who follows `traveller`'s running trip as of `now_ms` on its record; if that
    /// changed, fences and live maps judge it again (cause `sharing`), after its moves
    /// still waiting are judged with the followers they were made under.
    fn refresh_trip_share(&self, traveller: &str, now_ms: i64) {
        let share = self.trips.share_at(traveller, now_ms);
        self.judge_pending(traveller);
        if self.travellers.set_trip_share(traveller, share) && self.has_observers() {
            let at = self.travellers.seen_at(traveller);
            self.changed(traveller, Cause::Sharing, now_ms, at);
        }
    }

    /// Sets every traveller's trip followers as of `now_ms` (after recovery).
    pub(super) fn refresh_all_trip_shares(&self, now_ms: i64) {
        let mut travellers: Vec<String> = Vec::new();
        let _ = self.trips.export(|r| {
            travellers.push(r.trip.traveller().to_owned());
            Ok::<(), ()>(())
        });
        travellers.sort_unstable();
        travellers.dedup();
        for traveller in travellers {
            self.refresh_trip_share(&traveller, now_ms);
        }
    }

    /// Stores the points of `updates` that fall in a trip, in one transaction.
    pub(super) fn store_route_points(&self, updates: &[PositionUpdate]) {
        if self.trips.is_empty() || self.routes.skip.load(Ordering::Acquire) {
            return;
        }
        let points: Vec<(Arc<str>, RoutePoint)> = updates
            .iter()
            .filter_map(|u| {
                let trip = self.trips.holding(&u.id, u.ts)?;
                Some((
                    trip,
                    RoutePoint {
                        ts: u.ts,
                        lat: u.position.lat,
                        lon: u.position.lon,
                    },
                ))
            })
            .collect();
        if !points.is_empty() {
            self.routes.append(&points);
        }
    }

    /// Deletes every trip of a deleted traveller with its route; gives whether it had any.
    pub(super) fn delete_trips_of(&self, traveller: &str) -> bool {
        let ids = self.trips.ids_of(traveller);
        for id in &ids {
            self.trips.remove(id);
            self.routes.erase(id);
        }
        !ids.is_empty()
    }
}

impl Change for PutTrip {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = Stored;

    fn check(&self, engine: &Engine) -> Result<(), EngineError> {
        Ok(engine.trips.check_put(&self.0)?)
    }

    fn apply(self, engine: &Engine, now_ms: i64) -> Result<Stored, EngineError> {
        let trip = self.0;
        let (id, traveller) = (trip.id().to_owned(), trip.traveller().to_owned());
        let (from, to) = (trip.started_at(), trip.until());
        let put = engine.trips.put(trip, now_ms);
        if put.narrowed {
            engine.routes.retain_window(&id, from, to);
        }
        engine.refresh_trip_share(&traveller, now_ms);
        engine.routes.notify(&id);
        Ok(Stored {
            created: put.created,
        })
    }
}

impl Change for DeleteTrip {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = Removed;

    fn apply(self, engine: &Engine, now_ms: i64) -> Result<Removed, EngineError> {
        let Some(record) = engine.trips.remove(&self.id) else {
            return Ok(Removed { existed: false });
        };
        engine.routes.erase(&self.id);
        engine.refresh_trip_share(record.trip.traveller(), now_ms);
        Ok(Removed { existed: true })
    }
}

impl Change for PutFollower {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = ();

    fn check(&self, engine: &Engine) -> Result<(), EngineError> {
        Ok(engine.trips.check_follower(&self.trip, &self.viewer)?)
    }

    fn apply(self, engine: &Engine, now_ms: i64) -> Result<(), EngineError> {
        if let Some(traveller) = engine.trips.add_follower(&self.trip, &self.viewer) {
            engine.refresh_trip_share(&traveller, now_ms);
        }
        Ok(())
    }
}

impl Change for DeleteFollower {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = Removed;

    fn apply(self, engine: &Engine, now_ms: i64) -> Result<Removed, EngineError> {
        let removed = engine.trips.remove_follower(&self.trip, &self.viewer);
        if let Some(traveller) = &removed {
            engine.refresh_trip_share(traveller, now_ms);
            // Its stream ends.
            engine.routes.notify(&self.trip);
        }
        Ok(Removed {
            existed: removed.is_some(),
        })
    }
}

impl Change for CreateLink {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = ();

    fn check(&self, engine: &Engine) -> Result<(), EngineError> {
        Ok(engine.trips.check_link(&self.trip)?)
    }

    fn apply(self, engine: &Engine, _now_ms: i64) -> Result<(), EngineError> {
        // Checked before it was logged, under the same lock: the trip is there.
        engine.trips.add_link(&self.trip, self.link);
        Ok(())
    }
}

impl Change for RevokeLink {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = Removed;

    fn apply(self, engine: &Engine, _now_ms: i64) -> Result<Removed, EngineError> {
        let existed = engine.trips.revoke_link(&self.trip, &self.link);
        // Its streams end.
        engine.routes.notify(&self.trip);
        Ok(Removed { existed })
    }
}

impl Change for TickTrips {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = ();

    fn apply(self, engine: &Engine, _now_ms: i64) -> Result<(), EngineError> {
        for traveller in engine.trips.take_due(self.at_ms) {
            engine.refresh_trip_share(&traveller, self.at_ms);
            for trip in engine.trips.ids_of(&traveller) {
                engine.routes.notify(&trip);
            }
        }
        Ok(())
    }
}
