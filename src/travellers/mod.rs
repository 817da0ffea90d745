//! Travellers: moving points, their recent trail, who may see them, and how long they live.
//!
//! [`TravellerIndex`] keeps each traveller's state in a sharded concurrent map (`DashMap`,
//! 256 shards) keyed by id, and its position in a [`cells::CellIndex`] of geohash cells. There
//! is no global lock: an update locks its traveller's shard, and, only if it crosses into
//! another fine cell, the two cell buckets involved. Updates for the same traveller are
//! serialized by its shard lock, so the newest `ts` wins whatever order updates arrive in.
//!
//! Time is a parameter, never read here: callers pass the receive time (`received_ms`) of an
//! update and the current time (`now_ms`) of a query, so tests control the clock.

pub mod cells;
mod sharing;
mod trail;

#[cfg(test)]
mod oracle_tests;

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use dashmap::DashMap;
use foldhash::fast::RandomState;

pub use sharing::{MAX_VIEWERS, Sharing, SharingError, Visibility};
pub use trail::{Trail, TrailPoint};

use self::cells::{COARSE, CellIndex, Cover, FINE, cell_bound};
use crate::geometry::{BBox, CoordError, LatLon, chord2_bound, haversine_m};
use crate::ids::{IdError, validate_id};

/// A traveller id as the index stores it: ids of up to 24 bytes (the usual case) are held
/// inline, so finding a traveller by id compares bytes already in the map's own cache line.
/// With `Arc<str>` keys that comparison was a cache miss on a separate allocation, 40 % of
/// an update's time on 1M travellers, and the allocation cost 32 to 48 bytes each.
pub(crate) type TravellerId = compact_str::CompactString;

/// Shards per concurrent map: enough that a sweep holding one shard briefly stalls few
/// updates, and that 16 cores rarely meet on one lock.
const SHARDS: usize = 256;

/// One position report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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

/// A traveller as a reader sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TravellerView {
    /// Id.
    pub id: String,
    /// Newest position.
    pub position: LatLon,
    /// Its timestamp.
    pub ts: i64,
    /// Its accuracy, if reported.
    pub accuracy_m: Option<f64>,
    /// Its trip, if reported.
    pub trip_id: Option<String>,
}

/// A traveller found near a place.
#[derive(Debug, Clone, PartialEq)]
pub struct TravellerHit {
    /// Id.
    pub id: String,
    /// Newest position.
    pub position: LatLon,
    /// Its timestamp.
    pub ts: i64,
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

#[derive(Debug, Clone)]
struct Current {
    position: LatLon,
    ts: i64,
    /// `min(ts, received)`: the moment the position's age counts from.
    seen_ms: i64,
    accuracy_m: Option<f64>,
    trip_id: Option<Box<str>>,
    cell: u64,
}

#[derive(Debug, Clone, Default)]
struct Traveller {
    current: Option<Current>,
    trail: Trail,
    sharing: Sharing,
}

/// The moving-object index.
///
/// Invariants: a traveller with a current position has its id in exactly one fine cell of
/// `cells`, the cell of that position; a traveller without one is in no cell. A state with no
/// current position and default sharing is garbage the sweeper removes.
#[derive(Debug)]
pub struct TravellerIndex {
    states: DashMap<TravellerId, Traveller, RandomState>,
    cells: CellIndex,
    config: TravellerConfig,
}

impl TravellerIndex {
    /// An empty index.
    pub fn new(config: TravellerConfig) -> Self {
        Self {
            states: DashMap::with_hasher_and_shard_amount(RandomState::default(), SHARDS),
            cells: CellIndex::with_shards(SHARDS),
            config,
        }
    }

    fn live(&self, current: &Current, now_ms: i64) -> bool {
        now_ms.saturating_sub(current.seen_ms) <= self.config.ttl_ms
    }

    /// Applies one position report received at `received_ms`.
    pub fn update(&self, update: &PositionUpdate, received_ms: i64) -> UpdateOutcome {
        if let Some(mut entry) = self.states.get_mut(update.id.as_str()) {
            let (key, traveller) = entry.pair_mut();
            return self.apply(key, traveller, update, received_ms);
        }
        let seen_ms = update.ts.min(received_ms);
        if received_ms.saturating_sub(seen_ms) > self.config.ttl_ms {
            return UpdateOutcome::Stale; // already expired: nothing to create
        }
        let key: TravellerId = TravellerId::from(update.id.as_str());
        let mut entry = self.states.entry(key).or_default();
        let (key, traveller) = entry.pair_mut();
        self.apply(key, traveller, update, received_ms)
    }

