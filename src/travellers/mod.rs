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
use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use parking_lot::RwLock;

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

/// Shards of records (and of each cell map): enough that a sweep holding one shard briefly
/// stalls few updates, and that 16 cores rarely meet on one lock.
const SHARDS: usize = 1 << SHARD_BITS;

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

/// Where a traveller's record lives: its shard in the top [`SHARD_BITS`] bits, its slot in
/// that shard below. Cell buckets hold handles (4 bytes) rather than ids.
type Handle = u32;

/// log2 of the number of shards.
const SHARD_BITS: u32 = 8;
/// Slots per shard at most (2^24: 4 billion travellers in all).
const SLOT_BITS: u32 = 32 - SHARD_BITS;
/// Slots are allocated this many at a time, so a shard never holds more than one partly
/// used chunk (a doubling `Vec` would leave a quarter of the records unused on average).
const CHUNK: usize = 256;
/// `Slot::cell` of a traveller without a current position.
const NO_CELL: u32 = u32::MAX;

fn handle(shard: usize, slot: u32) -> Handle {
    ((shard as u32) << SLOT_BITS) | slot
}

fn split(handle: Handle) -> (usize, u32) {
    (
        (handle >> SLOT_BITS) as usize,
        handle & ((1 << SLOT_BITS) - 1),
    )
}

/// One traveller's record: 72 bytes. The current position, its timestamps and fine cell,
/// and the visibility are inline, because every update and every query reads them; the
/// rare parts (accuracy, trip, a friends list) are behind one pointer that most travellers
/// leave empty.
#[derive(Debug)]
struct Slot {
    /// Empty for a free slot (ids are never empty).
    id: TravellerId,
    position: LatLon,
    ts: i64,
    /// The fine cell of `position`, or [`NO_CELL`] when there is no current position.
    cell: u32,
    /// The visibility (low 2 bits) and how long before `ts` the position's age counts from
    /// (`ts - seen_ms`, in ms, the upper 30 bits: 0 unless the device clock runs ahead of
    /// the server's). A lag that does not fit (12 days ahead) is [`LAG_IN_EXTRA`], and the
    /// exact moment is in `extra`. Packed so that the record is 72 bytes, not 80.
    packed: u32,
    trail: Trail,
    extra: Option<Box<Extra>>,
}

/// The lag value meaning "`seen_ms` is in `extra`".
const LAG_IN_EXTRA: u32 = (1 << 30) - 1;

/// The parts of a record most travellers do not have.
#[derive(Debug, Default, Clone, PartialEq)]
struct Extra {
    accuracy_m: Option<f64>,
    trip_id: Option<Box<str>>,
    /// Sorted (see [`Sharing`]).
    viewers: Box<[Box<str>]>,
    /// The moment the position's age counts from, when it is too far before `ts` to pack.
    seen_ms: Option<i64>,
}

impl Extra {
    fn is_empty(&self) -> bool {
        self.accuracy_m.is_none()
            && self.trip_id.is_none()
            && self.viewers.is_empty()
            && self.seen_ms.is_none()
    }
}

impl Default for Slot {
    /// A free slot.
    fn default() -> Self {
        Self {
            id: TravellerId::default(),
            position: LatLon::default(),
            ts: 0,
            cell: NO_CELL,
            packed: visibility_bits(Visibility::Private),
            trail: Trail::default(),
            extra: None,
        }
    }
}

fn visibility_bits(visibility: Visibility) -> u32 {
    match visibility {
        Visibility::Private => 0,
        Visibility::Friends => 1,
        Visibility::Public => 2,
    }
}

impl Slot {
    fn has_current(&self) -> bool {
        self.cell != NO_CELL
    }

    fn visibility(&self) -> Visibility {
        match self.packed & 3 {
            0 => Visibility::Private,
            1 => Visibility::Friends,
            _ => Visibility::Public,
        }
    }

    fn set_visibility(&mut self, visibility: Visibility) {
        self.packed = (self.packed & !3) | visibility_bits(visibility);
    }

    /// The moment the current position's age counts from.
    fn seen_ms(&self) -> i64 {
        match self.packed >> 2 {
            LAG_IN_EXTRA => self
                .extra
                .as_ref()
                .and_then(|e| e.seen_ms)
                .expect("a lag in extra is there"),
            lag => self.ts - i64::from(lag),
        }
    }

