//! [`Cells`]: which subjects (fences, live maps) could hold a point, keyed by the geohash
//! cells that cover them, so that a traveller's update finds the few it may concern.
//!
//! A subject covers cells of one of three levels: the finest level on which it needs at most
//! [`CELL_BUDGET`] cells (6-character geohash cells, 1.2 km by 0.6 km, for a city block;
//! 4-character ones, 39 km by 20 km, for a region; 2-character ones, 1,250 km by 625 km, for
//! anything larger, at most 1,024 of them for the whole Earth). So no subject, however large,
//! lists more than [`CELL_BUDGET`] cells. A cell wholly inside a subject's area is marked,
//! and a point there needs no test.
//!
//! Lookups go coarse to fine, from the coarsest level any subject lists cells on (the
//! levels above hold nothing but counts), and stop at the first cell that nothing lies
//! below: an update far from every fence pays one map lookup, one in a busy city two or
//! three, and none at all while there is no subject.

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use foldhash::fast::RandomState;

use crate::geometry::area::{Area, Overlap};
use crate::geometry::geohash::Grid;
use crate::geometry::{BBox, LatLon};
use crate::travellers::cells::{COARSE, FINE};

/// The levels, coarse to fine. Each is a whole number of geohash characters (5 bits) finer
/// than the one before, so a cell's parent on the level above is a shift away.
const LEVELS: [Grid; 3] = [Grid::new(5), COARSE, FINE];

/// The most cells a subject lists on any level but the coarsest (which has 1,024 in all).
/// 4,096 keeps a 5-km fence on fine cells (about 200 of them) and a fence the size of a
/// country on 4-character ones.
pub const CELL_BUDGET: usize = 4_096;

const _: () = assert!(
    LEVELS[0].bits() < LEVELS[1].bits() && LEVELS[1].bits() < LEVELS[2].bits(),
    "levels go coarse to fine"
);

/// The cells a subject covers, on one level, each marked when it lies wholly inside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Covering {
    level: usize,
    cells: Vec<(u32, bool)>,
}

impl Covering {
    /// The cells of `area` (those it meets), on the finest level with few enough.
    pub fn of_area(area: &Area) -> Self {
        let bounds = area.bounds();
        let lons = |b: &BBox| [(b.min_lon, b.max_lon)];
        let level = finest_level(|grid| {
            bounds
                .iter()
                .map(|b| grid.count_in(b.min_lat, b.max_lat, &lons(b)))
                .sum()
        });
        let grid = LEVELS[level];
        let cells = bounds
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
        Self::new(level, cells)
    }

    /// The cells of the cap of `radius_m` around `center` (none marked inside).
    pub fn of_cap(center: LatLon, radius_m: f64) -> Self {
        let (south, north, lons) = crate::geometry::cap_bounds(center, radius_m);
        let (south, north) = (south.max(-90.0), north.min(90.0));
        let lons: Vec<(f64, f64)> = lons
            .into_iter()
            .map(|(w, e)| (w.max(-180.0), e.min(180.0)))
            .collect();
        let level = finest_level(|grid| grid.count_in(south, north, &lons));
        let cells = LEVELS[level]
            .cells_in(south, north, &lons)
            .into_iter()
            .map(|c| (cell_u32(c), false))
            .collect();
        Self::new(level, cells)
    }

    fn new(level: usize, mut cells: Vec<(u32, bool)>) -> Self {
        cells.sort_unstable();
        cells.dedup_by_key(|(c, _)| *c);
        Self { level, cells }
    }

    /// Cells covered, for the memory figures.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether it covers no cell.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

/// The finest level on which `count` is within the budget, else the coarsest.
fn finest_level(count: impl Fn(Grid) -> usize) -> usize {
    (1..LEVELS.len())
        .rev()
        .find(|&level| count(LEVELS[level]) <= CELL_BUDGET)
        .unwrap_or(0)
}

fn cell_u32(cell: u64) -> u32 {
    u32::try_from(cell).expect("cells of every level have at most 30 bits")
}

/// A subject found for a point, and whether the point's cell lies wholly inside it.
pub struct Found<T> {
    /// The subject.
    pub subject: Arc<T>,
    /// The point is inside without a test.
    pub interior: bool,
}

/// One cell of one level: the subjects covering it, and how many entries the finer levels
/// hold in cells inside it.
struct Node<T> {
    subjects: Vec<(Arc<T>, bool)>,
    below: u32,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            subjects: Vec::new(),
            below: 0,
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.subjects.is_empty() && self.below == 0
    }
}

/// Subjects by the cells they cover, each listed under a key (`()` for one index of all;
/// a viewer's name, for the fences each viewer's travellers are judged against).
///
/// Invariants: a subject is listed under its key in exactly the cells of the covering it was
/// inserted with (until removed with that covering); a node's `below` counts the entries in
/// finer levels' cells inside it under the same key; a node with no subject and nothing
/// below is removed. So a lookup that finds no node, or one with nothing below, has seen
/// every subject under its key that could hold it.
pub struct Cells<T, K = ()> {
    levels: [DashMap<(K, u32), Node<T>, RandomState>; LEVELS.len()],
    /// Subject entries on each level, under every key.
    listed: [AtomicUsize; LEVELS.len()],
}

impl<T, K: Hash + Eq> Default for Cells<T, K> {
    fn default() -> Self {
        Self {
            levels: std::array::from_fn(|_| DashMap::default()),
            listed: std::array::from_fn(|_| AtomicUsize::new(0)),
        }
    }
}

