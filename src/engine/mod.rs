//! The engine: Proxima's one state and the only way to change it.
//!
//! It owns the [`PoiIndex`] and the [`TravellerIndex`], the clock, the write-ahead log and
//! the locking policy. Every change is a [`Mutation`]: it is checked, written to the log,
//! applied to memory, and acknowledged once the log says it is durable (the returned
//! [`Ticket`]). Recovery replays the log through the same `apply`.
//!
//! Locking policy, chosen so that the log's order is the order changes were applied:
//! - **POI writes** take the writer mutex (one at a time, as Meilisearch's single writer),
//!   then log and apply. Readers share the index's read lock and only ever wait for a short
//!   write: an upsert or delete holds the write lock for microseconds, an upsert import of
//!   up to 16,384 POIs (and an eighth of the index) for some milliseconds; a larger import
//!   is built *beside* the live index (readers keep reading it) and swapped in with a
//!   pointer-sized move, the old index freed after the lock is released. When single
//!   writes have piled up in the index's delta, its packed trees are rebuilt the same way,
//!   under the read lock, and swapped in under the write lock. A query sees the state
//!   before or after a write, never half of it.
//! - **Position batches** take the traveller-order lock *shared*: they commute (the newest
//!   `ts` wins in any order), so many connections log and apply them in parallel, and the
//!   sharded traveller index serializes updates per traveller.
//! - **Sharing changes and traveller deletes** take it *exclusive*, so a position report
//!   and a delete of the same traveller are applied in the order they are logged.
//! - **Snapshots** take both briefly to read the log position, then copy the state a piece
//!   at a time while writes continue; replaying the log from that position (every mutation
//!   is idempotent given the log order) makes the copy exact.
//!
//! The engine knows nothing of HTTP; the server calls these methods.

mod apply;
mod durability;
mod heatmap;
mod mutation;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

pub use durability::{RecoveryReport, SnapshotInfo};
pub use heatmap::{HeatmapError, HeatmapLayer, MAX_HEATMAP_CELLS};
pub use mutation::{Applied, ImportMode, Mutation};

use crate::clock::Clock;
use crate::geometry::{BBox, LatLon};
use crate::import::{ParsedPois, RecordError};
use crate::persist::PersistError;
use crate::persist::wal::{Ticket, Wal};
use crate::pois::{
    CategoryLimitError, CursorError, CursorKey, NearbyHit, NearbyQuery, Poi, PoiIndex, PoiRef,
    WithinQuery,
};
use crate::travellers::{
    PositionUpdate, Sharing, TrailPoint, TravellerConfig, TravellerHit, TravellerIndex,
    TravellerView,
};

/// Why the engine refused a request or failed. A refused request changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The write would create too many distinct categories.
    #[error(transparent)]
    CategoryLimit(#[from] CategoryLimitError),
    /// A page cursor did not verify.
    #[error(transparent)]
    Cursor(#[from] CursorError),
    /// A heatmap request was refused.
    #[error(transparent)]
    Heatmap(#[from] HeatmapError),
    /// A strict import found bad records, so none was imported.
    #[error("strict import refused: {skipped} bad record(s), nothing was imported; the first, at {}: {}", first.location, first.reason)]
    StrictImport {
        /// How many records were bad.
        skipped: u64,
        /// The first bad record.
        first: RecordError,
        /// The first bad records, at most [`crate::import::MAX_LISTED_ERRORS`].
        errors: Vec<RecordError>,
    },
    /// Storage failed: the log or a snapshot could not be written or read.
    #[error("storage: {0}")]
    Storage(#[from] PersistError),
    /// Another snapshot is being written.
    #[error("a snapshot is already being written")]
    SnapshotBusy,
    /// The engine has no data directory (an in-memory engine).
    #[error("this engine keeps no data directory")]
    NotPersistent,
    /// Another process holds the data directory.
    #[error("data dir {0} is in use by another Proxima process")]
    DataDirLocked(PathBuf),
}

/// A page of nearby results, borrowed from the index while the caller renders it, and the
/// cursor to the next page, if there is one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearbyPage<'a> {
    /// Results, nearest first.
    pub hits: &'a [NearbyHit<'a>],
    /// Pass back to get the next page.
    pub next_cursor: Option<&'a str>,
}

/// A page of within results, borrowed from the index while the caller renders it, and the
/// cursor to the next page, if there is one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WithinPage<'a> {
    /// Results, by id.
    pub pois: &'a [PoiRef<'a>],
    /// Pass back to get the next page.
    pub next_cursor: Option<&'a str>,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    /// POIs written.
    pub imported: u64,
    /// Records left out.
    pub skipped: u64,
    /// The first bad records.
    pub errors: Vec<RecordError>,
}

