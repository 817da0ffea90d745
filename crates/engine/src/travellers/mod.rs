//! Travellers: moving points, their recent trail, who may see them, and how long they live.
//!
//! [`TravellerIndex`] keeps each traveller's record in one of 256 shards, each a
//! `RwLock`ed slab of 72-byte slots with an id table (`shard`, `record`), and its
//! position in a [`cells::CellIndex`] of geohash cells holding 4-byte handles. There is no
//! global lock: an update locks its traveller's shard, and, only if it crosses into another
//! fine cell, the two cell buckets involved. Updates for the same traveller are serialized
//! by its shard lock, so the newest `ts` wins whatever order updates arrive in.
//!
//! Files: the public types are here; `record` packs one traveller's state, `shard`
//! stores records, `index` keeps records and cells in step, `nearby` answers the nearest
//! travellers, [`cells`] is the cell index, and `trail` and `sharing` hold a traveller's
//! recent positions and who may see it.
//!
//! Time is a parameter, never read here: callers pass the receive time (`received_ms`) of an
//! update and the current time (`now_ms`) of a query, so tests control the clock.

pub mod cells;
mod index;
mod nearby;
mod record;
mod seen;
mod shard;
pub mod sharing;
mod trail;
mod within;

#[cfg(test)]
mod oracle_tests;

pub use index::TravellerIndex;
pub use seen::{Seen, TravellerHandle};

pub use sharing::{MAX_VIEWERS, Sharing, SharingError, Since, TripShare, Visibility};
pub use trail::{Trail, TrailPoint};
pub use within::TravellerPage;

use crate::geometry::{CoordError, LatLon};
use crate::ids::{IdError, validate_id};

/// A traveller id as the index stores it: ids of up to 24 bytes (the usual case) are held
/// inline, so finding a traveller by id compares bytes already in the map's own cache line.
/// With `Arc<str>` keys that comparison was a cache miss on a separate allocation, 40 % of
/// an update's time on 1M travellers, and the allocation cost 32 to 48 bytes each.
pub(crate) type TravellerId = compact_str::CompactString;

/// One position report. Deserializing validates it as [`PositionUpdate::new`] does.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "PositionUpdateFields")]
pub struct PositionUpdate {
    /// Traveller id.
    pub id: String,
    /// Where.
    pub position: LatLon,
    /// When, Unix milliseconds, by the device's clock.
    pub ts: i64,
    /// Reported accuracy radius in metres.
    pub accuracy_m: Option<f64>,
    /// The trip this position belongs to.
    pub trip_id: Option<String>,
}

/// [`PositionUpdate`]'s fields as read, before they are checked.
#[derive(serde::Deserialize)]
struct PositionUpdateFields {
    id: String,
    position: LatLon,
    ts: i64,
    accuracy_m: Option<f64>,
    trip_id: Option<String>,
}

impl TryFrom<PositionUpdateFields> for PositionUpdate {
    type Error = UpdateError;

    fn try_from(f: PositionUpdateFields) -> Result<Self, UpdateError> {
        let LatLon { lat, lon } = f.position;
        Self::new(f.id, lat, lon, f.ts, f.accuracy_m, f.trip_id)
    }
}

/// Why a position update was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpdateError {
    /// The traveller id is malformed.
    #[error("id: {0}")]
    Id(IdError),
    /// The coordinate is out of range.
    #[error("{0}")]
    Coord(#[from] CoordError),
    /// The timestamp is negative.
    #[error("ts must be a non-negative integer (Unix milliseconds), got {0}")]
    Ts(i64),
    /// The accuracy is negative or not finite.
    #[error("accuracy_m must be a finite number >= 0, got {0}")]
    Accuracy(f64),
    /// The trip id is malformed.
    #[error("trip_id: {0}")]
    TripId(IdError),
}

