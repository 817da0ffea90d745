//! [`CellIndex`]: which travellers are in which geohash cell, in sharded concurrent maps.
//!
//! # Two levels
//! - **Fine cells** (15 bits per axis, a 6-character geohash: 0.011° × 0.0055°, about
//!   1.2 km × 0.6 km at the equator and 0.6 km × 0.6 km at Helsinki's 60° N) are what
//!   queries open. A 2 km query covers about 30 to 50 of them, which keeps the cells looked
//!   up and the travellers checked both small; a finer level (7 characters, 150 m) would
//!   need ~1,000 lookups for the same query, a coarser one (5 characters, 5 km) would check
//!   ~25 times the area's travellers exactly.
//! - **Coarse cells** (10 bits per axis, a 4-character geohash: 0.35° × 0.18°, about
//!   39 km × 19.5 km) are what is stored: each holds its travellers ordered by fine cell, so
//!   a fine cell's travellers are one range and its non-empty fine cells are found by
//!   seeking. A query whose cap spans more than [`FINE_BUDGET`] fine cells walks coarse
//!   cells instead, nearest first, and opens only the fine cells that exist, so a 2,000 km
//!   query looks at ~16,000 coarse cells at most, not millions of fine ones; beyond
//!   [`COARSE_BUDGET`] it walks the non-empty coarse cells.
//!
//! The coarse cells are in a `DashMap` (sharded `RwLock`ed hash maps), so updates in
//! different places lock different shards. The traveller's own record lives elsewhere
//! ([`super::TravellerIndex`]); an update that stays in its fine cell does not touch this
//! index at all.
//!
//! Locking rule: callers never hold a guard of this index while locking a traveller's state
//! (queries copy ids out first), and writers lock a traveller's state before this index, so
//! there is no cycle.

use std::collections::BTreeSet;

use dashmap::DashMap;

use super::shard::Handle;
use foldhash::fast::RandomState;

use crate::geometry::geohash::Grid;
use crate::geometry::{LatLon, cap_bounds, chord2_to_envelope, lon_lat_envelope};

/// The fine grid travellers are bucketed in.
pub const FINE: Grid = Grid::new(15);
/// The coarse grid for large queries.
pub const COARSE: Grid = Grid::new(10);

const _: () = assert!(
    COARSE.bits() < FINE.bits(),
    "coarse cells must contain fine ones"
);

/// Up to this many fine cells, a query enumerates fine cells directly.
pub const FINE_BUDGET: usize = 256;
/// Up to this many coarse cells, a query enumerates coarse cells; beyond, it walks the
/// non-empty ones.
pub const COARSE_BUDGET: usize = 16_384;

/// The travellers of one coarse cell, as `fine cell << 32 | handle`, sorted: the travellers
/// of a fine cell are one range, and the non-empty fine cells are found by seeking.
type Members = BTreeSet<u64>;

fn member(cell: u64, id: Handle) -> u64 {
    (cell << 32) | u64::from(id)
}

/// The members of fine cell `cell`.
fn cell_range(cell: u64) -> std::ops::Range<u64> {
    (cell << 32)..((cell + 1) << 32)
}

/// Travellers by coarse cell, each set ordered by fine cell.
///
/// One B-tree entry (8 bytes and the tree's slack, about 14 bytes) per traveller replaces a
/// fine-cell map and a coarse count map: with travellers spread as the benchmark spreads
/// them (1M travellers in 730k fine cells), those cost ~70 bytes a traveller, more than the
/// traveller's own record. Adding or removing is `O(log n)` in the coarse cell, and only an
/// update that changes fine cell does either.
///
/// Invariant: no coarse entry is empty (it is removed when its last member leaves).
#[derive(Debug, Default)]
pub struct CellIndex {
    coarse: DashMap<u64, Members, RandomState>,
}

/// The cells a query should open.
pub enum Cover {
    /// These fine cells.
    Fine(Vec<u64>),
    /// These coarse cells, each with the squared-chord lower bound of its distance from the
    /// query centre, nearest first.
    Coarse(Vec<(f64, u64)>),
}

impl CellIndex {
    /// An empty index with `shards` shards (a power of two).
    pub fn with_shards(shards: usize) -> Self {
        Self {
            coarse: DashMap::with_hasher_and_shard_amount(RandomState::default(), shards),
        }
    }

    /// Adds traveller `id` to fine cell `cell`.
    pub(crate) fn insert(&self, cell: u64, id: Handle) {
        self.coarse
            .entry(COARSE.parent_of(FINE, cell))
            .or_default()
            .insert(member(cell, id));
    }

    /// Removes traveller `id` from fine cell `cell` (no-op if absent).
    pub(crate) fn remove(&self, cell: u64, id: Handle) {
        let parent = COARSE.parent_of(FINE, cell);
        let emptied = match self.coarse.get_mut(&parent) {
            Some(mut members) => {
                members.remove(&member(cell, id));
                members.is_empty()
            }
            None => false,
        };
        if emptied {
            self.coarse
                .remove_if(&parent, |_, members| members.is_empty());
        }
    }

    /// Empties the index.
    pub fn clear(&self) {
        self.coarse.clear();
    }

    /// Appends the travellers in fine cell `cell` to `out`.
    pub(crate) fn ids_in(&self, cell: u64, out: &mut Vec<Handle>) {
        if let Some(members) = self.coarse.get(&COARSE.parent_of(FINE, cell)) {
            // The low 32 bits of a member are its handle.
            out.extend(members.range(cell_range(cell)).map(|&m| m as u32));
        }
    }

