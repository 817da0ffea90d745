//! The engine's POI calls: writes as changes through the one write path, reads under the
//! index's read lock, answered while the lock is held so nothing is copied.

use super::mutation::{DeletePoi, ImportMode, ImportPois, UpsertPoi};
use super::{Engine, EngineError, ImportSummary, Removed, Stored, Written};
use crate::import::ParsedPois;
use crate::pois::{AreaQuery, NearbyHit, NearbyQuery, Poi, PoiRef, WithinQuery};

/// A page of results borrowed from the index while the caller renders it, and the cursor
/// to the next page, if there is one: nearby hits (nearest first) or POIs (by id).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Page<'a, T> {
    /// The results, in the query's order.
    pub items: &'a [T],
    /// Pass back to get the next page.
    pub next_cursor: Option<&'a str>,
}

/// A page of POIs near a place.
pub type NearbyPage<'a> = Page<'a, NearbyHit<'a>>;

/// A page of POIs inside a box or an area.
pub type WithinPage<'a> = Page<'a, PoiRef<'a>>;

/// The cursor to the page after `items`, if `more` follow: `seal` of the last item.
pub(super) fn next_cursor<T>(
    items: &[T],
    more: bool,
    seal: impl FnOnce(&T) -> String,
) -> Option<String> {
    items.last().filter(|_| more).map(seal)
}

impl Engine {
    /// Creates or replaces a POI.
    pub fn upsert_poi(&self, poi: Poi) -> Result<Written<Stored>, EngineError> {
        self.write(UpsertPoi(poi))
    }

    /// Deletes a POI.
    pub fn delete_poi(&self, id: &str) -> Result<Written<Removed>, EngineError> {
        self.write(DeletePoi(id.to_string()))
    }

    /// Applies what an import reader found, as one change. `strict`: any bad record
    /// refuses the whole import.
    pub fn import_pois(
        &self,
        parsed: ParsedPois,
        mode: ImportMode,
        strict: bool,
    ) -> Result<Written<ImportSummary>, EngineError> {
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
        let summary = ImportSummary {
            imported: parsed.pois.len() as u64,
            skipped: parsed.skipped,
            errors: parsed.errors,
        };
        if summary.imported == 0 && (summary.skipped > 0 || mode == ImportMode::Upsert) {
            // Every record was refused, or an upsert of nothing: no change, nothing logged
            // (a replace by an empty file is a real change: it empties the index).
            return Ok(Written::local(summary, crate::persist::wal::Ticket::done()));
        }
        let import = ImportPois {
            mode,
            pois: parsed.pois,
        };
        let written = if self.is_replicated() {
            self.write_import_in_parts(import)?
        } else {
            self.write(import)?
        };
        Ok(written.map(|()| summary))
    }

    /// The POI with this id.
    pub fn get_poi(&self, id: &str) -> Option<Poi> {
        self.pois.read().get(id)
    }

    /// The categories the POIs hold, with their counts, most common first; at most `max`.
    pub fn poi_categories(&self, max: usize) -> Vec<(String, u64)> {
        let pois = self.pois.read();
        let mut held = pois.category_counts();
        held.truncate(max);
        held.into_iter().map(|(c, n)| (c.to_string(), n)).collect()
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
        let next_cursor = next_cursor(&page.items, page.more, |last| {
            self.cursor_key
                .nearby_cursor(&query, last.distance_m, last.poi.id())
        });
        Ok(render(Page {
            items: &page.items,
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
        let next_cursor = next_cursor(&page.items, page.more, |last| {
            self.cursor_key.within_cursor(&query, last.id())
        });
        Ok(render(Page {
            items: &page.items,
            next_cursor: next_cursor.as_deref(),
        }))
    }

    /// One page of POIs inside an area, handed to `render` while the index is read-locked.
    /// `cursor` continues a previous page of the same query.
    pub fn within_area_pois<R>(
        &self,
        mut query: AreaQuery,
        cursor: Option<&str>,
        render: impl FnOnce(WithinPage<'_>) -> R,
    ) -> Result<R, EngineError> {
        query.after = cursor
            .map(|c| self.cursor_key.area_after(&query, c))
            .transpose()?;
        let pois = self.pois.read();
        let page = pois.within_area(&query);
        let next_cursor = next_cursor(&page.items, page.more, |last| {
            self.cursor_key.area_cursor(&query, last.id())
        });
        Ok(render(Page {
            items: &page.items,
            next_cursor: next_cursor.as_deref(),
        }))
    }
}
