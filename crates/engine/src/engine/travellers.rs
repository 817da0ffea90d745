//! The engine's traveller calls: position reports, sharing and deletes as changes through
//! the one write path; lookups and nearby read at the engine's "now".

use super::mutation::{DeleteTraveller, Positions, SetSharing};
use super::{Engine, EngineError, PositionCounts, Removed, Written};
use crate::geometry::LatLon;
use crate::geometry::area::Area;
use crate::travellers::{
    PositionUpdate, Sharing, TrailPoint, TravellerAt, TravellerHit, TravellerView, UpdateOutcome,
};

impl Engine {
    /// Applies validated position reports received now, as one change.
    pub fn update_positions(
        &self,
        updates: Vec<PositionUpdate>,
    ) -> Result<Written<PositionCounts>, EngineError> {
        if updates.is_empty() {
            // Nothing to apply (every report of the batch was refused): nothing is logged.
            return Ok(Written::local(
                PositionCounts::default(),
                crate::persist::wal::Ticket::done(),
            ));
        }
        self.write(Positions {
            received_ms: self.now_ms(),
            updates,
        })
    }

    /// Applies one validated position report received now (logged as a batch of one).
    pub fn update_position(
        &self,
        update: PositionUpdate,
    ) -> Result<Written<UpdateOutcome>, EngineError> {
        let written = self.update_positions(vec![update])?;
        Ok(written.map(|counts| {
            if counts.applied == 1 {
                UpdateOutcome::Applied
            } else {
                UpdateOutcome::Stale
            }
        }))
    }

    /// Sets who may see a traveller.
    pub fn set_sharing(&self, id: &str, sharing: Sharing) -> Result<Written<()>, EngineError> {
        self.write(SetSharing {
            id: id.to_string(),
            sharing,
        })
    }

    /// Forgets a traveller; it existed if it had a live position or a sharing setting.
    pub fn delete_traveller(&self, id: &str) -> Result<Written<Removed>, EngineError> {
        self.write(DeleteTraveller {
            id: id.to_string(),
            at_ms: self.now_ms(),
        })
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

    /// One page of the live travellers inside `area` that `viewer` may see, by id.
    /// `cursor` continues a previous page of the same area and viewer.
    pub fn travellers_within(
        &self,
        area: &Area,
        viewer: Option<&str>,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<TravellerAreaPage, EngineError> {
        let after = cursor
            .map(|c| self.cursor_key.travellers_area_after(area, viewer, c))
            .transpose()?;
        let page =
            self.travellers
                .within_area(area, viewer, after.as_deref(), limit, self.now_ms());
        let next_cursor = super::pois::next_cursor(&page.items, page.more, |last| {
            self.cursor_key
                .travellers_area_cursor(area, viewer, &last.id)
        });
        Ok(TravellerAreaPage {
            travellers: page.items,
            next_cursor,
        })
    }
}

/// A page of travellers inside an area, and the cursor to the next page, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct TravellerAreaPage {
    /// Travellers, by id.
    pub travellers: Vec<TravellerAt>,
    /// Pass back to get the next page.
    pub next_cursor: Option<String>,
}
