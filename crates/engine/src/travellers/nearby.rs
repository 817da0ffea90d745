//! Nearby travellers: cells opened nearest first, candidates ranked by great-circle distance
//! then id, the walk stopped once no unopened cell can hold anything nearer.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use foldhash::fast::FixedState;
use hashbrown::HashSet;

use super::cells::{Cover, FINE, cell_bound};
use super::index::TravellerIndex;
use super::shard::{Handle, split};
use super::{TravellerAt, TravellerHit, TravellerId};
use crate::geometry::{LatLon, chord2_bound, haversine_m};

impl TravellerIndex {
    /// Live travellers within `radius_m` of `center` that `viewer` may see, nearest first,
    /// ties broken by id, at most `limit`.
    ///
    /// Cells are opened nearest first (coarse cells ranked by a lower bound of their
    /// distance), and the walk stops when the next cell cannot hold anything nearer than the
    /// `limit`-th traveller found. A traveller counts only in the cell its record names when
    /// that cell is opened. One that moves during the query into a cell opened later can be
    /// met again there; if that sighting also qualifies, it replaces the earlier one. Either
    /// way each traveller is answered at most once.
    pub fn nearby(
        &self,
        center: LatLon,
        radius_m: f64,
        limit: usize,
        viewer: Option<&str>,
        now_ms: i64,
    ) -> Vec<TravellerHit> {
        let mut search = Search {
            index: self,
            center,
            q: center.to_unit(),
            radius_m,
            limit,
            viewer,
            now_ms,
            bound: chord2_bound(radius_m),
            heap: BinaryHeap::new(),
            handles: Vec::new(),
            kept: HashSet::default(),
        };
        match self.cells.cover_cap(center, radius_m) {
            Cover::Fine(cells) => cells.into_iter().for_each(|cell| search.open(cell)),
            Cover::Coarse(ranked) => {
                for (lower, coarse) in ranked {
                    if lower > search.bound {
                        break;
                    }
                    let mut children: Vec<(f64, u64)> = self
                        .cells
                        .children(coarse)
                        .into_iter()
                        .map(|cell| (cell_bound(FINE, cell, search.q), cell))
                        .collect();
                    children.sort_by(|a, b| a.0.total_cmp(&b.0));
                    for (lower, cell) in children {
                        if lower > search.bound {
                            break;
                        }
                        search.open(cell);
                    }
                }
            }
        }
        search
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.hit)
            .collect()
    }
}

/// A kept candidate, ordered by `(distance, id)`.
struct Ranked {
    hit: TravellerHit,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.hit
            .distance_m
            .total_cmp(&other.hit.distance_m)
            .then_with(|| self.hit.at.id.cmp(&other.hit.at.id))
    }
}

/// The state of one nearby query.
struct Search<'a> {
    index: &'a TravellerIndex,
    center: LatLon,
    q: [f64; 3],
    radius_m: f64,
    limit: usize,
    viewer: Option<&'a str>,
    now_ms: i64,
    /// Squared chord beyond which nothing can enter the result.
    bound: f64,
    heap: BinaryHeap<Ranked>,
    handles: Vec<Handle>,
    /// Every traveller ever pushed onto `heap`, by id (a handle may be reused by another
    /// traveller while the query runs), so that one met twice is kept once.
    kept: HashSet<TravellerId, FixedState>,
}

impl Search<'_> {
    fn open(&mut self, cell: u64) {
        self.handles.clear();
        self.index.cells.ids_in(cell, &mut self.handles);
        for &h in &self.handles {
            let (s, slot) = split(h);
            let shard = self.index.shards[s].read();
            let t = shard.record(slot);
            if u64::from(t.cell) != cell
                || !self.index.live(t, self.now_ms)
                || !t.allows(self.viewer)
            {
                continue;
            }
            let distance_m = haversine_m(self.center, t.position);
            if distance_m > self.radius_m {
                continue;
            }
            let worse = self.heap.len() >= self.limit
                && self.heap.peek().is_some_and(|w| {
                    (distance_m, t.id.as_str()) >= (w.hit.distance_m, w.hit.at.id.as_str())
                });
            if worse || self.limit == 0 {
                continue;
            }
            let hit = TravellerHit {
                at: TravellerAt {
                    id: t.id.to_string(),
                    position: t.position,
                    ts: t.ts,
                },
                distance_m,
            };
            let first_sighting = self.kept.insert(t.id.clone());
            drop(shard);
            if !first_sighting {
                // Met before, in a cell it has since left: keep only this newer sighting
                // (rare: the traveller moved while the query ran).
                self.heap.retain(|r| r.hit.at.id != hit.at.id);
            }
            self.heap.push(Ranked { hit });
            if self.heap.len() > self.limit {
                self.heap.pop();
            }
            if self.heap.len() == self.limit {
                let worst = self.heap.peek().expect("heap is full").hit.distance_m;
                self.bound = self.bound.min(chord2_bound(worst));
            }
        }
    }
}
