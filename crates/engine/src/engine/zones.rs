//! Privacy zones in the engine: putting and deleting a traveller's zone
//! ([`PutPrivacyZone`], [`DeletePrivacyZone`], each a [`Change`]), and reading a trip's
//! route, stays and figures as one reader may see them: the points a zone hides from that
//! reader cut out, by the one visibility rule ([`zone_allows`]).

use std::sync::Arc;

use super::mutation::{Change, DeletePrivacyZone, Order, PutPrivacyZone};
use super::shown_figures::ShownKey;
use super::trip_reads::{MAX_WHOLE_ROUTE_POINTS, StayAt};
use super::{Engine, EngineError, Removed, Stored, Written};
use crate::events::Cause;
use crate::geometry::area::Area;
use crate::routes::stays::stays;
use crate::routes::{FiguresFold, ShownRoute, TripFigures};
use crate::travellers::sharing::zone_allows;
use crate::trips::TripRecord;
use crate::zones::{PrivacyZone, ShroudSecret, Shrouds};

/// Points read from the store at a time while hidden ones are cut out.
const READ_BATCH: usize = 16_384;

impl Engine {
    /// Creates or replaces `traveller`'s privacy zone `id`. A replaced zone keeps its
    /// shroud's secret (see [`crate::zones`]).
    pub fn put_privacy_zone(
        &self,
        traveller: &str,
        id: &str,
        area: Area,
    ) -> Result<Written<Stored>, EngineError> {
        let secret = self
            .zones
            .get(traveller, id)
            .map_or_else(ShroudSecret::draw, |z| z.secret());
        let zone = PrivacyZone::new(traveller, id, area, secret)?;
        self.write(PutPrivacyZone { zone })
    }

    /// Deletes `traveller`'s privacy zone `id`.
    pub fn delete_privacy_zone(
        &self,
        traveller: &str,
        id: &str,
    ) -> Result<Written<Removed>, EngineError> {
        self.write(DeletePrivacyZone {
            traveller: traveller.to_owned(),
            zone: id.to_owned(),
        })
    }

    /// `traveller`'s privacy zones, by id.
    pub fn privacy_zones_of(&self, traveller: &str) -> Vec<PrivacyZone> {
        self.zones.of_traveller(traveller)
    }

    /// `traveller`'s privacy zone `id`.
    pub fn privacy_zone(&self, traveller: &str, id: &str) -> Option<PrivacyZone> {
        self.zones.get(traveller, id)
    }

    /// Whether some of trip `record`'s points may be hidden from `viewer` (its traveller
    /// has privacy zones and the viewer is someone else): its figures are then worked out
    /// from the points the viewer may see.
    pub fn may_hide_points_of(&self, record: &TripRecord, viewer: Option<&str>) -> bool {
        self.shrouds_for(record, viewer).is_some()
    }

    /// The shrouds that hide trip `record`'s points from `viewer`, if any do: none when
    /// the viewer is the trip's traveller or the traveller has no zones.
    fn shrouds_for(&self, record: &TripRecord, viewer: Option<&str>) -> Option<Arc<Shrouds>> {
        let traveller = record.trip.traveller();
        if viewer == Some(traveller) {
            return None;
        }
        self.zones.shrouds(traveller)
    }

    /// A page of trip `record`'s route with `from <= ts <= to` after `after`, as `viewer`
    /// may see it: at most `limit` points, with the hidden ones cut out.
    pub fn shown_route(
        &self,
        record: &TripRecord,
        viewer: Option<&str>,
        (from, to): (i64, i64),
        after: Option<i64>,
        limit: usize,
    ) -> Result<ShownRoute, EngineError> {
        let id = record.trip.id();
        let Some(shrouds) = self.shrouds_for(record, viewer) else {
            let (points, more) = self.route(id, from, to, after, limit)?;
            return Ok(ShownRoute {
                points,
                cuts: Vec::new(),
                more,
            });
        };
        let traveller = record.trip.traveller();
        let mut shown = ShownRoute::default();
        let mut cursor = after;
        let mut hidden_before = false;
        // What a page needs at first; then, past hidden points, whole batches (a hidden
        // stretch was read two points a transaction for `limit=1`).
        let mut batch = READ_BATCH.min(limit + 1);
        loop {
            let (page, more) = self.route(id, from, to, cursor, batch)?;
            batch = READ_BATCH;
            for p in page {
                cursor = Some(p.ts);
                if !zone_allows(Some(&shrouds), traveller, viewer, p.latlon()) {
                    hidden_before = true;
                    continue;
                }
                if shown.points.len() == limit {
                    // A shown point follows the page: there is more to read.
                    shown.more = true;
                    return Ok(shown);
                }
                if hidden_before {
                    // At 0: hidden points came between `after` and this page (a stream
                    // reading on tells its reader not to join them).
                    shown.cuts.push(shown.points.len());
                }
                hidden_before = false;
                shown.points.push(p);
            }
            if !more {
                return Ok(shown);
            }
        }
    }

    /// Every point of trip `record`'s route with `from <= ts <= to` that `viewer` may see,
    /// at most [`MAX_WHOLE_ROUTE_POINTS`].
    pub fn shown_whole_route(
        &self,
        record: &TripRecord,
        viewer: Option<&str>,
        window: (i64, i64),
    ) -> Result<ShownRoute, EngineError> {
        let shown = self.shown_route(record, viewer, window, None, MAX_WHOLE_ROUTE_POINTS)?;
        if shown.more {
            return Err(EngineError::RouteTooLong {
                max: MAX_WHOLE_ROUTE_POINTS,
            });
        }
        Ok(shown)
    }

