//! Heatmaps: counting POIs or public travellers per H3 cell (`h3o`) at a chosen resolution.

use std::collections::HashMap;

use h3o::{CellIndex, LatLng, Resolution};

use super::{Engine, EngineError};
use crate::geometry::{BBox, LatLon};

/// The most cells one heatmap may return; a finer resolution over a larger box is refused
/// rather than answered with an unbounded body.
pub const MAX_HEATMAP_CELLS: usize = 100_000;

/// The most cells one heatmap may return with their outlines (~300 bytes a cell on the
/// wire, against ~40 without): 3 MB at most. A map view needs a few hundred.
pub const MAX_OUTLINED_CELLS: usize = 10_000;

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
        "resolution: more than {0} cells in this box at this resolution; use a coarser resolution or a smaller box"
    )]
    TooManyCells(usize),
}

/// One cell of a heatmap and how many positions it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeatCell {
    /// The H3 cell.
    pub cell: CellIndex,
    /// Positions inside it.
    pub count: u64,
}

impl HeatCell {
    /// The cell's index as H3 writes it (`8a1fb46622dffff`).
    pub fn h3(&self) -> String {
        self.cell.to_string()
    }

    /// The cell's outline as a closed ring of `[lon, lat]`, as a GeoJSON polygon's (the first
    /// corner again at the end): 7 points for a hexagon, 6 for a pentagon, more where the
    /// cell's edges cross an icosahedron face. Longitudes stay in [-180, 180], so a cell astride the antimeridian has
    /// vertices on both sides; a map unwraps them.
    pub fn outline(&self) -> Vec<[f64; 2]> {
        let boundary = self.cell.boundary();
        let mut ring: Vec<[f64; 2]> = boundary.iter().map(|v| [v.lng(), v.lat()]).collect();
        if let Some(&first) = ring.first() {
            ring.push(first);
        }
        ring
    }
}

/// Counts positions per cell.
pub(crate) struct Counter {
    resolution: Resolution,
    max_cells: usize,
    counts: HashMap<CellIndex, u64, foldhash::fast::RandomState>,
    overflow: bool,
}

impl Counter {
    pub(crate) fn new(resolution: u8, max_cells: usize) -> Result<Self, HeatmapError> {
        let resolution =
            Resolution::try_from(resolution).map_err(|_| HeatmapError::Resolution(resolution))?;
        Ok(Self {
            resolution,
            max_cells,
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
        self.overflow = self.counts.len() > self.max_cells;
    }

    pub(crate) fn finish(self) -> Result<Vec<HeatCell>, HeatmapError> {
        if self.overflow {
            return Err(HeatmapError::TooManyCells(self.max_cells));
        }
        let mut cells: Vec<HeatCell> = self
            .counts
            .into_iter()
            .map(|(cell, count)| HeatCell { cell, count })
            .collect();
        cells.sort_unstable_by_key(|c| u64::from(c.cell));
        Ok(cells)
    }
}

impl Engine {
    /// Counts per H3 cell of `layer` inside `bbox`, sorted by cell; refused when there
    /// would be more than `max_cells` cells.
    pub fn heatmap(
        &self,
        layer: HeatmapLayer,
        bbox: &BBox,
        resolution: u8,
        max_cells: usize,
    ) -> Result<Vec<HeatCell>, EngineError> {
        let mut counter = Counter::new(resolution, max_cells)?;
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
        let mut counter = Counter::new(9, MAX_HEATMAP_CELLS).expect("valid resolution");
        let helsinki = LatLon::new(60.1699, 24.9384).expect("valid");
        counter.add(helsinki);
        counter.add(helsinki);
        counter.add(LatLon::new(-33.9, 151.2).expect("valid"));
        let cells = counter.finish().expect("few cells");
        assert_eq!(cells.len(), 2);
        assert_eq!(cells.iter().map(|c| c.count).sum::<u64>(), 3);
        assert!(
            cells
                .iter()
                .all(|c| c.h3().len() == 15 && c.h3().starts_with('8'))
        );
        assert!(matches!(
            Counter::new(16, MAX_HEATMAP_CELLS),
            Err(HeatmapError::Resolution(16))
        ));
    }

    #[test]
    fn more_cells_than_the_bound_are_refused() {
        let mut counter = Counter::new(9, 1).expect("valid resolution");
        counter.add(LatLon::new(60.17, 24.94).expect("valid"));
        counter.add(LatLon::new(-33.9, 151.2).expect("valid"));
        assert_eq!(counter.finish(), Err(HeatmapError::TooManyCells(1)));
    }

    /// An outline is a closed ring around its cell: the cell's centre is inside it (by
    /// `geo`'s test, on the ring unwrapped across the antimeridian), and no vertex is
    /// farther from the centre than the resolution's longest edge allows.
    #[test]
    fn outlines_are_closed_rings_around_their_cells() {
        use geo::{Contains, LineString, Point, Polygon};
        let places = [
            (60.17, 24.94),
            (-33.9, 151.2),
            (0.0, 179.999),
            (0.0, -179.999),
            (89.99, 0.0),
            (-89.99, 45.0),
        ];
        for resolution in [0u8, 3, 9] {
            for (lat, lon) in places {
                let mut counter = Counter::new(resolution, 10).expect("valid resolution");
                counter.add(LatLon::new(lat, lon).expect("valid"));
                let cell = counter.finish().expect("one cell")[0];
                let ring = cell.outline();
                assert!(ring.len() >= 6, "{ring:?}"); // a pentagon: five corners and the first again
                assert_eq!(ring.first(), ring.last());
                let centre = LatLng::from(cell.cell);
                if centre.lat().abs() > 80.0 {
                    continue; // a polar cell's ring circles the pole: not a plane polygon
                }
                let unwrap = |x: f64| {
                    let d = x - centre.lng();
                    if d > 180.0 {
                        x - 360.0
                    } else if d < -180.0 {
                        x + 360.0
                    } else {
                        x
                    }
                };
                let plane: LineString = ring.iter().map(|&[x, y]| (unwrap(x), y)).collect();
                let polygon = Polygon::new(plane, vec![]);
                assert!(
                    polygon.contains(&Point::new(centre.lng(), centre.lat())),
                    "res {resolution} at {lat},{lon}: {ring:?}"
                );
            }
        }
    }
}
