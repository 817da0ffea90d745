//! [`Cells`]: which subjects (fences, live maps) could hold a point, keyed by the geohash
//! cells that cover them, so that a traveller's update finds the few it may concern.
//!
//! A subject covers fine cells (small areas) or coarse cells (large ones); a cell wholly
//! inside a subject's area is marked, and a point there needs no test. Lookups go coarse
//! first: a coarse cell that no subject touches, at any level, answers "none" in one map
//! lookup, which is all an update far from every fence pays.

use std::sync::Arc;

use dashmap::DashMap;
use foldhash::fast::RandomState;

use crate::geometry::LatLon;
use crate::geometry::area::{Area, Overlap};
use crate::travellers::cells::{COARSE, FINE};

/// A subject covers fine cells when it needs at most this many, else coarse cells.
const FINE_BUDGET: usize = 4_096;

/// The cells a subject covers, each marked when it lies wholly inside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Covering {
    fine: Vec<(u32, bool)>,
    coarse: Vec<(u32, bool)>,
}

impl Covering {
    /// The cells of `area` (those it meets), fine if few enough, else coarse.
    pub fn of_area(area: &Area) -> Self {
        let bounds = area.bounds();
        let lons = |b: &crate::geometry::BBox| [(b.min_lon, b.max_lon)];
        let fine: usize = bounds
            .iter()
            .map(|b| FINE.count_in(b.min_lat, b.max_lat, &lons(b)))
            .sum();
        let grid = if fine <= FINE_BUDGET { FINE } else { COARSE };
        let mut cells: Vec<(u32, bool)> = bounds
            .iter()
            .flat_map(|b| grid.cells_in(b.min_lat, b.max_lat, &lons(b)))
            .filter_map(|cell| {
                let (w, s, e, n) = grid.cell_bounds(cell);
                match area.overlap(w, s, e, n) {
                    Overlap::Outside => None,
                    overlap => Some((cell_u32(cell), overlap == Overlap::Inside)),
                }
            })
            .collect();
        cells.sort_unstable();
        cells.dedup_by_key(|(c, _)| *c);
        if grid == FINE {
            Self {
                fine: cells,
                coarse: Vec::new(),
            }
        } else {
            Self {
                fine: Vec::new(),
                coarse: cells,
            }
        }
    }

    /// The cells of the cap of `radius_m` around `center` (none marked inside).
    pub fn of_cap(center: LatLon, radius_m: f64) -> Self {
        let (south, north, lons) = crate::geometry::cap_bounds(center, radius_m);
        let (south, north) = (south.max(-90.0), north.min(90.0));
        let lons: Vec<(f64, f64)> = lons
            .into_iter()
            .map(|(w, e)| (w.max(-180.0), e.min(180.0)))
            .collect();
        let grid = if FINE.count_in(south, north, &lons) <= FINE_BUDGET {
            FINE
        } else {
            COARSE
        };
        let mut cells: Vec<(u32, bool)> = grid
            .cells_in(south, north, &lons)
            .into_iter()
            .map(|c| (cell_u32(c), false))
            .collect();
        cells.sort_unstable();
        cells.dedup();
        if grid == FINE {
            Self {
                fine: cells,
                coarse: Vec::new(),
            }
        } else {
            Self {
                fine: Vec::new(),
                coarse: cells,
            }
        }
    }

    /// Cells covered, for the memory figures.
    pub fn len(&self) -> usize {
        self.fine.len() + self.coarse.len()
    }

    /// Whether it covers no cell.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn cell_u32(cell: u64) -> u32 {
    u32::try_from(cell).expect("fine and coarse cells have at most 30 bits")
}

/// A subject found for a point, and whether the point's cell lies wholly inside it.
pub struct Found<T> {
    /// The subject.
    pub subject: Arc<T>,
    /// The point is inside without a test.
    pub interior: bool,
}

/// What a coarse cell holds: subjects covering it whole-cell, and how many fine-cell
/// entries lie below it.
struct Coarse<T> {
    subjects: Vec<(Arc<T>, bool)>,
    fine_entries: u32,
}

impl<T> Default for Coarse<T> {
    fn default() -> Self {
        Self {
            subjects: Vec::new(),
            fine_entries: 0,
        }
    }
}