impl<T> Cells<T> {
    /// Lists `subject` in the cells of `covering`.
    pub fn insert(&self, subject: &Arc<T>, covering: &Covering) {
        self.insert_under(&(), subject, covering);
    }

    /// Takes `subject` out of the cells of `covering`, which it was inserted with.
    pub fn remove(&self, subject: &Arc<T>, covering: &Covering) {
        self.remove_under(&(), subject, covering);
    }

    /// Moves `subject` from the cells of `old` to those of `new`, touching only the cells
    /// that differ.
    pub fn replace(&self, subject: &Arc<T>, old: &Covering, new: &Covering) {
        self.replace_under(&(), subject, old, new);
    }

    /// The subjects whose cells hold `p` (one that is moving may be listed twice).
    pub fn at(&self, p: LatLon) -> Vec<Found<T>> {
        self.at_where(p, |_| true)
    }

    /// The subjects whose cells hold `p` and that `keep`. `keep` runs under the cell map's
    /// lock, so it must take no lock; the others are never cloned (an atomic count each,
    /// shared by every thread that meets them).
    pub fn at_where(&self, p: LatLon, keep: impl Fn(&T) -> bool) -> Vec<Found<T>> {
        let mut found = Vec::new();
        self.extend_at_under(&(), p, keep, &mut found);
        found
    }
}

impl<T, K: Hash + Eq + Clone> Cells<T, K> {
    /// Lists `subject` under `key` in the cells of `covering`.
    pub fn insert_under(&self, key: &K, subject: &Arc<T>, covering: &Covering) {
        let level = covering.level;
        self.listed[level].fetch_add(covering.cells.len(), Ordering::Relaxed);
        for &(cell, interior) in &covering.cells {
            self.levels[level]
                .entry((key.clone(), cell))
                .or_default()
                .subjects
                .push((subject.clone(), interior));
            for up in 0..level {
                self.levels[up]
                    .entry((key.clone(), ancestor(cell, level, up)))
                    .or_default()
                    .below += 1;
            }
        }
    }

    /// Takes `subject` out of the cells of `covering` under `key`, which it was inserted
    /// with.
    pub fn remove_under(&self, key: &K, subject: &Arc<T>, covering: &Covering) {
        let level = covering.level;
        for &(cell, _) in &covering.cells {
            let at = (key.clone(), cell);
            if let Some(mut node) = self.levels[level].get_mut(&at) {
                node.subjects.retain(|(s, _)| !Arc::ptr_eq(s, subject));
            }
            self.levels[level].remove_if(&at, |_, node| node.is_empty());
            for up in 0..level {
                let at = (key.clone(), ancestor(cell, level, up));
                if let Some(mut node) = self.levels[up].get_mut(&at) {
                    node.below -= 1;
                }
                self.levels[up].remove_if(&at, |_, node| node.is_empty());
            }
        }
        // Counted down last (and up first, in `insert_under`), so a lookup never skips a
        // level that holds entries.
        self.listed[level].fetch_sub(covering.cells.len(), Ordering::Relaxed);
    }

    /// Moves `subject` under `key` from the cells of `old` to those of `new`, touching only
    /// the cells that differ.
    pub fn replace_under(&self, key: &K, subject: &Arc<T>, old: &Covering, new: &Covering) {
        if old == new {
            return;
        }
        // In first, out second: a lookup meanwhile finds the subject, if anything twice.
        if old.level != new.level {
            self.insert_under(key, subject, new);
            self.remove_under(key, subject, old);
            return;
        }
        let gone = Covering {
            level: old.level,
            cells: difference(&old.cells, &new.cells),
        };
        let came = Covering {
            level: new.level,
            cells: difference(&new.cells, &old.cells),
        };
        self.insert_under(key, subject, &came);
        self.remove_under(key, subject, &gone);
    }

    /// Adds to `found` the subjects under `key` whose cells hold `p` and that `keep` (see
    /// [`Cells::at_where`]).
    pub fn extend_at_under(
        &self,
        key: &K,
        p: LatLon,
        keep: impl Fn(&T) -> bool,
        found: &mut Vec<Found<T>>,
    ) {
        let Some(start) = self
            .listed
            .iter()
            .position(|n| n.load(Ordering::Relaxed) > 0)
        else {
            return;
        };
        for (level, grid) in LEVELS.iter().enumerate().skip(start) {
            let at = (key.clone(), cell_u32(grid.cell(p.lat, p.lon)));
            let Some(node) = self.levels[level].get(&at) else {
                break;
            };
            found.extend(
                node.subjects
                    .iter()
                    .filter(|(subject, _)| keep(subject))
                    .map(|(subject, interior)| Found {
                        subject: subject.clone(),
                        interior: *interior,
                    }),
            );
            if node.below == 0 {
                break;
            }
        }
    }

    /// Entries held (a subject in a cell, or a cell), for the memory figures.
    pub fn entries(&self) -> usize {
        self.levels
            .iter()
            .flat_map(|level| level.iter().map(|node| node.subjects.len() + 1))
            .sum()
    }
}

/// The cell on level `up` holding `cell` of level `level`.
fn ancestor(cell: u32, level: usize, up: usize) -> u32 {
    cell_u32(LEVELS[up].parent_of(LEVELS[level], u64::from(cell)))
}

/// The cells of sorted `a` not in sorted `b` (a cell whose mark changed counts as both).
fn difference(a: &[(u32, bool)], b: &[(u32, bool)]) -> Vec<(u32, bool)> {
    a.iter()
        .filter(|c| b.binary_search(c).is_err())
        .copied()
        .collect()
}