    fn apply(
        &self,
        key: &TravellerId,
        t: &mut Traveller,
        u: &PositionUpdate,
        received_ms: i64,
    ) -> UpdateOutcome {
        // An expired position is gone, whether or not the sweeper has freed it yet.
        if let Some(c) = &t.current
            && !self.live(c, received_ms)
        {
            self.cells.remove(c.cell, key);
            t.current = None;
            t.trail = Trail::default();
        }
        let point = TrailPoint {
            position: u.position,
            ts: u.ts,
        };
        let seen_ms = u.ts.min(received_ms);
        let newer = t.current.as_ref().is_none_or(|c| u.ts > c.ts);
        if !newer {
            t.trail.insert(point, self.config.trail_capacity);
            return UpdateOutcome::Stale;
        }
        if received_ms.saturating_sub(seen_ms) > self.config.ttl_ms {
            return UpdateOutcome::Stale;
        }
        let cell = FINE.cell(u.position.lat, u.position.lon);
        match t.current.as_ref().map(|c| c.cell) {
            Some(old) if old == cell => {}
            Some(old) => {
                self.cells.remove(old, key);
                self.cells.insert(cell, key.clone());
            }
            None => self.cells.insert(cell, key.clone()),
        }
        t.current = Some(Current {
            position: u.position,
            ts: u.ts,
            seen_ms,
            accuracy_m: u.accuracy_m,
            trip_id: u.trip_id.as_deref().map(Box::from),
            cell,
        });
        t.trail.insert(point, self.config.trail_capacity);
        UpdateOutcome::Applied
    }

    /// The traveller, if it is live and `viewer` may see it.
    pub fn get(&self, id: &str, viewer: Option<&str>, now_ms: i64) -> Option<TravellerView> {
        let t = self.states.get(id)?;
        let c = t.current.as_ref().filter(|c| self.live(c, now_ms))?;
        t.sharing.allows(id, viewer).then(|| TravellerView {
            id: id.to_string(),
            position: c.position,
            ts: c.ts,
            accuracy_m: c.accuracy_m,
            trip_id: c.trip_id.as_deref().map(String::from),
        })
    }

    /// The trail points with `ts >= since`, oldest first, if the traveller is live and
    /// `viewer` may see it.
    pub fn trail(
        &self,
        id: &str,
        viewer: Option<&str>,
        since: i64,
        now_ms: i64,
    ) -> Option<Vec<TrailPoint>> {
        let t = self.states.get(id)?;
        t.current.as_ref().filter(|c| self.live(c, now_ms))?;
        t.sharing
            .allows(id, viewer)
            .then(|| t.trail.since(since).copied().collect())
    }

    /// Sets who may see a traveller (creating its state if it has none yet).
    pub fn set_sharing(&self, id: &str, sharing: Sharing) {
        match self.states.get_mut(id) {
            Some(mut t) => t.sharing = sharing,
            None => {
                self.states
                    .entry(TravellerId::from(id))
                    .or_default()
                    .sharing = sharing
            }
        }
    }

    /// Forgets a traveller entirely. Returns whether there was anything a reader could have
    /// seen: a live position or a sharing setting (an expired position is already gone).
    pub fn delete(&self, id: &str, now_ms: i64) -> bool {
        let mut existed = false;
        // The cell removal runs inside the predicate, under the traveller's shard lock, so a
        // concurrent update cannot re-add the id in between.
        self.states.remove_if(id, |key, t| {
            if let Some(c) = &t.current {
                existed = self.live(c, now_ms);
                self.cells.remove(c.cell, key);
            }
            existed |= !t.sharing.is_default();
            true
        });
        existed
    }

    /// Frees the memory of every traveller expired at `now_ms`, a shard at a time, so updates
    /// elsewhere never wait. Returns how many positions were dropped.
    pub fn sweep(&self, now_ms: i64) -> usize {
        let candidates: Vec<TravellerId> = self
            .states
            .iter()
            .filter(|e| e.current.as_ref().is_none_or(|c| !self.live(c, now_ms)))
            .map(|e| e.key().clone())
            .collect();
        let mut dropped = 0;
        for key in candidates {
            let Some(mut entry) = self.states.get_mut(&key) else {
                continue;
            };
            let t = entry.value_mut();
            if let Some(c) = &t.current {
                if self.live(c, now_ms) {
                    continue; // updated since the scan
                }
                self.cells.remove(c.cell, &key);
                t.current = None;
                t.trail = Trail::default();
                dropped += 1;
            }
            let garbage = t.sharing.is_default();
            drop(entry);
            if garbage {
                self.states
                    .remove_if(&*key, |_, t| t.current.is_none() && t.sharing.is_default());
            }
        }
        dropped
    }

