//! The engine: Proxima's one state and the only way to change it.
//!
//! It owns the [`PoiIndex`] and the [`TravellerIndex`], the clock, and the locking policy.
//!
//! Travellers need no engine lock: their index is sharded and serializes updates per
//! traveller, and position reports commute (the newest `ts` wins in any order), so many
//! connections apply batches in parallel.
//!
//! For POIs:
//! - **one writer at a time** (a writer mutex, as Meilisearch's single writer), so writes are
//!   applied in one order — the order a log will record;
//! - **readers share a read lock** and only ever wait for a short write: a single upsert or
//!   delete holds the write lock for microseconds; a large import is built into a new index
//!   *beside* the current one (readers keep reading it meanwhile) and swapped in with a
//!   pointer-sized move, and the old index is freed after the lock is released. A query
//!   therefore sees the state before or after a write, never half of it.
//!
//! The engine knows nothing of HTTP; the server calls these methods.

mod heatmap;
mod mutation;

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

pub use heatmap::{HeatmapError, HeatmapLayer, MAX_HEATMAP_CELLS};
pub use mutation::{Applied, ImportMode, Mutation};

use crate::clock::Clock;
use crate::geometry::{BBox, LatLon};
use crate::travellers::{
    PositionUpdate, Sharing, TrailPoint, TravellerConfig, TravellerHit, TravellerIndex,
    TravellerView, UpdateOutcome,
};

use crate::import::{ParsedPois, RecordError};
use crate::pois::{
    CategoryLimitError, CursorError, CursorKey, NearbyHit, NearbyQuery, Poi, PoiIndex, WithinQuery,
};

/// Imports up to this many POIs are applied in place under the write lock (a few
/// milliseconds); larger ones are built beside the live index and swapped in.
const IN_PLACE_IMPORT_MAX: usize = 2_048;

/// Why the engine refused a request. Nothing was changed.
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
    #[error("strict import refused: {skipped} bad record(s), the first: {}", first.reason)]
    StrictImport {
        /// How many records were bad.
        skipped: u64,
        /// The first bad record.
        first: RecordError,
        /// The first bad records, at most [`crate::import::MAX_LISTED_ERRORS`].
        errors: Vec<RecordError>,
    },
}

/// A page of nearby results and the cursor to the next page, if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct NearbyPage {
    /// Results, nearest first.
    pub hits: Vec<NearbyHit>,
    /// Pass back to get the next page.
    pub next_cursor: Option<String>,
}