    /// Sets the current position's timestamp and the moment its age counts from.
    fn set_times(&mut self, ts: i64, seen_ms: i64) {
        self.ts = ts;
        let lag = ts
            .checked_sub(seen_ms)
            .and_then(|lag| u32::try_from(lag).ok())
            .filter(|&lag| lag < LAG_IN_EXTRA);
        self.packed = (self.packed & 3) | (lag.unwrap_or(LAG_IN_EXTRA) << 2);
        self.edit_extra(lag.is_none(), |extra| {
            extra.seen_ms = lag.is_none().then_some(seen_ms);
        });
    }

    fn viewers(&self) -> &[Box<str>] {
        self.extra.as_ref().map_or(&[], |e| &e.viewers)
    }

    fn allows(&self, viewer: Option<&str>) -> bool {
        sharing::allows(self.visibility(), self.viewers(), &self.id, viewer)
    }

    fn sharing_is_default(&self) -> bool {
        sharing::is_default(self.visibility(), self.viewers())
    }

    fn accuracy_m(&self) -> Option<f64> {
        self.extra.as_ref().and_then(|e| e.accuracy_m)
    }

    fn trip_id(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.trip_id.as_deref())
    }

    /// Sets the rare parts of the current position, allocating only if there are any.
    fn set_position_extra(&mut self, accuracy_m: Option<f64>, trip_id: Option<&str>) {
        let needed = accuracy_m.is_some() || trip_id.is_some();
        self.edit_extra(needed, |extra| {
            extra.accuracy_m = accuracy_m;
            extra.trip_id = trip_id.map(Box::from);
        });
    }

    fn set_sharing(&mut self, sharing: Sharing) {
        let (visibility, viewers) = sharing.into_parts();
        self.set_visibility(visibility);
        self.edit_extra(!viewers.is_empty(), |extra| extra.viewers = viewers);
    }

    /// Applies `edit` to the rare parts, creating them only if `needed` (an update that sets
    /// nothing rare must not allocate) and dropping them once they are all empty.
    fn edit_extra(&mut self, needed: bool, edit: impl FnOnce(&mut Extra)) {
        if self.extra.is_none() && !needed {
            return;
        }
        let extra = self.extra.get_or_insert_with(Box::default);
        edit(extra);
        if extra.is_empty() {
            self.extra = None;
        }
    }

    fn sharing(&self) -> Sharing {
        Sharing::from_parts(self.visibility(), self.viewers().into())
    }

    /// Forgets the current position and the trail.
    fn clear_position(&mut self) {
        self.cell = NO_CELL;
        self.trail = Trail::default();
        self.packed &= 3;
        self.edit_extra(false, |extra| {
            extra.accuracy_m = None;
            extra.trip_id = None;
            extra.seen_ms = None;
        });
    }
}

/// One shard: records in chunked slots and an id table of slot numbers.
///
/// Invariants: `by_id` holds exactly the slots whose id is non-empty, each hashed by its id;
/// `free` lists exactly the other slots below `used`.
#[derive(Default)]
struct Shard {
    by_id: HashTable<u32>,
    chunks: Vec<Box<[Slot]>>,
    used: u32,
    free: Vec<u32>,
}

impl Shard {
    fn slot(&self, slot: u32) -> &Slot {
        &self.chunks[slot as usize / CHUNK][slot as usize % CHUNK]
    }

    fn slot_mut(&mut self, slot: u32) -> &mut Slot {
        &mut self.chunks[slot as usize / CHUNK][slot as usize % CHUNK]
    }

    fn find(&self, hash: u64, id: &str) -> Option<u32> {
        self.by_id.find(hash, |&s| self.slot(s).id == id).copied()
    }

    /// A fresh slot holding `id` (which must be absent).
    fn insert(&mut self, hash: u64, id: &str, hasher: &RandomState) -> u32 {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                if self.used as usize == self.chunks.len() * CHUNK {
                    self.chunks
                        .push((0..CHUNK).map(|_| Slot::default()).collect());
                }
                self.used += 1;
                assert!(self.used < 1 << SLOT_BITS, "too many travellers in a shard");
                self.used - 1
            }
        };
        *self.slot_mut(slot) = Slot {
            id: TravellerId::from(id),
            ..Slot::default()
        };
        let chunks = &self.chunks;
        self.by_id.insert_unique(hash, slot, |&s| {
            hasher.hash_one(chunks[s as usize / CHUNK][s as usize % CHUNK].id.as_str())
        });
        slot
    }

    /// Frees `slot` (whose id hashes to `hash`).
    fn remove(&mut self, hash: u64, slot: u32) {
        if let Ok(entry) = self.by_id.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        *self.slot_mut(slot) = Slot::default();
        self.free.push(slot);
    }

    fn live_slots(&self) -> impl Iterator<Item = (u32, &Slot)> {
        (0..self.used)
            .map(|s| (s, self.slot(s)))
            .filter(|(_, slot)| !slot.id.is_empty())
    }
}

