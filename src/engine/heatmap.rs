//! Heatmaps: counting POIs or public travellers per H3 cell (`h3o`) at a chosen resolution.

use std::collections::HashMap;

use h3o::{CellIndex, LatLng, Resolution};

use super::{Engine, EngineError};
use crate::geometry::{BBox, LatLon};

/// The most cells one heatmap may return; a finer resolution over a larger box is refused
/// rather than answered with an unbounded body.
pub const MAX_HEATMAP_CELLS: usize = 100_000;

/// What to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeatmapLayer {
    /// Every POI.
    Pois,
    /// Live public travellers only.
    Travellers,
}

impl std::str::FromStr for HeatmapLayer {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pois" => Ok(Self::Pois),
            "travellers" => Ok(Self::Travellers),
            other => Err(format!("expected pois or travellers, got {other:?}")),
        }
    }
}

/// Why a heatmap was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeatmapError {
    /// The resolution is not 0 to 15.
    #[error("resolution must be an integer from 0 to 15, got {0}")]
    Resolution(u8),
    /// The answer would be too large.
    #[error(
        "resolution: more than {MAX_HEATMAP_CELLS} cells in this box at this resolution; use a coarser resolution or a smaller box"
    )]
    TooManyCells,
}

/// Counts positions per cell.
pub(crate) struct Counter {
    resolution: Resolution,
    counts: HashMap<CellIndex, u64, foldhash::fast::RandomState>,
    overflow: bool,
}

impl Counter {
    pub(crate) fn new(resolution: u8) -> Result<Self, HeatmapError> {
        let resolution =
            Resolution::try_from(resolution).map_err(|_| HeatmapError::Resolution(resolution))?;
        Ok(Self {
            resolution,
            counts: HashMap::default(),
            overflow: false,
        })
    }

    pub(crate) fn add(&mut self, p: LatLon) {
        if self.overflow {
            return;
        }
        let Ok(ll) = LatLng::new(p.lat, p.lon) else {
            return;
        }; // valid LatLon always converts
        *self.counts.entry(ll.to_cell(self.resolution)).or_insert(0) += 1;
        self.overflow = self.counts.len() > MAX_HEATMAP_CELLS;
    }

    pub(crate) fn finish(self) -> Result<Vec<(String, u64)>, HeatmapError> {
        if self.overflow {
            return Err(HeatmapError::TooManyCells);
        }
        let mut cells: Vec<(CellIndex, u64)> = self.counts.into_iter().collect();
        cells.sort_unstable_by_key(|(cell, _)| u64::from(*cell));
        Ok(cells
            .into_iter()
            .map(|(cell, n)| (cell.to_string(), n))
            .collect())
    }
}

impl Engine {
    /// Counts per H3 cell of `layer` inside `bbox`, sorted by cell.
    pub fn heatmap(
        &self,
        layer: HeatmapLayer,
        bbox: &BBox,
        resolution: u8,
    ) -> Result<Vec<(String, u64)>, EngineError> {
        let mut counter = Counter::new(resolution)?;
        match layer {
            HeatmapLayer::Pois => {
                self.pois.read().positions_in(bbox, |p| counter.add(p));
            }
            HeatmapLayer::Travellers => {
                self.travellers
                    .for_each_public_in(bbox, self.now_ms(), |p| counter.add(p));
            }
        }
        Ok(counter.finish()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_positions_per_cell() {
        let mut counter = Counter::new(9).expect("valid resolution");
        let helsinki = LatLon::new(60.1699, 24.9384).expect("valid");
        counter.add(helsinki);
        counter.add(helsinki);
        counter.add(LatLon::new(-33.9, 151.2).expect("valid"));
        let cells = counter.finish().expect("few cells");
        assert_eq!(cells.len(), 2);
        assert_eq!(cells.iter().map(|c| c.1).sum::<u64>(), 3);
        assert!(
            cells
                .iter()
                .all(|(h3, _)| h3.len() == 15 && h3.starts_with('8'))
        );
        assert!(matches!(
            Counter::new(16),
            Err(HeatmapError::Resolution(16))
        ));
    }
}