impl PositionUpdate {
    /// Validates an update.
    pub fn new(
        id: String,
        lat: f64,
        lon: f64,
        ts: i64,
        accuracy_m: Option<f64>,
        trip_id: Option<String>,
    ) -> Result<Self, UpdateError> {
        validate_id(&id).map_err(UpdateError::Id)?;
        let position = LatLon::new(lat, lon)?;
        if ts < 0 {
            return Err(UpdateError::Ts(ts));
        }
        if let Some(a) = accuracy_m
            && !(a.is_finite() && a >= 0.0)
        {
            return Err(UpdateError::Accuracy(a));
        }
        if let Some(trip) = &trip_id {
            validate_id(trip).map_err(UpdateError::TripId)?;
        }
        Ok(Self {
            id,
            position,
            ts,
            accuracy_m,
            trip_id,
        })
    }
}

/// Whether an update moved its traveller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// It is the traveller's newest position now.
    Applied,
    /// It was not newer than the stored position (or already past the time-to-live); it joined
    /// the trail if the trail had room for it.
    Stale,
}

/// Where a traveller was at one of its moves: the position, its `ts`, and when it was seen
/// (`ts`, or the time received if the device clock ran ahead).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeenAt {
    /// The position reported.
    pub position: LatLon,
    /// Its timestamp.
    pub ts: i64,
    /// When its age counts from.
    pub seen_ms: i64,
}

/// A traveller and where it is now: what every answer about travellers is built on.
#[derive(Debug, Clone, PartialEq)]
pub struct TravellerAt {
    /// Id.
    pub id: String,
    /// Newest position.
    pub position: LatLon,
    /// Its timestamp.
    pub ts: i64,
}

/// A traveller as a reader sees it when it asks for that traveller.
#[derive(Debug, Clone, PartialEq)]
pub struct TravellerView {
    /// The traveller and where it is.
    pub at: TravellerAt,
    /// Its accuracy, if reported.
    pub accuracy_m: Option<f64>,
    /// Its trip, if reported.
    pub trip_id: Option<String>,
}

/// A traveller found near a place.
#[derive(Debug, Clone, PartialEq)]
pub struct TravellerHit {
    /// The traveller and where it is.
    pub at: TravellerAt,
    /// Great-circle distance from the query centre, metres.
    pub distance_m: f64,
}

/// A traveller's whole state, as snapshots store it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TravellerRecord {
    /// Id.
    pub id: String,
    /// Newest position, if any.
    pub current: Option<CurrentRecord>,
    /// Recent positions, oldest first.
    pub trail: Vec<TrailPoint>,
    /// Who may see it.
    pub sharing: Sharing,
    /// Since when its viewers may see its history.
    pub since: Since,
}

/// A traveller's state as snapshots of format version 1 stored it, before viewers had
/// thresholds: read as a record whose viewers see everything kept.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LegacyTravellerRecord {
    /// Id.
    pub id: String,
    /// Newest position, if any.
    pub current: Option<CurrentRecord>,
    /// Recent positions, oldest first.
    pub trail: Vec<TrailPoint>,
    /// Who may see it.
    pub sharing: Sharing,
}

impl From<LegacyTravellerRecord> for TravellerRecord {
    fn from(r: LegacyTravellerRecord) -> Self {
        Self {
            id: r.id,
            current: r.current,
            trail: r.trail,
            sharing: r.sharing,
            since: Since::default(),
        }
    }
}

impl TravellerRecord {
    /// Holds the ids a record carries as plain strings to the edge's rules (its positions
    /// and sharing check themselves when deserialized).
    pub fn check_ids(&self) -> Result<(), String> {
        validate_id(&self.id).map_err(|e| format!("id: {e}"))?;
        let trip = self.current.as_ref().and_then(|c| c.trip_id.as_deref());
        if let Some(trip) = trip {
            validate_id(trip).map_err(|e| format!("trip_id: {e}"))?;
        }
        Ok(())
    }
}

/// A traveller's newest position, as snapshots store it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CurrentRecord {
    /// Where.
    pub position: LatLon,
    /// Device timestamp.
    pub ts: i64,
    /// `min(ts, receive time)`.
    pub seen_ms: i64,
    /// Accuracy, metres.
    pub accuracy_m: Option<f64>,
    /// Trip.
    pub trip_id: Option<String>,
}

/// Tunables of a [`TravellerIndex`].
#[derive(Debug, Clone, Copy)]
pub struct TravellerConfig {
    /// Positions kept per trail.
    pub trail_capacity: usize,
    /// A traveller whose newest position is older than this disappears.
    pub ttl_ms: i64,
}
