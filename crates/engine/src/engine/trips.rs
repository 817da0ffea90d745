//! Trips in the engine: their changes ([`PutTrip`] and the rest, each a [`Change`]), the
//! route store's place in the one write path, and the reads the edge makes of trips,
//! routes and links.
//!
//! A position joins a trip's route when [`Positions`](super::Positions) is applied: live,
//! on recovery and on a cluster node alike, so the route store is derived from the log
//! (it reaches the file a little later, gathered by trip: see [`super::routes`]). It is
//! keyed by (trip, `ts`), so applying a change twice stores nothing twice. The store is
//! made durable with each snapshot, before the snapshot is written, and records the log
//! sequence it then holds: recovery skips the route appends the store already holds and
//! replays only the tail, and the log is never trimmed past what the store made durable.
//!
//! Who sees a running trip's traveller is kept on the traveller's record (its followers,
//! [`crate::travellers::TripShare`]), set whenever a trip starts, ends, changes or gains or
//! loses a follower, through the same path as a sharing change: the traveller's waiting
//! moves are judged first, then fences and live maps judge it again with cause `sharing`.

use super::mutation::{
    Change, CreateLink, DeleteFollower, DeleteTrip, Order, PutFollower, PutTrip, RevokeLink,
    TickTrips,
};
use super::routes::PendingPoints;
use super::{Engine, EngineError, Removed, Stored, Written};
use crate::events::Cause;
use crate::routes::{RoutePoint, TripFigures};
use crate::travellers::PositionUpdate;
use crate::travellers::sharing::follows;
use crate::trips::{Link, Trip, TripRecord};