    /// Passes every traveller's state to `f`, a shard at a time (each shard is read-locked
    /// only while its travellers are passed).
    pub fn export<E>(&self, mut f: impl FnMut(TravellerRecord) -> Result<(), E>) -> Result<(), E> {
        for entry in self.states.iter() {
            let t = entry.value();
            f(TravellerRecord {
                id: entry.key().to_string(),
                current: t.current.as_ref().map(|c| CurrentRecord {
                    position: c.position,
                    ts: c.ts,
                    seen_ms: c.seen_ms,
                    accuracy_m: c.accuracy_m,
                    trip_id: c.trip_id.as_deref().map(String::from),
                }),
                trail: t.trail.since(i64::MIN).copied().collect(),
                sharing: t.sharing.clone(),
            })?;
        }
        Ok(())
    }

    /// Puts back a traveller's state as [`TravellerIndex::export`] gave it, replacing any.
    pub fn restore(&self, record: TravellerRecord) {
        let key: TravellerId = TravellerId::from(record.id.as_str());
        let mut trail = Trail::default();
        for point in record.trail {
            trail.insert(point, self.config.trail_capacity);
        }
        let current = record.current.map(|c| Current {
            cell: FINE.cell(c.position.lat, c.position.lon),
            position: c.position,
            ts: c.ts,
            seen_ms: c.seen_ms,
            accuracy_m: c.accuracy_m,
            trip_id: c.trip_id.map(String::into_boxed_str),
        });
        let mut entry = self.states.entry(key).or_default();
        let (key, t) = entry.pair_mut();
        if let Some(old) = &t.current {
            self.cells.remove(old.cell, key);
        }
        if let Some(c) = &current {
            self.cells.insert(c.cell, key.clone());
        }
        *t = Traveller {
            current,
            trail,
            sharing: record.sharing,
        };
    }

    /// Forgets every traveller.
    pub fn clear(&self) {
        self.states.clear();
        self.cells.clear();
    }

    /// Number of travellers with state (live, or kept for their sharing setting, or expired
    /// and not yet swept).
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether no traveller has state.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Live travellers within `radius_m` of `center` that `viewer` may see, nearest first,
    /// ties broken by id, at most `limit`.
    ///
    /// Cells are opened nearest first (coarse cells ranked by a lower bound of their
    /// distance), and the walk stops when the next cell cannot hold anything nearer than the
    /// `limit`-th traveller found. A traveller counts only in the cell its state names, so one
    /// that moves during the query is seen at most once.
    pub fn nearby(
        &self,
        center: LatLon,
        radius_m: f64,
        limit: usize,
        viewer: Option<&str>,
        now_ms: i64,
    ) -> Vec<TravellerHit> {
        let mut search = Search {
            index: self,
            center,
            q: center.to_unit(),
            radius_m,
            limit,
            viewer,
            now_ms,
            bound: chord2_bound(radius_m),
            heap: BinaryHeap::new(),
            ids: Vec::new(),
        };
        match self.cells.cover_cap(center, radius_m) {
            Cover::Fine(cells) => cells.into_iter().for_each(|cell| search.open(cell)),
            Cover::Coarse(ranked) => {
                for (lower, coarse) in ranked {
                    if lower > search.bound {
                        break;
                    }
                    let mut children: Vec<(f64, u64)> = self
                        .cells
                        .children(coarse)
                        .into_iter()
                        .map(|cell| (cell_bound(FINE, cell, search.q), cell))
                        .collect();
                    children.sort_by(|a, b| a.0.total_cmp(&b.0));
                    for (lower, cell) in children {
                        if lower > search.bound {
                            break;
                        }
                        search.open(cell);
                    }
                }
            }
        }
        search
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.hit)
            .collect()
    }