    /// The non-empty fine cells inside coarse cell `cell`.
    pub fn children(&self, cell: u64) -> Vec<u64> {
        let mut cells = Vec::new();
        if let Some(members) = self.coarse.get(&cell) {
            let mut next = members.first().copied();
            while let Some(m) = next {
                let fine = m >> 32;
                cells.push(fine);
                next = members.range((fine + 1) << 32..).next().copied();
            }
        }
        cells
    }

    /// Number of non-empty fine cells.
    pub fn fine_cells(&self) -> usize {
        self.coarse
            .iter()
            .map(|entry| self.children(*entry.key()).len())
            .sum()
    }

    /// The size of every fine bucket (for invariant checks).
    pub fn bucket_sizes(&self) -> Vec<usize> {
        let mut sizes = Vec::new();
        for entry in self.coarse.iter() {
            let mut last = None;
            for &m in entry.value() {
                if last == Some(m >> 32) {
                    *sizes.last_mut().expect("a bucket was started") += 1;
                } else {
                    sizes.push(1);
                    last = Some(m >> 32);
                }
            }
        }
        sizes
    }

    /// How many travellers each coarse cell holds (for invariant checks).
    pub fn coarse_counts(&self) -> Vec<u32> {
        self.coarse
            .iter()
            .map(|entry| entry.value().len() as u32)
            .collect()
    }

    /// The cells covering every point within `radius_m` of `center`.
    pub fn cover_cap(&self, center: LatLon, radius_m: f64) -> Cover {
        let (south, north, lons) = cap_bounds(center, radius_m);
        self.cover(south, north, &lons, Some(center.to_unit()))
    }

    /// The cells covering a box given as a latitude range and longitude ranges.
    pub fn cover_box(&self, south: f64, north: f64, lons: &[(f64, f64)]) -> Cover {
        self.cover(south, north, lons, None)
    }

    fn cover(
        &self,
        south: f64,
        north: f64,
        lons: &[(f64, f64)],
        center: Option<[f64; 3]>,
    ) -> Cover {
        if FINE.count_in(south, north, lons) <= FINE_BUDGET {
            return Cover::Fine(FINE.cells_in(south, north, lons));
        }
        let coarse = if COARSE.count_in(south, north, lons) <= COARSE_BUDGET {
            COARSE.cells_in(south, north, lons)
        } else {
            // Too many to enumerate: walk the non-empty coarse cells instead.
            let rows = COARSE.row(south)..=COARSE.row(north);
            let columns: Vec<_> = lons
                .iter()
                .map(|&(w, e)| COARSE.column(w)..=COARSE.column(e))
                .collect();
            self.coarse
                .iter()
                .map(|entry| *entry.key())
                .filter(|&cell| {
                    let (column, row) = COARSE.column_row(cell);
                    rows.contains(&row) && columns.iter().any(|c| c.contains(&column))
                })
                .collect()
        };
        let mut ranked: Vec<(f64, u64)> = coarse
            .into_iter()
            .map(|cell| (center.map_or(0.0, |q| cell_bound(COARSE, cell, q)), cell))
            .collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
        Cover::Coarse(ranked)
    }
}

/// Squared-chord lower bound from unit vector `q` to any point of `cell` of `grid`.
pub fn cell_bound(grid: Grid, cell: u64, q: [f64; 3]) -> f64 {
    let (w, s, e, n) = grid.cell_bounds(cell);
    chord2_to_envelope(q, lon_lat_envelope(w, e, s, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_counts_follow_inserts_and_removes() {
        let index = CellIndex::with_shards(4);
        let (a, b): (Handle, Handle) = (7, 1 << 24 | 7);
        let cell = FINE.cell(60.17, 24.94);
        index.insert(cell, a);
        index.insert(cell, b);
        let parent = COARSE.parent_of(FINE, cell);
        assert_eq!(index.children(parent), [cell]);
        index.remove(cell, a);
        let mut ids = Vec::new();
        index.ids_in(cell, &mut ids);
        assert_eq!(ids, [b]);
        index.remove(cell, b);
        assert_eq!(index.fine_cells(), 0);
        assert!(
            index.children(parent).is_empty(),
            "empty coarse cells are dropped"
        );
    }

    #[test]
    fn a_small_cap_uses_fine_cells_and_a_large_one_coarse_cells() {
        let index = CellIndex::with_shards(4);
        let helsinki = LatLon::new(60.17, 24.94).expect("valid");
        match index.cover_cap(helsinki, 2_000.0) {
            Cover::Fine(cells) => {
                assert!(cells.len() <= 64, "{} cells", cells.len());
                assert!(cells.contains(&FINE.cell(60.17, 24.94)));
            }
            Cover::Coarse(_) => panic!("2 km should use fine cells"),
        }
        match index.cover_cap(helsinki, 500_000.0) {
            Cover::Coarse(cells) => {
                assert!(cells.len() <= COARSE_BUDGET);
                assert_eq!(
                    cells[0].1,
                    COARSE.cell(60.17, 24.94),
                    "the centre's cell comes first"
                );
            }
            Cover::Fine(_) => panic!("500 km should use coarse cells"),
        }
        // Wider than the coarse budget: only the non-empty coarse cells are walked.
        index.insert(FINE.cell(48.85, 2.35), 1);
        index.insert(FINE.cell(-33.9, 151.2), 2);
        match index.cover_cap(helsinki, 2_000_000.0) {
            Cover::Coarse(cells) => {
                let cells: Vec<u64> = cells.into_iter().map(|(_, c)| c).collect();
                assert_eq!(
                    cells,
                    [COARSE.cell(48.85, 2.35)],
                    "Paris is within 2,000 km, Sydney is not in the box"
                );
            }
            Cover::Fine(_) => panic!("2,000 km should use coarse cells"),
        }
    }
}
