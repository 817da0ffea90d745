//! The engine's traveller calls: position reports, sharing and deletes as changes through
//! the one write path; lookups and nearby read at the engine's "now".

use super::mutation::{DeleteTraveller, Positions, SetSharing};
use super::{Engine, EngineError, PositionCounts, Removed, Written};
use crate::geometry::LatLon;
use crate::travellers::{
    PositionUpdate, Sharing, TrailPoint, TravellerHit, TravellerView, UpdateOutcome,
};

impl Engine {
    /// Applies validated position reports received now, as one change.
    pub fn update_positions(
        &self,
        updates: Vec<PositionUpdate>,
    ) -> Result<Written<PositionCounts>, EngineError> {
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
}
