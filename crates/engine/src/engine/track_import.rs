//! Recorded tracks into a trip's route: each chunk of an import's points is one
//! [`ImportTrackPoints`] change, logged and applied like every other, so that the route
//! store, derived from the log, holds them after a crash and on every cluster node. The
//! points join the route only (keyed by trip and `ts`, so importing a file again changes
//! nothing); they never move the traveller's live position, trail or fences: they are
//! history.

use super::mutation::{Change, ImportTrackPoints, Order};
use super::routes::PendingPoints;
use super::{Engine, EngineError, Written};
use crate::routes::RoutePoint;
use crate::trips::TripError;

/// The most points one chunk of an import carries (one log record of about 0.6 MB).
pub const TRACK_CHUNK_POINTS: usize = 25_000;

/// What became of one chunk of an import.
#[derive(Debug, Default)]
pub struct TrackChunk {
    /// Points sent to the route.
    pub stored: usize,
    /// Indices (in the chunk) of points outside the trip's window, not stored.
    pub outside: Vec<usize>,
}

impl Engine {
    /// Adds `points` of a recorded track to trip `trip`'s route (a chunk of at most
    /// [`TRACK_CHUNK_POINTS`], so that one log record stays small); those outside the
    /// trip's window are given back by index.
    pub fn import_track_points(
        &self,
        trip: &str,
        points: Vec<RoutePoint>,
    ) -> Result<(Written<()>, TrackChunk), EngineError> {
        let record = self
            .trips
            .get(trip)
            .ok_or_else(|| TripError::NotFound(trip.to_owned()))?;
        let (from, to) = (record.trip.started_at(), record.trip.until());
        let mut chunk = TrackChunk::default();
        let kept: Vec<RoutePoint> = points
            .into_iter()
            .enumerate()
            .filter_map(|(i, p)| {
                if (from..=to).contains(&p.ts) {
                    Some(p)
                } else {
                    chunk.outside.push(i);
                    None
                }
            })
            .collect();
        chunk.stored = kept.len();
        let written = self.write(ImportTrackPoints {
            trip: trip.to_owned(),
            points: kept,
        })?;
        Ok((written, chunk))
    }
}

impl Engine {
    /// Settles trip `trip`'s points applied so far into its chunks, so that an import's
    /// next chunk finds none of its points waiting (blocking: call it off the async
    /// workers, between chunks; it takes no lock of the write path). Left to the route
    /// thread, a 1 GB `Records.json` (4 million points of one trip) waited in memory and in
    /// fresh pieces, and settling them at once took 480 MB (`scripts/takeout-bench.sh`);
    /// settled a chunk at a time, an import's memory does not grow with its file.
    pub fn settle_imported(&self, trip: &str) {
        self.routes.settle_trip(trip);
    }
}

impl Change for ImportTrackPoints {
    const ORDER: Order = Order::TravellersExclusive;
    type Outcome = ();

    fn check(&self, engine: &Engine) -> Result<(), EngineError> {
        match engine.trips.get(&self.trip) {
            Some(_) => Ok(()),
            None => Err(TripError::NotFound(self.trip.clone()).into()),
        }
    }

    fn apply(self, engine: &Engine, _now_ms: i64) -> Result<(), EngineError> {
        if engine.routes.skipping() || self.points.is_empty() {
            return Ok(());
        }
        // The trip may have gone or narrowed since the points were logged: what it holds
        // now decides, as for live reports.
        let Some(record) = engine.trips.get(&self.trip) else {
            return Ok(());
        };
        let (from, to) = (record.trip.started_at(), record.trip.until());
        let mut points = PendingPoints::default();
        for p in self
            .points
            .into_iter()
            .filter(|p| (from..=to).contains(&p.ts))
        {
            points.push(&self.trip, p);
        }
        if !points.is_empty() {
            engine.routes.push(&points);
        }
        Ok(())
    }
}