/// A page of within results and the cursor to the next page, if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct WithinPage {
    /// Results, by id.
    pub pois: Vec<Poi>,
    /// Pass back to get the next page.
    pub next_cursor: Option<String>,
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
    cursor_key: CursorKey,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pois", &self.poi_count())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An empty engine.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            pois: RwLock::new(PoiIndex::new()),
            writer: Mutex::new(()),
            travellers: TravellerIndex::new(config.travellers),
            cursor_key: config.cursor_key,
            clock: config.clock,
        }
    }

    /// The current time by the engine's clock, Unix ms.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Applies one mutation: the single write path.
    pub fn apply(&self, mutation: Mutation) -> Result<Applied, EngineError> {
        match mutation {
            Mutation::Positions {
                received_ms,
                updates,
            } => {
                let applied = updates
                    .iter()
                    .filter(|u| self.travellers.update(u, received_ms) == UpdateOutcome::Applied)
                    .count();
                return Ok(Applied::Positions {
                    applied,
                    stale: updates.len() - applied,
                });
            }
            Mutation::SetSharing { id, sharing } => {
                self.travellers.set_sharing(&id, sharing);
                return Ok(Applied::SharingSet);
            }
            Mutation::DeleteTraveller { id, at_ms } => {
                let existed = self.travellers.delete(&id, at_ms);
                return Ok(Applied::TravellerDeleted { existed });
            }
            _ => {}
        }
        let _writer = self.writer.lock();
        match mutation {
            Mutation::UpsertPoi(poi) => {
                let created = self.pois.write().upsert(poi)?;
                Ok(Applied::PoiStored { created })
            }
            Mutation::DeletePoi(id) => {
                let existed = self.pois.write().remove(&id);
                Ok(Applied::PoiDeleted { existed })
            }
            Mutation::ImportPois { mode, pois } => {
                let count = pois.len();
                let rebuilt = match mode {
                    ImportMode::Replace => PoiIndex::from_pois(pois)?,
                    ImportMode::Upsert if count <= IN_PLACE_IMPORT_MAX => {
                        // Check first so that the in-place loop cannot fail half way.
                        self.pois.read().check_categories(&pois)?;
                        let mut index = self.pois.write();
                        for poi in pois {
                            index.upsert(poi)?;
                        }
                        return Ok(Applied::Imported { count });
                    }
                    ImportMode::Upsert => self.pois.read().with_upserts(pois)?,
                };
                let old = std::mem::replace(&mut *self.pois.write(), rebuilt);
                drop(old); // freed after the write lock is released
                Ok(Applied::Imported { count })
            }
            Mutation::Positions { .. }
            | Mutation::SetSharing { .. }
            | Mutation::DeleteTraveller { .. } => {
                unreachable!("traveller mutations are applied above, without the POI writer lock")
            }
        }
    }

    /// Creates or replaces a POI; `true` if it was new.
    pub fn upsert_poi(&self, poi: Poi) -> Result<bool, EngineError> {
        match self.apply(Mutation::UpsertPoi(poi))? {
            Applied::PoiStored { created } => Ok(created),
            other => unreachable!("an upsert reports PoiStored, got {other:?}"),
        }
    }

    /// Deletes a POI; `true` if it existed.
    pub fn delete_poi(&self, id: &str) -> Result<bool, EngineError> {
        match self.apply(Mutation::DeletePoi(id.to_string()))? {
            Applied::PoiDeleted { existed } => Ok(existed),
            other => unreachable!("a delete reports PoiDeleted, got {other:?}"),
        }
    }

    /// Applies what an import reader found. `strict`: any bad record refuses the whole import.
    pub fn import_pois(
        &self,
        parsed: ParsedPois,
        mode: ImportMode,
        strict: bool,
    ) -> Result<ImportSummary, EngineError> {
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
        self.apply(Mutation::ImportPois {
            mode,
            pois: parsed.pois,
        })?;
        Ok(ImportSummary {
            imported,
            skipped: parsed.skipped,
            errors: parsed.errors,
        })
    }

    /// The POI with this id.
    pub fn get_poi(&self, id: &str) -> Option<Poi> {
        self.pois.read().get(id)
    }

    /// Number of POIs.
    pub fn poi_count(&self) -> usize {
        self.pois.read().len()
    }

    /// One page of POIs near a place. `cursor` continues a previous page of the same query.
    pub fn nearby_pois(
        &self,
        mut query: NearbyQuery,
        cursor: Option<&str>,
    ) -> Result<NearbyPage, EngineError> {
        query.after = cursor
            .map(|c| self.cursor_key.nearby_after(&query, c))
            .transpose()?;
        let page = self.pois.read().nearby(&query);
        let next_cursor = match page.items.last() {
            Some(last) if page.more => Some(self.cursor_key.nearby_cursor(
                &query,
                last.distance_m,
                &last.poi.id,
            )),
            _ => None,
        };
        Ok(NearbyPage {
            hits: page.items,
            next_cursor,
        })
    }

    /// One page of POIs inside a box. `cursor` continues a previous page of the same query.
    pub fn within_pois(
        &self,
        mut query: WithinQuery,
        cursor: Option<&str>,
    ) -> Result<WithinPage, EngineError> {
        query.after = cursor
            .map(|c| self.cursor_key.within_after(&query, c))
            .transpose()?;
        let page = self.pois.read().within(&query);
        let next_cursor = match page.items.last() {
            Some(last) if page.more => Some(self.cursor_key.within_cursor(&query, &last.id)),
            _ => None,
        };
        Ok(WithinPage {
            pois: page.items,
            next_cursor,
        })
    }
}

/// Travellers.
impl Engine {
    /// Applies validated position reports received now. Returns `(applied, stale)`.
    pub fn update_positions(
        &self,
        updates: Vec<PositionUpdate>,
    ) -> Result<(usize, usize), EngineError> {
        let received_ms = self.now_ms();
        match self.apply(Mutation::Positions {
            received_ms,
            updates,
        })? {
            Applied::Positions { applied, stale } => Ok((applied, stale)),
            other => unreachable!("positions report Positions, got {other:?}"),
        }
    }

    /// Sets who may see a traveller.
    pub fn set_sharing(&self, id: &str, sharing: Sharing) -> Result<(), EngineError> {
        self.apply(Mutation::SetSharing {
            id: id.to_string(),
            sharing,
        })?;
        Ok(())
    }

    /// Forgets a traveller; `true` if it had a live position or a sharing setting.
    pub fn delete_traveller(&self, id: &str) -> Result<bool, EngineError> {
        match self.apply(Mutation::DeleteTraveller {
            id: id.to_string(),
            at_ms: self.now_ms(),
        })? {
            Applied::TravellerDeleted { existed } => Ok(existed),
            other => unreachable!("a traveller delete reports TravellerDeleted, got {other:?}"),
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
                    .for_each_public_in(bbox, self.now_ms(), |p| counter.add(p));
            }
        }
        Ok(counter.finish()?)
    }
}