/// The moving-object index.
///
/// Records live in `SHARDS` (256) shards, each a `RwLock`ed slab of fixed-size slots with an id
/// table of slot numbers (hand-written rather than a `DashMap<Id, Traveller>`: a map entry
/// holding the whole record left half of each shard's table empty after growth, and a table
/// of 4-byte slot numbers does not; cell buckets then hold 4-byte handles, not ids).
///
/// Invariants: a traveller with a current position has its handle in exactly one fine cell
/// of `cells`, the cell of that position; a traveller without one is in no cell. A record
/// with no current position and default sharing is garbage the sweeper frees.
pub struct TravellerIndex {
    shards: Box<[RwLock<Shard>]>,
    hasher: RandomState,
    cells: CellIndex,
    config: TravellerConfig,
}

impl std::fmt::Debug for TravellerIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TravellerIndex")
            .field("len", &self.len())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TravellerIndex {
    /// An empty index.
    pub fn new(config: TravellerConfig) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            hasher: RandomState::default(),
            cells: CellIndex::with_shards(SHARDS),
            config,
        }
    }

    /// The id's hash and shard. The shard comes from bits below the top seven, which the id
    /// table uses for its control bytes, and above the low bits it uses for the bucket, so
    /// neither is constant within a shard (dashmap picks its shards the same way).
    fn locate(&self, id: &str) -> (u64, usize) {
        let hash = self.hasher.hash_one(id);
        (hash, ((hash << 7) >> (64 - SHARD_BITS)) as usize)
    }

    fn live(&self, slot: &Slot, now_ms: i64) -> bool {
        slot.has_current() && now_ms.saturating_sub(slot.seen_ms()) <= self.config.ttl_ms
    }

    /// Applies one position report received at `received_ms`.
    pub fn update(&self, update: &PositionUpdate, received_ms: i64) -> UpdateOutcome {
        let (hash, s) = self.locate(&update.id);
        let mut shard = self.shards[s].write();
        let slot = match shard.find(hash, &update.id) {
            Some(slot) => slot,
            None => {
                let seen_ms = update.ts.min(received_ms);
                if received_ms.saturating_sub(seen_ms) > self.config.ttl_ms {
                    return UpdateOutcome::Stale; // already expired: nothing to create
                }
                shard.insert(hash, &update.id, &self.hasher)
            }
        };
        self.apply(handle(s, slot), shard.slot_mut(slot), update, received_ms)
    }

    fn apply(
        &self,
        handle: Handle,
        t: &mut Slot,
        u: &PositionUpdate,
        received_ms: i64,
    ) -> UpdateOutcome {
        // An expired position is gone, whether or not the sweeper has freed it yet.
        if t.has_current() && !self.live(t, received_ms) {
            self.cells.remove(u64::from(t.cell), handle);
            t.clear_position();
        }
        let point = TrailPoint {
            position: u.position,
            ts: u.ts,
        };
        let seen_ms = u.ts.min(received_ms);
        let newer = !t.has_current() || u.ts > t.ts;
        if !newer {
            t.trail.insert(point, self.config.trail_capacity);
            return UpdateOutcome::Stale;
        }
        if received_ms.saturating_sub(seen_ms) > self.config.ttl_ms {
            return UpdateOutcome::Stale;
        }
        let cell = fine_cell(u.position);
        if t.cell != cell {
            if t.has_current() {
                self.cells.remove(u64::from(t.cell), handle);
            }
            self.cells.insert(u64::from(cell), handle);
        }
        t.position = u.position;
        t.set_times(u.ts, seen_ms);
        t.cell = cell;
        t.set_position_extra(u.accuracy_m, u.trip_id.as_deref());
        t.trail.insert(point, self.config.trail_capacity);
        UpdateOutcome::Applied
    }

    /// Runs `f` on the traveller's record, read-locked, if it exists.
    fn with_slot<R>(&self, id: &str, f: impl FnOnce(&Slot) -> Option<R>) -> Option<R> {
        let (hash, s) = self.locate(id);
        let shard = self.shards[s].read();
        let slot = shard.find(hash, id)?;
        f(shard.slot(slot))
    }

    /// The traveller, if it is live and `viewer` may see it.
    pub fn get(&self, id: &str, viewer: Option<&str>, now_ms: i64) -> Option<TravellerView> {
        self.with_slot(id, |t| {
            (self.live(t, now_ms) && t.allows(viewer)).then(|| TravellerView {
                id: id.to_string(),
                position: t.position,
                ts: t.ts,
                accuracy_m: t.accuracy_m(),
                trip_id: t.trip_id().map(String::from),
            })
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
        self.with_slot(id, |t| {
            (self.live(t, now_ms) && t.allows(viewer))
                .then(|| t.trail.since(since).copied().collect())
        })
    }

    /// Sets who may see a traveller (creating its record if it has none yet).
    pub fn set_sharing(&self, id: &str, sharing: Sharing) {
        let (hash, s) = self.locate(id);
        let mut shard = self.shards[s].write();
        let slot = match shard.find(hash, id) {
            Some(slot) => slot,
            None => shard.insert(hash, id, &self.hasher),
        };
        shard.slot_mut(slot).set_sharing(sharing);
    }

    /// Forgets a traveller entirely. Returns whether there was anything a reader could have
    /// seen: a live position or a sharing setting (an expired position is already gone).
    pub fn delete(&self, id: &str, now_ms: i64) -> bool {
        let (hash, s) = self.locate(id);
        // The cell removal runs under the shard lock, so a concurrent update cannot re-add
        // the traveller in between.
        let mut shard = self.shards[s].write();
        let Some(slot) = shard.find(hash, id) else {
            return false;
        };
        let t = shard.slot(slot);
        let mut existed = self.live(t, now_ms);
        if t.has_current() {
            self.cells.remove(u64::from(t.cell), handle(s, slot));
        }
        existed |= !t.sharing_is_default();
        shard.remove(hash, slot);
        existed
    }

    /// Frees the memory of every traveller expired at `now_ms`, a shard at a time, so updates
    /// elsewhere never wait. Returns how many positions were dropped.
    pub fn sweep(&self, now_ms: i64) -> usize {
        let mut dropped = 0;
        for (s, shard) in self.shards.iter().enumerate() {
            let mut shard = shard.write();
            let mut garbage = Vec::new();
            for slot in 0..shard.used {
                let t = shard.slot(slot);
                if t.id.is_empty() || self.live(t, now_ms) {
                    continue;
                }
                let cell = t.cell;
                let t = shard.slot_mut(slot);
                if t.has_current() {
                    self.cells.remove(u64::from(cell), handle(s, slot));
                    t.clear_position();
                    dropped += 1;
                }
                if t.sharing_is_default() {
                    garbage.push((self.hasher.hash_one(t.id.as_str()), slot));
                }
            }
            for (hash, slot) in garbage {
                shard.remove(hash, slot);
            }
        }
        dropped
    }

    /// Passes every traveller's state to `f`, a shard at a time (each shard is read-locked
    /// only while its travellers are passed).
    pub fn export<E>(&self, mut f: impl FnMut(TravellerRecord) -> Result<(), E>) -> Result<(), E> {
        for shard in self.shards.iter() {
            let shard = shard.read();
            for (_, t) in shard.live_slots() {
                f(TravellerRecord {
                    id: t.id.to_string(),
                    current: t.has_current().then(|| CurrentRecord {
                        position: t.position,
                        ts: t.ts,
                        seen_ms: t.seen_ms(),
                        accuracy_m: t.accuracy_m(),
                        trip_id: t.trip_id().map(String::from),
                    }),
                    trail: t.trail.since(i64::MIN).copied().collect(),
                    sharing: t.sharing(),
                })?;
            }
        }
        Ok(())
    }

    /// Puts back a traveller's state as [`TravellerIndex::export`] gave it, replacing any.
    pub fn restore(&self, record: TravellerRecord) {
        let (hash, s) = self.locate(&record.id);
        let mut shard = self.shards[s].write();
        let slot = match shard.find(hash, &record.id) {
            Some(slot) => slot,
            None => shard.insert(hash, &record.id, &self.hasher),
        };
        let h = handle(s, slot);
        let t = shard.slot_mut(slot);
        if t.has_current() {
            self.cells.remove(u64::from(t.cell), h);
        }
        t.clear_position();
        for point in record.trail {
            t.trail.insert(point, self.config.trail_capacity);
        }
        if let Some(c) = record.current {
            t.position = c.position;
            t.set_times(c.ts, c.seen_ms);
            t.cell = fine_cell(c.position);
            t.set_position_extra(c.accuracy_m, c.trip_id.as_deref());
            self.cells.insert(u64::from(t.cell), h);
        }
        t.set_sharing(record.sharing);
    }

    /// Forgets every traveller.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            *shard.write() = Shard::default();
        }
        self.cells.clear();
    }

    /// Number of travellers with state (live, or kept for their sharing setting, or expired
    /// and not yet swept).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().by_id.len()).sum()
    }

    /// Whether no traveller has state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live travellers within `radius_m` of `center` that `viewer` may see, nearest first,
    /// ties broken by id, at most `limit`.
    ///
    /// Cells are opened nearest first (coarse cells ranked by a lower bound of their
    /// distance), and the walk stops when the next cell cannot hold anything nearer than the
    /// `limit`-th traveller found. A traveller counts only in the cell its record names, so
    /// one that moves during the query is seen at most once.
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
            handles: Vec::new(),
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
        let mut handles = Vec::new();
        for cell in fine_cells {
            handles.clear();
            self.cells.ids_in(cell, &mut handles);
            for &h in &handles {
                let (s, slot) = split(h);
                let shard = self.shards[s].read();
                let t = shard.slot(slot);
                if t.visibility() == Visibility::Public
                    && u64::from(t.cell) == cell
                    && self.live(t, now_ms)
                    && bbox.contains(t.position)
                {
                    f(t.position);
                }
            }
        }
    }

    /// Checks the cell invariant (for tests): every traveller with a position is in exactly
    /// the fine cell of that position, and no cell holds anyone else.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut placed = 0usize;
        for (s, shard) in self.shards.iter().enumerate() {
            let shard = shard.read();
            for (slot, t) in shard.live_slots() {
                if shard.find(self.hasher.hash_one(t.id.as_str()), &t.id) != Some(slot) {
                    return Err(format!("{} is not found by its id", t.id));
                }
                if !t.has_current() {
                    continue;
                }
                placed += 1;
                let expected = fine_cell(t.position);
                if t.cell != expected {
                    return Err(format!(
                        "{} records cell {} but is at {expected}",
                        t.id, t.cell
                    ));
                }
                let mut handles = Vec::new();
                self.cells.ids_in(u64::from(t.cell), &mut handles);
                let n = handles.iter().filter(|&&h| h == handle(s, slot)).count();
                if n != 1 {
                    return Err(format!("{} appears {n} times in its cell", t.id));
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

/// The fine cell of a position, as stored (fine cells have 30 bits).
fn fine_cell(p: LatLon) -> u32 {
    u32::try_from(FINE.cell(p.lat, p.lon)).expect("fine cells have 30 bits")
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
    handles: Vec<Handle>,
}

impl Search<'_> {
    fn open(&mut self, cell: u64) {
        self.handles.clear();
        self.index.cells.ids_in(cell, &mut self.handles);
        for &h in &self.handles {
            let (s, slot) = split(h);
            let shard = self.index.shards[s].read();
            let t = shard.slot(slot);
            if u64::from(t.cell) != cell
                || !self.index.live(t, self.now_ms)
                || !t.allows(self.viewer)
            {
                continue;
            }
            let distance_m = haversine_m(self.center, t.position);
            if distance_m > self.radius_m {
                continue;
            }
            let worse = self.heap.len() >= self.limit
                && self.heap.peek().is_some_and(|w| {
                    (distance_m, t.id.as_str()) >= (w.hit.distance_m, w.hit.id.as_str())
                });
            if worse || self.limit == 0 {
                continue;
            }
            let hit = TravellerHit {
                id: t.id.to_string(),
                position: t.position,
                ts: t.ts,
                distance_m,
            };
            drop(shard);
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

const _: () = assert!(size_of::<Slot>() == 72, "a traveller's record is 72 bytes");

const _: () = assert!(
    COARSE.bits() < FINE.bits(),
    "coarse cells must contain fine ones"
);