    /// Trip `record`'s figures over `from <= ts <= to`, as `viewer` may see them: the
    /// figures kept as points arrived when nothing is hidden from it and the window holds
    /// the whole trip, else worked out from the points it may see, read in pages (however
    /// long the route).
    ///
    /// Worked out once for each change to the route, window and zones, and kept between
    /// reads ([`super::shown_figures`]): a link's readers polling a long trip fold its
    /// route once, not once each.
    pub fn shown_trip_figures(
        &self,
        record: &TripRecord,
        viewer: Option<&str>,
        (from, to): (i64, i64),
    ) -> Result<TripFigures, EngineError> {
        let id = record.trip.id();
        let shrouds = self.shrouds_for(record, viewer);
        let whole = from <= record.trip.started_at() && to >= record.trip.until();
        // Read first, settling what waits: the route as it is now.
        let kept = self.trip_figures(id)?;
        if shrouds.is_none() && whole {
            return Ok(kept);
        }
        let key = ShownKey::new(id, (from, to), shrouds.clone(), &kept);
        if let Some(figures) = self.shown_figures.get(&key) {
            return Ok(figures);
        }
        let figures = match shrouds {
            None => TripFigures::of(&self.whole_route(id, from, to)?),
            Some(_) => self.folded_shown_figures(record, viewer, (from, to))?,
        };
        self.shown_figures.put(key, figures.clone());
        Ok(figures)
    }

    /// Trip `record`'s figures over the window as `viewer` may see them, from its route
    /// read in pages with the hidden points cut out.
    fn folded_shown_figures(
        &self,
        record: &TripRecord,
        viewer: Option<&str>,
        (from, to): (i64, i64),
    ) -> Result<TripFigures, EngineError> {
        let mut fold = FiguresFold::default();
        let mut after = None;
        loop {
            let page = self.shown_route(record, viewer, (from, to), after, READ_BATCH)?;
            for p in &page.points {
                fold.add(*p);
            }
            after = page.points.last().map(|p| p.ts);
            if !page.more {
                return Ok(fold.finish());
            }
        }
    }

    /// Where trip `record`'s traveller stayed between `from` and `to`, as `viewer` may see
    /// it: stays found in each run of shown points (none across a cut), each with the
    /// nearest POI within `radius_m` of its centre.
    pub fn shown_trip_stays(
        &self,
        record: &TripRecord,
        viewer: Option<&str>,
        window: (i64, i64),
        radius_m: f64,
        min_ms: i64,
    ) -> Result<Vec<StayAt>, EngineError> {
        let shown = self.shown_whole_route(record, viewer, window)?;
        Ok(shown
            .runs()
            .into_iter()
            .flat_map(|run| stays(run, radius_m, min_ms))
            .map(|stay| StayAt {
                poi: self.nearest_poi(stay.centre, radius_m),
                stay,
            })
            .collect())
    }

    /// Sets `traveller`'s shrouds on its record as its zones now are; its moves still
    /// waiting are judged with them, then fences and live maps judge it again (cause
    /// `sharing`).
    fn refresh_shrouds(&self, traveller: &str, shrouds: Option<Arc<Shrouds>>, now_ms: i64) {
        // Shrouds first: unlike a sharing change, a zone hides what came before it too, so
        // the moves still waiting are judged with it.
        self.travellers.set_shrouds(traveller, shrouds);
        self.judge_pending(traveller);
        if self.has_observers() {
            let at = self.travellers.seen_at(traveller);
            self.changed(traveller, Cause::Sharing, now_ms, at);
        }
        // What a trip's readers may see of its stored route changed too: its streams read
        // again, under the zones as they now are.
        self.notify_trips_of(traveller);
    }

    /// Restores a zone read from a snapshot.
    pub(super) fn restore_privacy_zone(&self, zone: PrivacyZone) {
        let traveller = zone.traveller().to_owned();
        let (shrouds, _) = self.zones.put(zone);
        self.travellers.set_shrouds(&traveller, Some(shrouds));
    }

    /// Every zone (for a snapshot).
    pub(super) fn export_privacy_zones(&self) -> Vec<PrivacyZone> {
        self.zones.export()
    }

    /// Forgets `traveller`'s zones (it was deleted); whether it had any.
    pub(super) fn forget_privacy_zones(&self, traveller: &str) -> bool {
        self.zones.remove_all(traveller) > 0
    }

    /// How many privacy zones there are.
    pub fn privacy_zone_count(&self) -> usize {
        self.zones.len()
    }
}

impl Change for PutPrivacyZone {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = Stored;

    fn check(&self, engine: &Engine) -> Result<(), EngineError> {
        Ok(engine.zones.check_put(&self.zone)?)
    }

    fn apply(self, engine: &Engine, now_ms: i64) -> Result<Stored, EngineError> {
        let traveller = self.zone.traveller().to_owned();
        let (shrouds, created) = engine.zones.put(self.zone);
        engine.refresh_shrouds(&traveller, Some(shrouds), now_ms);
        Ok(Stored { created })
    }
}

impl Change for DeletePrivacyZone {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = Removed;

    fn apply(self, engine: &Engine, now_ms: i64) -> Result<Removed, EngineError> {
        let (shrouds, existed) = engine.zones.remove(&self.traveller, &self.zone);
        if existed {
            engine.refresh_shrouds(&self.traveller, shrouds, now_ms);
        }
        Ok(Removed { existed })
    }
}