/// The route store's backlog, for metrics ([`Engine::route_backlog`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteBacklog {
    /// Fresh pieces waiting to be settled into trips' chunks.
    pub fresh_pieces: u64,
    /// Whether they are past the bound, so that writes holding trip points are refused.
    pub behind: bool,
    /// Writes refused since the start because the store was behind.
    pub refused: u64,
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

    /// Trip `id`, if `viewer` may see it by the one rule ([`TripRecord::visible_to`]),
    /// with no copy made of a trip the viewer may not see.
    pub fn trip_seen_by(&self, id: &str, viewer: Option<&str>) -> Option<TripRecord> {
        self.trips
            .get_if(id, |owner, followers| follows(owner, followers, viewer))
    }

    /// Trip `id`, if it is `traveller`'s (`None`: anyone's), with no copy made of another
    /// traveller's.
    pub fn trip_of(&self, id: &str, traveller: Option<&str>) -> Option<TripRecord> {
        self.trips
            .get_if(id, |owner, _| traveller.is_none_or(|t| t == owner))
    }

    /// A traveller's trips, newest first.
    pub fn trips_of(&self, traveller: &str) -> Vec<TripRecord> {
        self.trips.of_traveller(traveller)
    }

    /// Up to `take` of `traveller`'s trips that `viewer` may see (the one rule, as
    /// [`TripRecord::visible_to`]), newest first, after the trip at `after` (its start and
    /// id) if given. Only those are copied: a list asked by a viewer who may see none of a
    /// traveller's 10,000 trips copied each, with its followers and links.
    pub fn trips_page_of(
        &self,
        traveller: &str,
        viewer: Option<&str>,
        after: Option<(i64, &str)>,
        take: usize,
    ) -> Vec<TripRecord> {
        match viewer {
            // Its own trips, all of them.
            Some(v) if v == traveller => {
                self.trips
                    .page_of_traveller(traveller, take, |start, id, followers| {
                        after.is_none_or(|(a_start, a_id)| {
                            start < a_start || (start == a_start && id > a_id)
                        }) && follows(traveller, followers, viewer)
                    })
            }
            // Only what it follows is read: the time of a page tells nothing of the others.
            Some(v) => self
                .trips
                .page_followed(traveller, v, after, take, |followers| {
                    follows(traveller, followers, viewer)
                }),
            None => Vec::new(),
        }
    }

    /// How many trips there are.
    pub fn trip_count(&self) -> usize {
        self.trips.len()
    }

    /// Route points applied and waiting to be stored (at most a bound; see
    /// [`super::routes`]).
    pub fn route_points_pending(&self) -> usize {
        self.routes.pending()
    }

    /// The route store's file length, bytes, as last seen after a settling (0 before the
    /// first), and how many times it was compacted since the start.
    pub fn route_store_file(&self) -> (u64, u64) {
        self.routes.file()
    }

    /// The route store's backlog: fresh pieces waiting to be settled, whether that is past
    /// the bound (so that writes holding trip points are refused), and how many writes were
    /// refused since the start.
    pub fn route_backlog(&self) -> RouteBacklog {
        RouteBacklog {
            fresh_pieces: self.routes.fresh_pieces(),
            behind: self.routes.behind(),
            refused: self.routes.refused(),
        }
    }

    /// Makes sure the route thread is at work on the store's backlog: a cluster node whose
    /// store is [`RouteBacklog::behind`] waits for it before applying its stream on (the
    /// records it applies are not refused, so without the wait its fresh pieces would have
    /// no bound), and after a restart with a backlog nothing else may have started it.
    pub fn work_on_route_backlog(&self) {
        self.routes.work_on_backlog();
    }

    /// A trip's figures, kept as its points arrived (no point read).
    pub fn trip_figures(&self, id: &str) -> Result<TripFigures, EngineError> {
        Ok(self
            .routes
            .read_trip(id, |store| store.figures(id))?
            .unwrap_or_default())
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
            .read_trip(id, |store| store.read(id, from, to, after, limit))?)
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
        self.routes.watch(trip)
    }

    /// A count that moves whenever who may read trip `trip`, or what they may see of its
    /// route, may have changed (the trip changed or ended, a follower or link changed, its
    /// traveller's privacy zones changed), and not when points join it: a stream holding
    /// points it read under an older count drops them and reads again. Call after
    /// [`Engine::watch_route`], whose receiver keeps the count shared while it lives.
    pub fn route_rules(&self, trip: &str) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.routes.rules(trip)
    }

    /// Wakes the streams of every trip of `traveller`, telling them who may read it or
    /// what they may see may have changed.
    pub(super) fn notify_trips_of(&self, traveller: &str) {
        for trip in self.trips.ids_of(traveller) {
            self.routes.notify(&trip);
        }
    }

    /// How many streams watch routes.
    pub fn route_watchers(&self) -> usize {
        self.routes.watchers()
    }

    /// Reads of a trip, since the start, that first settled the trip's points waiting for
    /// the store (a trip's followers woken by the same points settle them once).
    pub fn route_reader_settlings(&self) -> u64 {
        self.routes.reader_settlings()
    }

    /// If a trip starts or ends, or a link expires, by now, logs the clock tick that makes
    /// it so ([`TickTrips`]); called every second. Wait for what it gives: on a cluster node
    /// the tick is published only while it is awaited.
    pub fn tick_trips(&self) -> Result<Option<Written<()>>, EngineError> {
        let now = self.now_ms();
        if self.trips.next_due().is_some_and(|due| due <= now) {
            return self.write(TickTrips { at_ms: now }).map(Some);
        }
        Ok(None)
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
        if self.trips.is_empty() || self.routes.skipping() {
            return;
        }
        let mut points = PendingPoints::default();
        self.trips
            .for_each_holding(updates.iter().map(|u| (u.id.as_str(), u.ts)), |i, trip| {
                let u = &updates[i];
                let point = RoutePoint {
                    ts: u.ts,
                    lat: u.position.lat,
                    lon: u.position.lon,
                };
                points.push(trip, point);
            });
        if !points.is_empty() {
            self.routes.push(&points);
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
            engine.routes.narrow(&id, from, to);
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
            engine.notify_trips_of(&traveller);
        }
        Ok(())
    }
}