    /// Calls `f` with the position of every live public traveller inside `bbox`.
    pub fn for_each_public_in(&self, bbox: &BBox, now_ms: i64, mut f: impl FnMut(LatLon)) {
        let lons: Vec<(f64, f64)> = if bbox.crosses_antimeridian() {
            vec![(bbox.min_lon, 180.0), (-180.0, bbox.max_lon)]
        } else {
            vec![(bbox.min_lon, bbox.max_lon)]
        };
        let fine_cells = match self.cells.cover_box(bbox.min_lat, bbox.max_lat, &lons) {
            Cover::Fine(cells) => cells,
            Cover::Coarse(ranked) => ranked
                .into_iter()
                .flat_map(|(_, c)| self.cells.children(c))
                .collect(),
        };
        let mut ids = Vec::new();
        for cell in fine_cells {
            ids.clear();
            self.cells.ids_in(cell, &mut ids);
            for id in &ids {
                let Some(t) = self.states.get(&**id) else {
                    continue;
                };
                if t.sharing.visibility() != Visibility::Public {
                    continue;
                }
                if let Some(c) = &t.current
                    && c.cell == cell
                    && self.live(c, now_ms)
                    && bbox.contains(c.position)
                {
                    f(c.position);
                }
            }
        }
    }

    /// Checks the cell invariant (for tests): every traveller with a position is in exactly
    /// the fine cell of that position, and no cell holds anyone else.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut placed = 0usize;
        for entry in self.states.iter() {
            if let Some(c) = &entry.current {
                placed += 1;
                let expected = FINE.cell(c.position.lat, c.position.lon);
                if c.cell != expected {
                    return Err(format!(
                        "{} records cell {} but is at {expected}",
                        entry.key(),
                        c.cell
                    ));
                }
                let mut ids = Vec::new();
                self.cells.ids_in(c.cell, &mut ids);
                let n = ids.iter().filter(|x| ***x == **entry.key()).count();
                if n != 1 {
                    return Err(format!("{} appears {n} times in its cell", entry.key()));
                }
            }
        }
        let in_cells: usize = self.cells.bucket_sizes().iter().sum();
        let coarse_total: usize = self.cells.coarse_counts().iter().map(|&c| c as usize).sum();
        if in_cells != placed || coarse_total != placed {
            return Err(format!(
                "{placed} placed travellers, {in_cells} ids in fine cells, {coarse_total} in coarse counts"
            ));
        }
        Ok(())
    }
}

/// A kept candidate, ordered by `(distance, id)`.
struct Ranked {
    hit: TravellerHit,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.hit
            .distance_m
            .total_cmp(&other.hit.distance_m)
            .then_with(|| self.hit.id.cmp(&other.hit.id))
    }
}

/// The state of one nearby query.
struct Search<'a> {
    index: &'a TravellerIndex,
    center: LatLon,
    q: [f64; 3],
    radius_m: f64,
    limit: usize,
    viewer: Option<&'a str>,
    now_ms: i64,
    /// Squared chord beyond which nothing can enter the result.
    bound: f64,
    heap: BinaryHeap<Ranked>,
    ids: Vec<TravellerId>,
}

impl Search<'_> {
    fn open(&mut self, cell: u64) {
        self.ids.clear();
        self.index.cells.ids_in(cell, &mut self.ids);
        for id in &self.ids {
            let Some(t) = self.index.states.get(&**id) else {
                continue;
            };
            let Some(c) = &t.current else { continue };
            if c.cell != cell
                || !self.index.live(c, self.now_ms)
                || !t.sharing.allows(id, self.viewer)
            {
                continue;
            }
            let distance_m = haversine_m(self.center, c.position);
            if distance_m > self.radius_m {
                continue;
            }
            let worse = self.heap.len() >= self.limit
                && self
                    .heap
                    .peek()
                    .is_some_and(|w| (distance_m, &**id) >= (w.hit.distance_m, w.hit.id.as_str()));
            if worse || self.limit == 0 {
                continue;
            }
            let hit = TravellerHit {
                id: id.to_string(),
                position: c.position,
                ts: c.ts,
                distance_m,
            };
            drop(t);
            self.heap.push(Ranked { hit });
            if self.heap.len() > self.limit {
                self.heap.pop();
            }
            if self.heap.len() == self.limit {
                let worst = self.heap.peek().expect("heap is full").hit.distance_m;
                self.bound = self.bound.min(chord2_bound(worst));
            }
        }
    }
}

const _: () = assert!(
    COARSE.bits() < FINE.bits(),
    "coarse cells must contain fine ones"
);