/// How an engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Signs page cursors.
    pub cursor_key: CursorKey,
    /// "Now", for ages and receive times.
    pub clock: Arc<dyn Clock>,
    /// Trail length and time-to-live of travellers.
    pub travellers: TravellerConfig,
}

/// Proxima's state.
pub struct Engine {
    pois: RwLock<PoiIndex>,
    writer: Mutex<()>,
    travellers: TravellerIndex,
    traveller_order: RwLock<()>,
    cursor_key: CursorKey,
    clock: Arc<dyn Clock>,
    storage: OnceLock<durability::Storage>,
    /// Held while a snapshot is written: one at a time.
    snapshotting: Mutex<()>,
    /// The last snapshot written; its own lock, so readers never wait for a snapshot.
    last_snapshot: Mutex<Option<SnapshotInfo>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pois", &self.poi_count())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An empty in-memory engine; [`Engine::recover`] attaches a data directory.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            pois: RwLock::new(PoiIndex::new()),
            writer: Mutex::new(()),
            travellers: TravellerIndex::new(config.travellers),
            traveller_order: RwLock::new(()),
            cursor_key: config.cursor_key,
            clock: config.clock,
            storage: OnceLock::new(),
            snapshotting: Mutex::new(()),
            last_snapshot: Mutex::new(None),
        }
    }

    /// The current time by the engine's clock, Unix ms.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn wal(&self) -> Option<&Wal> {
        self.storage.get().map(|s| &s.wal)
    }

    fn log(&self, mutation: &Mutation) -> Result<Ticket, EngineError> {
        match self.wal() {
            Some(wal) => Ok(wal.append(crate::persist::encode(mutation)?).1),
            None => Ok(Ticket::done()),
        }
    }

    /// Checks, logs and applies one mutation: the single write path. The change is visible
    /// at once; answer the client only after the ticket completes.
    pub fn apply(&self, mutation: Mutation) -> Result<(Applied, Ticket), EngineError> {
        match &mutation {
            Mutation::Positions { .. } => {
                let _order = self.traveller_order.read();
                let ticket = self.log(&mutation)?;
                Ok((self.apply_in_memory(mutation)?, ticket))
            }
            Mutation::SetSharing { .. } | Mutation::DeleteTraveller { .. } => {
                let _order = self.traveller_order.write();
                let ticket = self.log(&mutation)?;
                Ok((self.apply_in_memory(mutation)?, ticket))
            }
            Mutation::UpsertPoi(_) | Mutation::DeletePoi(_) | Mutation::ImportPois { .. } => {
                let _writer = self.writer.lock();
                self.precheck(&mutation)?;
                let ticket = self.log(&mutation)?;
                Ok((self.apply_in_memory(mutation)?, ticket))
            }
        }
    }

    /// Creates or replaces a POI; `true` if it was new.
    pub fn upsert_poi(&self, poi: Poi) -> Result<(bool, Ticket), EngineError> {
        match self.apply(Mutation::UpsertPoi(poi))? {
            (Applied::PoiStored { created }, ticket) => Ok((created, ticket)),
            (other, _) => unreachable!("an upsert reports PoiStored, got {other:?}"),
        }
    }

    /// Deletes a POI; `true` if it existed.
    pub fn delete_poi(&self, id: &str) -> Result<(bool, Ticket), EngineError> {
        match self.apply(Mutation::DeletePoi(id.to_string()))? {
            (Applied::PoiDeleted { existed }, ticket) => Ok((existed, ticket)),
            (other, _) => unreachable!("a delete reports PoiDeleted, got {other:?}"),
        }
    }

    /// Applies what an import reader found, as one mutation. `strict`: any bad record
    /// refuses the whole import.
    pub fn import_pois(
        &self,
        parsed: ParsedPois,
        mode: ImportMode,
        strict: bool,
    ) -> Result<(ImportSummary, Ticket), EngineError> {
        if strict && parsed.skipped > 0 {
            let first = parsed
                .errors
                .first()
                .cloned()
                .expect("a skipped record is listed");
            return Err(EngineError::StrictImport {
                skipped: parsed.skipped,
                first,
                errors: parsed.errors,
            });
        }
        let imported = parsed.pois.len() as u64;
        let (_, ticket) = self.apply(Mutation::ImportPois {
            mode,
            pois: parsed.pois,
        })?;
        Ok((
            ImportSummary {
                imported,
                skipped: parsed.skipped,
                errors: parsed.errors,
            },
            ticket,
        ))
    }

    /// The POI with this id.
    pub fn get_poi(&self, id: &str) -> Option<Poi> {
        self.pois.read().get(id)
    }

    /// Number of POIs.
    pub fn poi_count(&self) -> usize {
        self.pois.read().len()
    }

    /// One page of POIs near a place, handed to `render` while the index is read-locked (so
    /// that it can be written out without copying a string). `cursor` continues a previous
    /// page of the same query.
    pub fn nearby_pois<R>(
        &self,
        mut query: NearbyQuery,
        cursor: Option<&str>,
        render: impl FnOnce(NearbyPage<'_>) -> R,
    ) -> Result<R, EngineError> {
        query.after = cursor
            .map(|c| self.cursor_key.nearby_after(&query, c))
            .transpose()?;
        let pois = self.pois.read();
        let page = pois.nearby(&query);
        let next_cursor = match page.items.last() {
            Some(last) if page.more => Some(self.cursor_key.nearby_cursor(
                &query,
                last.distance_m,
                last.poi.id(),
            )),
            _ => None,
        };
        Ok(render(NearbyPage {
            hits: &page.items,
            next_cursor: next_cursor.as_deref(),
        }))
    }

    /// One page of POIs inside a box, handed to `render` while the index is read-locked.
    /// `cursor` continues a previous page of the same query.
    pub fn within_pois<R>(
        &self,
        mut query: WithinQuery,
        cursor: Option<&str>,
        render: impl FnOnce(WithinPage<'_>) -> R,
    ) -> Result<R, EngineError> {
        query.after = cursor
            .map(|c| self.cursor_key.within_after(&query, c))
            .transpose()?;
        let pois = self.pois.read();
        let page = pois.within(&query);
        let next_cursor = match page.items.last() {
            Some(last) if page.more => Some(self.cursor_key.within_cursor(&query, last.id())),
            _ => None,
        };
        Ok(render(WithinPage {
            pois: &page.items,
            next_cursor: next_cursor.as_deref(),
        }))
    }
}

/// Travellers.
impl Engine {
    /// Applies validated position reports received now. Returns `(applied, stale)`.
    pub fn update_positions(
        &self,
        updates: Vec<PositionUpdate>,
    ) -> Result<((usize, usize), Ticket), EngineError> {
        let received_ms = self.now_ms();
        match self.apply(Mutation::Positions {
            received_ms,
            updates,
        })? {
            (Applied::Positions { applied, stale }, ticket) => Ok(((applied, stale), ticket)),
            (other, _) => unreachable!("positions report Positions, got {other:?}"),
        }
    }

    /// Sets who may see a traveller.
    pub fn set_sharing(&self, id: &str, sharing: Sharing) -> Result<Ticket, EngineError> {
        Ok(self
            .apply(Mutation::SetSharing {
                id: id.to_string(),
                sharing,
            })?
            .1)
    }

    /// Forgets a traveller; `true` if it had a live position or a sharing setting.
    pub fn delete_traveller(&self, id: &str) -> Result<(bool, Ticket), EngineError> {
        match self.apply(Mutation::DeleteTraveller {
            id: id.to_string(),
            at_ms: self.now_ms(),
        })? {
            (Applied::TravellerDeleted { existed }, ticket) => Ok((existed, ticket)),
            (other, _) => {
                unreachable!("a traveller delete reports TravellerDeleted, got {other:?}")
            }
        }
    }

    /// A traveller, if live and visible to `viewer`.
    pub fn traveller(&self, id: &str, viewer: Option<&str>) -> Option<TravellerView> {
        self.travellers.get(id, viewer, self.now_ms())
    }

    /// A traveller's trail since `since`, if live and visible to `viewer`.
    pub fn trail(&self, id: &str, viewer: Option<&str>, since: i64) -> Option<Vec<TrailPoint>> {
        self.travellers.trail(id, viewer, since, self.now_ms())
    }

    /// Live travellers visible to `viewer` near a place, nearest first.
    pub fn nearby_travellers(
        &self,
        center: LatLon,
        radius_m: f64,
        limit: usize,
        viewer: Option<&str>,
    ) -> Vec<TravellerHit> {
        self.travellers
            .nearby(center, radius_m, limit, viewer, self.now_ms())
    }

    /// Frees expired travellers; returns how many positions were dropped.
    pub fn sweep_travellers(&self) -> usize {
        self.travellers.sweep(self.now_ms())
    }

    /// Number of travellers with state.
    pub fn traveller_count(&self) -> usize {
        self.travellers.len()
    }

    /// Counts per H3 cell of `layer` inside `bbox`, sorted by cell.
    pub fn heatmap(
        &self,
        layer: HeatmapLayer,
        bbox: &BBox,
        resolution: u8,
    ) -> Result<Vec<(String, u64)>, EngineError> {
        let mut counter = heatmap::Counter::new(resolution)?;
        match layer {
            HeatmapLayer::Pois => self.pois.read().positions_in(bbox, |p| counter.add(p)),
            HeatmapLayer::Travellers => {
                self.travellers
                    .for_each_public_in(bbox, self.now_ms(), |p| counter.add(p))
            }
        }
        Ok(counter.finish()?)
    }
}