/// Subjects by the cells they cover.
///
/// Invariants: a subject is listed in exactly the cells of the covering it was inserted with
/// (until removed with that covering); a coarse entry's `fine_entries` counts the fine-cell
/// entries below it, and an entry with no subject and no fine entry is removed.
pub struct Cells<T> {
    coarse: DashMap<u32, Coarse<T>, RandomState>,
    fine: DashMap<u32, Vec<(Arc<T>, bool)>, RandomState>,
}

impl<T> Default for Cells<T> {
    fn default() -> Self {
        Self {
            coarse: DashMap::default(),
            fine: DashMap::default(),
        }
    }
}

impl<T> Cells<T> {
    /// Lists `subject` in the cells of `covering`.
    pub fn insert(&self, subject: &Arc<T>, covering: &Covering) {
        for &(cell, interior) in &covering.coarse {
            self.coarse
                .entry(cell)
                .or_default()
                .subjects
                .push((subject.clone(), interior));
        }
        for &(cell, interior) in &covering.fine {
            self.fine
                .entry(cell)
                .or_default()
                .push((subject.clone(), interior));
            self.coarse.entry(parent(cell)).or_default().fine_entries += 1;
        }
    }

    /// Takes `subject` out of the cells of `covering`, which it was inserted with.
    pub fn remove(&self, subject: &Arc<T>, covering: &Covering) {
        for &(cell, _) in &covering.coarse {
            if let Some(mut entry) = self.coarse.get_mut(&cell) {
                entry.subjects.retain(|(s, _)| !Arc::ptr_eq(s, subject));
            }
            self.coarse
                .remove_if(&cell, |_, e| e.subjects.is_empty() && e.fine_entries == 0);
        }
        for &(cell, _) in &covering.fine {
            if let Some(mut list) = self.fine.get_mut(&cell) {
                list.retain(|(s, _)| !Arc::ptr_eq(s, subject));
            }
            self.fine.remove_if(&cell, |_, list| list.is_empty());
            let up = parent(cell);
            if let Some(mut entry) = self.coarse.get_mut(&up) {
                entry.fine_entries -= 1;
            }
            self.coarse
                .remove_if(&up, |_, e| e.subjects.is_empty() && e.fine_entries == 0);
        }
    }

    /// Moves `subject` from the cells of `old` to those of `new`, touching only the cells
    /// that differ.
    pub fn replace(&self, subject: &Arc<T>, old: &Covering, new: &Covering) {
        if old == new {
            return;
        }
        let gone = Covering {
            fine: difference(&old.fine, &new.fine),
            coarse: difference(&old.coarse, &new.coarse),
        };
        let came = Covering {
            fine: difference(&new.fine, &old.fine),
            coarse: difference(&new.coarse, &old.coarse),
        };
        self.remove(subject, &gone);
        self.insert(subject, &came);
    }

    /// The subjects whose cells hold `p`.
    pub fn at(&self, p: LatLon) -> Vec<Found<T>> {
        let coarse = cell_u32(COARSE.cell(p.lat, p.lon));
        let Some(entry) = self.coarse.get(&coarse) else {
            return Vec::new();
        };
        let mut found: Vec<Found<T>> = entry
            .subjects
            .iter()
            .map(|(subject, interior)| Found {
                subject: subject.clone(),
                interior: *interior,
            })
            .collect();
        let has_fine = entry.fine_entries > 0;
        drop(entry);
        if has_fine && let Some(list) = self.fine.get(&cell_u32(FINE.cell(p.lat, p.lon))) {
            found.extend(list.iter().map(|(subject, interior)| Found {
                subject: subject.clone(),
                interior: *interior,
            }));
        }
        found
    }

    /// Entries held, for the memory figures.
    pub fn entries(&self) -> usize {
        self.fine.iter().map(|e| e.value().len()).sum::<usize>()
            + self
                .coarse
                .iter()
                .map(|e| e.value().subjects.len() + 1)
                .sum::<usize>()
    }
}

fn parent(fine: u32) -> u32 {
    cell_u32(COARSE.parent_of(FINE, u64::from(fine)))
}

/// The cells of sorted `a` not in sorted `b` (a cell whose mark changed counts as both).
fn difference(a: &[(u32, bool)], b: &[(u32, bool)]) -> Vec<(u32, bool)> {
    a.iter()
        .filter(|c| b.binary_search(c).is_err())
        .copied()
        .collect()
}
